"""What `dsl.jqterms` answers for a text on some data, in the shape the property tests
compare with jq's answer."""

from __future__ import annotations

from typing import Any

from tflow_workers.dsl.jqpaths import NotPlain
from tflow_workers.dsl.jqterms import term_program


def python_answer(text: str, data: Any) -> tuple[str, Any] | None:
    """("value", what the Python evaluator gives), or None when it leaves `data` to jq.
    The text must be in the evaluator's grammar."""
    evaluate = term_program(text)
    assert evaluate is not None, text
    try:
        return "value", evaluate(data)
    except NotPlain:
        return None
