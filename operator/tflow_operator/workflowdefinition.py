"""WorkflowDefinition handlers: validate, publish, run workers, schedule, report.

One idempotent ``reconcile`` serves the create, update and resume handlers and the shared
resync loop:

1. validate the document with the engine's validator, refuse a document-level
   ``schedule`` and a task queue that belongs to another namespace (condition ``Valid``,
   every problem in its message, a Warning Event when it becomes invalid);
2. publish it: the publisher rewrites the definitions ConfigMaps from the index;
3. apply the task queue's shared worker Deployment and KEDA ScaledObject, owned by every
   valid definition on that queue (see :mod:`tflow_operator.workers`);
4. keep the Temporal Schedule in sync when ``spec.schedule`` is set, delete it when it
   was removed (condition ``Scheduled``);
5. in the shared resync loop (:mod:`tflow_operator.resync`), repair drift and refresh
   ``lastRun``, ``nextRun`` and ``running`` from Temporal.

When the worker Deployment cannot create its pods (``FailedCreate``: Pod Security, a
ResourceQuota) or they cannot start (``ErrImagePull``, ``CrashLoopBackOff``, ...),
``Ready`` is False with that reason and Kubernetes' message (:mod:`tflow_operator.pods`).

With Kubernetes namespaces mapped to Temporal namespaces (``TFLOW_TEMPORAL_NAMESPACES``),
the workers, the schedule and the run statistics are in the definition's Temporal
namespace (``status.temporalNamespace``); when it changes, the schedule in the previous
one is deleted.

Temporal being unreachable sets ``Ready`` (and ``Scheduled``) to False with reason
``TemporalUnavailable`` and retries with backoff; the operator keeps running. Only a
definition with a schedule gets a finalizer, which deletes the schedule; the worker
Deployment is owned by every definition on its queue, rendered again when one goes, and
removed by the garbage collector with its last owner.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import kopf
from pydantic import ValidationError
from temporalio.service import RPCError

from tflow_operator import metrics, schedules
from tflow_operator.api.common import GROUP, VERSION, Condition, format_timestamp
from tflow_operator.api.workflowdefinition import WorkflowDefinition
from tflow_operator.conditions import (
    condition_of,
    make_condition,
    merge_conditions,
    status_changes,
)
from tflow_operator.events import involved, post_event
from tflow_operator.kube import KubeError, SecretsNotReadable, secret_of
from tflow_operator.model import DefinitionInfo, definition_info, plain, stable_hash
from tflow_operator.naming import worker_deployment_name
from tflow_operator.pods import PodTrouble, workload_trouble
from tflow_operator.runtime import Runtime
from tflow_operator.temporal import REASON_UNAVAILABLE, is_unavailable
from tflow_operator.workers import (
    deployment_owner,
    merge_settings,
    worker_deployment,
    worker_scaled_object,
    worker_trigger_authentication,
)
from tflow_workers.connection import TemporalUnavailable

log = logging.getLogger("tflow.operator.workflowdefinition")

PLURAL: Final = "workflowdefinitions"

REASON_READY: Final = "Reconciled"
REASON_NO_SCHEDULE: Final = "NoSchedule"
REASON_SCHEDULED: Final = "Scheduled"
REASON_PAUSED: Final = "Paused"
REASON_INVALID_SCHEDULE: Final = "InvalidSchedule"
REASON_SCHEDULE_FAILED: Final = "ScheduleFailed"
REASON_WORKERS_FAILED: Final = "WorkersFailed"
REASON_INVALID: Final = "InvalidDefinition"
REASON_SECRET_NOT_FOUND: Final = "SecretNotFound"
# Seconds between two applies of one worker group while its members keep changing: at
# least GROUP_PACE, PACE_PER_MEMBER per member, at most MAX_GROUP_PACE (group_pace).
GROUP_PACE: Final = 2.0
PACE_PER_MEMBER: Final = 0.005
MAX_GROUP_PACE: Final = 30.0
NO_KEDA: Final = "KEDA is not installed (no ScaledObject kind): the workers are not autoscaled"


def runtime_of(memo: Any) -> Runtime:
    runtime = getattr(memo, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return runtime


def backoff(retry: int) -> float:
    """Seconds before retry number ``retry`` (1, 2, 4, ... up to a minute, with jitter)."""
    return float(min(60.0, 2.0 ** min(retry, 6)) * random.uniform(0.8, 1.2))


# --------------------------------------------------------------------------- indices


@kopf.index(GROUP, VERSION, PLURAL)
async def tflow_definitions(body: kopf.Body, **_: Any) -> dict[tuple[str, ...], DefinitionInfo]:
    """Every definition by ("name", namespace, name) and by ("queue", task queue)."""
    info = definition_info(body)
    return {("name", info.namespace, info.name): info, ("queue", info.task_queue): info}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def definition_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Tell the publisher when a definition's spec (or existence) changed."""
    runtime = runtime_of(memo)
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    if type == "DELETED":
        runtime.publisher.forget("wfd", key)
        runtime.stats_at.pop(str(meta.get("uid")), None)
        await _regroup_after_delete(runtime, body)
    else:
        fingerprint = (meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp")))
        runtime.publisher.observe("wfd", key, fingerprint)


async def _regroup_after_delete(runtime: Runtime, body: kopf.Body) -> None:
    """Render the queue's workers again without the deleted definition (its settings may
    have shaped them); with no member left the garbage collector removes them."""
    try:
        info = definition_info(body)
        await apply_group(runtime, info.namespace, info.task_queue)
        previous = (body.get("status") or {}).get("taskQueue")
        if isinstance(previous, str) and previous and previous != info.task_queue:
            await apply_group(runtime, info.namespace, previous)
    except KubeError as err:
        # The next resync pass renders the group again.
        meta = body.get("metadata") or {}
        log.warning(
            "worker Deployment after deleting %s/%s: %s",
            meta.get("namespace"),
            meta.get("name"),
            err,
        )


# --------------------------------------------------------------------------- worker groups


@dataclass(frozen=True)
class GroupResult:
    members: tuple[DefinitionInfo, ...]
    autoscaled: bool = True
    note: str = ""
    # Why the Deployment cannot create or start its pods, when it cannot.
    trouble: PodTrouble | None = None


async def apply_group(
    runtime: Runtime,
    namespace: str,
    task_queue: str,
    *,
    release: bool = False,
    force: bool = False,
) -> GroupResult:
    """Make the queue's worker Deployment and ScaledObject match its valid definitions.

    With no valid definition left, ``release`` (the caller moved away from the queue)
    deletes them; otherwise they are left alone: the garbage collector removes them
    with their last owner, and an invalid update keeps the workers that serve runs
    already in flight. Concurrent requests for one group are coalesced (see
    ``GroupState``).
    """
    state = runtime.group(namespace, task_queue)
    state.requested += 1
    ticket = state.requested
    async with state.lock:
        if state.completed >= ticket and isinstance(state.result, GroupResult) and not release:
            return state.result
        if not (release or force):
            await _pace(runtime, namespace, task_queue)
        covered = state.requested
        result = await _apply_group_now(runtime, namespace, task_queue, release, force)
        state.completed, state.result = covered, result
        return result


def group_pace(members: int) -> float:
    """Seconds between two applies of a group of this many members while they keep
    changing: GROUP_PACE, longer for a large group, since the apiserver's cost of an
    apply grows with the owner references (``bench/bench_operator.py --owner-cost``: about
    170 ms of its CPU for a Deployment owned by a thousand objects, against 5 ms for a
    small ConfigMap), so a large group applied every two seconds in a burst kept a core
    of the apiserver busy. Capped, so a change waits at most MAX_GROUP_PACE."""
    return min(MAX_GROUP_PACE, max(GROUP_PACE, members * PACE_PER_MEMBER))


async def _pace(runtime: Runtime, namespace: str, task_queue: str) -> None:
    """In a burst, wait until ``group_pace`` seconds after the group's previous apply, so
    that the definitions arriving meanwhile join the next one: each apply sends the
    Deployment with every member as an owner (hundreds of references in a large
    group), and applying it again for every few new members cost the apiserver more
    than the members themselves. Nothing waits when the members did not change or the
    group was last applied longer ago than that."""
    memo = runtime.group_memos.get((namespace, task_queue))
    if memo is None or time.monotonic() - memo.applied_at >= MAX_GROUP_PACE:
        return
    members = tuple(runtime.indices.members(namespace, task_queue))
    if members and members == memo.members:
        return
    wait = memo.applied_at + group_pace(len(members)) - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)


