"""Who is calling the web UI and which namespaces it may see and steer.

Three modes (`UiSettings.auth`):

- `kubernetes` (the chart's): the caller's bearer token is a Kubernetes token, checked
  with a TokenReview, and every namespace is a SubjectAccessReview of the run API's verbs
  on `workflowdefinitions/runs` (`tflow_cli.kube_access`, the same code): `list` and
  `get` to read, `update` to send an event, `delete` to cancel or terminate. Answers are
  kept a few seconds, so a polling page and a list of namespaces cost few reviews.
- `token` (`tflow ui` on a laptop): one random token made at start and printed in the
  page's URL; whoever holds it is the person who started the UI, so no review is asked.
- `none`: no check at all, only ever on a loopback address (`tflow ui --no-auth`).

In every mode the UI's own namespace list (`UiSettings.namespaces`) is an upper bound.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from tflow_cli.kube_access import AccessUnavailable, Caller, KubeAccess
from tflow_workers.run_operations import NamespaceRule, RunRefused

AuthMode = Literal["kubernetes", "token", "none"]

# What the page offers as a way to get a token, by mode.
SIGN_IN_HINTS: dict[str, str] = {
    "kubernetes": "a Kubernetes token: kubectl create token <serviceaccount> -n <namespace>",
    "token": "the token `tflow ui` printed with its URL (http://host:port/#token=...)",
}


class Unauthorized(RunRefused):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(401, reason, detail)


@dataclass(frozen=True)
class Viewer:
    """The caller of one request: a Kubernetes user, or (token and none modes) whoever
    started the UI, who may do anything inside the UI's namespaces."""

    caller: Caller | None

    @property
    def name(self) -> str:
        return self.caller.username if self.caller else "the UI's owner"


@dataclass
class Gate:
    mode: AuthMode
    bound: NamespaceRule
    token: SecretStr | None = None
    access: KubeAccess | None = None

    def __post_init__(self) -> None:
        if self.mode == "kubernetes" and self.access is None:
            raise ValueError("Kubernetes authentication needs the apiserver (a kubeconfig)")
        if self.mode == "token" and not self.token:
            raise ValueError("token authentication needs a token")

    async def viewer(self, authorization: str) -> Viewer:
        """The caller an Authorization header stands for; 401 when there is none."""
        if self.mode == "none":
            return Viewer(None)
        scheme, _, given = authorization.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            raise Unauthorized("missing-token", f"sign in with {SIGN_IN_HINTS[self.mode]}")
        if self.mode == "token":
            assert self.token is not None
            if not hmac.compare_digest(
                given.encode("utf-8", "replace"), self.token.get_secret_value().encode()
            ):
                raise Unauthorized("bad-token", "the token is not this UI's")
            return Viewer(None)
        assert self.access is not None
        try:
            caller = await self.access.authenticate(given)
        except AccessUnavailable as err:
            raise RunRefused(503, "kubernetes-unavailable", str(err)) from None
        if caller is None:
            raise Unauthorized("bad-token", "the cluster does not accept this token")
        return Viewer(caller)

    async def may(self, viewer: Viewer, verb: str, namespace: str | None, name: str = "") -> bool:
        """Whether the viewer may `verb` the runs of `namespace` (inside the bound)."""
        if not self.bound.reaches(namespace):
            return False
        if viewer.caller is None:
            return True
        if not namespace or self.access is None:
            # A run that names no namespace belongs to no tenant: no grant reaches it.
            return False
        try:
            return await self.access.allowed(viewer.caller, verb, namespace, name)
        except AccessUnavailable as err:
            raise RunRefused(503, "kubernetes-unavailable", str(err)) from None

    async def require(self, viewer: Viewer, verb: str, namespace: str, name: str = "") -> None:
        """403 naming the namespace unless the viewer may `verb` there."""
        if not self.bound.reaches(namespace):
            raise RunRefused(
                403,
                "namespace-not-shown",
                f"not allowed in namespace {namespace!r}: this UI does not show it",
            )
        if not await self.may(viewer, verb, namespace, name):
            what = f"workflowdefinitions/runs{f' of {name}' if name else ''}"
            raise RunRefused(
                403,
                "forbidden",
                f"not allowed in namespace {namespace!r}: {viewer.name} may not {verb} {what}",
            )

    async def readable(self, viewer: Viewer, verb: str, namespaces: Iterable[str]) -> set[str]:
        """The namespaces among `namespaces` the viewer may `verb` in."""
        return {n for n in set(namespaces) if await self.may(viewer, verb, n)}
