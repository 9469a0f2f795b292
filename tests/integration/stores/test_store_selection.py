"""Which adapter a URI selects, and the configuration errors a document sees for URIs,
arguments and settings no store can serve; plus the forms only one adapter has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from store_backends import azure_backend

from tflow_devstack.azurite import ACCOUNT_NAME, AzuriteServer
from tflow_devstack.moto import MotoServer
from tflow_workers.engine.catalog import FunctionError
from tflow_workers.engine.errors import ErrorType
from tflow_workers.stores import (
    AzureBlobDocumentStore,
    S3DocumentStore,
    read_document,
    store_for,
    write_document,
)
from tflow_workers.stores.azure_blob import CONNECTION_STRING_ENV

pytestmark = pytest.mark.integration


def configuration_error(call: Callable[..., Any], *args: Any) -> str:
    """Call, expecting a configuration error (status 400); its detail."""
    with pytest.raises(FunctionError) as caught:
        call(*args)
    problem = caught.value.problem
    assert problem.type == ErrorType.CONFIGURATION
    assert problem.status == 400
    return str(problem.detail)


def test_schemes_select_adapters(s3_env: MotoServer, azure_env: AzuriteServer) -> None:
    assert isinstance(store_for("s3://bucket/key.pdf"), S3DocumentStore)
    assert isinstance(store_for("S3://bucket/key.pdf"), S3DocumentStore)
    assert isinstance(store_for("azblob://container/a/b.pdf"), AzureBlobDocumentStore)
    assert isinstance(
        store_for(f"https://{ACCOUNT_NAME}.blob.core.windows.net/container/b.pdf"),
        AzureBlobDocumentStore,
    )
    # One client per configuration, not one per call.
    assert store_for("s3://a/b") is store_for("s3://c/d")


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("gs://bucket/key", "'gs'"),
        ("ftp://host/file", "'ftp'"),
        ("https://example.com/file.pdf", "https:// is served for"),
        ("http://127.0.0.1/file.pdf", "'http'"),
        ("bucket/key.pdf", "has no scheme"),
    ],
)
def test_unknown_scheme_is_a_configuration_error(uri: str, named: str) -> None:
    detail = configuration_error(store_for, uri)
    assert named in detail
    assert uri in detail
    # Through the functions as well, before any store is contacted.
    assert named in configuration_error(read_document, {"uri": uri})
    assert named in configuration_error(write_document, {"uri": uri, "text": "x"})


def test_bad_arguments_are_configuration_errors(s3_env: MotoServer) -> None:
    assert "'uri'" in configuration_error(read_document, {})
    assert "'as'" in configuration_error(read_document, {"uri": "s3://b/k", "as": "xml"})
    assert "maxBytes" in configuration_error(read_document, {"uri": "s3://b/k", "maxBytes": 0})
    assert "exactly one" in configuration_error(write_document, {"uri": "s3://b/k"})
    assert "exactly one" in configuration_error(
        write_document, {"uri": "s3://b/k", "text": "a", "json": {}}
    )
    with pytest.raises(FunctionError) as caught:
        write_document({"uri": "s3://b/k", "base64": "not base64!"})
    assert caught.value.problem.type == ErrorType.VALIDATION


def test_azure_needs_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    assert CONNECTION_STRING_ENV in configuration_error(store_for, "azblob://c/b")
    monkeypatch.setenv(CONNECTION_STRING_ENV, "not a connection string")
    assert CONNECTION_STRING_ENV in configuration_error(store_for, "azblob://c/b")


def test_azure_blob_url_form(azure_env: AzuriteServer, blob_container: str) -> None:
    """`https://<account>.blob.core.windows.net/...` reaches the connection string's account
    (here Azurite's devstoreaccount1), with the path percent-decoded."""
    url_root = f"https://{ACCOUNT_NAME}.blob.core.windows.net/{blob_container}"
    backend = azure_backend(azure_env, blob_container, url_root)
    backend.put("in/a report.txt", b"hello", "text/plain", {})
    out = read_document({"uri": f"{url_root}/in/a%20report.txt"})
    assert out["text"] == "hello"
    write_document({"uri": f"{url_root}/out/sum%20mary.json", "json": {"ok": True}})
    assert backend.get("out/sum mary.json").json() == {"ok": True}
    # Listings answer in the form they were asked in.
    assert store_for(url_root).list(f"{url_root}/in/") == [f"{url_root}/in/a%20report.txt"]
    assert store_for("azblob://x").list(f"azblob://{blob_container}/in/") == [
        f"azblob://{blob_container}/in/a report.txt"
    ]


def test_azure_blob_url_of_another_account(azure_env: AzuriteServer) -> None:
    detail = configuration_error(
        read_document, {"uri": "https://otheraccount.blob.core.windows.net/c/b.txt"}
    )
    assert "'otheraccount'" in detail
    assert ACCOUNT_NAME in detail
