"""The UI's actions on runs (signal, cancel, terminate) behind one small interface, so the
page does not care who carries them out. `TemporalRunControl` talks to Temporal directly,
after the namespace rule: a run is reachable only when its `TflowNamespace` search
attribute is one of the allowed namespaces, and a run of another namespace gets the same
answer as a run that does not exist."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from tflow_workers.engine.model import SA_NAMESPACE

EVERY_NAMESPACE = "*"


class ActionRefused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class RunControl(Protocol):
    async def signal(self, workflow_id: str, name: str, payload: Any) -> None: ...

    async def cancel(self, workflow_id: str) -> None: ...

    async def terminate(self, workflow_id: str, reason: str) -> None: ...


class TemporalRunControl:
    def __init__(self, client: Client, namespaces: Collection[str]) -> None:
        self.client = client
        self.namespaces = frozenset(namespaces)

    def reaches(self, namespace: str | None) -> bool:
        if EVERY_NAMESPACE in self.namespaces:
            return True
        return namespace is not None and namespace in self.namespaces

    async def _own_run(self, workflow_id: str) -> WorkflowExecutionDescription:
        forbidden = ActionRefused(
            403,
            "forbidden-run",
            f"no run {workflow_id!r} of the namespaces this UI may act on "
            f"({', '.join(sorted(self.namespaces)) or 'none'})",
        )
        try:
            described = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise forbidden from None
            raise _refusal(err, workflow_id) from None
        except RuntimeError as err:
            raise ActionRefused(503, "temporal-unavailable", f"Temporal: {err}") from None
        if not self.reaches(described.typed_search_attributes.get(SA_NAMESPACE)):
            raise forbidden
        return described

    async def _act(self, workflow_id: str, action: str, *args: Any) -> None:
        described = await self._own_run(workflow_id)
        if described.status != WorkflowExecutionStatus.RUNNING:
            # Temporal accepts a cancellation request for a closed run and does nothing.
            raise ActionRefused(
                409, "run-closed", f"run {workflow_id!r} has closed: nothing to {action}"
            )
        # Bound to the run that was checked: a later run reusing the id is untouched.
        handle = self.client.get_workflow_handle(workflow_id, run_id=described.run_id)
        try:
            await getattr(handle, action)(*args)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise ActionRefused(
                    409, "run-closed", f"run {workflow_id!r} has closed: nothing to {action}"
                ) from None
            raise _refusal(err, workflow_id) from None
        except RuntimeError as err:
            raise ActionRefused(503, "temporal-unavailable", f"Temporal: {err}") from None

    async def signal(self, workflow_id: str, name: str, payload: Any) -> None:
        await self._act(workflow_id, "signal", name, payload)

    async def cancel(self, workflow_id: str) -> None:
        await self._act(workflow_id, "cancel")

    async def terminate(self, workflow_id: str, reason: str) -> None:
        await self._act(workflow_id, "terminate", reason)


def _refusal(err: RPCError, workflow_id: str) -> ActionRefused:
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        return ActionRefused(400, "invalid-argument", f"Temporal refused it: {err.message}")
    return ActionRefused(
        503, "temporal-unavailable", f"Temporal did not act on {workflow_id!r}: {err.message}"
    )
