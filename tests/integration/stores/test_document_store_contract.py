"""The document store contract, run once against moto's S3 and once against Azurite's
blob service: reads, writes, content types, metadata, formats, size limits, listings and
the errors a document's `try`/`catch` sees."""

from __future__ import annotations

import base64
import json

import pytest
from store_backends import Backend

from tflow_workers.engine.catalog import FunctionError
from tflow_workers.engine.errors import ErrorType
from tflow_workers.stores import (
    BUILTIN_FUNCTIONS,
    AzureBlobDocumentStore,
    S3DocumentStore,
    read_document,
    store_for,
    write_document,
)

pytestmark = pytest.mark.integration

BINARY = bytes(range(256)) * 4  # not UTF-8 text


def test_builtin_functions_are_the_document_functions() -> None:
    assert {"document.read": read_document, "document.write": write_document} == BUILTIN_FUNCTIONS


def test_store_for_picks_the_adapter(backend: Backend) -> None:
    expected = S3DocumentStore if backend.name == "s3" else AzureBlobDocumentStore
    assert isinstance(store_for(backend.uri("a/b.txt")), expected)


def test_read_text_with_content_type_and_metadata(backend: Backend) -> None:
    backend.put("notes/hello.txt", "héllo\nworld\n".encode(), "text/plain", {"owner": "ops"})
    out = read_document({"uri": backend.uri("notes/hello.txt")})
    assert out["uri"] == backend.uri("notes/hello.txt")
    assert out["text"] == "héllo\nworld\n"
    assert out["contentType"] == "text/plain"
    assert out["size"] == len("héllo\nworld\n".encode())
    assert out["metadata"] == {"owner": "ops"}
    assert out["etag"]
    assert out["lastModified"].startswith("20")
    assert {"base64", "json"}.isdisjoint(out)


def test_store_read_returns_the_bytes(backend: Backend) -> None:
    backend.put("bin/data.bin", BINARY, "application/octet-stream", {})
    uri = backend.uri("bin/data.bin")
    document = store_for(uri).read(uri)
    assert document.content == BINARY
    assert document.size == len(BINARY)
    assert document.content_type == "application/octet-stream"


def test_read_formats(backend: Backend) -> None:
    backend.put("f/doc.json", b'{"a": [1, 2]}', "application/json; charset=utf-8", {})
    backend.put("f/image.png", BINARY, "image/png", {})
    backend.put("f/odd.txt", BINARY, "text/plain", {})
    backend.put("f/latin.txt", "café".encode("latin-1"), "text/plain; charset=iso-8859-1", {})

    # Without `as`: JSON types parse, text decodes, anything else is base64.
    assert read_document({"uri": backend.uri("f/doc.json")})["json"] == {"a": [1, 2]}
    image = read_document({"uri": backend.uri("f/image.png")})
    assert base64.b64decode(image["base64"]) == BINARY
    # Text that does not decode falls back to base64 when no format was asked for...
    assert "base64" in read_document({"uri": backend.uri("f/odd.txt")})
    # ...and the charset parameter is honoured.
    assert read_document({"uri": backend.uri("f/latin.txt")})["text"] == "café"

    # Asked for explicitly, a format is what comes back, or a validation error.
    assert read_document({"uri": backend.uri("f/doc.json"), "as": "text"})["text"] == (
        '{"a": [1, 2]}'
    )
    as_b64 = read_document({"uri": backend.uri("f/doc.json"), "as": "base64"})
    assert base64.b64decode(as_b64["base64"]) == b'{"a": [1, 2]}'
    for uri, form in ((backend.uri("f/odd.txt"), "text"), (backend.uri("f/image.png"), "json")):
        with pytest.raises(FunctionError) as caught:
            read_document({"uri": uri, "as": form})
        assert caught.value.problem.type == ErrorType.VALIDATION
        assert caught.value.problem.status == 400


