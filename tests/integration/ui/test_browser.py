"""The web UI in a real browser (Debian's Chromium, driven by Playwright) against the dev
server and the apiserver: the order sample's WorkflowDefinition in a namespace, its
workers in this process, one run waiting for approval. The UI checks Kubernetes tokens
(the chart's mode): the page asks for one, and signed in with a reader's service account
token it lists the definition and the run, draws the run with the waiting task
highlighted, opens a task's input and output, and refuses another namespace and the
approval (403 naming the namespace); signed in again as an operator it sends the approval
and shows the run completing on the graph. `tflow ui`'s own token, taken from the URL it
prints, opens a failed run's page. Each step's screenshot is kept in the test's
temporary directory (its path is printed) and in $TFLOW_TEST_ARTIFACTS/ui when that is
set; the README's pictures come from this test (TFLOW_UI_DOCS_IMAGES=1)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import samples
from engine_harness import EngineHarness
from playwright.async_api import Page, async_playwright, expect
from run_api_objects import grant
from temporalio.client import Client, WorkflowFailureError

from tflow_cli.ui.server import GRAPH_LIBRARY
from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT, venv_binary
from tflow_operator.kube import KubeClient
from tflow_workers.engine.activities import DirectoryRegistry, EngineActivities, SecretStore
from tflow_workers.engine.model import DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

ORDER = "order-workflow.yaml"
SHIPPING = "shipping-workflow.yaml"


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Chromium is not installed: run `make chromium`"
    assert GRAPH_LIBRARY.exists(), "the graph layout library is missing: run `make ui-assets`"
    return found


@contextlib.contextmanager
def tflow_ui(env: dict[str, str], log_path: Path, *args: str) -> Iterator[str]:
    """`tflow ui` as a process, as a user starts it; yields its URL."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(venv_binary("tflow")), "ui", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError("tflow ui did not come up")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def printed_url(log_path: Path) -> str:
    """The URL `tflow ui` printed (with its token in the fragment)."""
    for _ in range(50):
        found = re.search(r"tflow ui: (http\S+)", log_path.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"tflow ui printed no URL: {log_path.read_text()}")


@pytest.fixture
def ui_url(
    temporal: TemporalServer, kube: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[str]:
    """The UI against the suite's servers, checking callers' Kubernetes tokens."""
    env = {
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "KUBECONFIG": str(kube.kubeconfig),
        "TFLOW_UI_AUTH": "kubernetes",
        "TFLOW_TEMPORAL_UI_URL": temporal.ui_url,
    }
    with tflow_ui(env, tmp_path / "tflow-ui.log") as url:
        yield url


@pytest.fixture
async def shop_workers(
    temporal_client: Client, task_queue: str, tmp_path: Path, shop_db: str
) -> AsyncIterator[str]:
    """The order and shipping workers, as the sample's Deployments would run them."""
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    shipping_queue = f"{task_queue}-shipping"
    (definitions / SHIPPING).write_text(
        (samples.SAMPLES / SHIPPING)
        .read_text()
        .replace("taskQueue: shipping", f"taskQueue: {shipping_queue}")
    )
    secret = tmp_path / "secrets" / "shop-database"
    secret.mkdir(parents=True)
    (secret / "url").write_text(shop_db)
    registry = DirectoryRegistry(definitions)
    orders = build_worker(
        temporal_client,
        task_queue,
        EngineActivities(
            client=temporal_client, definitions=registry, secrets=SecretStore(secret.parent)
        ),
        samples.functions(ORDER),
    )
    shipping = build_worker(
        temporal_client,
        shipping_queue,
        EngineActivities(client=temporal_client, definitions=registry),
        samples.functions(SHIPPING),
    )
    async with orders, shipping:
        yield task_queue


class Shots:
    """Screenshots of each step, kept in the test's directory. With
    TFLOW_UI_DOCS_IMAGES=1 the run's page waiting and completed are also written to
    docs/images, where the README shows them."""

    DOCS: ClassVar[dict[str, str]] = {
        "3-waiting": "ui-run-waiting.png",
        "5-completed": "ui-run-completed.png",
    }

    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.docs = os.environ.get("TFLOW_UI_DOCS_IMAGES") == "1"
        # pytest keeps the temporary directories of its last three sessions only; a CI job
        # that wants the pictures afterwards names a directory of its own.
        artifacts = os.environ.get("TFLOW_TEST_ARTIFACTS")
        self.artifacts = Path(artifacts) / "ui" if artifacts else None
        directory.mkdir(parents=True, exist_ok=True)

    async def take(self, name: str, **options: Any) -> Path:
        path = self.directory / f"{name}.png"
        await self.page.screenshot(path=str(path), **options)
        assert path.stat().st_size > 10_000, f"{path} looks empty"
        if self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.artifacts / path.name)
        if self.docs and name in self.DOCS:
            shutil.copy(path, REPO_ROOT / "docs" / "images" / self.DOCS[name])
        print(f"screenshot: {path}", file=sys.stderr)
        return path