async def _apply_group_now(
    runtime: Runtime, namespace: str, task_queue: str, release: bool, force: bool
) -> GroupResult:
    kube, config = runtime.kube, runtime.config
    members = runtime.indices.members(namespace, task_queue)
    if not members:
        runtime.forget_applied(namespace, task_queue)
        if release:
            name = worker_deployment_name(task_queue)
            await kube.delete("apps/v1", "Deployment", namespace, name)
            for kind in ("ScaledObject", "TriggerAuthentication"):
                try:
                    await kube.delete("keda.sh/v1alpha1", kind, namespace, name)
                except KubeError as err:
                    if err.status != 404:
                        raise
        return GroupResult(())
    rendered_from = tuple(members)
    if not force and runtime.recently_rendered(namespace, task_queue, rendered_from):
        # Rendering a Deployment owned by a thousand definitions costs more than the
        # rest of a reconcile: the same members give the same objects.
        return _group_result(runtime, members, runtime.remembered_trouble(namespace, task_queue))
    settings = merge_settings(
        members, config.worker_image, runtime.indices.verdict(members[0]).temporal_namespace
    )
    deployment = worker_deployment(namespace, task_queue, members, settings, config)
    scaled = worker_scaled_object(namespace, task_queue, settings, config)
    auth = worker_trigger_authentication(namespace, task_queue, config)
    digest = stable_hash([deployment, scaled, auth])
    if force or not runtime.recently_applied(namespace, task_queue, digest):
        applied = await kube.apply(deployment)
        # The apply answers with the Deployment's status: no extra read while it is
        # healthy (see tflow_operator.pods.workload_trouble).
        trouble = await workload_trouble(kube, applied)
        # Owned by the Deployment (its uid is known only now), not by every member.
        owners = [deployment_owner(applied)]
        for child in (scaled, auth):
            if child is not None:
                child["metadata"]["ownerReferences"] = owners
        try:
            # The credentials first: a ScaledObject whose authenticationRef is missing
            # fails KEDA's first poll.
            if auth is not None:
                await kube.apply(auth)
            await kube.apply(scaled)
            runtime.keda_available = True
        except KubeError as err:
            if err.status != 404:
                raise
            runtime.keda_available = False
        runtime.remember_applied(namespace, task_queue, digest, trouble, rendered_from)
    else:
        trouble = runtime.remembered_trouble(namespace, task_queue)
        runtime.remember_rendered(namespace, task_queue, rendered_from)
    return _group_result(runtime, members, trouble)


