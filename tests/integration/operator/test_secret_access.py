"""Least privilege for Secrets, proven on the real apiserver: the operator's role reads no
Secret anywhere (403), a namespace that binds the operator's secrets role lets it read
Secrets there and nowhere else, a Role limited to resourceNames lets it read exactly those;
and the operator's reconcile copes with either (checks what it may, says what it skipped).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import token_kubeconfig
from polling import eventually_async

from tflow_devstack.controlplane import ControlPlane
from tflow_operator import rbac
from tflow_operator.config import Config
from tflow_operator.kube import KubeClient, KubeError
from tflow_operator.listener import reconcile_listener

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("crds")]


def apply(kube: ControlPlane, *objects: dict[str, Any]) -> None:
    text = "".join(f"---\n{yaml.safe_dump(obj)}" for obj in objects)
    kube.kubectl("apply", "-f", "-", input=text)


def secret(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"token": "t0ken"},
    }


@pytest.fixture
def system_namespace(kube: ControlPlane) -> Iterator[str]:
    """The operator's RBAC, exactly as shipped, in a namespace of its own."""
    name = f"tflow-system-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    kube.kubectl("apply", "-f", "-", input=rbac.render(namespace=name))
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
async def as_operator(
    kube: ControlPlane, system_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[KubeClient]:
    """A client holding a token of the operator's ServiceAccount, nothing else."""
    token = kube.kubectl("create", "token", rbac.NAME, "-n", system_namespace).stdout.strip()
    kubeconfig = tmp_path / "operator.kubeconfig"
    token_kubeconfig(kubeconfig, kube.kubeconfig, kube.server, token)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    client = KubeClient.from_env()
    try:
        yield client
    finally:
        await client.close()


async def status_of(client: KubeClient, namespace: str, name: str) -> int:
    """The apiserver's answer to the operator reading one Secret: 200, 404, or its error."""
    try:
        found = await client.get("v1", "Secret", namespace, name)
    except KubeError as err:
        return err.status
    return 404 if found is None else 200


async def granted(client: KubeClient, namespace: str, name: str, answer: int = 200) -> None:
    """Wait until reading this Secret gets ``answer`` (404 for one that does not exist): the
    apiserver's authorizer learns of a new RoleBinding from its own watch, a moment after
    the write was answered."""

    async def readable() -> bool:
        return await status_of(client, namespace, name) == answer

    await eventually_async(readable, f"the operator reading Secret {namespace}/{name}")


async def test_the_operator_role_reads_no_secret_until_a_namespace_allows_it(
    kube: ControlPlane,
    namespace: str,
    other_namespace: str,
    system_namespace: str,
    as_operator: KubeClient,
) -> None:
    apply(kube, secret("hook", namespace), secret("hook", other_namespace))
    account = f"system:serviceaccount:{system_namespace}:{rbac.NAME}"

    # Nobody named anything to it and nobody allowed it: 403 everywhere, get and list.
    assert await status_of(as_operator, namespace, "hook") == 403
    assert await status_of(as_operator, other_namespace, "hook") == 403
    for ns in (namespace, other_namespace):
        with pytest.raises(KubeError) as listed:
            await as_operator.list("v1", "Secret", ns)
        assert listed.value.status == 403
    # kubectl impersonating the ServiceAccount sees the same refusal.
    refused = kube.kubectl("get", "secret", "hook", "-n", namespace, f"--as={account}", check=False)
    assert refused.returncode != 0
    assert 'secrets "hook" is forbidden' in refused.stderr
    can_i = kube.kubectl(
        "auth", "can-i", "get", "secrets", "--all-namespaces", f"--as={account}", check=False
    )
    assert can_i.stdout.strip() == "no"

    # The namespace's owner binds the operator's secrets role: that namespace only, get only.
    apply(kube, rbac.secrets_role_binding(namespace, system_namespace))
    await granted(as_operator, namespace, "hook")
    assert await status_of(as_operator, other_namespace, "hook") == 403
    with pytest.raises(KubeError) as listed:
        await as_operator.list("v1", "Secret", namespace)
    assert listed.value.status == 403


async def test_a_role_limited_to_resource_names_allows_exactly_those(
    kube: ControlPlane, namespace: str, system_namespace: str, as_operator: KubeClient
) -> None:
    apply(kube, secret("named", namespace), secret("unrelated", namespace))
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "tflow-named-secrets", "namespace": namespace},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get"],
                "resourceNames": ["named"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "tflow-named-secrets", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "tflow-named-secrets",
        },
        "subjects": [{"kind": "ServiceAccount", "name": rbac.NAME, "namespace": system_namespace}],
    }
    apply(kube, role, binding)
    await granted(as_operator, namespace, "named")
    assert await status_of(as_operator, namespace, "unrelated") == 403


def listener(name: str, namespace: str, secret_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "webhook",
            "webhook": {"auth": {"bearerTokenSecretRef": {"name": secret_name, "key": "token"}}},
        },
    }


async def test_the_operator_checks_secrets_where_allowed_and_says_so_where_not(
    kube: ControlPlane,
    namespace: str,
    other_namespace: str,
    system_namespace: str,
    as_operator: KubeClient,
) -> None:
    """Under the shipped role, a Listener naming a missing Secret: where the namespace
    allowed reading Secrets it is held back (SecretNotFound); where not, it is rolled out
    (the kubelet mounts Secrets itself) and its status says the check was skipped."""
    apply(kube, rbac.secrets_role_binding(namespace, system_namespace))
    await granted(as_operator, namespace, "absent", answer=404)
    apply(kube, listener("hook", namespace, "absent"), listener("hook", other_namespace, "absent"))
    config = Config(listener_image="registry.example/listener:test")

    allowed = await as_operator.get("temporalflow.dev/v1alpha1", "Listener", namespace, "hook")
    assert allowed is not None
    outcome = await reconcile_listener(as_operator, allowed, config)
    assert outcome.missing == [f"Secret {namespace}/absent"]
    (ready,) = outcome.status["conditions"]
    assert ready["reason"] == "SecretNotFound"
    assert await as_operator.get("apps/v1", "Deployment", namespace, "tflow-listener-hook") is None

    closed = await as_operator.get("temporalflow.dev/v1alpha1", "Listener", other_namespace, "hook")
    assert closed is not None
    outcome = await reconcile_listener(as_operator, closed, config)
    assert outcome.missing == []
    (ready,) = outcome.status["conditions"]
    assert ready["reason"] != "SecretNotFound"
    assert (
        f"Secrets not verified: the operator may not read Secrets in {other_namespace}"
        in (ready["message"])
    )
    deployment = await as_operator.get(
        "apps/v1", "Deployment", other_namespace, "tflow-listener-hook"
    )
    assert deployment is not None
