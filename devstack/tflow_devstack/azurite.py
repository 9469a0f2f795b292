"""Azurite, Microsoft's Azure Storage emulator: its blob service on a free loopback port,
for the Azure Blob document store. Installed from npm into the per-user cache by
`make azurite` (version pinned in hack/versions.env); it needs Node.js."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import MissingToolError, cache_dir, versions

# The emulator's one account and its published key (the same for every Azurite install).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_home() -> Path:
    return cache_dir() / f"azurite-{versions()['AZURITE_VERSION']}"


def azurite_binary(name: str = "azurite-blob") -> Path:
    """The cached Azurite launcher, or MissingToolError naming the make target."""
    path = azurite_home() / "node_modules" / ".bin" / name
    if not os.access(path, os.X_OK):
        version = versions()["AZURITE_VERSION"]
        raise MissingToolError(f"Azurite {version} is not installed: run `make azurite`")
    if shutil.which("node") is None:
        raise MissingToolError("Azurite needs Node.js: install node (20 or later)")
    return path


@dataclass
class AzuriteServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """The devstore connection string for this server's port."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.blob_endpoint};"
        )

    def start(self, timeout: float = 60.0) -> AzuriteServer:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "azurite",
            [
                azurite_binary(),
                *("--blobHost", "127.0.0.1", "--blobPort", str(self.port)),
                *("--location", str(data)),
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                # Offline, its telemetry client stalls shutdown until SIGKILL.
                "--disableTelemetry",
            ],
            self.workdir / "azurite.log",
        ).start()

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{self.blob_endpoint}?comp=list", timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # an unsigned request is refused, by a server that is up

        self.process.wait_until(ready, timeout, "serving")
        return self

    def service_client(self) -> BlobServiceClient:
        """A client for this server's blob service."""
        return BlobServiceClient.from_connection_string(self.connection_string)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
