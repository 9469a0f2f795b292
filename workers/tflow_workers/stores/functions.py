"""`document.read` and `document.write`, the built-in functions a document calls as
`call: document.read`; the URI's scheme picks the store (`store_for`).

    document.read   {uri, as?: text|base64|json, maxBytes?}
                 -> {uri, contentType, size, metadata, etag?, lastModified?, text|base64|json}
    document.write  {uri, text|base64|json, contentType?, metadata?}
                 -> {uri, size, contentType}

Without `as`, a read answers JSON content types as `json`, textual ones as `text`, and
anything else (or text that does not decode) as `base64`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from typing import Any

from tflow_workers.engine.catalog import FunctionError
from tflow_workers.engine.errors import ErrorType

from .azure_blob import AzureBlobDocumentStore, is_blob_url
from .base import Document, DocumentStore, configuration_error, guess_content_type, split_uri
from .s3 import S3DocumentStore

READ_FORMATS = ("text", "base64", "json")
# Activity results land in the run's history, where Temporal refuses payloads over 2 MiB;
# base64 grows content by a third.
DEFAULT_MAX_BYTES = 1024 * 1024
MAX_BYTES_ENV = "TFLOW_DOCUMENT_MAX_BYTES"

_TEXT_TYPES = {
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/javascript",
    "application/x-ndjson",
    "application/csv",
    "application/sql",
}

StoreFactory = Callable[[], DocumentStore]

STORES: dict[str, StoreFactory] = {
    "s3": S3DocumentStore.from_env,
    "azblob": AzureBlobDocumentStore.from_env,
}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Serve `scheme://...` URIs with another adapter (a factory returning a DocumentStore)."""
    STORES[scheme.lower()] = factory


def store_for(uri: str) -> DocumentStore:
    """The store for `uri`, by scheme; a configuration error names an unknown scheme."""
    if is_blob_url(uri):
        return AzureBlobDocumentStore.from_env()
    scheme = split_uri(uri).scheme
    factory = STORES.get(scheme)
    if factory is None:
        supported = ", ".join(f"{s}://" for s in sorted(STORES))
        hint = " (https:// is served for <account>.blob.core.windows.net only)"
        raise configuration_error(
            f"unsupported document URI scheme {scheme!r} in {uri!r}; supported: {supported}, "
            f"https://<account>.blob.core.windows.net/"
            + (hint if scheme in ("http", "https") else "")
        )
    return factory()


def read_document(args: dict[str, Any]) -> dict[str, Any]:
    uri = _uri(args, "document.read")
    wanted = args.get("as")
    if wanted is not None and wanted not in READ_FORMATS:
        raise configuration_error(
            f"document.read: 'as' must be one of {', '.join(READ_FORMATS)}, not {wanted!r}"
        )
    document = store_for(uri).read(uri, _max_bytes(args))
    result: dict[str, Any] = {
        "uri": document.uri,
        "contentType": document.content_type,
        "size": document.size,
        "metadata": document.metadata,
    }
    if document.etag is not None:
        result["etag"] = document.etag
    if document.last_modified is not None:
        result["lastModified"] = document.last_modified
    if wanted is not None:
        result[wanted] = _decode(document, wanted)
        return result
    # No format asked for: the content type's, falling back to base64 when that fails.
    form = _natural_format(document.content_type)
    while True:
        try:
            result[form] = _decode(document, form)
            return result
        except FunctionError:
            # JSON that does not parse is still text; text that does not decode is bytes.
            form = "text" if form == "json" else "base64"


def write_document(args: dict[str, Any]) -> dict[str, Any]:
    uri = _uri(args, "document.write")
    given = [name for name in READ_FORMATS if name in args]
    if len(given) != 1:
        raise configuration_error(
            "document.write needs exactly one of text, base64 or json, "
            f"got {', '.join(given) or 'none'}"
        )
    content_type = args.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise configuration_error("document.write: contentType must be a string")
    kind = given[0]
    value = args[kind]
    if kind == "text":
        if not isinstance(value, str):
            raise _invalid(f"document.write: text must be a string, not {type(value).__name__}")
        content = value.encode("utf-8")
        default_type = guess_content_type(split_uri(uri).key, "text/plain; charset=utf-8")
    elif kind == "base64":
        try:
            content = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as err:
            raise _invalid(f"document.write: base64 does not decode: {err}") from None
        default_type = guess_content_type(split_uri(uri).key)
    else:
        content = (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        default_type = "application/json"
    metadata = args.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise configuration_error("document.write: metadata must be a mapping of strings")
    stored_type = content_type or default_type
    store_for(uri).write(uri, content, stored_type, {str(k): str(v) for k, v in metadata.items()})
    return {"uri": uri, "size": len(content), "contentType": stored_type}


def _uri(args: dict[str, Any], function: str) -> str:
    uri = args.get("uri")
    if not isinstance(uri, str) or not uri:
        raise configuration_error(f"{function} needs a 'uri' string argument")
    return uri


def _max_bytes(args: dict[str, Any]) -> int:
    raw = args.get("maxBytes", os.environ.get(MAX_BYTES_ENV) or DEFAULT_MAX_BYTES)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise configuration_error(f"maxBytes must be a positive number of bytes, not {raw!r}")
    return value


def _media_type(content_type: str) -> tuple[str, str]:
    """The bare media type, lower case, and the charset parameter (utf-8 by default)."""
    media, *params = (part.strip() for part in content_type.split(";"))
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return media.lower(), charset


def _natural_format(content_type: str) -> str:
    media, _ = _media_type(content_type)
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+xml"):
        return "text"
    return "base64"


def _decode(document: Document, form: str) -> Any:
    if form == "base64":
        return base64.b64encode(document.content).decode("ascii")
    _, charset = _media_type(document.content_type)
    try:
        text = document.content.decode(charset)
    except LookupError:
        text = _utf8(document)
    except UnicodeDecodeError:
        raise _invalid(
            f"document {document.uri!r} is not {charset} text; read it with as: base64"
        ) from None
    if form == "text":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _invalid(f"document {document.uri!r} is not JSON: {err}") from None


def _utf8(document: Document) -> str:
    try:
        return document.content.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(
            f"document {document.uri!r} is not UTF-8 text; read it with as: base64"
        ) from None


def _invalid(detail: str) -> FunctionError:
    return FunctionError(detail, type=ErrorType.VALIDATION, status=400, title="Invalid document")
