"""The buckets and containers the document store tests use, seen both through each
store's own SDK (to put and inspect objects) and as document URIs."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from azure.storage.blob import ContentSettings

from tflow_devstack.azurite import AzuriteServer
from tflow_devstack.moto import MotoServer


def container_name(request: pytest.FixtureRequest) -> str:
    """A valid, unique container name: lower case, single hyphens, at most 63 characters."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    suffix = uuid.uuid4().hex[:6]
    return f"{base[:56].strip('-')}-{suffix}"


@dataclass
class Stored:
    content: bytes
    content_type: str
    metadata: dict[str, str]

    def json(self) -> object:
        return json.loads(self.content)


@dataclass
class Backend:
    """One store's bucket or container, seen both through its SDK and as document URIs."""

    name: str
    container: str
    root: str
    put: Callable[[str, bytes, str, dict[str, str]], None]
    get: Callable[[str], Stored]

    def uri(self, key: str) -> str:
        return f"{self.root}/{key}"


def s3_backend(moto: MotoServer, bucket: str) -> Backend:
    s3 = moto.client("s3")

    def put(key: str, content: bytes, content_type: str, metadata: dict[str, str]) -> None:
        s3.put_object(
            Bucket=bucket, Key=key, Body=content, ContentType=content_type, Metadata=metadata
        )

    def get(key: str) -> Stored:
        obj = s3.get_object(Bucket=bucket, Key=key)
        return Stored(obj["Body"].read(), obj["ContentType"], dict(obj["Metadata"]))

    return Backend("s3", bucket, f"s3://{bucket}", put, get)


def azure_backend(azurite: AzuriteServer, container: str, root: str | None = None) -> Backend:
    client = azurite.service_client().get_container_client(container)

    def put(key: str, content: bytes, content_type: str, metadata: dict[str, str]) -> None:
        client.upload_blob(
            key,
            content,
            overwrite=True,
            metadata=metadata,
            content_settings=ContentSettings(content_type=content_type),
        )

    def get(key: str) -> Stored:
        props = client.get_blob_client(key).get_blob_properties()
        content = client.download_blob(key).readall()
        return Stored(content, str(props.content_settings.content_type), dict(props.metadata))

    return Backend("azblob", container, root or f"azblob://{container}", put, get)
