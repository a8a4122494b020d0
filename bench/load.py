"""Load against the real stack: one Asterisk, the controller, SIPp agents and citizens.

The same menu path (12345 in office hours, keys "11": consultation, east district) and the
same queue (q-d-east-zh) are reached three ways, each on its own number of the same PBX:

* (a) ``12345``: the controller over FastAGI, as in production;
* (b) ``912345``: the path written natively in extensions.conf (bench/native.conf.j2);
* (c) ``812345``: a classic AGI script (pyst2) that Asterisk forks per call.

The agents: ``LOAD_AGENTS`` bench-only agents of the east district (ids 2001...), all
registered from one SIPp UAS, which answers any number of calls at once. app_queue rings a
member only while it is free (ringinuse=no), so the queue needs as many members as calls
talking at once; a single agent phone per member would cost a SIPp process each.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import yaml

from bench.probe import LOOP_LAG
from bench.report import Report, mean, percentile, summary_ms
from ivr.deployment import Deployment, load_deployment
from ivr.home import ENGINE_ROOT, Home
from ivr.menu.prompts import resolve_prompt
from ivr.pbx.asterisk import wait_fully_booted
from ivr.ports import free_port, free_port_pair
from ivr.secrets import AMI_SECRET, AMI_USER, SecretStore, agent_secret_name
from ivr.settings import database_url
from ivr.sipp.peers import AgentPhone, AgentPool, CitizenCall, PhoneProcess, sipp_binary
from ivr.stack import Pbx, add_simulated_agents
from ivr.tickets import TicketStore

BENCH_DIR = Path(__file__).parent
OFFICE_HOURS = "2026-11-25T10:00:00+08:00"
HOTLINE = "12345"
NATIVE_NUMBER = "912345"
CLASSIC_NUMBER = "812345"
#: variant -> (label, number dialled)
VARIANTS: dict[str, tuple[str, str]] = {
    "fastagi": ("(a) controller over FastAGI", HOTLINE),
    "native": ("(b) native extensions.conf", NATIVE_NUMBER),
    "classic": ("(c) classic AGI (pyst2) per call", CLASSIC_NUMBER),
}
KEYS = "11"
QUEUE = "q-d-east-zh"
QUEUE_TIMEOUT = 90
LOAD_AGENTS = 80
FIRST_AGENT = 2001
AGENT_RING_MS = 300
AGENT_TALK_MS = 2000
#: A step passes with at most this share of failed calls.
FAILURE_LIMIT = 0.001
#: AGI commands that do no media: their time is the controller <-> Asterisk round trip.
ROUND_TRIP_COMMANDS = ("GET VARIABLE", "SET VARIABLE", "GET FULL VARIABLE", "ANSWER")
PYST2_PACKAGES = ("pyst2==0.5.1", "six==1.17.0")
WHEEL_CACHE = Path(tempfile.gettempdir()) / "ivr-bench-wheels"


@dataclass
class LoadOptions:
    rates: list[float]
    step_seconds: float
    variants: list[str]
    emergency_calls: int

    @classmethod
    def make(cls, *, quick: bool, rates: list[float], step_seconds: float,
             variants: list[str]) -> LoadOptions:
        unknown = sorted(set(variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; choose among {sorted(VARIANTS)}")
        return cls(
            rates=rates or ([3.0] if quick else [4.0, 8.0, 12.0, 16.0, 20.0]),
            step_seconds=step_seconds or (8.0 if quick else 10.0),
            variants=variants,
            emergency_calls=4 if quick else 10,
        )


# -- the bench home -------------------------------------------------------------------------


def agent_ids() -> list[str]:
    return [str(FIRST_AGENT + index) for index in range(LOAD_AGENTS)]


def make_bench_home(root: Path) -> Home:
    """The sample city on free ports, with LOAD_AGENTS more agents in the east district and
    no wrap-up there (each answers again at once)."""
    for folder in ("config", "dialplans", "routing"):
        shutil.copytree(ENGINE_ROOT / folder, root / folder)
    built_prompts = ENGINE_ROOT / "var" / "prompts"
    if built_prompts.is_dir():
        shutil.copytree(built_prompts, root / "var" / "prompts")
    rtp_start = random.randrange(20000, 56000, 2)
    settings = {
        "pbx": {"sip_port": free_port(socket.SOCK_DGRAM), "ami_port": free_port(),
                "rtp_port_start": rtp_start, "rtp_port_end": rtp_start + 3998},
        "controller": {"agi_port": free_port()},
        "database": {"url": "sqlite+aiosqlite:///tickets.db"},
        "emergency": {"trunk": {"host": "127.0.0.1", "port": free_port(socket.SOCK_DGRAM)}},
    }
    (root / "config" / "hotline.yaml").write_text(yaml.safe_dump(settings))
    add_simulated_agents(root, "d-east", agent_ids())
    return Home(root)


def native_dialplan(deployment: Deployment, pbx_home: str, classic_script: str) -> str:
    """bench/native.conf.j2 with this home's prompt files (as Asterisk sees them)."""
    menus = deployment.menus

    def prompt(name: str) -> str:
        return f"{pbx_home}/{resolve_prompt(menus.prompts[name], 'zh')}"

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(BENCH_DIR)),
                             undefined=jinja2.StrictUndefined, autoescape=False)
    return env.get_template("native.conf.j2").render(
        menu_file="dialplans/12345.yaml, dialplans/common.yaml",
        prompts={name: prompt(name)
                 for name in ("welcome", "main_choices", "district_choice", "to_person")},
        menu_timeout=5, district_timeout=5, queue=QUEUE, queue_options="rt",
        queue_timeout=QUEUE_TIMEOUT, classic_script=classic_script,
    )


