"""Fixtures of the listener tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tflow_devstack.moto import MotoServer


@pytest.fixture
def queue(moto: MotoServer) -> Iterator[str]:
    """A fresh SQS queue on moto's server (its URL), deleted afterwards."""
    sqs = moto.client("sqs")
    url: str = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)
