"""The document a run walks: its snapshot validated and loaded into the typed model
(`tflow_workers.dsl.models`) once per worker process, and shared by every run of it.

Every run of a definition brings the same document, and validating and loading it costs
milliseconds, so `prepare` caches the result by the document's digest. Nothing mutates
the models; what a run changes lives in the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from tflow_workers.dsl.models import TaskBase, WorkflowDocument
from tflow_workers.dsl.validate import check_document

CACHE_SIZE = 256
_DIGEST = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_prepared: OrderedDict[str, PreparedDocument] = OrderedDict()
# Workflow activations run on several threads of the worker.
_lock = threading.Lock()


class PreparedDocument:
    """A document's validation problems and, when its structure is sound, its model."""

    __slots__ = ("_definitions", "model", "problems")

    def __init__(self, model: WorkflowDocument | None, problems: tuple[str, ...]) -> None:
        self.model = model
        self.problems = problems
        self._definitions: dict[int, dict[str, Any]] = {}

    def definition(self, task: TaskBase) -> dict[str, Any]:
        """`$task.definition`: the task as written, dumped from its model once."""
        key = id(task)
        found = self._definitions.get(key)
        if found is None:
            # The model lives as long as this object, so its id stays its own.
            found = task.model_dump(mode="json", by_alias=True, exclude_unset=True)
            self._definitions[key] = found
        return found


def prepare(document: dict[str, Any]) -> PreparedDocument:
    """The validated, loaded `document`, from the cache when a run of it came before."""
    # `iterencode(..., True)` is what `json.dumps` runs, without building an encoder per
    # call: the same text, so the same digest.
    digest = hashlib.sha256("".join(_DIGEST.iterencode(document, True)).encode()).hexdigest()
    with _lock:
        prepared = _prepared.get(digest)
        if prepared is not None:
            _prepared.move_to_end(digest)
            return prepared
    issues, model = check_document(document)
    prepared = PreparedDocument(model, tuple(str(issue) for issue in issues))
    with _lock:
        _prepared[digest] = prepared
        if len(_prepared) > CACHE_SIZE:
            _prepared.popitem(last=False)
    return prepared