async def test_approve_an_order_from_the_page(
    crds: None,
    kube: ControlPlane,
    namespace: str,
    kube_client: KubeClient,
    temporal_client: Client,
    shop_workers: str,
    ui_url: str,
    tmp_path: Path,
    cleanup_runs: list[str],
) -> None:
    manifest = samples.manifest(ORDER)
    manifest["metadata"] = {"name": "order", "namespace": namespace}
    manifest["spec"]["taskQueue"] = shop_workers
    await kube_client.create(manifest)
    order_id = f"o-{uuid.uuid4().hex[:6]}"
    handle = await start_run(
        temporal_client,
        RunInput(
            document=manifest["spec"]["workflow"],
            input={"orderId": order_id, "address": "1 Old Road", "amount": 42.5},
            definition=DefinitionRef(name="order", namespace=namespace),
        ),
        shop_workers,
        workflow_id=f"order-{order_id}",
    )
    cleanup_runs.append(handle.id)
    reader = grant(kube, namespace, "reader", ["get", "list"])
    operator = grant(kube, namespace, "operator", ["get", "list", "create", "update", "delete"])

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox"]
        )
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        shots = Shots(page, tmp_path / "screenshots")
        try:
            # Nothing without a token: the page asks for one, saying how to get it.
            await page.goto(ui_url)
            sign_in = page.locator("#sign-in")
            await expect(sign_in).to_contain_text("kubectl create token")
            await shots.take("0-sign-in")
            await page.fill("#sign-in-token", reader)
            await page.click("#sign-in button[type=submit]")
            await expect(page.locator("#who")).to_contain_text(f"{namespace}:reader")

            # The definitions page lists the order definition of the namespace.
            definitions = page.locator("#definitions")
            link = definitions.get_by_role("link", name="order", exact=True)
            await expect(link).to_be_visible()
            await expect(definitions).to_contain_text(shop_workers)
            await shots.take("1-definitions")

            # One namespace at a time.
            await page.select_option("#namespace-filter", namespace)
            await expect(page).to_have_url(f"{ui_url}/#/?namespace={namespace}")
            await expect(definitions.get_by_role("link", name="order", exact=True)).to_be_visible()

            # Another namespace, where the reader has no grant, is refused by name.
            await page.goto(f"{ui_url}/#/runs?definition=default/order")
            await expect(page.locator("main")).to_contain_text("not allowed in namespace 'default'")

            # A definition deleted from the cluster: its runs page says so.
            await page.goto(f"{ui_url}/#/runs?definition={namespace}/gone")
            await expect(page.locator("main")).to_contain_text("is not in the cluster")
            await page.goto(ui_url)

            # Its runs: visibility catches up within a second or two.
            await link.click()
            run_link = page.locator("#runs a.run-link", has_text=handle.id)
            for _ in range(30):
                if await run_link.count():
                    break
                await page.wait_for_timeout(500)
                await page.reload()
            await expect(run_link).to_be_visible()
            await shots.take("2-runs")

            # The run, waiting for approval: the review task highlighted on the graph.
            await run_link.click()
            review = page.locator('g.node[data-name="review"]')
            await expect(review).to_have_attribute("data-state", "waiting", timeout=20_000)
            await expect(page.locator('g.node[data-name="validateOrder"]')).to_have_attribute(
                "data-state", "done"
            )
            await expect(page.locator("#waiting")).to_contain_text("approve")
            await expect(page.locator("#waiting")).to_contain_text("PT3M")
            await expect(page.locator("#run-status")).to_have_text("running")
            # A task's row opens on its input and output, and stays open while the page
            # polls the run.
            received = page.locator('#task-log tr[data-ref="/do/0/receiveOrder"] details.task-data')
            await received.locator("summary").click()
            await expect(received).to_contain_text(f'"orderId": "{order_id}"')
            await page.wait_for_timeout(2000)
            await expect(received).to_have_attribute("open", "")
            await shots.take("3-waiting", full_page=True)

            # A reader may not send the approval, and the page says where.
            approve = page.locator('button[data-send="approve"]')
            await approve.click()
            await expect(page.locator("#banner")).to_contain_text("403")
            await expect(page.locator("#banner")).to_contain_text(
                f"not allowed in namespace '{namespace}'"
            )
            await shots.take("4-forbidden")

            # Signed in as an operator, the approval goes through and the run completes.
            await page.click("#sign-out")
            await page.fill("#sign-in-token", operator)
            await page.click("#sign-in button[type=submit]")
            await expect(page.locator("#who")).to_contain_text(f"{namespace}:operator")
            await expect(review).to_have_attribute("data-state", "waiting", timeout=20_000)
            await page.fill("#signal-data", '{"by": "ops"}')
            await approve.click()
            await expect(page.locator("#banner")).to_contain_text("signal approve sent")
            await expect(page.locator("#run-status")).to_have_text("completed", timeout=60_000)
            for task in ("review", "chargePayment", "ship", "complete", "End"):
                await expect(page.locator(f'g.node[data-name="{task}"]')).to_have_attribute(
                    "data-state", "done"
                )
            await expect(page.locator("#outcome")).to_contain_text('"status": "completed"')
            await expect(page.locator("#actions")).to_be_hidden()
            await expect(
                page.locator('#task-log tr[data-ref="/do/2/awaitApproval/try/0/review"]')
            ).to_contain_text("completed")
            review = page.locator(
                '#task-log tr[data-ref="/do/2/awaitApproval/try/0/review"] details.task-data'
            )
            await review.locator("summary").click()
            await expect(review).to_contain_text('"decision": "approve"')
            await expect(review).to_contain_text('"address": "1 Old Road"')
            await shots.take("5-completed", full_page=True)

            # The shipping child run, one click away, completed on its own graph.
            await page.locator('#task-log tr[data-ref="/do/6/ship"] a.child-run').click()
            await expect(page.locator("h2 code")).to_have_text(f"{handle.id}/do.6.ship")
            await expect(page.locator("#run-status")).to_have_text("completed")
            await expect(page.locator("g.node[data-state='done']").first).to_be_visible()
            await shots.take("6-child-run", full_page=True)
        finally:
            await browser.close()

    result = await handle.result()
    assert result["status"] == "completed"
    assert result["orderId"] == order_id


