"""The Azure Blob Storage adapter: `azblob://container/blob`, and the blob's own URL
`https://<account>.blob.core.windows.net/container/blob`, through azure-storage-blob.

Configured from `AZURE_STORAGE_CONNECTION_STRING` (an account key or SAS connection
string; Azurite's devstore string works as well). An `https://` URL must name the account of
that connection string: a worker talks to one storage account.
"""

from __future__ import annotations

import functools
import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

from tflow_workers.engine.catalog import FunctionError

from .base import (
    Document,
    configuration_error,
    guess_content_type,
    not_found,
    require_object,
    split_uri,
    store_error,
    too_large,
)

SCHEME = "azblob"
HOST_SUFFIX = ".blob.core.windows.net"
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"

# The SDK logs every request and response at INFO; a worker's log is not the place for it.
_http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
if _http_log.level == logging.NOTSET:
    _http_log.setLevel(logging.WARNING)


def is_blob_url(uri: str) -> bool:
    """Whether `uri` is an `https://<account>.blob.core.windows.net/...` URL."""
    parsed = urllib.parse.urlsplit(uri)
    return parsed.scheme.lower() == "https" and (parsed.hostname or "").endswith(HOST_SUFFIX)


@dataclass(frozen=True)
class _Blob:
    container: str
    name: str
    https: bool  # the URI was a blob URL; listings answer in the same form


class AzureBlobDocumentStore:
    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AzureBlobDocumentStore:
        """A store for the current environment; one client per connection string."""
        env = os.environ if environ is None else environ
        connection_string = env.get(CONNECTION_STRING_ENV, "").strip()
        if not connection_string:
            raise configuration_error(
                f"Azure Blob Storage is not configured: set {CONNECTION_STRING_ENV} on the worker"
            )
        return _cached_store(connection_string)

    @property
    def account_name(self) -> str:
        return str(self.service.account_name)

    def read(self, uri: str, max_bytes: int | None = None) -> Document:
        where = self._locate(uri)
        blob = self.service.get_blob_client(where.container, where.name)
        try:
            size = int(blob.get_blob_properties().size)
            if max_bytes is not None and size > max_bytes:
                raise too_large(uri, size, max_bytes)
            downloader = blob.download_blob()
            content = downloader.readall()
        except AzureError as err:
            raise _error(uri, err, where.container) from None
        if max_bytes is not None and len(content) > max_bytes:
            raise too_large(uri, len(content), max_bytes)
        props = downloader.properties
        settings = props.content_settings
        etag = props.etag
        return Document(
            uri=uri,
            content=content,
            content_type=(settings.content_type if settings else None)
            or guess_content_type(where.name),
            size=len(content),
            metadata=dict(props.metadata or {}),
            etag=etag.strip('"') if etag else None,
            last_modified=props.last_modified.isoformat() if props.last_modified else None,
        )

    def write(
        self,
        uri: str,
        content: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        where = self._locate(uri)
        blob = self.service.get_blob_client(where.container, where.name)
        try:
            blob.upload_blob(
                content,
                overwrite=True,
                content_settings=ContentSettings(
                    content_type=content_type or guess_content_type(where.name)
                ),
                metadata=dict(metadata or {}),
            )
        except AzureError as err:
            raise _error(uri, err, where.container) from None

    def list(self, prefix: str) -> list[str]:
        where = self._locate(prefix, whole_object=False)
        container = self.service.get_container_client(where.container)
        try:
            names = [b.name for b in container.list_blobs(name_starts_with=where.name or None)]
        except AzureError as err:
            raise _error(prefix, err, where.container) from None
        if where.https:
            base = f"https://{self.account_name}{HOST_SUFFIX}/{where.container}/"
            return [base + urllib.parse.quote(name) for name in names]
        return [f"{SCHEME}://{where.container}/{name}" for name in names]

    def _locate(self, uri: str, whole_object: bool = True) -> _Blob:
        if is_blob_url(uri):
            parsed = urllib.parse.urlsplit(uri)
            account = (parsed.hostname or "").removesuffix(HOST_SUFFIX)
            if account != self.account_name:
                raise configuration_error(
                    f"{uri!r} is in storage account {account!r}, but the worker's "
                    f"{CONNECTION_STRING_ENV} is for account {self.account_name!r}"
                )
            where = split_uri(f"{SCHEME}:/{urllib.parse.unquote(parsed.path)}")
            https = True
        else:
            where = split_uri(uri)
            if where.scheme != SCHEME:
                raise configuration_error(
                    f"{uri!r} is not an Azure Blob URI of the form azblob://container/blob"
                )
            https = False
        if whole_object:
            require_object(uri, where)
        elif not where.container:
            raise configuration_error(f"{uri!r} does not name a container")
        return _Blob(where.container, where.key, https)


@functools.lru_cache(maxsize=4)
def _cached_store(connection_string: str) -> AzureBlobDocumentStore:
    try:
        service = BlobServiceClient.from_connection_string(connection_string, retry_total=3)
    except ValueError as err:
        raise configuration_error(f"{CONNECTION_STRING_ENV} is not usable: {err}") from None
    return AzureBlobDocumentStore(service)


def _error(uri: str, err: AzureError, container: str) -> FunctionError:
    if isinstance(err, ResourceNotFoundError):
        if getattr(err, "error_code", None) == "ContainerNotFound":
            return not_found(uri, f"container {container!r} of {uri!r} does not exist")
        return not_found(uri)
    if isinstance(err, HttpResponseError):
        code = getattr(err, "error_code", None) or type(err).__name__
        return store_error(uri, int(err.status_code or 502), f"{code}: {err.reason or err.message}")
    return store_error(uri, 503, f"{type(err).__name__}: {err.message}")