def test_write_json_then_read_it_back(backend: Backend) -> None:
    uri = backend.uri("out/summary.json")
    out = write_document({"uri": uri, "json": {"kind": "pdf", "pages": 2, "name": "naïve"}})
    assert out == {"uri": uri, "size": out["size"], "contentType": "application/json"}
    stored = backend.get("out/summary.json")
    assert stored.json() == {"kind": "pdf", "pages": 2, "name": "naïve"}
    assert stored.content_type == "application/json"
    assert out["size"] == len(stored.content)
    assert read_document({"uri": uri})["json"] == {"kind": "pdf", "pages": 2, "name": "naïve"}


def test_write_text_and_base64_with_content_type_and_metadata(backend: Backend) -> None:
    text_uri = backend.uri("out/report.csv")
    assert write_document({"uri": text_uri, "text": "a,b\n1,2\n"})["contentType"] == "text/csv"
    assert backend.get("out/report.csv").content == b"a,b\n1,2\n"

    bin_uri = backend.uri("out/blob")
    out = write_document(
        {
            "uri": bin_uri,
            "base64": base64.b64encode(BINARY).decode(),
            "contentType": "application/x-custom",
            "metadata": {"source": "test", "attempt": 2},
        }
    )
    assert out == {"uri": bin_uri, "size": len(BINARY), "contentType": "application/x-custom"}
    stored = backend.get("out/blob")
    assert stored.content == BINARY
    assert stored.content_type == "application/x-custom"
    assert stored.metadata == {"source": "test", "attempt": "2"}
    # A second write replaces the object.
    write_document({"uri": bin_uri, "text": "replaced"})
    assert backend.get("out/blob").content == b"replaced"


def test_missing_document_is_a_404_communication_error(backend: Backend) -> None:
    uri = backend.uri("nowhere/missing.pdf")
    with pytest.raises(FunctionError) as caught:
        read_document({"uri": uri})
    problem = caught.value.problem
    assert problem.type == ErrorType.COMMUNICATION
    assert problem.status == 404
    assert uri in str(problem.detail)


def test_missing_bucket_or_container_is_a_404(backend: Backend) -> None:
    scheme = backend.root.split("://")[0]
    uri = f"{scheme}://no-such-place-{backend.name}-x1/file.txt"
    for function, args in (
        (read_document, {"uri": uri}),
        (write_document, {"uri": uri, "text": "x"}),
    ):
        with pytest.raises(FunctionError) as caught:
            function(args)
        assert caught.value.problem.status == 404
        assert "no-such-place" in str(caught.value.problem.detail)


def test_read_refuses_documents_over_max_bytes(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.put("big/file.bin", BINARY, "application/octet-stream", {})
    uri = backend.uri("big/file.bin")
    with pytest.raises(FunctionError) as caught:
        read_document({"uri": uri, "maxBytes": 100})
    assert caught.value.problem.status == 413
    assert str(len(BINARY)) in str(caught.value.problem.detail)
    monkeypatch.setenv("TFLOW_DOCUMENT_MAX_BYTES", "10")
    with pytest.raises(FunctionError):
        read_document({"uri": uri})
    assert read_document({"uri": uri, "maxBytes": len(BINARY)})["size"] == len(BINARY)


def test_list_by_prefix(backend: Backend) -> None:
    for key in ("in/a.txt", "in/b.txt", "in/sub/c.txt", "other/d.txt"):
        backend.put(key, b"x", "text/plain", {})
    store = store_for(backend.uri("in/"))
    assert sorted(store.list(backend.uri("in/"))) == [
        backend.uri("in/a.txt"),
        backend.uri("in/b.txt"),
        backend.uri("in/sub/c.txt"),
    ]
    assert store.list(backend.uri("none/")) == []
    assert len(store.list(backend.root)) == 4


def test_uri_must_name_an_object(backend: Backend) -> None:
    for uri in (backend.root, backend.root + "/", backend.uri("folder/")):
        with pytest.raises(FunctionError) as caught:
            read_document({"uri": uri})
        assert caught.value.problem.type == ErrorType.CONFIGURATION
        assert caught.value.problem.status == 400


def test_json_is_written_readably(backend: Backend) -> None:
    write_document({"uri": backend.uri("pretty.json"), "json": [1, {"a": None}]})
    content = backend.get("pretty.json").content.decode()
    assert json.loads(content) == [1, {"a": None}]
    assert content.endswith("\n")
