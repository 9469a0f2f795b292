"""The flags that choose a listener's hand-off: the root orchestrator by default, direct
routing with `--routing direct` (from the environment, as the operator sets it), and the
combinations that cannot work refused with the flag to fix."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from temporalio.client import Client

from tflow_listeners.handoff import DirectHandOff, HandOff
from tflow_listeners.source import add_temporal_arguments, handoff_from


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_temporal_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
async def client() -> Client:
    # Lazy: nothing here talks to Temporal.
    return await Client.connect("localhost:1", lazy=True)


async def test_the_root_orchestrator_is_the_default(client: Client) -> None:
    handoff = handoff_from(parse("--kube-namespace", "shop", "--share-with", "audit"), client)
    assert isinstance(handoff, HandOff)
    assert (handoff.namespace, handoff.share_with) == ("shop", ("audit",))


async def test_direct_routing_from_the_environment(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFLOW_LISTENER_ROUTING", "direct")
    monkeypatch.setenv("TFLOW_ROUTES_DIR", str(tmp_path / "routes"))
    monkeypatch.setenv("TFLOW_DEFINITIONS_DIR", str(tmp_path / "definitions"))
    monkeypatch.setenv("TFLOW_LISTENER_KUBE_NAMESPACE", "shop")
    handoff = handoff_from(parse(), client)
    assert isinstance(handoff, DirectHandOff)
    assert handoff.router.namespace == "shop"
    assert handoff.router.router.table.directory == tmp_path / "routes"
    assert handoff.router.router.table.require_index


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--routes-dir", "/r"), "--routing direct needs --kube-namespace"),
        (("--kube-namespace", "shop"), "--routing direct needs --routes-dir"),
        (
            ("--kube-namespace", "shop", "--routes-dir", "/r", "--share-with", "audit"),
            "--routing direct cannot share events",
        ),
    ],
)
async def test_direct_routing_refuses_what_it_cannot_do(
    client: Client, argv: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        handoff_from(parse("--routing", "direct", *argv), client)


def test_an_unknown_routing_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--routing", "sideways")
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