def _group_result(
    runtime: Runtime, members: list[DefinitionInfo], trouble: PodTrouble | None
) -> GroupResult:
    if runtime.keda_available:
        return GroupResult(tuple(members), trouble=trouble)
    return GroupResult(tuple(members), False, NO_KEDA, trouble)


# --------------------------------------------------------------------------- schedules


def temporal_namespace(runtime: Runtime, info: DefinitionInfo) -> str:
    """The Temporal namespace of a definition's runs, workers and schedule."""
    return runtime.indices.verdict(info).temporal_namespace or runtime.config.temporal_namespace


def _previous_temporal_namespace(runtime: Runtime, status: Mapping[str, Any]) -> str:
    """Where the schedule was last kept (the shared namespace for a status from before
    namespaces were mapped)."""
    previous = status.get("temporalNamespace")
    return previous if isinstance(previous, str) and previous else runtime.config.temporal_namespace


def _had_schedule(status: Mapping[str, Any]) -> bool:
    current = condition_of(status, "Scheduled")
    return current is not None and current.get("reason") != REASON_NO_SCHEDULE


async def sync_schedule(
    runtime: Runtime, body: Mapping[str, Any], info: DefinitionInfo
) -> tuple[Condition, BaseException | None]:
    """The ``Scheduled`` condition after making the Temporal Schedule match the spec, and
    the error to retry on (Temporal unavailable or a failed call), if any."""
    status = body.get("status") or {}
    generation = info.generation
    if not info.has_schedule and not _had_schedule(status):
        return make_condition(
            "Scheduled", False, REASON_NO_SCHEDULE, "spec.schedule is not set", generation
        ), None
    try:
        model = WorkflowDefinition.model_validate(plain(body))
    except ValidationError as err:
        message = f"spec does not match the API: {err.errors()[0].get('msg', err)}"
        return make_condition(
            "Scheduled", False, REASON_INVALID_SCHEDULE, message, generation
        ), None
    try:
        here = temporal_namespace(runtime, info)
        previous = _previous_temporal_namespace(runtime, status)
        if previous != here:
            # Moved to another Temporal namespace: the old schedule must not keep starting
            # runs where no worker of this definition polls any more.
            await schedules.delete_schedule(
                await runtime.temporal.client_in(previous), info.namespace, info.name
            )
        client = await runtime.temporal.client_in(here)
        state = await schedules.reconcile_schedule(
            client, model, info.task_queue, version=info.version
        )
    except schedules.InvalidSchedule as err:
        return make_condition(
            "Scheduled", False, REASON_INVALID_SCHEDULE, str(err), generation
        ), None
    except TemporalUnavailable as err:
        unavailable = runtime.temporal.unavailable(err)
        return make_condition(
            "Scheduled", False, REASON_UNAVAILABLE, str(unavailable), generation
        ), unavailable
    except (RPCError, RuntimeError, schedules.ScheduleError) as err:
        if is_unavailable(err):
            unavailable = runtime.temporal.unavailable(err)
            return make_condition(
                "Scheduled", False, REASON_UNAVAILABLE, str(unavailable), generation
            ), unavailable
        metrics.TEMPORAL_ERRORS.labels("call").inc()
        message = f"Temporal refused the schedule: {err}"
        return make_condition("Scheduled", False, REASON_SCHEDULE_FAILED, message, generation), err
    if model.spec.schedule is None:
        return make_condition(
            "Scheduled", False, REASON_NO_SCHEDULE, "spec.schedule is not set", generation
        ), None
    if model.spec.schedule.paused:
        return make_condition(
            "Scheduled",
            True,
            REASON_PAUSED,
            f"Temporal Schedule {state.schedule_id} is paused (spec.schedule.paused)",
            generation,
        ), None
    return make_condition(
        "Scheduled", True, REASON_SCHEDULED, f"Temporal Schedule {state.schedule_id}", generation
    ), None


