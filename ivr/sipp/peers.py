"""Run SIPp as a citizen, an agent's phone or the 110 centre against a running PBX."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ivr.ports import free_port, free_port_pair
from ivr.sipp.dtmf import EVENT_CODES, write_key_presses

SCENARIOS_DIR = Path(__file__).parent
#: A few seconds of speech (G.711 A-law) shipped with SIPp: what an agent's phone says.
VOICE_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
#: In a key script, this character means "press nothing and let the menu's timeout pass".
NO_INPUT = "-"
#: In a key script, this character means "speak for a few seconds" (a voice message).
SPEAK = "~"
SPEAK_MS = 6000


class SippError(RuntimeError):
    pass


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if not found:
        raise SippError("sipp is not installed (Debian package sip-tester); run `make setup`")
    return found


def _render(template: str, **context: object) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SCENARIOS_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Scenario text sits in CDATA, where XML escaping would be sent literally.
        autoescape=False,
    )
    return env.get_template(template).render(context)


@dataclass(frozen=True)
class KeyStep:
    key: str | None
    pause_ms: int
    #: The capture SIPp plays: an RFC 4733 key press, or speech.
    pcap: str = ""


def key_steps(keys: str, *, first_delay_ms: int, gap_ms: int, no_input_ms: int) -> list[KeyStep]:
    """Turn a key script into timed steps: wait ``first_delay_ms`` (the greeting), then each
    key followed by ``gap_ms``; ``-`` waits ``no_input_ms`` without pressing anything and
    ``~`` speaks for a few seconds."""
    steps = [KeyStep(None, first_delay_ms)] if first_delay_ms else []
    for key in keys:
        if key == NO_INPUT:
            steps.append(KeyStep(None, no_input_ms))
        elif key == SPEAK:
            steps.append(KeyStep(None, SPEAK_MS, str(VOICE_PCAP)))
        elif key in EVENT_CODES:
            steps.append(KeyStep(key, gap_ms))
        elif key not in " ,":
            raise SippError(f"cannot press {key!r}: keys are 0-9, *, #, - (no input) and ~ (speak)")
    return steps


def played_steps(
    keys: str, work_dir: Path, name: str, *, first_delay_ms: int, gap_ms: int, no_input_ms: int
) -> list[KeyStep]:
    """``key_steps`` with each key's RFC 4733 capture written under ``work_dir``."""
    steps = key_steps(keys, first_delay_ms=first_delay_ms, gap_ms=gap_ms, no_input_ms=no_input_ms)
    pressed = [step.key for step in steps if step.key]
    pcaps = iter(
        write_key_presses(work_dir, name, "".join(pressed), ssrc=hash(name) & 0xFFFFFFFF)
    )
    return [KeyStep(s.key, s.pause_ms, str(next(pcaps))) if s.key else s for s in steps]


