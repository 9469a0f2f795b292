"""The web UI's runs page for a definition with 10,000 runs: time from navigation in
headless Chromium until the first page of runs is on the screen, and the next page after
a click, by the page's own clock (Performance API marks, so the driver's round trips
do not count) and as the driver sees it. Target: under 1 s.

    .venv/bin/python bench/bench_ui.py [--runs 10000] [--repeat 7]

One run starts its own dev server (SQLite on a tmpfs when there is one), starts N runs of
one definition on a task queue no worker polls (so all of them stay open and listed), waits
until visibility counts all N, then serves the UI in this process and drives Debian's
Chromium with Playwright. Baselines in the same run: the Temporal SDK listing one page of
50 of those runs straight from visibility (the floor a page cannot beat), and listing all N
(what a page that read every run would pay). Ratios are against the one-page listing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web
from bench.common import add_server_dir_argument, dev_server, median, print_table
from playwright.async_api import async_playwright

from tflow_cli.ui.server import UiApp, UiSettings
from tflow_devstack.process import free_port
from tflow_workers.connection import connect
from tflow_workers.engine.model import DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run

TARGET_SECONDS = 1.0
# When app.js marked the last page of runs as shown, in ms since navigation start.
SHOWN = 'performance.getEntriesByName("tflow:runs-shown").at(-1).startTime'
PAGE = 50
CONCURRENCY = 64
DEFINITION = DefinitionRef(name="ten-thousand", namespace="bench")
DOCUMENT = {
    "document": {"dsl": "1.0.0", "namespace": "bench", "name": "wait", "version": "1.0.0"},
    "do": [{"review": {"listen": {"to": {"one": {"with": {"type": "approve"}}}}}}],
}


async def bench(runs: int, repeat: int, server_dir: Path | None) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Chromium is not installed: run `make chromium`")
    with dev_server(server_dir) as server:
        client = await connect(server.address, server.namespace)
        started = time.perf_counter()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(runs):
            queue.put_nowait(index)

        async def starter() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                await start_run(
                    client,
                    RunInput(document=DOCUMENT, input={"n": index}, definition=DEFINITION),
                    "no-worker",
                    workflow_id=f"bench-{index:05d}",
                )

        await asyncio.gather(*(starter() for _ in range(CONCURRENCY)))
        query = 'TflowDefinition = "bench/ten-thousand"'
        for _ in range(600):
            if (await client.count_workflows(query)).count >= runs:
                break
            await asyncio.sleep(1)
        else:
            raise SystemExit(f"visibility did not list all {runs} runs within 10 minutes")
        print(f"{runs} runs started and visible in {time.perf_counter() - started:.0f} s")

        one_page: list[float] = []
        every: list[float] = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            iterator = client.list_workflows(query, page_size=PAGE)
            await iterator.fetch_next_page(page_size=PAGE)
            one_page.append(time.perf_counter() - t0)
        for _ in range(min(repeat, 3)):
            t0 = time.perf_counter()
            count = len([r async for r in client.list_workflows(query, page_size=1000)])
            every.append(time.perf_counter() - t0)
        assert count == runs

        runner = web.AppRunner(
            UiApp(client, UiSettings(auth="none", namespaces=("*",))).app(), access_log=None
        )
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}/#/runs?definition=bench%2Ften-thousand"
        first: list[float] = []
        second: list[float] = []
        outside: list[float] = []
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox"]
                )
                for _ in range(repeat):
                    page = await browser.new_page()
                    t0 = time.perf_counter()
                    await page.goto(url)
                    await page.wait_for_selector(f"#runs tbody tr:nth-child({PAGE})")
                    outside.append(time.perf_counter() - t0)
                    # The page's own clock: navigation start to the runs on the screen.
                    first.append(await page.evaluate(SHOWN) / 1000)
                    await page.evaluate("window.tflowClicked = performance.now()")
                    await page.click("#next-page")
                    await page.wait_for_selector("#previous-page")
                    await page.wait_for_selector(f"#runs tbody tr:nth-child({PAGE})")
                    shown = await page.evaluate(SHOWN)
                    clicked = await page.evaluate("window.tflowClicked")
                    second.append((shown - clicked) / 1000)
                    await page.close()
                await browser.close()
        finally:
            await runner.cleanup()

    floor = median(one_page)
    rows = [
        ("SDK: one page of 50 (baseline)", floor),
        (f"SDK: all {runs} runs", median(every)),
        ("UI: navigation to first 50 shown (page clock)", median(first)),
        ("UI: the same, seen by the driver", median(outside)),
        ("UI: click to next 50 shown (page clock)", median(second)),
    ]
    print_table(
        ["what (median)", "seconds", "ratio"],
        [(name, f"{value:.3f}", f"{value / floor:.1f}x") for name, value in rows],
    )
    worst = max(first)
    verdict = "met" if worst < TARGET_SECONDS else "NOT met"
    print(f"slowest page load {worst:.3f} s; target under {TARGET_SECONDS:.0f} s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    add_server_dir_argument(parser)
    args = parser.parse_args()
    asyncio.run(bench(args.runs, args.repeat, args.server_dir))


if __name__ == "__main__":
    main()