async def test_a_temporal_outage_is_shown_on_the_page(tmp_path: Path) -> None:
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "KUBECONFIG": ""}
    with tflow_ui(env, tmp_path / "tflow-ui.log", "--no-kube", "--read-only", "--no-auth") as url:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium(), args=["--no-sandbox"]
            )
            page = await browser.new_page()
            try:
                await page.goto(f"{url}/#/runs")
                main = page.locator("main")
                await expect(main).to_contain_text("503", timeout=20_000)
                await expect(main).to_contain_text("Temporal is not reachable")
                await page.goto(f"{url}/#/run?id=some-run")
                await expect(main).to_contain_text("Temporal is not reachable", timeout=20_000)
                await page.goto(f"{url}/#/")
                await expect(main).to_contain_text("no Kubernetes configuration")
                # No authentication asked for (--no-auth, on the loopback address).
                await expect(page.locator("#sign-in")).to_have_count(0)
                await Shots(page, tmp_path / "screenshots").take("outage")
            finally:
                await browser.close()


async def test_a_failed_run_shows_where_and_why(
    engine: EngineHarness, temporal: TemporalServer, tmp_path: Path
) -> None:
    document = {
        "document": {"dsl": "1.0.0", "namespace": "t", "name": "refuse", "version": "1.0.0"},
        "do": [
            {"prepare": {"set": {"amount": -1}}},
            {
                "check": {
                    "raise": {
                        "error": {
                            "type": "https://serverlessworkflow.io/spec/1.0.0/errors/validation",
                            "status": 400,
                            "title": "Order rejected",
                            "detail": "amount must be positive",
                        }
                    }
                }
            },
        ],
    }
    handle = await engine.start(document)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    env = {"TEMPORAL_ADDRESS": temporal.address, "TEMPORAL_NAMESPACE": temporal.namespace}
    log = tmp_path / "tflow-ui.log"
    with tflow_ui(env, log, "--no-kube", "--read-only") as url:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium(), args=["--no-sandbox"]
            )
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            try:
                # Without the token `tflow ui` made, nothing is shown.
                await page.goto(f"{url}/#/run?id={handle.id}")
                await expect(page.locator("#sign-in")).to_contain_text("#token=")
                # The printed URL signs the tab in, and the token leaves the address bar.
                signed = printed_url(log)
                assert signed.startswith(f"{url}/#token=")
                await page.goto(signed)
                await expect(page).to_have_url(f"{url}/#/")
                await page.goto(f"{url}/#/run?id={handle.id}")
                await expect(page.locator("#run-status")).to_have_text("failed")
                check = page.locator('g.node[data-name="check"]')
                await expect(check).to_have_attribute("data-state", "failed")
                await expect(page.locator('g.node[data-name="prepare"]')).to_have_attribute(
                    "data-state", "done"
                )
                assert (
                    await page.locator('g.node[data-name="End"]').get_attribute("data-state")
                    is None
                )
                await expect(check.locator("title")).to_contain_text("Order rejected")
                failed = page.locator("#failed")
                await expect(failed).to_contain_text("check failed: Order rejected")
                await expect(failed).to_contain_text("amount must be positive")
                await expect(page.locator("#outcome")).to_contain_text("validation")
                prepared = page.locator('#task-log tr[data-ref="/do/0/prepare"] details.task-data')
                await prepared.locator("summary").click()
                await expect(prepared).to_contain_text('"amount": -1')
                await Shots(page, tmp_path / "screenshots").take("failed")
            finally:
                await browser.close()