@dataclass
class CitizenCall:
    """One citizen's call: the SIP Call-ID identifies its ticket afterwards."""

    pbx_host: str
    pbx_port: int
    line: str
    caller: str
    keys: str = ""
    caller_name: str = ""
    #: Longest stay once a person's phone rings; the person normally hangs up first.
    talk_seconds: float = 30.0
    first_key_delay_ms: int = 1500
    key_gap_ms: int = 1200
    no_input_ms: int = 6000
    wait_timeout_seconds: float = 60.0
    extra_headers: tuple[str, ...] = ()
    call_id: str = field(default_factory=lambda: f"citizen-{uuid.uuid4().hex}")
    work_dir: Path = field(default_factory=lambda: Path("/tmp"))

    def scenario(self) -> str:
        steps = played_steps(
            self.keys,
            self.work_dir,
            self.call_id,
            first_delay_ms=self.first_key_delay_ms,
            gap_ms=self.key_gap_ms,
            no_input_ms=self.no_input_ms,
        )
        for value in (self.caller, self.caller_name, *self.extra_headers):
            if "]]>" in value or "\n" in value or "\r" in value:
                raise SippError(f"cannot put {value!r} into a SIP message")
        display = f'"{self.caller_name}" ' if self.caller_name else ""
        return _render(
            "citizen.xml.j2",
            caller=self.caller,
            from_display=display,
            steps=steps,
            extra_headers=self.extra_headers,
            answer_timeout_ms=10_000,
            wait_timeout_ms=int(self.wait_timeout_seconds * 1000),
            talk_ms=int(self.talk_seconds * 1000),
        )

    @property
    def message_file(self) -> Path:
        return self.work_dir / f"{self.call_id}.msg"

    def answered_by(self) -> str | None:
        """Who answered, as the PBX's connected-line UPDATE named them (agent id, or None)."""
        if not self.message_file.exists():
            return None
        found = None
        in_update = False
        for line in self.message_file.read_text(errors="replace").splitlines():
            if line.startswith("UPDATE sip:"):
                in_update = True
            elif in_update and line.lower().startswith("p-asserted-identity:"):
                match = re.search(r"<sip:([^@>]+)@", line)
                found = match.group(1) if match else found
                in_update = False
        return found

    async def run(self) -> int:
        """Place the call and wait for it to end; SIPp's exit code (0 = the call completed).
        SIPp exits at once with 254 when a port it was given is taken meanwhile: tried again."""
        for _ in range(3):
            started = time.monotonic()
            code = await self._run_once()
            if code < 254 or time.monotonic() - started > 1.0:
                return code
        return code

    async def _run_once(self) -> int:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        scenario = self.work_dir / f"{self.call_id}.xml"
        # surrogateescape: a caller name may carry bytes that are not UTF-8 (abuse tests
        # pass them as os.fsdecode does), and SIPp sends the file's bytes as they are.
        scenario.write_bytes(self.scenario().encode("utf-8", "surrogateescape"))
        media = free_port_pair()
        process = await asyncio.create_subprocess_exec(
            sipp_binary(),
            f"{self.pbx_host}:{self.pbx_port}",
            "-sf",
            str(scenario),
            "-s",
            self.line,
            "-m",
            "1",
            # SIPp matches replies to calls by its own Call-ID, so we set it through SIPp.
            "-cid_str",
            self.call_id,
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port(socket.SOCK_DGRAM)),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(media),
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(self.work_dir / f"{self.call_id}.err"),
            # The messages tell who answered (the connected-line UPDATE).
            "-trace_msg",
            "-message_file",
            str(self.message_file),
            "-timeout",
            f"{int(self.wait_timeout_seconds + self.talk_seconds + 60)}s",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=str(self.work_dir),
        )
        try:
            return await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


@dataclass
class PhoneProcess:
    """A long-running SIPp UAS: an agent's phone, or the 110 centre."""

    user: str
    answer: bool = True
    ring_ms: int = 500
    #: How long the person talks before hanging up.
    talk_ms: int = 3000
    local_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    work_dir: Path = field(default_factory=lambda: Path("/tmp"))
    process: asyncio.subprocess.Process | None = None

    @property
    def message_file(self) -> Path:
        return self.work_dir / f"phone-{self.user}-{self.local_port}.msg"

    def received_invites(self) -> list[str]:
        """Every INVITE this phone received, as text (tests read From and P-Asserted-Identity)."""
        if not self.message_file.exists():
            return []
        text = self.message_file.read_text(errors="replace")
        return [
            block.split("\n\n", 1)[0]
            for block in re.split(r"\n(?=INVITE sip:)", text)
            if block.startswith("INVITE sip:")
        ]

    #: Starts tried before giving up: a port found free may be taken by the time SIPp binds
    #: it (other phones, Asterisk's RTP), and SIPp then exits at once.
    START_TRIES = 4
    #: Whether ``local_port`` is given (the 110 centre's address is in the config).
    fixed_port: bool = False
    #: Scheduling niceness of the SIPp process: benches keep the phones from taking CPU the
    #: measured processes need.
    niceness: int = 0

    async def start(self) -> None:
        for attempt in range(self.START_TRIES):
            try:
                await self.launch()
                return
            except SippError:
                if attempt == self.START_TRIES - 1:
                    raise
                await asyncio.sleep(0.3)
                if not self.fixed_port:
                    self.local_port = free_port(socket.SOCK_DGRAM)

    def scenario(self) -> str:
        return _render(
            "agent.xml.j2",
            user=self.user,
            answer=self.answer,
            ring_ms=self.ring_ms,
            talk_ms=self.talk_ms,
            voice_pcap=str(VOICE_PCAP),
        )

    async def launch(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        scenario = self.work_dir / f"phone-{self.user}-{self.local_port}.xml"
        scenario.write_text(self.scenario())
        nice = ["nice", "-n", str(self.niceness)] if self.niceness else []
        self.process = await asyncio.create_subprocess_exec(
            *nice,
            sipp_binary(),
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.local_port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port_pair()),
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(self.work_dir / f"phone-{self.user}.err"),
            "-trace_msg",
            "-message_file",
            str(self.message_file),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=str(self.work_dir),
        )
        await asyncio.sleep(0.3)
        if self.process.returncode is not None:
            raise SippError(f"SIPp phone {self.user} exited at start ({self.process.returncode})")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@dataclass