async def refresh_stats(
    runtime: Runtime, info: DefinitionInfo
) -> tuple[dict[str, Any], BaseException | None]:
    """``lastRun``, ``nextRun`` and ``running`` from Temporal."""
    try:
        client = await runtime.temporal.client_in(temporal_namespace(runtime, info))
        stats = await schedules.run_stats(client, info.namespace, info.name, info.has_schedule)
    except Exception as err:
        if is_unavailable(err):
            return {}, runtime.temporal.unavailable(err)
        log.warning("run statistics of %s/%s: %s", info.namespace, info.name, err)
        return {}, None
    return {
        "lastRun": format_timestamp(stats.last_run) if stats.last_run else None,
        "nextRun": format_timestamp(stats.next_run) if stats.next_run else None,
        "running": stats.running,
    }, None


# --------------------------------------------------------------------------- reconcile


def _write_status(
    patch: kopf.Patch, current: Mapping[str, Any], desired: Mapping[str, Any]
) -> None:
    for key, value in status_changes(current, desired).items():
        patch.status[key] = value


@metrics.reconciler("WorkflowDefinition")
async def reconcile(
    runtime: Runtime,
    body: kopf.Body,
    patch: kopf.Patch,
    *,
    retry: int = 0,
    timer: bool = False,  # called by the resync loop: refresh the run statistics when due
) -> None:
    info = definition_info(body)
    if info.deleting:
        return
    status: Mapping[str, Any] = body.get("status") or {}
    generation = info.generation
    verdict = runtime.indices.verdict(info)
    previous_queue = status.get("taskQueue")
    moved = isinstance(previous_queue, str) and previous_queue and previous_queue != info.task_queue
    desired: dict[str, Any] = {
        "observedGeneration": generation,
        "version": info.version,
        "taskQueue": info.task_queue,
    }
    if verdict.valid:
        desired["temporalNamespace"] = temporal_namespace(runtime, info)
    valid = make_condition("Valid", verdict.valid, verdict.reason, verdict.message, generation)
    current_valid = condition_of(status, "Valid")

    if not verdict.valid:
        if current_valid is None or (current_valid.get("status"), current_valid.get("message")) != (
            "False",
            valid.message,
        ):
            # Keyed by generation and message: the change handler and the resync pass may
            # both see the old status and both post; the second finds the first.
            await post_event(
                runtime.kube,
                involved(body),
                "Warning",
                REASON_INVALID,
                valid.message,
                key=f"{generation}\0{valid.message}",
            )
        ready = make_condition(
            "Ready", False, verdict.reason, "not valid: see the Valid condition", generation
        )
        desired["conditions"] = merge_conditions(status.get("conditions"), [valid, ready])
        _write_status(patch, status, desired)
        # Drop this definition's ownership of other definitions' workers, if it had any.
        await _safe_group(runtime, info.namespace, info.task_queue)
        if moved:
            await _safe_group(runtime, info.namespace, str(previous_queue), release=True)
        return

    problems: list[str] = []
    retry_error: BaseException | None = None
    notes: list[str] = []
    trouble: PodTrouble | None = None
    try:
        group = await apply_group(runtime, info.namespace, info.task_queue)
        if moved:
            await apply_group(runtime, info.namespace, str(previous_queue), release=True)
        # No member count here: it would rewrite every sibling's status on each change.
        if group.note:
            notes.append(group.note)
        trouble = group.trouble
    except KubeError as err:
        problems.append(f"worker Deployment: {err}")
        retry_error = err

    missing_secrets: list[str] = []
    try:
        missing_secrets = await missing_secrets_of(runtime, info)
    except SecretsNotReadable as err:
        notes.append(err.note)
    except KubeError as err:
        problems.append(f"checking use.secrets: {err}")
        retry_error = retry_error or err

    scheduled, schedule_error = await sync_schedule(runtime, body, info)
    conditions = [valid, scheduled]
    unavailable: BaseException | None = None
    if schedule_error is not None:
        retry_error = retry_error or schedule_error
        if scheduled.reason == REASON_UNAVAILABLE:
            unavailable = schedule_error
    elif scheduled.reason in (REASON_INVALID_SCHEDULE,):
        problems.append(scheduled.message)

    if unavailable is None:
        if timer and runtime.stats_due(info.uid):
            stats, stats_error = await refresh_stats(runtime, info)
            desired.update(stats)
            unavailable = stats_error
        else:
            try:
                await runtime.temporal.client_in(temporal_namespace(runtime, info))
            except TemporalUnavailable as err:
                unavailable = err

    if unavailable is not None:
        ready = make_condition("Ready", False, REASON_UNAVAILABLE, str(unavailable), generation)
        retry_error = retry_error or unavailable
    elif problems:
        reason = REASON_WORKERS_FAILED if retry_error is not None else scheduled.reason
        ready = make_condition("Ready", False, reason, "; ".join(problems), generation)
    elif trouble is not None:
        # Not retried here: the resync loop reads the Deployment again each period.
        message = f"worker Deployment {worker_deployment_name(info.task_queue)}: {trouble.message}"
        ready = make_condition("Ready", False, trouble.reason, message, generation)
    elif missing_secrets:
        names = ", ".join(missing_secrets)
        message = (
            f"Secret {names} (use.secrets) not found in {info.namespace}: runs that read "
            "it fail until it exists; the workers mount it once it does"
        )
        ready = make_condition("Ready", False, REASON_SECRET_NOT_FOUND, message, generation)
    else:
        message = "workers and schedule in sync" if info.has_schedule else "workers in sync"
        message = "; ".join([message, *notes])
        ready = make_condition("Ready", True, REASON_READY, message, generation)
    conditions.append(ready)
    desired["conditions"] = merge_conditions(status.get("conditions"), conditions)
    _write_status(patch, status, desired)
    if retry_error is not None:
        raise kopf.TemporaryError(str(retry_error), delay=backoff(retry))


