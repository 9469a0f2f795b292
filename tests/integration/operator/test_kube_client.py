"""The operator's Kubernetes client (tflow_operator.kube) on kubernetes-asyncio: the
in-cluster service account reached by KUBERNETES_SERVICE_HOST/PORT (no DNS), shared with
kopf's login (a session with a bounded pool); a client certificate from an exec plugin;
retries of 429 and 5xx with back-off, and a new login after a 401."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from operator_harness import exec_kubeconfig, exec_plugin

from tflow_devstack.controlplane import ControlPlane
from tflow_operator import main
from tflow_operator.kube import (
    APISERVER_CONNECTIONS,
    KubeClient,
    KubeError,
    RetryDelays,
    load_configuration,
)

pytestmark = [pytest.mark.integration]

NO_WAIT = RetryDelays(delays=(0.01, 0.01, 0.01))


def service_account(kube: ControlPlane, folder: Path, namespace: str) -> Path:
    """What the kubelet mounts into a pod: a token of a ServiceAccount and the CA."""
    folder.mkdir()
    kube.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kube.kubectl("create", "role", "reader", "--verb=get", "--resource=configmaps", "-n", namespace)
    kube.kubectl(
        "create", "rolebinding", "reader", "--role=reader",
        f"--serviceaccount={namespace}:reader", "-n", namespace,
    )  # fmt: skip
    token = kube.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    (folder / "token").write_text(token)
    (folder / "ca.crt").write_bytes(kube.ca.cert_path.read_bytes())
    (folder / "namespace").write_text(namespace)
    return folder


async def test_in_cluster_account_by_service_host_and_port(
    kube: ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = service_account(kube, tmp_path / "serviceaccount", namespace)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", kube.host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.apiserver_port))
    # A kubeconfig too: the service account wins, as in a pod.
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    client = KubeClient(functools.partial(load_configuration, account))
    try:
        kube.kubectl("create", "configmap", "seen", "-n", namespace, "--from-literal=a=1")
        found = await client.get("v1", "ConfigMap", namespace, "seen")
        assert found is not None
        assert found["data"] == {"a": "1"}
        # It may only read: reading works, writing is the account's own denial (403),
        # which proves the request carried its token rather than the admin's.
        with pytest.raises(KubeError) as denied:
            await client.apply(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "written", "namespace": namespace},
                }
            )
        assert denied.value.status == 403
        assert f"system:serviceaccount:{namespace}:reader" in str(denied.value)
    finally:
        await client.close()

    # kopf logs in from the same source.
    monkeypatch.setattr(main, "load_configuration", functools.partial(load_configuration, account))
    info = await main.connection_info(trust_env=False)
    assert info.server == f"https://{kube.host}:{kube.apiserver_port}"
    assert info.token == (account / "token").read_text()
    assert info.scheme == "Bearer"


async def test_kopf_session_is_bounded_and_authenticated(
    kube: ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf's own session opens a connection per request in flight without a limit; the
    login handler's session verifies the apiserver with the same CA, carries the same
    token, and holds at most APISERVER_CONNECTIONS connections, as the client's pool."""
    account = service_account(kube, tmp_path / "serviceaccount", namespace)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", kube.host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.apiserver_port))
    monkeypatch.setattr(main, "load_configuration", functools.partial(load_configuration, account))
    context = main.bounded_session(await main.connection_info(trust_env=False))
    session = context.aiohttp_session
    try:
        assert context.server == f"https://{kube.host}:{kube.apiserver_port}"
        assert session.connector is not None
        assert session.connector.limit == APISERVER_CONNECTIONS
        kube.kubectl("create", "configmap", "by-kopf", "-n", namespace, "--from-literal=a=1")
        path = f"{context.server}/api/v1/namespaces/{namespace}/configmaps/by-kopf"
        async with session.get(path) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["data"] == {"a": "1"}
        # The reader may not list Secrets: the request went as the account, not anonymous.
        async with session.get(f"{context.server}/api/v1/namespaces/{namespace}/secrets") as denied:
            assert denied.status == 403
            assert f"system:serviceaccount:{namespace}:reader" in await denied.text()
    finally:
        await session.close()

    client = KubeClient(functools.partial(load_configuration, account))
    try:
        assert await client.get("v1", "ConfigMap", namespace, "by-kopf") is not None
        api = await client._client()
        assert api.configuration.connection_pool_maxsize == APISERVER_CONNECTIONS
    finally:
        await client.close()


async def test_client_certificate_from_an_exec_plugin(
    kube: ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = yaml.safe_load(kube.kubeconfig.read_text())["users"][0]["user"]
    credential = {
        "clientCertificateData": base64.b64decode(admin["client-certificate-data"]).decode(),
        "clientKeyData": base64.b64decode(admin["client-key-data"]).decode(),
    }
    plugin, calls = tmp_path / "plugin", tmp_path / "plugin.calls"
    exec_plugin(plugin, credential, calls, lifetime=3600)
    # Two paths in KUBECONFIG, as kubectl merges them: the first names nothing.
    (tmp_path / "empty.kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    exec_kubeconfig(tmp_path / "exec.kubeconfig", kube.kubeconfig, kube.server, plugin)
    monkeypatch.setenv(
        "KUBECONFIG", f"{tmp_path / 'empty.kubeconfig'}:{tmp_path / 'exec.kubeconfig'}"
    )
    client = KubeClient.from_env()
    try:
        applied = await client.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "by-plugin", "namespace": namespace},
                "data": {"k": "v"},
            }
        )
    finally:
        await client.close()
    assert applied["data"] == {"k": "v"}
    assert [f["manager"] for f in applied["metadata"]["managedFields"]] == [
        "temporal-flow-operator"
    ]
    assert calls.read_text().splitlines() == ["called"]


