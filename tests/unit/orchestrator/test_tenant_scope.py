"""With namespaces mapped, a tenant's Temporal namespace is a boundary for the events
started in it: what scope an event is routed with, by where it arrived."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflow_workers.orchestrator.activities import OrchestratorActivities
from tflow_workers.orchestrator.model import EventScope
from tflow_workers.temporal_namespaces import TemporalNamespaces

MAPPING = TemporalNamespaces(
    shared="default",
    mapped={"a": ("tenant-a",), "b": ("tenant-b", "batch"), "b-dev": ("tenant-b",)},
)


@pytest.fixture
def activities(tmp_path: Path) -> OrchestratorActivities:
    return OrchestratorActivities(tmp_path, tmp_path, temporal_namespaces=MAPPING)


def test_an_event_may_speak_for_a_namespace_that_uses_where_it_arrived(
    activities: OrchestratorActivities,
) -> None:
    scope = EventScope(namespace="b", share_with=["a"])
    assert activities._scope_here(scope, "tenant-b") == (scope, "")
    assert activities._scope_here(scope, "batch") == (scope, "")
    assert activities._scope_here(EventScope(namespace="b-dev"), "tenant-b")[1] == ""
    refused, why = activities._scope_here(scope, "tenant-a")
    assert refused is None
    assert why.startswith("an event of namespace 'b' may not be routed from Temporal namespace")
    assert "belongs to a" in why


def test_an_event_without_a_namespace_is_the_only_tenants_or_refused(
    activities: OrchestratorActivities,
) -> None:
    assert activities._scope_here(None, "tenant-a") == (EventScope(namespace="a"), "")
    assert activities._scope_here(None, "batch") == (EventScope(namespace="b"), "")
    refused, why = activities._scope_here(None, "tenant-b")  # used by b and b-dev
    assert refused is None
    assert "send it through a Listener" in why


def test_the_shared_namespace_and_an_unmapped_cluster_keep_the_old_rule(tmp_path: Path) -> None:
    mapped = OrchestratorActivities(tmp_path, tmp_path, temporal_namespaces=MAPPING)
    assert mapped._scope_here(None, "default") == (None, "")
    scope = EventScope(namespace="a")
    assert mapped._scope_here(scope, "default") == (scope, "")
    plain = OrchestratorActivities(tmp_path, tmp_path)
    assert plain._scope_here(scope, "anything") == (scope, "")
