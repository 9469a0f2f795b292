"""The operator loads the Kubernetes client library's API and model classes on first use:
starting it imports a few dozen of the library's modules instead of about 860, and every
name the library exports still resolves to the class its ``__init__`` names."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tflow_operator import lazy_client

PROBE = """
import json, sys
import tflow_operator.main
loaded = [m for m in sys.modules if m.startswith("kubernetes_asyncio.client.")]
print(json.dumps(loaded))
"""

# Every exported name, read through the lazy packages, is the class the module named by
# the library's own __init__ defines; and ApiClient still deserializes into models.
RESOLVE = """
import asyncio, importlib, json, sys
import tflow_operator
from tflow_operator.lazy_client import LAZY_PACKAGES, exports
from pathlib import Path
checked = 0
for package in LAZY_PACKAGES:
    module = importlib.import_module(package)
    names, _ = exports(Path(module.__file__).read_text(), package)
    assert sorted(module.__all__) == sorted(names), package
    for name, origin in names.items():
        assert getattr(module, name) is getattr(importlib.import_module(origin), name), name
        checked += 1
from kubernetes_asyncio.client import ApiClient, V1ObjectMeta

class Response:
    data = json.dumps({"metadata": {"name": "x", "labels": {"a": "b"}}})

async def deserialize():
    client = ApiClient()
    try:
        return client.deserialize(Response(), "V1ConfigMap")
    finally:
        await client.close()

config_map = asyncio.run(deserialize())
assert isinstance(config_map.metadata, V1ObjectMeta), type(config_map.metadata)
print(json.dumps({"checked": checked, "labels": config_map.metadata.labels}))
"""


def _python(code: str) -> str:
    # A fresh interpreter: this test process may have imported the library already.
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def test_starting_the_operator_loads_few_of_the_client_librarys_modules() -> None:
    loaded = json.loads(_python(PROBE))
    assert 0 < len(loaded) < 60, sorted(loaded)
    assert "kubernetes_asyncio.client.api_client" in loaded
    assert not any(m.startswith("kubernetes_asyncio.client.api.") for m in loaded), loaded


def test_every_exported_name_still_resolves_to_the_librarys_class() -> None:
    result = json.loads(_python(RESOLVE))
    assert result["checked"] > 1000
    assert result["labels"] == {"a": "b"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    import kubernetes_asyncio.client as client

    with pytest.raises(AttributeError, match="NoSuchModel"):
        getattr(client, "NoSuchModel")  # noqa: B009


@pytest.fixture
def probe_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], ModuleType]]:
    """Import a package `tflow_lazy_probe` with the given ``__init__`` (and a submodule
    `thing` defining `Thing`) through the lazy loader; forgotten afterwards."""
    name = "tflow_lazy_probe"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [lazy_client._LazyPackageFinder([name]), *sys.meta_path])

    def load(init: str) -> ModuleType:
        package = tmp_path / name
        package.mkdir()
        (package / "thing.py").write_text("class Thing: pass\n")
        (package / "__init__.py").write_text(init)
        return importlib.import_module(name)

    yield load
    for module in (name, f"{name}.thing"):
        sys.modules.pop(module, None)


def test_a_package_init_with_more_than_imports_is_imported_as_written(
    probe_package: Callable[[str], ModuleType],
) -> None:
    probe = probe_package(
        "from tflow_lazy_probe.thing import Thing\nRAN = []\nif True:\n    RAN.append(1)\n"
    )
    assert probe.RAN == [1]  # its __init__ ran
    assert "tflow_lazy_probe.thing" in sys.modules


def test_a_package_init_of_imports_and_constants_loads_names_on_first_use(
    probe_package: Callable[[str], ModuleType],
) -> None:
    probe = probe_package(
        '"""doc"""\nfrom __future__ import annotations\n__version__ = "1"\n'
        "from tflow_lazy_probe.thing import Thing\n__all__ = ['Thing']\n"
    )
    assert probe.__version__ == "1"
    assert "tflow_lazy_probe.thing" not in sys.modules
    assert probe.Thing.__name__ == "Thing"
    assert "tflow_lazy_probe.thing" in sys.modules
    assert "Thing" in dir(probe)
