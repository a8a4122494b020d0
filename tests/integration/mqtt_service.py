"""The Mosquitto brokers the integration tests use: the system one at 127.0.0.1:1883, started
when it is down, and private brokers on free ports that a test may stop and start again."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from ivr.ports import free_port

HOST = "127.0.0.1"
PORT = 1883
SYSTEM_CONFIG = Path("/etc/mosquitto/mosquitto.conf")
#: Directories the Debian configuration writes to; /run is emptied by a reboot.
SYSTEM_DIRECTORIES = (Path("/run/mosquitto"), Path("/var/log/mosquitto"))
INSTALL_HINT = "install it with `apt-get install mosquitto`"


def accepts_connections(port: int = PORT, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str:
    """The broker's path; RuntimeError with an install hint when it is not installed."""
    # Debian puts it in /usr/sbin, which is not on an ordinary user's PATH.
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    if binary is None:
        raise RuntimeError(f"the mosquitto broker is not installed; {INSTALL_HINT}")
    return binary


def _wait_until_listening(port: int, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if accepts_connections(port):
            return True
        time.sleep(0.05)
    return False


def _prepare_system_directories() -> None:
    for directory in SYSTEM_DIRECTORIES:
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # Without a mosquitto user the broker keeps running as root: no chown needed.
            with contextlib.suppress(LookupError, OSError):
                shutil.chown(directory, user="mosquitto", group="mosquitto")


def ensure_mosquitto(wait_seconds: float = 10.0) -> None:
    """Start the system broker when nothing listens on 127.0.0.1:1883; RuntimeError if it
    still cannot be reached, so that the tests fail (never skip) without it."""
    if accepts_connections():
        return
    binary = mosquitto_binary()
    if not SYSTEM_CONFIG.exists():
        raise RuntimeError(f"no {SYSTEM_CONFIG}; {INSTALL_HINT}")
    _prepare_system_directories()
    started = subprocess.run(
        [binary, "-d", "-c", str(SYSTEM_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    if _wait_until_listening(PORT, wait_seconds):
        return
    detail = (started.stderr or started.stdout).strip() or f"exit {started.returncode}"
    raise RuntimeError(f"Mosquitto is not reachable at {HOST}:{PORT} ({detail})")


class PrivateMosquitto:
    """A broker of the test's own on a free loopback port, kept in ``directory``.

    Persistence is on, so a subscriber's persistent session (``clean_session=False``) and the
    QoS 1 messages queued for it survive a ``stop()`` / ``start()``: a test can publish while
    the broker is restarting without racing its subscriber's reconnection.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, wait_seconds: float = 5.0) -> None:
        if self._process is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"listener {self.port} {HOST}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            # Mosquitto started by root would otherwise switch to a user that cannot write
            # into the test's directory.
            f"user {getpass.getuser()}\n"
        )
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if accepts_connections(self.port):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"private mosquitto did not listen on port {self.port}: {self.log.read_text()}"
        )

    def stop(self) -> None:
        """Terminate the broker (it saves its persistence file) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # a paused broker would never see the SIGTERM
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered, as
        with a hung broker or a half-open network path."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> PrivateMosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
