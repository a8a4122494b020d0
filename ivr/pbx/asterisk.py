"""Provision, start, probe and stop a real Asterisk for one deployment home.

Asterisk comes from asterisk/provision.sh: one already on PATH (>= 20), or a Debian sid root
cached outside the repo and run in a private mount namespace (asterisk/run-pbx.sh), where the
home is bind-mounted at /ivrhome.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivr.home import ENGINE_ROOT, Home

PROVISION_SCRIPT = ENGINE_ROOT / "asterisk" / "provision.sh"
RUN_IN_ROOT_SCRIPT = ENGINE_ROOT / "asterisk" / "run-pbx.sh"
ROOT_HOME_MOUNT = "/ivrhome"
#: Folders below var/pbx that Asterisk writes to.
WRITABLE_DIRS = ("run", "log", "spool", "lib")


class PbxError(RuntimeError):
    pass


@dataclass(frozen=True)
class Provisioned:
    mode: Literal["host", "root"]
    path: str

    @property
    def passwd_file(self) -> Path:
        return Path(self.path) / "etc" / "passwd" if self.mode == "root" else Path("/etc/passwd")


def provision() -> Provisioned:
    """Make sure an Asterisk exists (building the sid root once) and say which one."""
    done = subprocess.run(
        ["bash", str(PROVISION_SCRIPT)], check=False, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise PbxError(f"provisioning Asterisk failed:\n{done.stderr.strip()}")
    mode, _, path = done.stdout.strip().splitlines()[-1].partition(" ")
    if mode not in ("host", "root"):
        raise PbxError(f"provision.sh said {done.stdout!r}")
    return Provisioned(mode, path)  # type: ignore[arg-type]


def _asterisk_ids(passwd: Path) -> tuple[int, int] | None:
    for line in passwd.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk":
            return int(fields[2]), int(fields[3])
    return None


class AsteriskProcess:
    """One Asterisk serving one home: its files live in ``home/var/pbx``."""

    def __init__(self, home: Home, provisioned: Provisioned) -> None:
        self.home = home
        self.provisioned = provisioned
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pbx_home(self) -> str:
        """The home as Asterisk sees it (paths in its config and in AGI commands)."""
        return ROOT_HOME_MOUNT if self.provisioned.mode == "root" else str(self.home.root)

    @property
    def base_dir(self) -> Path:
        return self.home.var_dir / "pbx"

    @property
    def etc_dir(self) -> Path:
        return self.base_dir / "etc"

    @property
    def console_log(self) -> Path:
        return self.base_dir / "log" / "console.log"

    def prepare_dirs(self) -> None:
        """Create Asterisk's folders and hand the writable ones (and recordings) to the
        ``asterisk`` user it drops to, keeping config files unreadable to anyone else."""
        for name in ("etc", *WRITABLE_DIRS, "log/cdr-csv"):
            (self.base_dir / name).mkdir(parents=True, exist_ok=True)
        self.home.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.home.prompts_dir.mkdir(parents=True, exist_ok=True)
        ids = _asterisk_ids(self.provisioned.passwd_file) if os.geteuid() == 0 else None
        if ids is None:
            return
        uid, gid = ids
        # The PBX only traverses the home; pytest's tmp folders are 0700 by default.
        for folder in (self.home.root, self.home.var_dir, self.base_dir, self.home.prompts_dir):
            folder.chmod(folder.stat().st_mode | 0o055)
        for name in (*WRITABLE_DIRS, "log/cdr-csv"):
            os.chown(self.base_dir / name, uid, gid)
        os.chown(self.home.recordings_dir, uid, gid)
        for entry in self.home.recordings_dir.rglob("*"):
            if entry.is_dir():
                os.chown(entry, uid, gid)
        os.chown(self.etc_dir, 0, gid)
        self.etc_dir.chmod(0o750)
        for entry in self.etc_dir.iterdir():
            os.chown(entry, 0, gid)

    def command(self) -> list[str]:
        conf = f"{self.pbx_home}/var/pbx/etc/asterisk.conf"
        if self.provisioned.mode == "root":
            return [str(RUN_IN_ROOT_SCRIPT), self.provisioned.path, str(self.home.root), conf]
        user = ["-U", "asterisk", "-G", "asterisk"] if os.geteuid() == 0 else []
        return [self.provisioned.path, "-f", "-n", *user, "-C", conf]

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise PbxError("Asterisk is already running for this home")
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        with self.console_log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def tail_log(self, lines: int = 30) -> str:
        if not self.console_log.exists():
            return ""
        return "\n".join(self.console_log.read_text(errors="replace").splitlines()[-lines:])


async def wait_fully_booted(
    host: str,
    port: int,
    user: str,
    secret: str,
    timeout: float,
    alive: AsteriskProcess | None = None,
) -> None:
    """Return once Asterisk's AMI accepts our login and reports FullyBooted."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive.running():
            raise PbxError(f"Asterisk exited during start-up:\n{alive.tail_log()}")
        try:
            if await _ami_login_probe(host, port, user, secret, deadline - time.monotonic()):
                return
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            last_error = repr(exc)
        await asyncio.sleep(0.2)
    raise PbxError(f"Asterisk not ready on AMI {host}:{port} after {timeout:.0f} s ({last_error})")


async def _ami_login_probe(host: str, port: int, user: str, secret: str, budget: float) -> bool:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), budget)
    try:
        await asyncio.wait_for(reader.readline(), budget)
        login = f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: system\r\n\r\n"
        writer.write(login.encode())
        await writer.drain()
        text = ""
        while "FullyBooted" not in text:
            chunk = await asyncio.wait_for(reader.read(4096), min(budget, 3.0))
            if not chunk:
                return False
            text += chunk.decode(errors="replace")
            if "shutting down" in text:
                return False  # an earlier Asterisk on this port is still going away
            if "Response: Error" in text:
                raise PbxError(f"AMI refused the login of {user!r}: {text.strip()}")
        return True
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def have_tool(name: str) -> bool:
    return shutil.which(name) is not None
