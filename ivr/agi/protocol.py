"""The FastAGI wire format as pure functions: header lines, command lines, reply lines.

No I/O here; ``session`` and ``server`` do the socket work. Asterisk splits a command line
into arguments on blanks, honouring double quotes and backslash escapes (``parse_args`` in
res_agi.c), and treats a newline as the end of the command. So every argument is sent
quoted and escaped, and a CR, LF or NUL inside any value is refused outright: caller-supplied
text (a SIP display name, say) must never be able to start a second command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_LINE_BREAKERS = ("\r", "\n", "\x00")
_HEADER_KEY = re.compile(r"agi_[A-Za-z0-9_]+\Z")
_REPLY = re.compile(r"(?P<code>\d{3})(?P<sep>[ -]|\Z)(?P<rest>.*)\Z")
_RESULT = re.compile(r"result=(?P<value>\S*)(?P<tail>.*)\Z")
# Greedy ``.*`` picks the last ")" that is followed only by key=value pairs, so data that
# itself contains parentheses (a variable's value) stays whole.
_DATA_THEN_PAIRS = re.compile(r"\s*\((?P<data>.*)\)(?P<pairs>(?:\s+\w+=\S*)*)\s*\Z")
_PAIR = re.compile(r"(?P<key>\w+)=(?P<value>\S*)")


class AgiError(Exception):
    """Base of every FastAGI failure other than the caller hanging up."""


class AgiProtocolError(AgiError):
    """The peer sent something that is not FastAGI."""


class AgiCommandError(AgiError):
    """Asterisk refused or failed a command (510 unknown command, 520 usage, app missing)."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"AGI command {command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class AgiTimeout(AgiError):
    """No reply in time; the session is unusable afterwards (a late reply would desync it)."""


@dataclass(frozen=True)
class AgiResult:
    """One parsed reply such as ``200 result=49 (dtmf) endpos=1234``."""

    code: int
    result: str = ""
    data: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def result_int(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            raise AgiProtocolError(f"expected a number in result={self.result!r}") from None


def check_line_safe(value: str, what: str) -> None:
    """Refuse a value that could end the current AGI/AMI line and start another."""
    if any(ch in value for ch in _LINE_BREAKERS):
        raise ValueError(f"{what} contains CR, LF or NUL, refused: {value!r}")


def quote_argument(argument: str) -> str:
    check_line_safe(argument, "AGI argument")
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def build_command(words: str, arguments: Sequence[str]) -> str:
    """``words`` is the fixed command ("STREAM FILE"); each argument is quoted."""
    check_line_safe(words, "AGI command")
    if not words.strip():
        raise ValueError("empty AGI command")
    return " ".join([words.strip(), *(quote_argument(a) for a in arguments)]) + "\n"


def parse_reply(line: str) -> AgiResult:
    """Parse one reply line (without its newline). ``HANGUP`` is handled by the caller."""
    match = _REPLY.match(line)
    if match is None:
        raise AgiProtocolError(f"not an AGI reply: {line!r}")
    code = int(match["code"])
    rest = match["rest"]
    if code != 200:
        return AgiResult(code=code, data=rest)
    result = _RESULT.match(rest)
    if result is None:
        raise AgiProtocolError(f"200 reply without result=: {line!r}")
    tail = result["tail"]
    data: str | None = None
    pairs = tail
    with_data = _DATA_THEN_PAIRS.match(tail)
    if with_data is not None:
        data = with_data["data"]
        pairs = with_data["pairs"]
    extra = {m["key"]: m["value"] for m in _PAIR.finditer(pairs)}
    return AgiResult(code=200, result=result["value"], data=data, extra=extra)


def parse_header_line(line: str) -> tuple[str, str]:
    """``agi_callerid: 10086`` -> ("agi_callerid", "10086"); anything else is garbage."""
    key, sep, value = line.partition(": ")
    if not sep and line.endswith(":"):
        key, value = line[:-1], ""
    elif not sep:
        raise AgiProtocolError(f"header line is not 'agi_name: value': {line[:80]!r}")
    if _HEADER_KEY.match(key) is None:
        raise AgiProtocolError(f"header name is not agi_*: {key[:80]!r}")
    return key, value


def script_name(variables: Mapping[str, str]) -> str:
    """The handler name: the path of agi://host:port/NAME?query, without slash or query."""
    script = variables.get("agi_network_script")
    if script is None:
        request = variables.get("agi_request", "")
        script = urlsplit(request).path if "://" in request else request
    return script.split("?", 1)[0].strip("/")
