"""The S3 adapter: `s3://bucket/key` through boto3.

Configured the way every AWS tool is, from the environment: `AWS_ENDPOINT_URL_S3` or
`AWS_ENDPOINT_URL` (an S3-compatible server such as MinIO or moto; path-style addressing is
then used), `AWS_REGION` or `AWS_DEFAULT_REGION`, and credentials from boto3's usual chain
(`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, a profile, or a pod's web identity).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from tflow_workers.engine.catalog import FunctionError

from .base import (
    Document,
    Location,
    configuration_error,
    guess_content_type,
    not_found,
    require_object,
    split_uri,
    store_error,
    too_large,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCHEME = "s3"
DEFAULT_REGION = "us-east-1"

# Every variable that changes which client `from_env` builds.
_ENV_KEYS = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}


class S3DocumentStore:
    def __init__(self, client: S3Client) -> None:
        self.client = client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3DocumentStore:
        """A store for the current environment; one client per distinct configuration."""
        env = os.environ if environ is None else environ
        return _cached_store(tuple(env.get(key) or "" for key in _ENV_KEYS))

    def read(self, uri: str, max_bytes: int | None = None) -> Document:
        where = _locate(uri)
        try:
            response = self.client.get_object(Bucket=where.container, Key=where.key)
        except (ClientError, BotoCoreError) as err:
            raise _error(uri, err) from None
        body = response["Body"]
        try:
            size = int(response.get("ContentLength", 0))
            if max_bytes is not None and size > max_bytes:
                raise too_large(uri, size, max_bytes)
            content = body.read()
        except (ClientError, BotoCoreError) as err:
            raise _error(uri, err) from None
        finally:
            body.close()
        modified = response.get("LastModified")
        etag = response.get("ETag")
        return Document(
            uri=uri,
            content=content,
            content_type=response.get("ContentType") or guess_content_type(where.key),
            size=len(content),
            metadata=dict(response.get("Metadata") or {}),
            etag=etag.strip('"') if etag else None,
            last_modified=modified.isoformat() if modified else None,
        )

    def write(
        self,
        uri: str,
        content: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        where = _locate(uri)
        try:
            self.client.put_object(
                Bucket=where.container,
                Key=where.key,
                Body=content,
                ContentType=content_type or guess_content_type(where.key),
                Metadata=dict(metadata or {}),
            )
        except (ClientError, BotoCoreError) as err:
            raise _error(uri, err) from None

    def list(self, prefix: str) -> list[str]:
        where = split_uri(prefix)
        if not where.container:
            raise _locate_error(prefix)
        uris: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=where.container, Prefix=where.key
            )
            for page in pages:
                uris.extend(f"s3://{where.container}/{o['Key']}" for o in page.get("Contents", []))
        except (ClientError, BotoCoreError) as err:
            raise _error(prefix, err) from None
        return uris


@functools.lru_cache(maxsize=8)
def _cached_store(settings: tuple[str, ...]) -> S3DocumentStore:
    env = dict(zip(_ENV_KEYS, settings, strict=True))
    endpoint = env["AWS_ENDPOINT_URL_S3"] or env["AWS_ENDPOINT_URL"] or None
    region = env["AWS_REGION"] or env["AWS_DEFAULT_REGION"] or DEFAULT_REGION
    config = Config(
        # S3-compatible servers behind a custom endpoint rarely resolve bucket subdomains.
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
    )
    # A session of its own: boto3's default session is not safe to share across threads.
    session = boto3.session.Session(profile_name=env["AWS_PROFILE"] or None)
    client = session.client("s3", endpoint_url=endpoint, region_name=region, config=config)
    return S3DocumentStore(client)


def _locate(uri: str) -> Location:
    where = split_uri(uri)
    if where.scheme != SCHEME:
        raise _locate_error(uri)
    require_object(uri, where)
    return where


def _locate_error(uri: str) -> FunctionError:
    return configuration_error(f"{uri!r} is not an S3 URI of the form s3://bucket/key")


def _error(uri: str, err: Exception) -> FunctionError:
    if isinstance(err, ClientError):
        info: Any = err.response.get("Error", {})
        code = str(info.get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "NoSuchBucket":
            bucket = split_uri(uri).container
            return not_found(uri, f"bucket {bucket!r} of {uri!r} does not exist")
        if code in _MISSING_CODES or status == 404:
            return not_found(uri)
        return store_error(uri, status or 502, f"{code}: {info.get('Message', err)}")
    if isinstance(err, NoCredentialsError):
        return store_error(uri, 401, "no AWS credentials found in the environment")
    return store_error(uri, 503, f"{type(err).__name__}: {err}")
