"""moto's server: S3 and SQS on a free loopback port, for the document store and the
S3-notification path through SQS."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import venv_binary

REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@dataclass
class MotoServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        self.process = ManagedProcess(
            "moto",
            [venv_binary("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            self.workdir / "moto.log",
        ).start()

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as r:
                return bool(r.status == 200)

        self.process.wait_until(ready, timeout, "serving")
        return self

    def client(self, service: str) -> Any:
        """A boto3 client for this server (boto3 is a development dependency)."""
        import boto3

        # boto3's stubs type client() per service literal; callers pick the service.
        factory: Any = boto3.client
        return factory(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