class Flaky:
    """An apiserver stand-in answering from a script of statuses, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.headers.get("Authorization")))
        if self.statuses:
            status = self.statuses.pop(0)
            body = {"kind": "Status", "message": f"scripted {status}", "code": status}
            return web.json_response(body, status=status, headers={"Retry-After": "0"})
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Flaky, str]]:
    server = Flaky([])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def plain_kubeconfig(path: Path, server: str, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(config))
    return path


def client_for(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, logins: list[int]) -> KubeClient:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    async def configure() -> Any:
        logins.append(1)
        return await load_configuration(Path("/nonexistent"))

    return KubeClient(configure, backoff=NO_WAIT)


async def test_429_and_5xx_are_retried_until_an_answer(
    flaky: tuple[Flaky, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = flaky
    server.statuses = [429, 503, 500]
    logins: list[int] = []
    client = client_for(plain_kubeconfig(tmp_path / "k", url, "t0k"), monkeypatch, logins)
    try:
        found = await client.get("v1", "ConfigMap", "ns", "x")
    finally:
        await client.close()
    assert found == {"kind": "ConfigMap", "metadata": {"name": "x"}}
    assert server.requests == [("GET", "Bearer t0k")] * 4
    assert len(logins) == 1


async def test_retries_end_and_a_create_is_not_repeated_after_a_5xx(
    flaky: tuple[Flaky, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = flaky
    logins: list[int] = []
    client = client_for(plain_kubeconfig(tmp_path / "k", url, "t0k"), monkeypatch, logins)
    try:
        server.statuses = [503] * 10
        with pytest.raises(KubeError) as failed:
            await client.get("v1", "ConfigMap", "ns", "x")
        assert failed.value.status == 503
        assert "scripted 503" in str(failed.value)
        assert len(server.requests) == 1 + len(NO_WAIT.delays)

        server.requests.clear()
        server.statuses = [500]
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        with pytest.raises(KubeError):
            await client.create(body)
        assert len(server.requests) == 1
        # ...but a 429 means the apiserver did nothing: the create is sent again.
        server.requests.clear()
        server.statuses = [429]
        assert (await client.create(body))["metadata"] == {"name": "x"}
        assert len(server.requests) == 2
    finally:
        await client.close()


async def test_a_401_logs_in_again_once(
    flaky: tuple[Flaky, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = flaky
    kubeconfig = plain_kubeconfig(tmp_path / "k", url, "old")
    logins: list[int] = []
    client = client_for(kubeconfig, monkeypatch, logins)
    try:
        assert await client.get("v1", "ConfigMap", "ns", "x") is not None
        # The token rotated under the client: the next request is refused, the client
        # reads its credentials again and succeeds with the new token.
        plain_kubeconfig(kubeconfig, url, "new")
        server.statuses = [401]
        assert await client.get("v1", "ConfigMap", "ns", "x") is not None
        assert [auth for _, auth in server.requests] == ["Bearer old", "Bearer old", "Bearer new"]
        assert len(logins) == 2
        # A credential that stays refused is an error, not a loop.
        server.statuses = [401, 401, 401]
        with pytest.raises(KubeError) as refused:
            await client.get("v1", "ConfigMap", "ns", "x")
        assert refused.value.status == 401
    finally:
        await client.close()


async def test_replace_creates_then_writes_the_whole_object(
    kube: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    client = KubeClient.from_env()

    def configmap(data: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
        meta = {"name": "published", "namespace": namespace, "labels": labels}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

    try:
        created = await client.replace(configmap({"a": "1", "b": "2"}, {"v": "1"}))
        assert created["data"] == {"a": "1", "b": "2"}
        # A key and a label another writer added go with the next replace, and so does
        # a key the new body leaves out: the object is what the operator wrote.
        kube.kubectl("label", "configmap", "published", "-n", namespace, "extra=yes")
        kube.kubectl(
            "patch", "configmap", "published", "-n", namespace, "--type=merge",
            "-p", '{"data": {"hand": "edit"}}',
        )  # fmt: skip
        replaced = await client.replace(configmap({"a": "1", "c": "3"}, {"v": "2"}))
        stored = await client.get("v1", "ConfigMap", namespace, "published")
        assert stored is not None
        assert stored["data"] == replaced["data"] == {"a": "1", "c": "3"}
        assert stored["metadata"]["labels"] == {"v": "2"}
        assert stored["metadata"]["uid"] == created["metadata"]["uid"]

        # In a namespace that does not exist, the apiserver's 404 reaches the caller.
        gone = configmap({}, {})
        gone["metadata"]["namespace"] = f"{namespace}-gone"
        with pytest.raises(KubeError) as missing:
            await client.replace(gone)
        assert missing.value.status == 404
    finally:
        await client.close()
