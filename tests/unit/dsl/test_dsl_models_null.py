"""An explicit null where the schema wants a value is refused by name; nulls inside
free-form data stay data."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.dsl.issues import DocumentError
from tflow_workers.dsl.models import load_document

HEADER = {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"}


def doc(**extra: Any) -> dict[str, Any]:
    return {"document": dict(HEADER), "do": [{"a": {"set": {"x": 1}}}], **extra}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (doc(do=[{"a": {"set": {"x": 1}, "then": None}}]), "then"),
        (doc(timeout=None), "timeout"),
        ({"document": {**HEADER, "title": None}, "do": [{"a": {"set": {}}}]}, "title"),
        (
            doc(do=[{"a": {"call": "http", "with": {"method": "get", "endpoint": None}}}]),
            "endpoint",
        ),
    ],
)
def test_null_where_a_value_belongs_is_refused_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(DocumentError, match=f"'{field}' may not be null"):
        load_document(document)


def test_nulls_inside_free_form_data_are_data() -> None:
    loaded = load_document(
        doc(do=[{"a": {"set": {"x": None}}}, {"b": {"call": "f", "with": {"y": None}}}])
    )
    assert [next(iter(item)) for item in loaded.do] == ["a", "b"]