async def missing_secrets_of(runtime: Runtime, info: DefinitionInfo) -> list[str]:
    """The Secrets the document names in ``use.secrets`` that do not exist.

    Raises SecretsNotReadable where the namespace has not let the operator read Secrets.
    """
    missing = []
    for name in info.secrets:
        if await secret_of(runtime.kube, info.namespace, name) is None:
            missing.append(name)
    return missing


async def _safe_group(
    runtime: Runtime, namespace: str, task_queue: str, release: bool = False
) -> None:
    try:
        await apply_group(runtime, namespace, task_queue, release=release)
    except KubeError as err:
        raise kopf.TemporaryError(f"worker Deployment of {task_queue}: {err}", delay=5) from err


# --------------------------------------------------------------------------- handlers


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def definition_reconcile(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any
) -> None:
    runtime = runtime_of(memo)
    runtime.publisher.mark_indexed()
    uid = str(body.get("metadata", {}).get("uid"))
    # Marked before as well as after: a resync pass reaching this object while its handler
    # runs would reconcile the status the handler is about to replace.
    runtime.handled_at[uid] = time.monotonic()
    await reconcile(runtime, body, patch, retry=retry)
    runtime.handled_at[uid] = time.monotonic()


def _needs_finalizer(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    """Only a definition with a Temporal Schedule (or one it may still have) needs work
    before it goes: everything else it owns goes with it (owner references, and the
    publisher hears of the deletion), so it gets no finalizer and no extra write."""
    return bool(spec.get("schedule")) or _had_schedule(status)


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_needs_finalizer)
async def definition_delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Delete the Temporal Schedule before the definition goes."""
    runtime = runtime_of(memo)
    info = definition_info(body)
    status: Mapping[str, Any] = body.get("status") or {}
    runtime.publisher.poke()
    # Only definitions with a schedule (or one not yet confirmed gone) get here: see
    # `_needs_finalizer`.
    try:
        places = {temporal_namespace(runtime, info), _previous_temporal_namespace(runtime, status)}
        for place in sorted(places):
            await schedules.delete_schedule(
                await runtime.temporal.client_in(place), info.namespace, info.name
            )
    except Exception as err:
        if is_unavailable(err):
            unavailable = runtime.temporal.unavailable(err)
            raise kopf.TemporaryError(
                f"cannot delete the Temporal Schedule yet: {unavailable}", delay=backoff(retry)
            ) from err
        raise
    # Drop this definition's ownership; the last owner leaves the rest to the GC.
    await _safe_group(runtime, info.namespace, info.task_queue)
    previous_queue = status.get("taskQueue")
    if isinstance(previous_queue, str) and previous_queue and previous_queue != info.task_queue:
        await _safe_group(runtime, info.namespace, previous_queue)
