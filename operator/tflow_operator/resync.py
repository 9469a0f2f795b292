"""The shared resync loop: drift repair and run statistics for every object, in one task.

Every ``TFLOW_RESYNC_SECONDS`` it pages through the WorkflowDefinitions and Listeners of
all namespaces and reconciles each one as its change handler would: a deleted or
hand-edited worker Deployment, ScaledObject, Temporal Schedule or listener child comes
back; ``lastRun``, ``nextRun`` and ``running`` are refreshed from Temporal (as often as
``TFLOW_STATS_SECONDS`` and ``TFLOW_STATS_RATE`` allow); a Temporal outage and its end
show in ``Ready``. A status is written only when it changed, and only if the object is
still at the version that was read (a change handler may have written a newer one).

One loop rather than a kopf timer per object: kopf keeps a task per timer and puts a
finalizer on every object that has one, which costs an extra write per object and
blocks deletion while the operator is down; the loop costs one paged list per period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import kopf

from tflow_operator import listener, metrics, workflowdefinition
from tflow_operator.api.common import API_VERSION
from tflow_operator.kube import KubeError
from tflow_operator.runtime import Background, Runtime

log = logging.getLogger("tflow.operator.resync")

CONCURRENCY: Final = 8


async def resync_definition(runtime: Runtime, body: Mapping[str, Any]) -> None:
    """Reconcile one WorkflowDefinition outside kopf and write its status if changed;
    not one its change handler reconciled within the resync period (in a burst of
    changes, the pass would repeat what the handlers just did)."""
    meta = body.get("metadata") or {}
    handled = runtime.handled_at.get(str(meta.get("uid")))
    if handled is not None and time.monotonic() - handled < runtime.config.resync_seconds:
        return
    patch = kopf.Patch()
    try:
        await workflowdefinition.reconcile(runtime, kopf.Body(body), patch, timer=True)  # type: ignore[arg-type]
    except kopf.TemporaryError as err:
        # The status in the patch says what is wrong; the next pass tries again.
        log.info("resync of %s/%s: %s", meta.get("namespace"), meta.get("name"), err)
    status = patch.get("status")
    if status:
        await runtime.kube.patch_status(
            API_VERSION,
            "WorkflowDefinition",
            str(meta.get("namespace")),
            str(meta.get("name")),
            dict(status),
            resource_version=meta.get("resourceVersion"),
        )


async def resync_listener(runtime: Runtime, body: Mapping[str, Any]) -> None:
    await listener.reconcile_listener(runtime.kube, body, runtime.config)


class Resyncer:
    """Runs `run_once` every resync period until stopped."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.passes = 0
        self._background = Background("tflow-resync")

    def start(self) -> None:
        self._background.start(self._loop())

    async def stop(self) -> None:
        await self._background.stop()

    async def _loop(self) -> None:
        period = self.runtime.config.resync_seconds
        while True:
            # The change handlers reconcile every object when the operator starts; the
            # first pass can wait a period.
            await asyncio.sleep(period)
            started = time.monotonic()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resync pass failed; the next one is in %ss", period)
            log.debug("resync pass took %.1fs", time.monotonic() - started)

    async def run_once(self) -> None:
        """One pass over every WorkflowDefinition and Listener."""
        seen: set[str] = set()
        await self._each("WorkflowDefinition", resync_definition, seen)
        self.runtime.stats_population = len(seen)
        await self._each("Listener", resync_listener, seen)
        # Forget the statistics and handler clocks of objects that are gone.
        for clock in (self.runtime.stats_at, self.runtime.handled_at):
            for uid in set(clock) - seen:
                del clock[uid]
        self.passes += 1

    async def _each(
        self,
        kind: str,
        action: Callable[[Runtime, Mapping[str, Any]], Awaitable[None]],
        seen: set[str],
    ) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(body: Mapping[str, Any]) -> None:
            meta = body.get("metadata") or {}
            async with gate:
                try:
                    await action(self.runtime, body)
                except Exception as err:
                    if isinstance(err, KubeError) and err.status in (404, 409):
                        return  # deleted or changed since listed: its handlers have it
                    where = f"{meta.get('namespace')}/{meta.get('name')}"
                    log.warning("resync of %s %s: %s", kind, where, err)

        not_ready = 0
        async for page in self.runtime.kube.pages(API_VERSION, kind):
            live = [b for b in page if not (b.get("metadata") or {}).get("deletionTimestamp")]
            seen.update(str((b.get("metadata") or {}).get("uid")) for b in live)
            # Ready as listed, before this pass: at most one period old.
            not_ready += sum(1 for b in live if not metrics.is_ready(b))
            await asyncio.gather(*(one(body) for body in live))
        metrics.set_not_ready(kind, not_ready)
