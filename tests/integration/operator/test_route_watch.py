"""The operator's own watch of EventRoutes (tflow_operator.eventroute.RouteWatch) against
the real apiserver: a list, then the changes after it, status writes included (the
publisher judges routes by the statuses it sees back); a list again after a 410 or a
failed watch, which tells what changed meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from polling import eventually_async

from tflow_devstack.controlplane import ControlPlane
from tflow_operator.eventroute import RouteWatch
from tflow_operator.kube import KubeClient, KubeError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("crds")]

Key = tuple[str, str]


class Told:
    """What the watch tells the publisher."""

    def __init__(self) -> None:
        self.observed: list[tuple[Key, tuple[Any, ...]]] = []
        self.forgotten: list[Key] = []
        self.listed = 0

    def observe_route(self, key: Key, fingerprint: tuple[Any, ...]) -> None:
        self.observed.append((key, fingerprint))

    def forget_route(self, key: Key) -> None:
        self.forgotten.append(key)

    def routes_listed(self) -> None:
        self.listed += 1


class FailingOnce(KubeClient):
    """The real client, whose first watch the apiserver refuses as it would a
    resourceVersion too old to watch from, and whose second fails in the middle."""

    def __init__(self) -> None:
        super().__init__()
        self.watches = 0

    async def watch(
        self, api_version: str, kind: str, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        self.watches += 1
        if self.watches == 1:
            raise KubeError(410, "too old resource version")
        if self.watches == 2:
            raise KubeError(500, "the watch broke")
        async for event in super().watch(api_version, kind, resource_version, timeout_seconds):
            yield event


def route(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"match": {"type": "t"}, "workflow": "w"},
    }


@pytest.fixture(autouse=True)
def admin(kube: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))


async def test_routes_are_listed_then_followed_status_included(namespace: str) -> None:
    client = KubeClient.from_env()
    await client.apply(route(namespace, "before"))
    told = Told()
    watch = RouteWatch(client, told, timeout_seconds=5)
    watch.start()
    try:
        await eventually_async(lambda: _true(told.listed == 1), "the first list")
        assert (namespace, "before") in watch.routes
        # Changes after the list, each seen once the apiserver has it.
        await client.apply(route(namespace, "after"))
        await eventually_async(lambda: _true((namespace, "after") in watch.routes), "a new route")
        status = {"observedGeneration": 1, "routingTableHash": "abc"}
        await client.patch_status(
            "temporalflow.dev/v1alpha1", "EventRoute", namespace, "before", status
        )
        await eventually_async(
            lambda: _true(
                watch.routes[(namespace, "before")].status.get("routingTableHash") == "abc"
            ),
            "the written status",
        )
        await client.delete("temporalflow.dev/v1alpha1", "EventRoute", namespace, "after")
        await eventually_async(
            lambda: _true((namespace, "after") not in watch.routes), "a deletion"
        )
        assert (namespace, "after") in told.forgotten
        # The apiserver ends a watch after its timeout (5 s here): the next one goes on
        # from where it stopped, and nothing is listed again.
        await asyncio.sleep(6)
        await client.apply(route(namespace, "later"))
        await eventually_async(
            lambda: _true((namespace, "later") in watch.routes), "after a timeout"
        )
        assert (watch.lists, told.listed) == (1, 1)
    finally:
        await watch.stop()
        await client.close()


async def test_a_refused_or_broken_watch_lists_again_and_tells_what_changed(
    namespace: str,
) -> None:
    client = FailingOnce()
    await client.apply(route(namespace, "kept"))
    await client.apply(route(namespace, "gone"))
    told = Told()
    watch = RouteWatch(client, told, timeout_seconds=5)
    # The route deleted while nothing watched is forgotten by the next list.
    await watch.relist()
    assert {(namespace, "kept"), (namespace, "gone")} <= set(watch.routes)
    await client.delete("temporalflow.dev/v1alpha1", "EventRoute", namespace, "gone")
    watch.start()
    try:
        # 410: listed again at once; 500: listed again after a pause; then watched.
        await eventually_async(lambda: _true(watch.lists == 3), "two more lists", seconds=15)
        assert (namespace, "gone") not in watch.routes
        assert (namespace, "gone") in told.forgotten
        await client.apply(route(namespace, "new"))
        await eventually_async(lambda: _true((namespace, "new") in watch.routes), "the watch")
        assert client.watches == 3
    finally:
        await watch.stop()
        await client.close()


async def _true(value: bool) -> bool:
    return value
