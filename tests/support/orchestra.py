"""The root orchestrator's test harness: an orchestrator worker and two interpreter
workers on a real Temporal server, reading a routing table and definitions from
directories the test writes as the operator publishes them (and a listener routing
directly reads them too)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from histories import check_replay
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from tflow_workers.cloudevents import (
    ROOT_MEMO,
    ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
    CloudEvent,
    RootInput,
    event_workflow_id,
)
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.orchestrator.activities import OrchestratorActivities
from tflow_workers.orchestrator.model import Decision
from tflow_workers.orchestrator.worker import build_orchestrator_worker
from tflow_workers.routing import (
    CompiledRoute,
    RoutingTable,
    published_files,
)
from tflow_workers.worker import build_worker


@dataclass
class Orchestra:
    """An orchestrator worker and two interpreter workers, reading a routing table and
    definitions from directories the test writes (as the operator would)."""

    client: Client
    router_queue: str
    queues: tuple[str, str]
    routes_dir: Path
    definitions_dir: Path
    # The Kubernetes namespace of this test's definitions: keeps searches apart.
    namespace: str
    # The orchestrator worker's activities (None without one).
    activities: OrchestratorActivities | None = None

    def route(
        self, name: str, workflow: str, queue: int = 0, namespace: str = "", **kw: Any
    ) -> CompiledRoute:
        return CompiledRoute(
            namespace=namespace or self.namespace,
            name=name,
            workflow=workflow,
            task_queue=self.queues[queue],
            **kw,
        )

    def publish_routes(self, *routes: CompiledRoute, indexed: bool = False) -> None:
        """Swap the table in the way the kubelet updates a mounted ConfigMap: a new
        timestamped directory, then one atomic rename of the `..data` symlink. With
        `indexed`, the files and index the operator publishes (what a listener routing
        directly insists on); else one plain `routes.json`."""
        table = RoutingTable(routes=list(routes))
        files = published_files(table) if indexed else {"routes.json": table.to_json().encode()}
        version = self.routes_dir / f"..{uuid.uuid4().hex}"
        version.mkdir()
        for name, body in files.items():
            (version / name).write_bytes(body)
        staged = self.routes_dir / "..data_tmp"
        staged.symlink_to(version.name)
        os.replace(staged, self.routes_dir / "..data")
        for name in files:
            link = self.routes_dir / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")

    def define(
        self,
        name: str,
        queue: int = 0,
        do: list[dict[str, Any]] | None = None,
        namespace: str = "",
    ) -> None:
        namespace = namespace or self.namespace
        manifest = {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "WorkflowDefinition",
            "metadata": {"name": name, "namespace": namespace, "generation": 2},
            "spec": {
                "taskQueue": self.queues[queue],
                "workflow": {
                    "document": {
                        "dsl": "1.0.0",
                        "namespace": "tests",
                        "name": f"{name}-flow",
                        "version": "1.0.0",
                    },
                    "do": do or [{"record": {"set": {"flow": name, "got": "${ . }"}}}],
                },
            },
        }
        (self.definitions_dir / f"{namespace}.{name}.yaml").write_text(yaml.safe_dump(manifest))

    async def submit(
        self,
        event: CloudEvent,
        namespace: str | None = None,
        share_with: tuple[str, ...] = (),
        local_routing: bool = True,
        local_starts: bool = True,
    ) -> WorkflowHandle[Any, Decision]:
        """What a listener does (tflow_listeners.handoff)."""
        return await self.client.start_workflow(
            ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
            RootInput(
                event=event.as_data(),
                namespace=namespace,
                share_with=list(share_with),
                local_routing=local_routing,
            ),
            id=event_workflow_id(event.source, event.id, namespace),
            task_queue=self.router_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=Decision,
            memo=ROOT_MEMO if local_starts else None,
        )

    async def decide(
        self,
        event: CloudEvent,
        namespace: str | None = None,
        share_with: tuple[str, ...] = (),
        record: str | None = None,
    ) -> Decision:
        handle = await self.submit(event, namespace, share_with)
        decision = await handle.result()
        await check_replay(handle, record)
        return decision

    def child(self, decision: Decision, workflow: str) -> WorkflowHandle[Any, Any]:
        (match,) = [m for m in decision.matches if m.workflow == workflow]
        assert match.child_workflow_id is not None
        return self.client.get_workflow_handle(match.child_workflow_id)


@asynccontextmanager
async def orchestra(
    client: Client, tmp_path: Path, task_queue: str, orchestrator: bool = True
) -> AsyncIterator[Orchestra]:
    routes, definitions = tmp_path / "routes", tmp_path / "definitions"
    routes.mkdir()
    definitions.mkdir()
    marker = uuid.uuid4().hex[:8]
    o = Orchestra(
        client=client,
        router_queue=f"{task_queue}-router",
        queues=(f"{task_queue}-a", f"{task_queue}-b"),
        routes_dir=routes,
        definitions_dir=definitions,
        namespace=f"ns-{marker}",
    )
    o.publish_routes()
    async with AsyncExitStack() as stack:
        for queue in o.queues:
            # Flows hand the events they emit to this orchestrator.
            engine = EngineActivities(client=client, router_task_queue=o.router_queue)
            await stack.enter_async_context(build_worker(client, queue, engine))
        if orchestrator:
            o.activities = OrchestratorActivities(routes, definitions)
            await stack.enter_async_context(
                build_orchestrator_worker(client, o.router_queue, o.activities)
            )
        yield o


def cloud_event(type: str, source: str = "monitoring", **data: Any) -> CloudEvent:
    return CloudEvent(id=uuid.uuid4().hex, source=source, type=type, data=data)
