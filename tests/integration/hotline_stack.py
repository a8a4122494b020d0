"""A whole hotline for one test: a copy of the sample city in a temporary home, on free
ports, with a real Asterisk, the controller as its own process (so tests can stop or kill
it), and SIPp phones for the agents and the 110 centre."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.deployment import Deployment, load_deployment
from ivr.home import ENGINE_ROOT, Home
from ivr.ports import free_port
from ivr.settings import database_url
from ivr.sipp.peers import CitizenCall
from ivr.stack import Pbx, SimulatedPhones
from ivr.tickets import TicketStore, ticket_as_json

#: A Wednesday morning in office hours, not a holiday: the day menu, every unit on duty.
OFFICE_HOURS = "2026-11-25T10:00:00+08:00"
SAMPLE_FOLDERS = ("config", "dialplans", "routing")


def make_home(
    root: Path, settings: dict[str, Any] | None = None, prompts: Path | None = None
) -> Home:
    """The sample city in ``root`` with config/hotline.yaml on free ports; ``prompts`` is a
    folder of already synthesized prompts to start from (they are named by content)."""
    for folder in SAMPLE_FOLDERS:
        shutil.copytree(ENGINE_ROOT / folder, root / folder)
    if prompts is not None:
        shutil.copytree(prompts, root / "var" / "prompts")
    udp = socket.SOCK_DGRAM
    # Below the kernel's ephemeral ports, where SIPp's "free" ports come from.
    rtp_start = random.randrange(10000, 31000, 2)
    config: dict[str, Any] = {
        "pbx": {
            "sip_port": free_port(udp),
            "ami_port": free_port(),
            "rtp_port_start": rtp_start,
            "rtp_port_end": rtp_start + 998,
        },
        "controller": {"agi_port": free_port(), "metrics_port": free_port()},
        "database": {"url": "sqlite+aiosqlite:///tickets.db"},
        "emergency": {"trunk": {"host": "127.0.0.1", "port": free_port(udp)}},
        # Calls to citizens only where a test asks for them (test_followup_live): a
        # callback would otherwise ring agents' phones in tests about something else.
        "outbound": {"trunk": {"host": "127.0.0.1", "port": free_port(udp)}},
        "followup": {"enabled": False},
        "callbacks": {"enabled": False},
    }
    for section, values in (settings or {}).items():
        config.setdefault(section, {}).update(values)
    (root / "config" / "hotline.yaml").write_text(yaml.safe_dump(config))
    return Home(root)


@dataclass
class HotlineStack:
    home: Home
    at: str = OFFICE_HOURS
    absent: frozenset[str] = frozenset()
    silent: frozenset[str] = frozenset()
    centre_answers: bool = True
    talk_ms: int = 3000
    #: Agents answered by one shared phone process (see ivr.sipp.peers.AgentPool).
    pooled: frozenset[str] = frozenset()
    controller: subprocess.Popen[bytes] | None = None
    calls: list[CitizenCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.deployment: Deployment = load_deployment(self.home, check_prompt_files=False)
        self.pbx = Pbx(self.home, self.deployment)
        self.phones = SimulatedPhones(
            self.home,
            self.deployment,
            absent=self.absent,
            silent=self.silent,
            centre_answers=self.centre_answers,
            talk_ms=self.talk_ms,
            pooled=self.pooled,
        )

    @property
    def settings(self) -> Any:
        return self.deployment.settings

    async def start(self) -> None:
        await self.pbx.start()
        self.start_controller()
        await self.wait_controller()
        await self.phones.start()

    def start_controller(self) -> None:
        log_file = self.home.var_dir / "log" / "controller.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log = log_file.open("ab")
        self.home.var_dir.joinpath("run", "controller.json").unlink(missing_ok=True)
        self.controller = subprocess.Popen(
            [sys.executable, "-m", "ivr", "--home", str(self.home.root), "serve",
             "--pbx-home", self.pbx.pbx_home, "--at", self.at],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    async def wait_controller(self, timeout: float = 30.0) -> None:
        state = self.home.var_dir / "run" / "controller.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.controller is not None
            if self.controller.poll() is not None:
                raise RuntimeError(f"controller exited:\n{self.controller_log()}")
            if state.exists() and json.loads(state.read_text())["pid"] == self.controller.pid:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"controller not ready:\n{self.controller_log()}")

    def controller_log(self) -> str:
        path = self.home.var_dir / "log" / "controller.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_controller(self, sig: int = signal.SIGTERM) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(sig)
            self.controller.wait(20)
        self.controller = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ivr --home <this home> ARGS``, as an admin would run it."""
        return subprocess.run(
            [sys.executable, "-m", "ivr", "--home", str(self.home.root), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )

    def citizen(self, line: str, caller: str, keys: str = "", **options: Any) -> CitizenCall:
        call = CitizenCall(
            pbx_host=self.settings.pbx.bind,
            pbx_port=self.settings.pbx.sip_port,
            line=line,
            caller=caller,
            keys=keys,
            work_dir=self.home.var_dir / "calls",
            **options,
        )
        self.calls.append(call)
        return call

    async def call(self, line: str, caller: str, keys: str = "", **options: Any) -> dict[str, Any]:
        """Place a call, wait for it to end, return its ticket (JSON form)."""
        citizen = self.citizen(line, caller, keys, **options)
        code = await citizen.run()
        ticket = await self.ticket_of(citizen)
        assert ticket is not None, f"no ticket for {citizen.call_id} (SIPp {code})"
        ticket["_sipp_exit"] = code
        ticket["_answered_by"] = citizen.answered_by()
        return ticket

    async def ticket_of(self, citizen: CitizenCall, timeout: float = 10.0) -> dict[str, Any] | None:
        async with TicketStore(database_url(self.home)) as store:
            deadline = time.monotonic() + timeout
            ticket = None
            while time.monotonic() < deadline:
                ticket = await store.by_sip_call_id(citizen.call_id)
                if ticket is not None and ticket.ended_at is not None:
                    break
                await asyncio.sleep(0.2)
            return ticket_as_json(ticket) if ticket is not None else None

    async def tickets(self) -> list[dict[str, Any]]:
        async with TicketStore(database_url(self.home)) as store:
            return [ticket_as_json(t) for t in await store.list(limit=10_000)]

    def cdr_rows(self) -> list[list[str]]:
        import csv

        path = self.home.var_dir / "pbx" / "log" / "cdr-csv" / "Master.csv"
        if not path.exists():
            return []
        return list(csv.reader(path.read_text().splitlines()))

    async def close(self) -> None:
        await self.phones.stop()
        self.stop_controller()
        self.pbx.stop()


def run_id() -> str:
    return f"{os.getpid()}-{random.randrange(1 << 30)}"
