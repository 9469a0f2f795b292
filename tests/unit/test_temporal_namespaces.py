"""The map of Kubernetes namespaces to Temporal namespaces: parsing, homes, what a
definition may ask for, and the part each namespace's pods are given."""

from __future__ import annotations

import json

import pytest

from tflow_workers.temporal_namespaces import TemporalNamespaceError, TemporalNamespaces

MAPPING = json.dumps({"team-a": "tenant-a", "team-b": ["tenant-b", "tenant-b-batch"]})


def test_homes_allowed_lists_and_the_shared_namespace() -> None:
    namespaces = TemporalNamespaces.parse(MAPPING, "shared")
    assert namespaces.enabled
    assert namespaces.home("team-a") == "tenant-a"
    assert namespaces.of("team-b") == ("tenant-b", "tenant-b-batch")
    assert namespaces.home("elsewhere") == "shared"
    assert namespaces.all() == ("shared", "tenant-a", "tenant-b", "tenant-b-batch")
    assert namespaces.resolve("team-b") == "tenant-b"
    assert namespaces.resolve("team-b", "tenant-b-batch") == "tenant-b-batch"
    assert namespaces.resolve("elsewhere", "shared") == "shared"
    with pytest.raises(
        TemporalNamespaceError, match="'tenant-b' is not one that namespace 'team-a'"
    ):
        namespaces.resolve("team-a", "tenant-b")
    with pytest.raises(TemporalNamespaceError, match="tenant-a"):
        namespaces.resolve("elsewhere", "tenant-a")


def test_nothing_mapped_is_one_shared_namespace() -> None:
    namespaces = TemporalNamespaces.from_env(env={"TEMPORAL_NAMESPACE": "prod"})
    assert not namespaces.enabled
    assert namespaces.all() == ("prod",)
    assert namespaces.resolve("any") == "prod"


def test_a_namespaces_pods_get_only_its_own_entry() -> None:
    namespaces = TemporalNamespaces.parse(MAPPING, "shared")
    own = TemporalNamespaces.parse(namespaces.only("team-b").to_env(), "shared")
    assert own.mapped == {"team-b": ("tenant-b", "tenant-b-batch")}
    assert not namespaces.only("unmapped").enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "expected an object"),
        ('{"Team": "x"}', "'Team' is not a Kubernetes namespace name"),
        ('{"a": []}', "non-empty list"),
        ('{"a": "-x"}', "'-x' is not a Temporal namespace name"),
        ('{"a": ["x", "x"]}', "listed twice"),
    ],
)
def test_a_bad_map_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(TemporalNamespaceError, match=message):
        TemporalNamespaces.parse(text)
