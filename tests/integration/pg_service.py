"""The local PostgreSQL the integration tests use: started if it is down, and a throw-away
database per test so that runs (and tests) never see each other's rows."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
ADMIN_DATABASE = "test"
CLUSTERS = Path("/etc/postgresql")


def _accepts_connections() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


def ensure_running(wait_seconds: float = 30.0) -> None:
    """Start the Debian cluster when nothing listens on the port; raise if it still won't."""
    if _accepts_connections():
        return
    versions = sorted(os.listdir(CLUSTERS)) if CLUSTERS.is_dir() else []
    detail = "no cluster under /etc/postgresql"
    if versions:
        started = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            capture_output=True,
            text=True,
            check=False,
        )
        detail = (started.stderr or started.stdout).strip() or f"exit {started.returncode}"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if _accepts_connections():
            return
        time.sleep(0.5)
    raise RuntimeError(f"PostgreSQL is not reachable at {HOST}:{PORT} ({detail})")


@asynccontextmanager
async def scratch_database(prefix: str = "ivr_test") -> AsyncIterator[str]:
    """A new empty database, dropped afterwards; yields its SQLAlchemy asyncpg URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(
        f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{ADMIN_DATABASE}",
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE refuse to run in a transaction
    )
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{name}"
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _postgres_bin(program: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/" + program))
    if not versions:
        raise RuntimeError(f"no PostgreSQL {program} under /usr/lib/postgresql")
    return str(versions[-1])


class PrivatePostgres:
    """A PostgreSQL server of one test's own, on a free port, that the test may stop and
    start: the machine's shared server must stay up for everything else."""

    OS_USER = "postgres"  # the server refuses to run as root

    def __init__(self) -> None:
        import tempfile

        from ivr.ports import free_port

        # Under /tmp itself: pytest's tmp folders are root's alone and the server runs as
        # postgres.
        self.root = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://{self.OS_USER}@{HOST}:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", self.OS_USER, "--", *command],
            capture_output=True, text=True, check=False, timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr or done.stdout}")

    def init(self) -> None:
        import shutil

        shutil.chown(self.root, self.OS_USER)
        self._as_postgres(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", self.OS_USER, "--no-sync")

    def start(self) -> None:
        self._as_postgres(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
            "-o", f"-h {HOST} -p {self.port} -k {self.root} -F", "start",
        )

    def stop(self) -> None:
        self._as_postgres(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                          "stop")

    def remove(self) -> None:
        import shutil

        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