def install_classic_agi(home: Home) -> Path:
    """bench/classic_agi.py with pyst2 and six beside it, under the home (which the PBX
    sees at /ivrhome); the wheels are downloaded once into a cache."""
    target = home.var_dir / "bench-agi"
    lib = target / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(WHEEL_CACHE.glob("*.whl"))
    if len(wheels) < len(PYST2_PACKAGES):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--disable-pip-version-check",
                        "-d", str(WHEEL_CACHE), *PYST2_PACKAGES], check=True, timeout=300)
        wheels = sorted(WHEEL_CACHE.glob("*.whl"))
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(lib)
    script = target / "classic_agi.py"
    shutil.copy(BENCH_DIR / "classic_agi.py", script)
    script.chmod(0o755)
    for folder in (target, *[p for p in lib.rglob("*") if p.is_dir()], lib):
        folder.chmod(0o755)
    for path in lib.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    return script


# -- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of a process (and of its reaped children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class LoadStack:
    home: Home
    deployment: Deployment = field(init=False)
    pbx: Pbx = field(init=False)
    controller: subprocess.Popen[bytes] | None = None
    phones: list[PhoneProcess] = field(default_factory=list)
    agents_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    probe_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.deployment = load_deployment(self.home, check_prompt_files=False)
        self.pbx = Pbx(self.home, self.deployment)
        self.probe_file = self.home.var_dir / "bench-probe.json"

    @property
    def settings(self) -> Any:
        return self.deployment.settings

    @property
    def asterisk_pid(self) -> int:
        process = self.pbx.process.process
        assert process is not None
        return process.pid  # run-pbx.sh execs down to asterisk: same pid

    @property
    def controller_pid(self) -> int:
        assert self.controller is not None
        return self.controller.pid

    async def start(self) -> None:
        self.pbx.render()
        script = install_classic_agi(self.home)
        classic = f"{self.pbx.pbx_home}/{script.relative_to(self.home.root)}"
        extensions = self.pbx.process.etc_dir / "extensions.conf"
        text = extensions.read_text()
        numbers = (f"exten => {NATIVE_NUMBER},1,Goto(bench-native,s,1)\n"
                   f"exten => {CLASSIC_NUMBER},1,Goto(bench-classic,s,1)\n")
        text = text.replace("[from-citizens]\n", "[from-citizens]\n" + numbers, 1)
        text += "\n" + native_dialplan(self.deployment, self.pbx.pbx_home, classic)
        extensions.write_text(text)
        self.pbx.process.start()
        pbx = self.settings.pbx
        await wait_fully_booted(pbx.bind, pbx.ami_port, AMI_USER,
                                self.pbx.secrets.get(AMI_SECRET), 60, self.pbx.process)
        self.start_controller()
        await self.wait_controller()
        await self.start_phones()

    def start_controller(self) -> None:
        log_file = self.home.var_dir / "log" / "controller.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            self.controller = subprocess.Popen(
                [sys.executable, "-m", "bench.probe", "--home", str(self.home.root), "serve",
                 "--pbx-home", self.pbx.pbx_home, "--at", OFFICE_HOURS],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(BENCH_DIR.parent),
                env={**os.environ, "IVR_BENCH_PROBE_FILE": str(self.probe_file)},
            )

    async def wait_controller(self, timeout: float = 30.0) -> None:
        state = self.home.var_dir / "run" / "controller.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.controller is not None
            if self.controller.poll() is not None:
                raise RuntimeError("controller exited at start; see "
                                   f"{self.home.var_dir / 'log' / 'controller.log'}")
            if state.exists() and json.loads(state.read_text())["pid"] == self.controller.pid:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("controller not ready in time")

    async def start_phones(self) -> None:
        """Every load agent registers from one port; one SIPp UAS there answers them all."""
        secrets = SecretStore.for_home(self.home)
        work = self.home.var_dir / "phones"
        pbx = self.settings.pbx
        pool = AgentPool(user="pool", agents={a: secrets.get(agent_secret_name(a))
                                              for a in agent_ids()},
                         pbx_host=pbx.bind, pbx_port=pbx.sip_port, ring_ms=AGENT_RING_MS,
                         talk_ms=AGENT_TALK_MS, local_port=self.agents_port, niceness=5,
                         work_dir=work)
        centre = PhoneProcess(user="110", local_port=self.settings.emergency.trunk.port,
                              ring_ms=300, talk_ms=1000, fixed_port=True, niceness=5,
                              work_dir=work)
        # The hold step's queue: a phone that rings and is never picked up.
        holder = AgentPhone(user=HOLD_AGENT, secret=secrets.get(agent_secret_name(HOLD_AGENT)),
                            pbx_host=pbx.bind, pbx_port=pbx.sip_port, answer=False,
                            niceness=5, work_dir=work)
        for phone in (pool, holder, centre):
            await phone.start()
            self.phones.append(phone)

    @property
    def centre(self) -> PhoneProcess:
        return self.phones[-1]

    def probe_samples(self) -> dict[str, list[float]]:
        """The controller's AGI round trips since the last call (see bench.probe)."""
        self.probe_file.unlink(missing_ok=True)
        os.kill(self.controller_pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not self.probe_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.probe_file.exists():
            return {}
        samples: dict[str, list[float]] = json.loads(self.probe_file.read_text())
        return samples

    async def close(self) -> None:
        for phone in self.phones:
            await phone.stop()
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGTERM)
            try:
                self.controller.wait(20)
            except subprocess.TimeoutExpired:
                self.controller.kill()
        self.pbx.stop()


