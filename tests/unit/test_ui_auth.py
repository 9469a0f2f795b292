"""The web UI's gate without servers: `--no-auth` only on a loopback address, the token
mode's token compared as it is, and access answers kept for the time asked (the run API
keeps none)."""

from __future__ import annotations

import argparse
from typing import Any, cast

import pytest
from pydantic import SecretStr

from tflow_cli.kube_access import Caller, KubeAccess
from tflow_cli.ui.auth import Gate, Unauthorized, Viewer
from tflow_cli.ui.command import add_parser, cmd_ui, loopback
from tflow_operator.kube import KubeClient
from tflow_workers.run_operations import NamespaceRule, RunRefused


class FakeKube:
    """Answers every SubjectAccessReview from `grants`, counting them."""

    def __init__(self, grants: set[tuple[str, str]]) -> None:
        self.grants = grants
        self.reviews = 0

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.reviews += 1
        attributes = obj["spec"]["resourceAttributes"]
        allowed = (attributes["verb"], attributes["namespace"]) in self.grants
        return {"status": {"allowed": allowed}}


def test_no_auth_only_on_loopback() -> None:
    assert all(loopback(host) for host in ("127.0.0.1", "::1", "localhost"))
    assert not any(loopback(host) for host in ("0.0.0.0", "10.0.0.7", "ui.example"))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["ui", "--address", "x:7233", "--host", "0.0.0.0", "--no-auth"])
    with pytest.raises(SystemExit, match="only on a loopback address"):
        cmd_ui(args)


async def test_the_token_mode_takes_its_own_token_only() -> None:
    gate = Gate("token", NamespaceRule.everywhere(), SecretStr("right"))
    assert (await gate.viewer("Bearer right")).caller is None
    for header in ("", "Bearer wrong", "Basic right", "Bearer "):
        with pytest.raises(Unauthorized):
            await gate.viewer(header)


async def test_access_answers_are_kept_when_asked_and_the_bound_holds() -> None:
    kube = FakeKube({("list", "shop")})
    access = KubeAccess(cast(KubeClient, kube), review_seconds=10)
    alice = Caller("alice")
    for _ in range(3):
        assert await access.allowed(alice, "list", "shop")
        assert not await access.allowed(alice, "list", "ops")
    assert kube.reviews == 2
    every_time = KubeAccess(cast(KubeClient, kube))
    await every_time.allowed(alice, "list", "shop")
    await every_time.allowed(alice, "list", "shop")
    assert kube.reviews == 4

    gate = Gate("kubernetes", NamespaceRule.only("shop", "ops"), access=access)
    viewer = Viewer(alice)
    assert await gate.readable(viewer, "list", ["shop", "ops", "elsewhere"]) == {"shop"}
    with pytest.raises(RunRefused, match="not allowed in namespace 'ops'"):
        await gate.require(viewer, "list", "ops")
    with pytest.raises(RunRefused, match="does not show it"):
        await gate.require(viewer, "list", "elsewhere")
