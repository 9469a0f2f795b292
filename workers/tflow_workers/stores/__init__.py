"""Document stores behind one port: `DocumentStore` (read, write, list by URI) with an
adapter per storage service, picked by the URI's scheme.

    s3://bucket/key                                     S3 and S3-compatible servers
    azblob://container/blob                             Azure Blob Storage
    https://<account>.blob.core.windows.net/container/blob

`BUILTIN_FUNCTIONS` are the functions every worker serves, `call: document.read` and
`call: document.write`; see docs/document-stores.md.
"""

from __future__ import annotations

from tflow_workers.engine.catalog import Function

from .azure_blob import AzureBlobDocumentStore
from .base import Document, DocumentStore
from .functions import read_document, register_store, store_for, write_document
from .s3 import S3DocumentStore

BUILTIN_FUNCTIONS: dict[str, Function] = {
    "document.read": read_document,
    "document.write": write_document,
}

__all__ = [
    "BUILTIN_FUNCTIONS",
    "AzureBlobDocumentStore",
    "Document",
    "DocumentStore",
    "S3DocumentStore",
    "read_document",
    "register_store",
    "store_for",
    "write_document",
]
