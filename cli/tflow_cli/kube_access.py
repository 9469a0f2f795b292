"""Who is calling a front end of runs (the run API, the web UI) and what it may do,
asked of the apiserver, and the WorkflowDefinitions runs are started from. One
implementation for both, so that both draw the same namespace boundary.

- Authentication: the caller's bearer token is a Kubernetes token (a service account's,
  or any the cluster's authenticators accept), checked with a TokenReview. A verdict is
  kept for a short while (keyed by the token's SHA-256, never the token) so a page of
  requests costs one review.
- Authorization: a SubjectAccessReview of the caller against the subresource
  `workflowdefinitions/runs` of group `temporalflow.dev` in the namespace of the URL:
  `list` and `create` (start) name the definition, so a Role may grant them per
  definition (`resourceNames`); `get` (a run, its history), `update` (signal, event) and
  `delete` (cancel, terminate) are asked for the namespace. Kubernetes RBAC is thus the
  namespace rule: a caller reaches the runs of the namespaces it was granted, nothing else.
  The run API asks on every request; the web UI, whose page polls and lists many
  namespaces at once, keeps each answer a few seconds (`review_seconds`).
- Definitions: read from the apiserver (`spec.workflow`, the task queue in force, the
  Ready condition, `status.version`), as `tflow_workers.run_operations.Definition`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tflow_operator.api import API_VERSION
from tflow_operator.api.common import GROUP
from tflow_operator.kube import KubeClient, KubeError
from tflow_workers.run_operations import Definition

RESOURCE = "workflowdefinitions"
SUBRESOURCE = "runs"
VERB_LIST = "list"
VERB_START = "create"
VERB_READ = "get"
VERB_STEER = "update"
VERB_STOP = "delete"


class AccessUnavailable(Exception):
    """The apiserver did not answer a review or a read."""


@dataclass(frozen=True)
class Caller:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


K = TypeVar("K")
V = TypeVar("V")


class _Verdicts(Generic[K, V]):
    """Answers for `ttl` seconds, at most `size` of them (the oldest go first)."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            self._items.pop(key, None)
            return False, None
        return True, found[1]

    def put(self, key: K, value: V) -> None:
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class KubeAccess:
    def __init__(
        self,
        kube: KubeClient,
        audiences: tuple[str, ...] = (),
        cache_seconds: float = 30.0,
        review_seconds: float = 0.0,
    ) -> None:
        self.kube = kube
        self.audiences = audiences
        self._verdicts: _Verdicts[str, Caller | None] = _Verdicts(cache_seconds)
        # Access answers by (who, verb, namespace, name); off (0) asks every time.
        self._reviews: _Verdicts[tuple[Any, ...], bool] | None = (
            _Verdicts(review_seconds) if review_seconds > 0 else None
        )

    async def authenticate(self, token: str) -> Caller | None:
        """The caller a token stands for, or None when the cluster does not accept it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        known, caller = self._verdicts.get(key)
        if known:
            return caller
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        try:
            review = await self.kube.create(
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "metadata": {},
                    "spec": spec,
                }
            )
        except KubeError as err:
            raise AccessUnavailable(f"the token review failed: {err}") from err
        status = review.get("status") or {}
        caller = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            caller = Caller(
                username=str(user.get("username", "")),
                uid=str(user.get("uid", "")),
                groups=tuple(user.get("groups") or ()),
                extra={k: list(v) for k, v in (user.get("extra") or {}).items()},
            )
        self._verdicts.put(key, caller)
        return caller

    async def allowed(self, caller: Caller, verb: str, namespace: str, name: str = "") -> bool:
        """Whether RBAC lets `caller` do `verb` on the runs of `namespace` (of definition
        `name` when given)."""
        attributes = {
            "group": GROUP,
            "resource": RESOURCE,
            "subresource": SUBRESOURCE,
            "verb": verb,
            "namespace": namespace,
        }
        if name:
            attributes["name"] = name
        key = (
            caller.username,
            caller.uid,
            caller.groups,
            tuple(sorted((k, tuple(v)) for k, v in caller.extra.items())),
            verb,
            namespace,
            name,
        )
        if self._reviews is not None:
            known, answer = self._reviews.get(key)
            if known:
                return bool(answer)
        try:
            review = await self.kube.create(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "metadata": {},
                    "spec": {
                        "user": caller.username,
                        "uid": caller.uid,
                        "groups": list(caller.groups),
                        "extra": caller.extra,
                        "resourceAttributes": attributes,
                    },
                }
            )
        except KubeError as err:
            raise AccessUnavailable(f"the access review failed: {err}") from err
        allowed = bool((review.get("status") or {}).get("allowed"))
        if self._reviews is not None:
            self._reviews.put(key, allowed)
        return allowed

    async def definition(self, namespace: str, name: str) -> Definition | None:
        try:
            obj = await self.kube.get(API_VERSION, "WorkflowDefinition", namespace, name)
        except KubeError as err:
            raise AccessUnavailable(
                f"reading WorkflowDefinition {namespace}/{name}: {err}"
            ) from err
        return None if obj is None else definition_of(obj)


def definition_of(obj: dict[str, Any]) -> Definition:
    """A WorkflowDefinition object as what starting its runs needs."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    # Ready describes the generation it observed; an edit not yet reconciled is not Ready.
    current = ready.get("observedGeneration") in (None, meta.get("generation"))
    return Definition(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        document=dict(spec.get("workflow") or {}),
        task_queue=str(status.get("taskQueue") or spec.get("taskQueue") or ""),
        ready=ready.get("status") == "True" and current,
        reason=ready.get("reason") if current else "NotObserved",
        message=ready.get("message")
        if current
        else "the operator has not reconciled the latest change yet",
        version=status.get("version"),
        temporal_namespace=status.get("temporalNamespace") or spec.get("temporalNamespace"),
    )
