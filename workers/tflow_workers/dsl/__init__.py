"""The Serverless Workflow 1.0 core of the engine, pure Python and free of I/O: document
models (`models`), durations (`durations`), jq runtime expressions (`expressions`),
whole-document validation (`validate`) and the supported-feature table (`features`)."""

from .durations import parse_duration
from .expressions import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionRuntimeError,
    evaluate,
    interpolate,
)
from .features import FEATURES, Feature
from .issues import DocumentError, Issue
from .models import WorkflowDocument, load_document
from .validate import load_validated_document, validate_document

__all__ = [
    "FEATURES",
    "DocumentError",
    "ExpressionCompileError",
    "ExpressionError",
    "ExpressionRuntimeError",
    "Feature",
    "Issue",
    "WorkflowDocument",
    "evaluate",
    "interpolate",
    "load_document",
    "load_validated_document",
    "parse_duration",
    "validate_document",
]