class AgentPhone(PhoneProcess):
    """An agent's SIP phone: registers with the agent's credentials, then rings and answers."""

    secret: str = ""
    pbx_host: str = "127.0.0.1"
    pbx_port: int = 5060
    expires: int = 86400

    async def register(self) -> None:
        """REGISTER with digest auth from the port the phone will answer on."""
        scenario = self.work_dir / f"register-{self.user}.xml"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        scenario.write_text(_render("register.xml.j2", user=self.user, expires=self.expires))
        process = await asyncio.create_subprocess_exec(
            sipp_binary(),
            f"{self.pbx_host}:{self.pbx_port}",
            "-sf",
            str(scenario),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(self.local_port),
            "-au",
            self.user,
            "-ap",
            self.secret,
            "-nostdin",
            "-timeout",
            "10s",
            "-trace_err",
            "-error_file",
            str(self.work_dir / f"register-{self.user}.err"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=str(self.work_dir),
        )
        if await process.wait() != 0:
            raise SippError(
                f"agent {self.user} could not register with {self.pbx_host}:{self.pbx_port}"
            )

    async def launch(self) -> None:
        # Registered from the port it then answers on: both happen again on a new port.
        await self.register()
        await super().launch()


@dataclass
class AgentPool(PhoneProcess):
    """Many agents' phones behind one port: each agent registers from it and one SIPp UAS
    answers all their calls at once. app_queue rings a member only while it is free, so a
    queue needs as many members as calls talking at once, and a SIPp process per member
    would cost more CPU than the calls under test."""

    #: Agent id -> its SIP secret.
    agents: dict[str, str] = field(default_factory=dict)
    pbx_host: str = "127.0.0.1"
    pbx_port: int = 5060

    async def launch(self) -> None:
        for user, secret in sorted(self.agents.items()):
            await AgentPhone(
                user=user,
                secret=secret,
                pbx_host=self.pbx_host,
                pbx_port=self.pbx_port,
                local_port=self.local_port,
                work_dir=self.work_dir,
            ).register()
        await super().launch()


@dataclass
class CitizenPhone(PhoneProcess):
    """A citizen's own phone that the hotline calls (a follow-up, a callback), listening on
    the address of the citizens trunk: it answers every call, then plays ``keys`` (a key
    script as for CitizenCall) and talks until the hotline hangs up or ``talk_ms`` passed."""

    keys: str = ""
    first_key_delay_ms: int = 3000
    key_gap_ms: int = 1500
    no_input_ms: int = 6000

    def scenario(self) -> str:
        steps = played_steps(
            self.keys,
            self.work_dir,
            f"citizen-phone-{self.user}-{self.local_port}",
            first_delay_ms=self.first_key_delay_ms,
            gap_ms=self.key_gap_ms,
            no_input_ms=self.no_input_ms,
        )
        return _render("citizen_phone.xml.j2", steps=steps, ring_ms=self.ring_ms,
                       talk_ms=self.talk_ms)
