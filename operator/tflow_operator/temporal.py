"""The operator's side of Temporal: one lazily connected client, a shared health probe,
and the engine's search attributes registered on first contact.

Temporal may be down when the operator starts, or go away later. Nothing here raises
anything but :class:`TemporalUnavailable` for that: handlers turn it into a condition
with reason ``TemporalUnavailable`` and a retry with backoff; the operator never exits
because of it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tflow_operator import metrics
from tflow_workers.connection import TemporalUnavailable, connect
from tflow_workers.engine.model import SEARCH_ATTRIBUTES
from tflow_workers.temporal_namespaces import client_for

log = logging.getLogger("tflow.operator.temporal")

REASON_UNAVAILABLE: Final = "TemporalUnavailable"

_TRANSIENT_CODES: Final = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
    }
)


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means "Temporal is not reachable right now" (worth retrying)."""
    if isinstance(error, TemporalUnavailable | TimeoutError | ConnectionError):
        return True
    if isinstance(error, RPCError):
        return error.status in _TRANSIENT_CODES
    if isinstance(error, RuntimeError):
        # The Rust core reports a failed (re)connect as a plain RuntimeError.
        return "connect" in str(error).lower() or "transport" in str(error).lower()
    return False


def indexed_value_type(kind: str) -> int:
    """``Keyword`` / ``KeywordList`` / ... -> the API's ``INDEXED_VALUE_TYPE_*`` value."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).upper()
    return IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{snake}")


class TemporalGateway:
    """A Temporal client connected on first use and shared by every handler.

    ``client()`` connects (at most one attempt at a time, and not again within
    ``retry_after`` seconds of a failure, so a thousand handlers do not stampede a dead
    frontend) and registers the engine's search attributes. ``check()`` probes the
    frontend's health, sharing one probe among callers for ``health_ttl`` seconds.
    """

    def __init__(
        self,
        address: str,
        namespace: str,
        *,
        connect_timeout: float = 10.0,
        retry_after: float = 2.0,
        health_ttl: float = 2.0,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.address = address
        self.namespace = namespace
        # Every Temporal namespace runs live in (the tenants' too): their search
        # attributes are registered with the shared one's, before any run needs them.
        self.namespaces = tuple(dict.fromkeys([namespace, *namespaces]))
        self._connect_timeout = connect_timeout
        self._retry_after = retry_after
        self._health_ttl = health_ttl
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._probe_lock = asyncio.Lock()
        self._failed_at = 0.0
        self._last_error = ""
        self._probed_at = 0.0
        self._healthy = False
        self.search_attributes_registered = False
        # Clients of the other Temporal namespaces definitions run in (one connection),
        # and the namespaces whose search attributes are registered.
        self._elsewhere: dict[str, Client] = {}
        self._registered: set[str] = set()

    def _unavailable(self, detail: str) -> TemporalUnavailable:
        return TemporalUnavailable(
            f"Temporal at {self.address} (namespace {self.namespace}) is unreachable: {detail}"
        )

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            if time.monotonic() - self._failed_at < self._retry_after:
                raise self._unavailable(self._last_error)
            try:
                client = await asyncio.wait_for(
                    connect(self.address, self.namespace), self._connect_timeout
                )
            except Exception as err:
                metrics.TEMPORAL_ERRORS.labels("connect").inc()
                self._failed_at = time.monotonic()
                self._last_error = _describe(err)
                raise self._unavailable(self._last_error) from err
            log.info("connected to Temporal at %s, namespace %s", self.address, self.namespace)
            self._client = client
            self._healthy = True
            self._probed_at = time.monotonic()
        await self.ensure_search_attributes()
        return client

    async def check(self) -> Client:
        """The client, after a (shared, recent) health probe succeeded."""
        client = await self.client()
        if time.monotonic() - self._probed_at < self._health_ttl:
            if self._healthy:
                return client
            raise self._unavailable(self._last_error)
        async with self._probe_lock:
            if time.monotonic() - self._probed_at >= self._health_ttl:
                try:
                    healthy = await client.service_client.check_health(timeout=timedelta(seconds=3))
                    detail = "" if healthy else "health check reported NOT_SERVING"
                except Exception as err:
                    healthy, detail = False, _describe(err)
                self._healthy, self._probed_at = healthy, time.monotonic()
                if not healthy:
                    metrics.TEMPORAL_ERRORS.labels("health").inc()
                    self._last_error = detail
                elif not self.search_attributes_registered:
                    await self.ensure_search_attributes()
        if not self._healthy:
            raise self._unavailable(self._last_error)
        return client

    async def client_in(self, namespace: str) -> Client:
        """``check()``'s client for another Temporal namespace, over the same connection,
        with the engine's search attributes registered there on first use."""
        client = await self.check()
        if namespace == self.namespace:
            return client
        other = self._elsewhere.get(namespace)
        if other is None:
            other = self._elsewhere[namespace] = client_for(client, namespace)
        if namespace not in self._registered and await _register(other, namespace):
            self._registered.add(namespace)
        return other

    def note_failure(self, error: BaseException) -> None:
        """Record an unavailability seen by a caller, so the next ``check`` fails fast."""
        if is_unavailable(error):
            metrics.TEMPORAL_ERRORS.labels("call").inc()
            self._healthy, self._probed_at = False, time.monotonic()
            self._last_error = _describe(error)

    def unavailable(self, error: BaseException) -> TemporalUnavailable:
        # One raised by a call (e.g. a schedule's) does not name the address; the
        # condition's message always does.
        if isinstance(error, TemporalUnavailable) and self.address in str(error):
            return error
        self.note_failure(error)
        return self._unavailable(_describe(error))

    async def ensure_search_attributes(self) -> None:
        """Register the engine's search attributes that the namespace does not have yet.

        Failures are logged, not raised: a namespace where the operator may not add
        attributes (e.g. a managed service) still works once an admin added them."""
        if self.search_attributes_registered or self._client is None:
            return
        for namespace in self.namespaces:
            if namespace not in self._registered:
                client = client_for(self._client, namespace)
                if await _register(client, namespace):
                    self._registered.add(namespace)
        self.search_attributes_registered = self._registered.issuperset(self.namespaces)

    async def close(self) -> None:
        self._client = None
        self._elsewhere.clear()


async def _register(client: Client, namespace: str) -> bool:
    """Register the engine's search attributes ``namespace`` lacks; whether they are all
    there now. Failures are logged, not raised (see ``ensure_search_attributes``)."""
    service = client.operator_service
    try:
        existing = await service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace),
            timeout=timedelta(seconds=5),
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
        missing = {
            name: indexed_value_type(kind)
            for name, kind in SEARCH_ATTRIBUTES.items()
            if name not in known
        }
        if missing:
            await service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace,
                    search_attributes=missing,  # type: ignore[arg-type]
                ),
                timeout=timedelta(seconds=10),
            )
            log.info("registered search attributes %s in %s", ", ".join(sorted(missing)), namespace)
        return True
    except Exception as err:
        log.warning(
            "could not register the engine's search attributes in %s: %s",
            namespace,
            _describe(err),
        )
        return False


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    text = text.removeprefix("Temporal is unavailable: ")
    return text.splitlines()[0][:500]
