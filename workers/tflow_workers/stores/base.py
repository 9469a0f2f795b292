"""The port: what a document store does (`DocumentStore`), what it returns (`Document`),
and the errors every adapter raises, as DSL errors a document's `try`/`catch` can match.

A document is addressed by a URI whose scheme picks the adapter; the adapters never see
the engine, and the engine never sees a storage SDK.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tflow_workers.engine.catalog import FunctionError
from tflow_workers.engine.errors import ErrorType

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Document:
    """One stored object: its bytes and what the store knows about them."""

    uri: str
    content: bytes
    content_type: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None  # ISO 8601, UTC


class DocumentStore(Protocol):
    """Reads and writes whole objects addressed by URI.

    Adapters raise `FunctionError`: status 404 when the object (or its bucket/container)
    does not exist, 413 when it is larger than `max_bytes`, and the store's own status
    otherwise.
    """

    def read(self, uri: str, max_bytes: int | None = None) -> Document: ...

    def write(
        self,
        uri: str,
        content: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None: ...

    def list(self, prefix: str) -> list[str]:
        """The URIs of the objects whose URI starts with `prefix`, in the store's order."""
        ...


@dataclass(frozen=True)
class Location:
    """A URI split into its scheme, its bucket or container, and the key or blob name."""

    scheme: str
    container: str
    key: str


def split_uri(uri: str) -> Location:
    """`scheme://container/key`, taken literally: keys may hold `?`, `#` or spaces."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme:
        raise configuration_error(
            f"document URI {uri!r} has no scheme; use s3://bucket/key or azblob://container/blob"
        )
    container, _, key = rest.partition("/")
    return Location(scheme.lower(), container, key)


def require_object(uri: str, location: Location) -> None:
    """A read or a write needs both a bucket/container and a key/blob name."""
    if not location.container or not location.key or location.key.endswith("/"):
        raise configuration_error(
            f"document URI {uri!r} does not name an object: expected "
            f"{location.scheme}://<container>/<name>"
        )


def guess_content_type(name: str, fallback: str = DEFAULT_CONTENT_TYPE) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or fallback


def configuration_error(detail: str) -> FunctionError:
    return FunctionError(
        detail, type=ErrorType.CONFIGURATION, status=400, title="Document store configuration"
    )


def not_found(uri: str, detail: str | None = None) -> FunctionError:
    return FunctionError(
        detail or f"document {uri!r} does not exist",
        type=ErrorType.COMMUNICATION,
        status=404,
        title="Document not found",
    )


def too_large(uri: str, size: int, max_bytes: int) -> FunctionError:
    return FunctionError(
        f"document {uri!r} is {size} bytes, more than the {max_bytes} a read may return "
        "(raise maxBytes, or keep large content in the store and pass its URI along)",
        type=ErrorType.RUNTIME,
        status=413,
        title="Document too large",
    )


def store_error(uri: str, status: int, detail: str) -> FunctionError:
    """A failure the store reported with an HTTP status (or 503 when it was unreachable)."""
    kind = {401: ErrorType.AUTHENTICATION, 403: ErrorType.AUTHORIZATION}.get(
        status, ErrorType.COMMUNICATION
    )
    return FunctionError(
        f"{uri}: {detail}", type=kind, status=status, title="Document store request failed"
    )
