"""Reading Serverless Workflow documents (and the manifests that carry them) from YAML.

The DSL is written in YAML 1.2, where only `true`/`false` are booleans: PyYAML and other
YAML 1.1 readers turn an unquoted `on:` (a `schedule.on`, a field named `on` in a `set`)
into the boolean key `True`, and `yes`, `no`, `off` into booleans. Every place the
project reads a document goes through `load_yaml`/`load_yaml_all` so they all agree.

Values come back as plain JSON types: YAML timestamps stay strings (a document travels
through Temporal as JSON, and the DSL has no date type), and mappings are plain dicts.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError as _RuamelError

__all__ = ["YamlError", "load_yaml", "load_yaml_all"]


class YamlError(ValueError):
    """Text that is not valid YAML; the message says where."""


class _JsonConstructor(SafeConstructor):
    """The safe constructor with timestamps kept as the text the author wrote."""


_JsonConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def _reader() -> YAML:
    # A YAML instance is not safe to share between threads; making one is cheap.
    reader = YAML(typ="safe", pure=True)
    reader.Constructor = _JsonConstructor
    reader.version = (1, 2)
    return reader


def load_yaml(text: str) -> Any:
    """The single document in `text`, read as YAML 1.2 (JSON is YAML, so JSON too)."""
    try:
        return _reader().load(io.StringIO(text))
    except _RuamelError as error:
        raise YamlError(str(error)) from None


def load_yaml_all(text: str) -> list[Any]:
    """Every document in a multi-document `text` (`---` separated), empty ones dropped."""
    try:
        return [doc for doc in _reader().load_all(io.StringIO(text)) if doc is not None]
    except _RuamelError as error:
        raise YamlError(str(error)) from None
