"""PostgreSQL from Debian's packages, on a temporary data directory and a free port.

The server refuses to run as root, so when the stack runs as root it initialises and
runs the cluster as the `postgres` account the Debian package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import MissingToolError

USER = "tflow"
DATABASE = "tflow"


def postgres_bindir() -> Path:
    """The newest PostgreSQL server installation (initdb + postgres)."""
    explicit = os.environ.get("TFLOW_PG_BINDIR")
    candidates = (
        [Path(explicit)]
        if explicit
        else sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    )
    for bindir in reversed(candidates):
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise MissingToolError("the PostgreSQL server is not installed: run `make postgres`")


@dataclass
class PostgresServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None
    _owned_dir: Path | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def start(self, timeout: float = 60.0) -> PostgresServer:
        bindir = postgres_bindir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        if user is None:
            base = self.workdir
        else:
            # The postgres account cannot enter a root-owned 0700 work directory (pytest's
            # are), so its files live in a directory of their own that it owns.
            base = Path(tempfile.mkdtemp(prefix="tflow-postgres-"))
            entry = pwd.getpwnam(user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
            self._owned_dir = base
        data = base / "data"
        sockets = base / "sockets"
        prefix = ["runuser", "-u", user, "--"] if user else []
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run([*prefix, "mkdir", "-p", str(sockets)], check=True)
        self.process = ManagedProcess(
            "postgres",
            [
                bindir / "postgres",
                "-D",
                data,
                "-p",
                str(self.port),
                "-k",
                sockets,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            self.workdir / "postgres.log",
            user=user,
        ).start()
        self.process.wait_until(lambda: self._isready(bindir), timeout, "accepting connections")
        self._psql(bindir, "postgres", f"CREATE DATABASE {DATABASE}")
        return self

    def _isready(self, bindir: Path) -> bool:
        result = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _psql(self, bindir: Path, db: str, sql: str) -> None:
        psql = bindir / "psql"
        exe = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
        subprocess.run(
            [
                exe,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None
