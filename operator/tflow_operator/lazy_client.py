"""The Kubernetes client library's API and model classes, loaded on first use.

``kubernetes_asyncio.client`` and ``kubernetes_asyncio.client.models`` import every
generated API and model class (about 850 modules) when the package is imported, and kopf
imports the package for two model classes. The operator talks to the apiserver with the
library's ``ApiClient`` and plain JSON, so it uses a handful of them: loading all took
about 35 MB of every operator pod's memory (docs/benchmarks.md, *Where the peak memory
is*). :func:`install` makes those two packages resolve each name the first time it is
read, from the module the package's own ``__init__`` would import it from, so nothing
the library exports goes missing and nothing is loaded that nobody asks for.

The library offers no such mode, hence this loader; it reads the export list from the
installed package's ``__init__`` rather than keeping a copy, and when that file holds
anything other than imports and constants (a future release), the package is imported as
it is written.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

LAZY_PACKAGES: Final = ("kubernetes_asyncio.client", "kubernetes_asyncio.client.models")


class _Unsupported(Exception):
    """The package's ``__init__`` does more than import names and set constants."""


def exports(source: str, package: str) -> tuple[dict[str, str], dict[str, Any]]:
    """From a package's ``__init__`` source: each name it imports mapped to the module it
    comes from, and the constants it assigns (``__version__``, ``__all__``)."""
    names: dict[str, str] = {}
    constants: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module is not None
            and node.module.startswith(package + ".")
            and all(alias.name != "*" for alias in node.names)
        ):
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
            continue
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError as error:
                raise _Unsupported(ast.dump(node)) from error
            continue
        raise _Unsupported(ast.dump(node))
    return names, constants


class _LazyPackageLoader(importlib.abc.Loader):
    def __init__(self, names: dict[str, str], constants: dict[str, Any]) -> None:
        self._names = names
        self._constants = constants

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module, with the spec's __path__

    def exec_module(self, module: ModuleType) -> None:
        names = self._names
        module.__dict__.update(self._constants)

        def __getattr__(name: str) -> Any:
            origin = names.get(name)
            if origin is None:
                # A submodule not imported yet ("from package import rest") is found by
                # the import system after this AttributeError, as for any package.
                raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(origin), name)
            setattr(module, name, value)
            return value

        module.__getattr__ = __getattr__  # type: ignore[method-assign]

        def __dir__() -> list[str]:
            return sorted(set(module.__dict__) | set(names))

        module.__dir__ = __dir__  # type: ignore[method-assign]


class _LazyPackageFinder(importlib.abc.MetaPathFinder):
    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = frozenset(packages)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.submodule_search_locations:
            return spec
        try:
            names, constants = exports(Path(spec.origin).read_text(encoding="utf-8"), fullname)
        except (OSError, SyntaxError, _Unsupported):
            return spec  # imported as written
        spec.loader = _LazyPackageLoader(names, constants)
        return spec


def install(packages: Sequence[str] = LAZY_PACKAGES) -> bool:
    """Load `packages`' names on first use from now on; False when one of them is already
    imported (then they stay as they are) or the loader is already installed."""
    if any(package in sys.modules for package in packages):
        return False
    if any(isinstance(finder, _LazyPackageFinder) for finder in sys.meta_path):
        return False
    sys.meta_path.insert(0, _LazyPackageFinder(packages))
    return True