# -- one load step --------------------------------------------------------------------------


@dataclass
class StepResult:
    variant: str
    rate: float
    placed: int = 0
    sipp_failed: int = 0
    wrong: int = 0
    peak_calls: int = 0
    controller_cpu_s: float = 0.0
    asterisk_cpu_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    round_trips: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.sipp_failed + self.wrong

    @property
    def failure_share(self) -> float:
        return self.failed / self.placed if self.placed else 1.0

    @property
    def passed(self) -> bool:
        return self.placed > 0 and self.failure_share <= FAILURE_LIMIT


def read_stats(path: Path) -> list[dict[str, str]]:
    """SIPp's -trace_stat rows (';'-separated, one per second)."""
    if not path.exists():
        return []
    rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return []
    header = rows[0]
    return [dict(zip(header, row, strict=False)) for row in rows[1:] if len(row) >= len(header)]


def _trace_blocks(path: Path) -> Iterator[tuple[datetime, str]]:
    """(timestamp, message) of a SIPp -trace_msg file."""
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    parts = re.split(r"^-{10,} (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)\s*$", text, flags=re.M)
    for index in range(1, len(parts) - 1, 2):
        stamp = datetime.strptime(re.sub(r"\s+", " ", parts[index]), "%Y-%m-%d %H:%M:%S.%f")
        yield stamp, parts[index + 1]


def _header(message: str, name: str) -> str | None:
    match = re.search(rf"^\s*{name}:\s*(.*)$", message, flags=re.M | re.I)
    return match.group(1).strip() if match else None


def answered_by_call(trace: Path) -> dict[str, str | None]:
    """Call-ID -> the agent the PBX's connected-line UPDATE named (None: nobody answered)."""
    found: dict[str, str | None] = {}
    for _stamp, message in _trace_blocks(trace):
        call_id = _header(message, "Call-ID")
        if call_id is None:
            continue
        found.setdefault(call_id, None)
        if re.search(r"^\s*UPDATE sip:", message, flags=re.M):
            identity = _header(message, "P-Asserted-Identity") or ""
            match = re.search(r"<sip:([^@>]+)@", identity)
            if match:
                found[call_id] = match.group(1)
    return found


def round_trips(samples: dict[str, list[float]]) -> list[float]:
    """The round trips of the commands that do no media (see ROUND_TRIP_COMMANDS)."""
    return [x for name in ROUND_TRIP_COMMANDS for x in samples.get(name, [])]


async def run_sipp(command: list[str], stats: Path, poll_s: float,
                   on_live: Callable[[int], None]) -> int | None:
    """Run a citizens' SIPp to its end, telling ``on_live`` the calls up at each poll of its
    statistics; returns SIPp's exit code (negative when it had to be killed)."""
    process = await asyncio.create_subprocess_exec(
        *command, cwd=str(stats.parent), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        while process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), poll_s)
            rows = read_stats(stats)
            if rows:
                on_live(int(rows[-1].get("CurrentCall", "0") or 0))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode


