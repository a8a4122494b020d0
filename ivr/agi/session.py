"""One FastAGI call: the header Asterisk sent, commands and their replies, and the Channel
protocol the menu interpreter drives.

Hang-up handling: Asterisk writes a line ``HANGUP`` on the socket as soon as the channel
hangs up, whether or not a command is running, so it may arrive in place of the reply we
wait for. Any ``HANGUP`` line, a ``511`` reply (command not permitted on a dead channel),
end of stream or a reset connection marks the session hung up and raises
:class:`CallerHungUp`; every later command raises it too without sending anything, so a
reply still in flight can never be taken for the answer to a later command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ivr.agi.protocol import (
    AgiCommandError,
    AgiError,
    AgiProtocolError,
    AgiResult,
    AgiTimeout,
    build_command,
    parse_reply,
    script_name,
)
from ivr.channel import CallerHungUp, RecordingResult

DTMF_KEYS = "0123456789*#"
#: Asterisk records wav as 8 kHz signed linear; RECORD FILE reports its end in samples.
_WAV_SAMPLES_PER_SECOND = 8000
#: Lines of a "520-" usage text we are willing to skip before giving up.
_MAX_USAGE_LINES = 200
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class RecordFileResult:
    ended_by: str  # "dtmf", "timeout" (max length or silence) or "hangup"
    digit: str | None
    end_samples: int


class AgiSession:
    """A live FastAGI connection for one call. Built by :class:`ivr.agi.server.FastAgiServer`.

    Prompt and recording paths given to the Channel methods are relative to the home
    directory, without extension; ``sounds_root`` is where Asterisk sees that directory.
    """

    def __init__(
        self,
        variables: Mapping[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        sounds_root: str,
        command_timeout_s: float = 30.0,
        media_timeout_s: float = 600.0,
        exec_timeout_s: float = 4 * 3600.0,
        log: Any = None,
    ) -> None:
        self.variables: dict[str, str] = dict(variables)
        self._reader = reader
        self._writer = writer
        self._sounds_root = sounds_root.rstrip("/")
        self.command_timeout_s = command_timeout_s
        self.media_timeout_s = media_timeout_s
        self.exec_timeout_s = exec_timeout_s
        self._lock = asyncio.Lock()
        self._hung_up = False
        self._broken: str | None = None
        self.log = (log or structlog.get_logger(__name__)).bind(uniqueid=self.uniqueid)

    # -- header -------------------------------------------------------------------------

    @property
    def uniqueid(self) -> str:
        return self.variables.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.variables.get("agi_channel", "")

    @property
    def caller_id(self) -> str | None:
        return self._known("agi_callerid")

    @property
    def caller_name(self) -> str | None:
        return self._known("agi_calleridname")

    @property
    def dnid(self) -> str | None:
        return self._known("agi_dnid")

    @property
    def script(self) -> str:
        return script_name(self.variables)

    @property
    def args(self) -> list[str]:
        """agi_arg_1, agi_arg_2, ... in order, stopping at the first gap."""
        found: list[str] = []
        while (value := self.variables.get(f"agi_arg_{len(found) + 1}")) is not None:
            found.append(value)
        return found

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def _known(self, key: str) -> str | None:
        # Asterisk writes the word "unknown" where the value is absent.
        value = self.variables.get(key)
        return None if value in (None, "", _UNKNOWN) else value

    # -- raw commands -------------------------------------------------------------------

    async def command(self, text: str, *args: str, timeout_s: float | None = None) -> AgiResult:
        """Send ``text`` (the command words) followed by each of ``args`` quoted; return
        the 200 reply. Raises CallerHungUp, AgiCommandError (510/520), AgiTimeout, or
        ValueError (CR/LF/NUL in any part; then nothing at all is sent)."""
        line = build_command(text, args)
        if self._hung_up:
            raise CallerHungUp(f"channel {self.channel} already hung up")
        if self._broken is not None:
            raise AgiError(f"AGI session unusable: {self._broken}")
        limit = self.command_timeout_s if timeout_s is None else timeout_s
        async with self._lock:
            try:
                async with asyncio.timeout(limit):
                    self._writer.write(line.encode("utf-8"))
                    await self._writer.drain()
                    return await self._read_reply(text)
            except TimeoutError:
                self._broken = f"no reply to {text!r} within {limit:g} s"
                raise AgiTimeout(self._broken) from None
            except (ConnectionError, OSError) as exc:
                self._hung_up = True
                raise CallerHungUp(f"AGI connection lost: {exc}") from exc

    async def _read_reply(self, command: str) -> AgiResult:
        while True:
            text = await self._read_line()
            if text == "HANGUP":
                self._hung_up = True
                raise CallerHungUp("Asterisk signalled HANGUP")
            if not text:
                continue
            reply = self._parse(text)
            if reply.code == 100:  # "100 result=0 Trying..."; the real reply follows
                continue
            if reply.code == 200:
                return reply
            if reply.code == 511:
                self._hung_up = True
                raise CallerHungUp(f"dead channel: {text}")
            if reply.code == 520 and text.startswith("520-"):
                await self._skip_usage_text()
            raise AgiCommandError(command, text)

    async def _skip_usage_text(self) -> None:
        for _ in range(_MAX_USAGE_LINES):
            if (await self._read_line()).startswith("520 "):
                return
        self._broken = "endless 520 usage text"
        raise AgiProtocolError(self._broken)

    async def _read_line(self) -> str:
        try:
            raw = await self._reader.readline()
        except ValueError:  # longer than the stream's limit: the rest of the line is lost
            self._broken = "reply line over the size limit"
            raise AgiProtocolError(self._broken) from None
        if not raw.endswith(b"\n"):
            self._hung_up = True
            raise CallerHungUp("AGI connection closed by Asterisk")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def _parse(self, text: str) -> AgiResult:
        try:
            return parse_reply(text)
        except AgiProtocolError:
            self._broken = f"unparsable reply {text[:80]!r}"
            raise

    # -- typed commands -----------------------------------------------------------------

    async def answer(self) -> None:
        reply = await self.command("ANSWER")
        if reply.result_int() < 0:
            raise AgiCommandError("ANSWER", "failed to answer the channel")

    async def stream_file(self, path: str, escape_digits: str = "") -> str | None:
        """Play ``path`` (PBX path without extension); return the key that stopped it."""
        _check_keys(escape_digits)
        reply = await self.command(
            "STREAM FILE", path, escape_digits, timeout_s=self.media_timeout_s
        )
        code = reply.result_int()
        if code < 0:
            # -1 is also what a missing sound file gives; a real hang-up shows up as
            # HANGUP/511 on the next command, so a broken prompt does not end the call.
            self.log.warning("agi.playback_failed", path=path)
            return None
        return chr(code) if code > 0 else None

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> str:
        """GET DATA: play ``path`` then collect up to ``max_digits`` ending with '#'.
        Returns the keys typed (possibly "" on timeout)."""
        budget = self.media_timeout_s + max(timeout_ms, 0) / 1000 * max(max_digits, 1)
        reply = await self.command(
            "GET DATA", path, str(timeout_ms), str(max_digits), timeout_s=budget
        )
        if reply.result == "-1":
            self._hung_up = True
            raise CallerHungUp("GET DATA returned -1")
        return reply.result

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        budget = self.command_timeout_s + max(timeout_ms, 0) / 1000
        reply = await self.command("WAIT FOR DIGIT", str(timeout_ms), timeout_s=budget)
        code = reply.result_int()
        if code < 0:
            self._hung_up = True
            raise CallerHungUp("WAIT FOR DIGIT returned -1")
        return chr(code) if code > 0 else None

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command("GET VARIABLE", name)
        return (reply.data or "") if reply.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        """Evaluate ``expression`` (e.g. ``${CALLERID(name)}``) on the channel. Never pass
        caller-supplied text here: functions such as SHELL() would run."""
        reply = await self.command("GET FULL VARIABLE", expression)
        return (reply.data or "") if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def exec(self, app: str, *args: str, timeout_s: float | None = None) -> int:
        """Run a dialplan application; returns its result (-1 usually means hang-up).
        Each of ``args`` is one application argument; they are joined with commas, so a
        comma inside one is refused rather than silently splitting it."""
        for arg in args:
            if "," in arg:
                raise ValueError(f"application argument contains a comma: {arg!r}")
        limit = self.exec_timeout_s if timeout_s is None else timeout_s
        reply = await self.command("EXEC", app, ",".join(args), timeout_s=limit)
        code = reply.result_int()
        if code == -2:
            raise AgiCommandError(f"EXEC {app}", "application not found")
        return code

    async def record_file(
        self,
        path: str,
        fmt: str,
        escape_digits: str,
        timeout_ms: int,
        *,
        beep: bool = True,
        silence_s: int = 0,
    ) -> RecordFileResult:
        """RECORD FILE into ``path`` (PBX path without extension). A hang-up ends the
        recording normally (the file is kept): it is reported, and the session is dead."""
        _check_keys(escape_digits)
        # A sample offset of 0 is always given so that BEEP and s= land where Asterisk
        # looks for them (argv[7] and later).
        args = [path, fmt, escape_digits, str(timeout_ms), "0"]
        if beep:
            args.append("BEEP")
        if silence_s > 0:
            args.append(f"s={silence_s}")
        budget = self.command_timeout_s + max(timeout_ms, 0) / 1000
        reply = await self.command("RECORD FILE", *args, timeout_s=budget)
        samples = int(reply.extra.get("endpos", "0") or 0)
        code = reply.result_int()
        if reply.data == "dtmf":
            return RecordFileResult("dtmf", chr(code), samples)
        if reply.data == "hangup":
            self._hung_up = True
            return RecordFileResult("hangup", None, samples)
        if reply.data == "timeout" and code >= 0:
            return RecordFileResult("timeout", None, samples)
        raise AgiCommandError("RECORD FILE", f"result={reply.result} ({reply.data})")

    async def hangup(self) -> None:
        await self.command("HANGUP")
        self._hung_up = True

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, str(level))

    # -- ivr.channel.Channel --------------------------------------------------------------

    def sound_path(self, relative: str) -> str:
        """The PBX's path for a path relative to the home directory."""
        if relative.startswith("/") or ".." in relative.split("/") or not relative:
            raise ValueError(f"sound path must be relative to the home directory: {relative!r}")
        return f"{self._sounds_root}/{relative}"

    async def play(self, prompts: Sequence[str], *, interrupt_keys: str = "") -> str | None:
        for prompt in prompts:
            key = await self.stream_file(self.sound_path(prompt), interrupt_keys)
            if key is not None:
                return key
        return None

    async def read_digits(
        self,
        prompts: Sequence[str],
        *,
        max_digits: int,
        timeout_s: float,
        terminator: str = "#",
    ) -> str:
        """Keys typed during the prompts count. Ends at ``max_digits``, at ``terminator``
        (not included), or after ``timeout_s`` without a key; returns what was typed so
        far, "" if nothing."""
        if max_digits < 1:
            raise ValueError("max_digits must be at least 1")
        if len(terminator) > 1 or (terminator and terminator not in DTMF_KEYS):
            raise ValueError(f"terminator must be one DTMF key or empty: {terminator!r}")
        digits = ""
        first = await self.play(prompts, interrupt_keys=DTMF_KEYS)
        if first is not None:
            if first == terminator:
                return ""
            digits = first
        timeout_ms = max(int(timeout_s * 1000), 1)
        while len(digits) < max_digits:
            key = await self.wait_for_digit(timeout_ms)
            if key is None or key == terminator:
                break
            digits += key
        return digits

    async def record(
        self, path: str, *, max_seconds: int, silence_seconds: int, beep: bool = True
    ) -> RecordingResult:
        """Record into ``path`` (relative to the home, wav); '#' ends it. A hang-up also
        ends it and is reported as ``ended_by="hangup"`` (the next call raises)."""
        outcome = await self.record_file(
            self.sound_path(path),
            "wav",
            "#",
            max_seconds * 1000,
            beep=beep,
            silence_s=silence_seconds,
        )
        seconds = outcome.end_samples / _WAV_SAMPLES_PER_SECOND
        ended_by = outcome.ended_by
        # Asterisk reports silence and the length limit alike as "(timeout)".
        if ended_by == "timeout" and silence_seconds > 0 and seconds < max_seconds - 1:
            ended_by = "silence"
        return RecordingResult(path=path, seconds=seconds, ended_by=ended_by)


def _check_keys(keys: str) -> None:
    bad = [k for k in keys if k not in DTMF_KEYS]
    if bad:
        raise ValueError(f"not DTMF keys: {''.join(bad)!r}")