def citizens_command(stack: LoadStack, citizen: CitizenCall, *, number: str, rate: float,
                     count: int, tag: str, timeout_s: float) -> list[str]:
    """One SIPp process placing ``count`` calls of ``citizen``'s scenario at ``rate``, each
    with its own Call-ID ``bench-<tag>-<n>``, statistics in stats.csv beside the scenario."""
    work = citizen.work_dir
    scenario = work / "citizen.xml"
    scenario.write_text(citizen.scenario())
    pbx = stack.settings.pbx
    return [
        "nice", "-n", "5", sipp_binary(), f"{pbx.bind}:{pbx.sip_port}",
        "-sf", str(scenario), "-s", number,
        "-r", str(int(rate * 10)), "-rp", "10000", "-m", str(count), "-l", str(count),
        "-cid_str", f"bench-{tag}-%u",
        "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mi", "127.0.0.1", "-mp", str(free_port_pair()),
        "-nostdin", "-trace_msg", "-message_file", str(work / "messages.log"),
        "-trace_stat", "-stf", str(work / "stats.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(work / "errors.log"),
        "-timeout", f"{int(timeout_s)}s", "-timeout_error",
    ]  # fmt: skip


async def run_step(stack: LoadStack, variant: str, rate: float, seconds: float,
                   expected_path: list[str] | None) -> StepResult:
    result = StepResult(variant, rate)
    number = VARIANTS[variant][1]
    count = max(1, round(rate * seconds))
    tag = f"{variant}-{int(rate * 10)}-{random.randrange(1 << 24):06x}"
    work = stack.home.var_dir / "load" / tag
    work.mkdir(parents=True, exist_ok=True)
    citizen = CitizenCall(pbx_host=stack.settings.pbx.bind, pbx_port=stack.settings.pbx.sip_port,
                          line=number, caller="13900009999", keys=KEYS, talk_seconds=30,
                          # A healthy call is answered ~5 s in; an overloaded step ends sooner.
                          wait_timeout_seconds=30, call_id=f"bench-{tag}", work_dir=work)
    command = citizens_command(stack, citizen, number=number, rate=rate, count=count, tag=tag,
                               timeout_s=seconds + 90)
    stats, trace = work / "stats.csv", work / "messages.log"
    stack.probe_samples()  # forget what came before this step
    controller_cpu = cpu_seconds(stack.controller_pid)
    asterisk_cpu = cpu_seconds(stack.asterisk_pid, children=True)
    result.rss_before_mb = rss_mb(stack.controller_pid)

    def on_live(live: int) -> None:
        if live >= result.peak_calls:
            result.peak_calls = live
            result.rss_peak_mb = max(result.rss_peak_mb, rss_mb(stack.controller_pid))

    returncode = await run_sipp(command, stats, 1.0, on_live)
    result.controller_cpu_s = cpu_seconds(stack.controller_pid) - controller_cpu
    result.asterisk_cpu_s = cpu_seconds(stack.asterisk_pid, children=True) - asterisk_cpu
    result.round_trips = round_trips(stack.probe_samples())
    rows = read_stats(stats)
    if rows:
        last = rows[-1]
        result.placed = int(last.get("OutgoingCall(C)", "0") or 0)
        result.sipp_failed = int(last.get("FailedCall(C)", "0") or 0)
        result.peak_calls = max(result.peak_calls,
                                max(int(row.get("CurrentCall", "0") or 0) for row in rows))
    result.placed = max(result.placed, count if returncode == 0 else result.placed)
    answered = answered_by_call(trace)
    agents = set(agent_ids())
    wrong_calls = {call_id for call_id, agent in answered.items() if agent not in agents}
    result.wrong = len(wrong_calls)
    if wrong_calls:
        result.problems.append(f"{len(wrong_calls)} calls not answered by a load agent")
    if variant == "fastagi" and expected_path is not None:
        tickets = await tickets_by_call_id(stack.home)
        for call_id in answered:
            ticket = tickets.get(call_id)
            if call_id in wrong_calls:
                continue
            if ticket is None or ticket.get("agent") not in agents or \
                    ticket.get("ivr_path") != expected_path:
                result.wrong += 1
        if result.wrong > len(wrong_calls):
            result.problems.append(
                f"{result.wrong - len(wrong_calls)} tickets with another agent or ivr_path")
    return result


#: West district: its one agent's phone rings and nobody answers, so callers wait in the
#: queue with their FastAGI session open, as many as the bench wants at once.
HOLD_KEYS = "12"
HOLD_AGENT = "1010"
HOLD_RATE = 10.0
HOLD_WAIT_SECONDS = 60.0
#: Live call counts at which the AGI round trip and the controller's memory are read.
HOLD_MARKS = (100, 500)
#: The round trips of the 2 * HOLD_BAND calls arriving before each mark are timed.
HOLD_BAND = 30


@dataclass
class HoldResult:
    peak_calls: int = 0
    rss_before_mb: float = 0.0
    #: mark -> (round trips measured around it, controller RSS at mark + band)
    at_mark: dict[int, tuple[list[float], float]] = field(default_factory=dict)
    #: mark -> the controller's event loop lag samples over the band (bench.probe.LOOP_LAG)
    lag_at_mark: dict[int, list[float]] = field(default_factory=dict)
    #: mark -> (controller, Asterisk) CPU seconds per wall second over the band
    cpu_at_mark: dict[int, tuple[float, float]] = field(default_factory=dict)


async def hold_step(stack: LoadStack) -> HoldResult:
    """Callers pile up in a queue nobody answers until HOLD_MARKS[-1] + HOLD_BAND are live;
    the AGI round trips of the calls arriving just before each mark are timed."""
    result = HoldResult()
    count = HOLD_MARKS[-1] + 2 * HOLD_BAND
    tag = f"hold-{random.randrange(1 << 24):06x}"
    work = stack.home.var_dir / "load" / tag
    work.mkdir(parents=True, exist_ok=True)
    citizen = CitizenCall(pbx_host=stack.settings.pbx.bind, pbx_port=stack.settings.pbx.sip_port,
                          line=HOTLINE, caller="13900008888", keys=HOLD_KEYS, talk_seconds=1,
                          wait_timeout_seconds=HOLD_WAIT_SECONDS, call_id=f"bench-{tag}",
                          work_dir=work)
    command = citizens_command(stack, citizen, number=HOTLINE, rate=HOLD_RATE, count=count,
                               tag=tag, timeout_s=count / HOLD_RATE + HOLD_WAIT_SECONDS + 90)
    stats = work / "stats.csv"
    result.rss_before_mb = rss_mb(stack.controller_pid)
    pending = list(HOLD_MARKS)
    measuring: int | None = None
    band_start = (0.0, 0.0, 0.0)

    def cpu_now() -> tuple[float, float, float]:
        return (time.monotonic(), cpu_seconds(stack.controller_pid),
                cpu_seconds(stack.asterisk_pid, children=True))

    def on_live(live: int) -> None:
        nonlocal measuring, band_start
        result.peak_calls = max(result.peak_calls, live)
        if measuring is None and pending and live >= pending[0] - 2 * HOLD_BAND:
            measuring = pending.pop(0)
            stack.probe_samples()  # forget the calls before the band
            band_start = cpu_now()
        elif measuring is not None and live >= measuring:
            samples = stack.probe_samples()
            result.at_mark[measuring] = (round_trips(samples), rss_mb(stack.controller_pid))
            result.lag_at_mark[measuring] = samples.get(LOOP_LAG, [])
            wall, controller, asterisk = (b - a for a, b in zip(band_start, cpu_now(), strict=True))
            result.cpu_at_mark[measuring] = (controller / wall, asterisk / wall)
            measuring = None

    await run_sipp(command, stats, 0.5, on_live)
    return result


def hold_figures(report: Report, hold: HoldResult) -> None:
    report.section("hold", f"Live calls held: callers wait in q-d-west-zh (nobody answers), "
                           f"arriving at {HOLD_RATE:g}/s")
    report.add("hold", "peak_calls", hold.peak_calls, "concurrent calls at peak")
    for mark, (trips, rss) in sorted(hold.at_mark.items()):
        if trips:
            report.add("hold", f"agi_round_trip_p50_ms_at_{mark}", percentile(trips, 0.5) * 1000,
                       f"AGI round trip p50 at ~{mark} live calls (n={len(trips)})", "ms")
            report.add("hold", f"agi_round_trip_p99_ms_at_{mark}", percentile(trips, 0.99) * 1000,
                       f"AGI round trip p99 at ~{mark} live calls", "ms")
        lag = hold.lag_at_mark.get(mark)
        if lag:
            report.add("hold", f"loop_lag_p99_ms_at_{mark}", percentile(lag, 0.99) * 1000,
                       f"controller event loop lag p99 at ~{mark} (n={len(lag)})", "ms")
        if mark in hold.cpu_at_mark:
            controller, asterisk = hold.cpu_at_mark[mark]
            report.add("hold", f"controller_cpu_share_at_{mark}", controller,
                       f"controller CPU (cores busy) while reaching ~{mark}", "cores")
            report.add("hold", f"asterisk_cpu_share_at_{mark}", asterisk,
                       f"Asterisk CPU (cores busy) while reaching ~{mark}", "cores")
        report.add("hold", f"rss_kb_per_live_call_at_{mark}",
                   (rss - hold.rss_before_mb) * 1024 / mark,
                   f"controller RSS growth per live call at ~{mark}", "KB")
    missing = [m for m in HOLD_MARKS if m not in hold.at_mark]
    if missing:
        report.note(f"hold: never reached {missing} live calls (peak {hold.peak_calls})")


async def soak(stack: LoadStack, report: Report, rate: float, minutes: float,
               expected: list[str]) -> None:
    """Calls at ``rate`` for ``minutes``, a minute a step: failures and the controller's memory
    after each minute (issue 8: no errors, no memory growth beyond 5%)."""
    report.section("soak", f"Soak: {rate:g} calls/s for {minutes:g} min (12345 keys 11)")
    steps: list[StepResult] = []
    rss_after: list[float] = []
    for minute in range(max(1, round(minutes))):
        step = await run_step(stack, "fastagi", rate, 60.0, expected)
        steps.append(step)
        rss_after.append(rss_mb(stack.controller_pid))
        print(f"  minute {minute + 1:3d}: placed {step.placed:4d} failed {step.failed:3d} "
              f"peak {step.peak_calls:3d} calls  controller RSS {rss_after[-1]:.1f} MB"
              + ("" if not step.problems else "  " + "; ".join(step.problems)), flush=True)
    placed = sum(step.placed for step in steps)
    failed = sum(step.failed for step in steps)
    report.add("soak", "calls_placed", placed, "calls placed")
    report.add("soak", "calls_failed", failed, "calls failed (not answered by a load agent, "
               "or a wrong ticket)")
    # The first minute fills caches and pools: growth is measured from its end.
    baseline = rss_after[0]
    report.add("soak", "rss_first_minute_mb", baseline, "controller RSS after minute 1", "MB")
    report.add("soak", "rss_last_minute_mb", rss_after[-1], "controller RSS at the end", "MB")
    report.add("soak", "rss_growth_percent", (max(rss_after) - baseline) / baseline * 100,
               "controller RSS growth, highest vs minute 1", "%")
    # By design some memory fills in the first minutes (database caches, the last two
    # minutes of CDR rows reconcile keeps): a leak shows as growth after that too.
    settled = len(rss_after) // 3
    if settled >= 1:
        steady = rss_after[settled:]
        report.add("soak", "rss_steady_growth_percent",
                   (max(steady) - steady[0]) / steady[0] * 100,
                   f"controller RSS growth from minute {settled + 1} on (highest vs then)", "%")


async def tickets_by_call_id(home: Home) -> dict[str, dict[str, Any]]:
    async with TicketStore(database_url(home)) as store:
        rows = await store.list(limit=100_000)
    return {row.sip_call_id: {"agent": row.agent, "ivr_path": list(row.ivr_path or []),
                              "variables": dict(row.variables or {})}
            for row in rows if row.sip_call_id}


async def expected_ivr_path(stack: LoadStack) -> list[str]:
    """One warm-up call on 12345: its ticket's ivr_path is what every load call must show."""
    citizen = CitizenCall(pbx_host=stack.settings.pbx.bind, pbx_port=stack.settings.pbx.sip_port,
                          line=HOTLINE, caller="13900000001", keys=KEYS, talk_seconds=30,
                          wait_timeout_seconds=60, work_dir=stack.home.var_dir / "calls")
    code = await citizen.run()
    agent = citizen.answered_by()
    deadline = time.monotonic() + 10
    ticket = None
    while time.monotonic() < deadline:
        ticket = (await tickets_by_call_id(stack.home)).get(citizen.call_id)
        if ticket is not None and ticket["agent"]:
            break
        await asyncio.sleep(0.3)
    if code != 0 or ticket is None or agent not in set(agent_ids()):
        raise RuntimeError(f"the warm-up call failed (SIPp {code}, answered by {agent}, "
                           f"ticket {ticket}); see {stack.home.var_dir}")
    path: list[str] = ticket["ivr_path"]
    if "district_east" not in path:
        raise RuntimeError(f"the warm-up call took another path: {path}")
    return path


# -- emergency ------------------------------------------------------------------------------


@dataclass
class EmergencyCall:
    citizen: CitizenCall
    first_key_delay_ms: int


async def emergency_latencies(stack: LoadStack, calls: int, spacing: float,
                              ) -> tuple[list[float], list[float]]:
    """Key 0 on 12345 -> INVITE at the 110 centre, from SIPp's traces (citizen ACK sent +
    the scenario's key delay, to the centre's INVITE received); and the controller's own
    view from the ticket (emergency_key_at -> emergency_answered_at)."""
    placed: list[CitizenCall] = []
    delay_ms = 800

    async def one(index: int) -> None:
        await asyncio.sleep(index * spacing)
        citizen = CitizenCall(
            pbx_host=stack.settings.pbx.bind, pbx_port=stack.settings.pbx.sip_port,
            line=HOTLINE, caller=f"1391{random.randrange(10**7):07d}", keys="0",
            first_key_delay_ms=delay_ms, talk_seconds=5, wait_timeout_seconds=20,
            work_dir=stack.home.var_dir / "emergency")
        placed.append(citizen)
        await citizen.run()

    await asyncio.gather(*(one(index) for index in range(calls)))
    invites: dict[str, datetime] = {}
    for stamp, message in _trace_blocks(stack.centre.message_file):
        if re.search(r"^\s*INVITE sip:", message, flags=re.M):
            caller = re.search(r"<sip:([^@>]+)@", _header(message, "From") or "")
            if caller and caller.group(1) not in invites:
                invites[caller.group(1)] = stamp
    wire: list[float] = []
    for citizen in placed:
        ack = next((stamp for stamp, message in _trace_blocks(citizen.message_file)
                    if re.search(r"^\s*ACK sip:", message, flags=re.M)), None)
        invite = invites.get(citizen.caller)
        if ack is not None and invite is not None:
            wire.append((invite - ack).total_seconds() - delay_ms / 1000)
    tickets = await tickets_by_call_id(stack.home)
    seen: list[float] = []
    for citizen in placed:
        variables = (tickets.get(citizen.call_id) or {}).get("variables", {})
        if "emergency_key_at" in variables and "emergency_answered_at" in variables:
            seen.append((datetime.fromisoformat(variables["emergency_answered_at"])
                         - datetime.fromisoformat(variables["emergency_key_at"])).total_seconds())
    return wire, seen


def report_emergency(report: Report, label: str, wire: list[float], seen: list[float],
                     calls: int) -> None:
    key = label.replace(" ", "_")
    wire_figures, seen_figures = summary_ms(wire), summary_ms(seen)
    report.add("emergency", f"{key}.calls", calls, f"{label}: emergency calls placed")
    report.add("emergency", f"{key}.key_to_invite_measured", len(wire),
               f"{label}: key -> 110 INVITE measured")
    report.add("emergency", f"{key}.key_to_invite_p50_ms", wire_figures["p50_ms"],
               f"{label}: key sent -> INVITE at 110 p50", "ms")
    report.add("emergency", f"{key}.key_to_invite_p99_ms", wire_figures["p99_ms"],
               f"{label}: key sent -> INVITE at 110 p99", "ms")
    report.add("emergency", f"{key}.controller_key_to_answer_p50_ms", seen_figures["p50_ms"],
               f"{label}: controller key seen -> 110 answered p50", "ms")
    report.add("emergency", f"{key}.controller_key_to_answer_p99_ms", seen_figures["p99_ms"],
               f"{label}: controller key seen -> 110 answered p99", "ms")


# -- the whole live run ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def live_stack() -> AsyncIterator[LoadStack]:
    scratch = Path(tempfile.mkdtemp(prefix="ivr-bench-load-"))
    stack = LoadStack(make_bench_home(scratch))
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close()
        if not os.environ.get("IVR_BENCH_KEEP"):  # keep the home for a post-mortem
            shutil.rmtree(scratch, ignore_errors=True)


def step_figures(report: Report, step: StepResult) -> None:
    key = f"{step.variant}.rate_{step.rate:g}"
    label = f"{step.variant} @ {step.rate:g}/s"
    calls = max(step.placed, 1)
    data: dict[str, Any] = {
        "placed": step.placed, "failed": step.failed, "sipp_failed": step.sipp_failed,
        "wrong_agent_or_path": step.wrong, "peak_concurrent_calls": step.peak_calls,
        "asterisk_cpu_s_per_1000_calls": step.asterisk_cpu_s / calls * 1000,
        "controller_cpu_s_per_1000_calls": step.controller_cpu_s / calls * 1000,
        "passed": step.passed, "problems": step.problems,
    }
    if step.variant == "fastagi":
        data["controller_rss_before_mb"] = step.rss_before_mb
        data["controller_rss_peak_mb"] = step.rss_peak_mb
        data["controller_rss_kb_per_live_call"] = (
            (step.rss_peak_mb - step.rss_before_mb) * 1024 / step.peak_calls
            if step.peak_calls else float("nan"))
        data["agi_round_trip"] = summary_ms(step.round_trips)
    report.sections.setdefault("load", {})[key] = data
    line = (f"placed {step.placed:4d}  failed {step.failed:3d}  peak {step.peak_calls:3d} calls  "
            f"CPU/1000 calls: asterisk {data['asterisk_cpu_s_per_1000_calls']:6.1f} s")
    if step.variant == "fastagi":
        trips = summary_ms(step.round_trips)
        line += (f", controller {data['controller_cpu_s_per_1000_calls']:6.1f} s; "
                 f"AGI round trip p50 {trips['p50_ms']:.2f} ms p99 {trips['p99_ms']:.2f} ms "
                 f"(n={trips['n']}); RSS {step.rss_before_mb:.0f}->{step.rss_peak_mb:.0f} MB")
    verdict = "ok" if step.passed else "FAIL " + "; ".join(step.problems)
    print(f"  {label:<20} {line}  [{verdict}]", flush=True)


async def run_live(report: Report, options: LoadOptions | None, emergency_calls: int,
                   hold: bool = False, soak_minutes: float = 0.0) -> None:
    async with live_stack() as stack:
        best: dict[str, float] = {}
        steps: list[StepResult] = []
        if options is not None:
            report.section("load", "Load: 12345 keys 11 -> q-d-east-zh, agents answer after "
                           f"{AGENT_RING_MS} ms and talk {AGENT_TALK_MS} ms; "
                           f"{options.step_seconds:g} s per step")
            expected = await expected_ivr_path(stack)
            report.sections["load"]["expected_ivr_path"] = expected
            print(f"  expected ivr_path: {' > '.join(expected)}")
            running = list(options.variants)
            for rate in options.rates:
                # Side by side: every variant at this rate before the next rate.
                for variant in list(running):
                    step = await run_step(stack, variant, rate, options.step_seconds, expected)
                    steps.append(step)
                    step_figures(report, step)
                    if step.passed:
                        best[variant] = rate
                    else:
                        running.remove(variant)
                    await asyncio.sleep(2)
                if not running:
                    break
            summarise(report, options, steps, best)
        if hold:
            hold_figures(report, await hold_step(stack))
        if soak_minutes:
            top = best.get("fastagi") or (max(options.rates) if options else 12.0)
            await soak(stack, report, 0.8 * top, soak_minutes, await expected_ivr_path(stack))
        if emergency_calls:
            report.section("emergency", "Emergency key 0 -> INVITE on the 110 trunk")
            wire, seen = await emergency_latencies(stack, emergency_calls, spacing=1.5)
            report_emergency(report, "idle", wire, seen, emergency_calls)
            # 80% of the highest rate the controller held (issue 7's load for this figure).
            rate = 0.8 * best["fastagi"] if options is not None and "fastagi" in best else 4.0
            seconds = max(10.0, emergency_calls * 1.5 + 4)
            loaded = asyncio.create_task(run_step(stack, "fastagi", rate, seconds, None))
            await asyncio.sleep(4)
            wire, seen = await emergency_latencies(stack, emergency_calls, spacing=1.5)
            step = await loaded
            report_emergency(report, f"under load {rate:g}/s", wire, seen, emergency_calls)
            report.add("emergency", "load_peak_calls", step.peak_calls,
                       f"under load {rate:g}/s: concurrent calls at peak")


def summarise(report: Report, options: LoadOptions, steps: list[StepResult],
              best: dict[str, float]) -> None:
    print()
    for variant in options.variants:
        label = VARIANTS[variant][0]
        rate = best.get(variant)
        held = max((s.peak_calls for s in steps if s.variant == variant and s.passed), default=0)
        capped = rate is not None and rate == max(options.rates)
        report.add("load", f"{variant}.best_rate", rate if rate is not None else 0.0,
                   f"{label}: highest rate <= 0.1% failed" + (" (not reached)" if capped else ""),
                   "calls/s")
        report.add("load", f"{variant}.concurrent_calls_held", held,
                   f"{label}: concurrent calls held there")
    for other in ("native", "classic"):
        if "fastagi" in best and other in best:
            report.add("load", f"rate_ratio_fastagi_over_{other}", best["fastagi"] / best[other],
                       f"best rate ratio (a)/({'b' if other == 'native' else 'c'})")
    common = [rate for rate in options.rates
              if all(any(s.variant == v and s.rate == rate for s in steps)
                     for v in options.variants)]
    if common:
        rate = max(common)
        cost = {s.variant: (s.asterisk_cpu_s + (s.controller_cpu_s if s.variant == "fastagi"
                                                 else 0.0)) / max(s.placed, 1) * 1000
                for s in steps if s.rate == rate}
        for variant, seconds in cost.items():
            report.add("load", f"{variant}.total_cpu_s_per_1000_calls_at_{rate:g}", seconds,
                       f"{VARIANTS[variant][0]}: CPU s / 1000 calls at {rate:g}/s", "s")
        for other in ("native", "classic"):
            if "fastagi" in cost and other in cost and cost[other] > 0:
                report.add("load", f"cpu_ratio_fastagi_over_{other}_at_{rate:g}",
                           cost["fastagi"] / cost[other],
                           f"CPU per call ratio (a)/({'b' if other == 'native' else 'c'})"
                           f" at {rate:g}/s")
    fastagi = [s for s in steps if s.variant == "fastagi" and s.round_trips]
    if fastagi:
        busiest = max(fastagi, key=lambda s: s.peak_calls)
        report.add("load", "agi_round_trip_p50_ms", percentile(busiest.round_trips, 0.5) * 1000,
                   f"AGI round trip p50 at {busiest.peak_calls} live calls", "ms")
        report.add("load", "agi_round_trip_p99_ms", percentile(busiest.round_trips, 0.99) * 1000,
                   f"AGI round trip p99 at {busiest.peak_calls} live calls", "ms")
        growth = [(s.rss_peak_mb - s.rss_before_mb) * 1024 / s.peak_calls
                  for s in fastagi if s.peak_calls >= 10]
        report.add("load", "controller_rss_kb_per_live_call", mean(growth),
                   "controller RSS growth per live call (mean of steps)", "KB")


def bench_live(report: Report, options: LoadOptions | None, emergency_calls: int,
               hold: bool = False, soak_minutes: float = 0.0) -> None:
    asyncio.run(run_live(report, options, emergency_calls, hold, soak_minutes))
