"""Issue 8.4: hostile caller ID on real SIP calls. Line breaks (percent-escaped in the From
user, where SIP allows them), quotes, shell and SQL fragments, HTML, overlong and
non-UTF-8 text, terminal escapes: no AGI command or AMI action is injected, no shell runs,
the ticket stores what Asterisk received and the CLI shows it escaped. Dialled strings
that are not one of the hotline's numbers are refused.

"As received" means as Asterisk hands it over: PJSIP keeps at most 79 bytes of a display
name or user part, keeps a quoted display name's backslashes, and decodes %XX in the user
part, where a ";" starts user options Asterisk drops; bytes that are not UTF-8 are stored
as U+FFFD."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from hotline_stack import HotlineStack

from ivr.sipp.peers import CitizenCall

PWNED = Path(f"/tmp/pwned-{uuid.uuid4().hex[:8]}")
#: PJSIP copies caller ID into 80-byte buffers (chan_pjsip's cid_name/cid_num).
PJSIP_KEEPS_BYTES = 79
#: Display names as they go between the quotes of the From header (so with SIP's
#: backslash escapes), each paired with the caller number it is sent from.
HOSTILE_NAMES = {
    "13900000901": 'Zhang \\"San\\" \\\\ O\'Brien',
    "13900000902": f"$(touch {PWNED}) `touch {PWNED}` ; rm -rf /",
    "13900000903": "'); DROP TABLE tickets;--",
    "13900000904": "<script>alert(1)</script><b>x</b>",
    "13900000905": "长" * 100 + "x" * 200,
    "13900000906": os.fsdecode(b"\xff\xfe\xc3(ok"),
    # Quoted-pairs carrying ESC and BEL (an OSC title change) and a C1 CSI: legal SIP.
    "13900000907": "a\\\x1b]0;owned\\\x07b\u009b31mc",
}
#: From users: %0D%0A is a line break once Asterisk decodes the URI.
HOSTILE_NUMBERS = {
    "13900000911%0D%0AEXEC%20System%20id": "13900000911\r\nEXEC System id",
    "139'OR'1'='1--$(id)": "139'OR'1'='1--$(id)",
    "%0AHANGUP%0A13900000913": "\nHANGUP\n13900000913",
}
#: What the controller logs when the AGI stream is not what it should be.
AGI_TROUBLE = ("agi.header_rejected", "agi.header_incomplete", "agi.handler_failed")


def as_received(sent: str) -> str:
    raw = sent.encode("utf-8", "surrogateescape")[:PJSIP_KEEPS_BYTES]
    return raw.decode("utf-8", errors="replace")


def same_text(stored: str, expected: str) -> bool:
    """Equal, allowing the cut through a multi-byte character to show as U+FFFD or not."""
    return stored.rstrip("\ufffd") == expected.rstrip("\ufffd")


async def place(stack: HotlineStack, calls: list[CitizenCall]) -> list[dict[str, Any]]:
    """Run the calls a few at a time; each must leave exactly one ended ticket."""
    gate = asyncio.Semaphore(4)

    async def one(call: CitizenCall) -> dict[str, Any]:
        async with gate:
            assert await call.run() == 0, call.caller
        ticket = await stack.ticket_of(call)
        assert ticket is not None and ticket["ended_at"] is not None, call.caller
        return ticket

    return await asyncio.gather(*(one(call) for call in calls))


def ivr_cli(stack: HotlineStack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "--home", str(stack.home.root), "tickets", *args],
        capture_output=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


def assert_terminal_safe(output: str) -> None:
    """Nothing a terminal would act on: no C0 control but the line ends, no DEL, no C1."""
    unsafe = {c for c in output if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F}
    assert not unsafe, sorted(unsafe)


async def test_hostile_caller_id_is_stored_intact_and_shown_escaped(
    hotline: HotlineStack,
) -> None:
    named = [
        hotline.citizen("12345", number, "1", caller_name=name, wait_timeout_seconds=2)
        for number, name in HOSTILE_NAMES.items()
    ]
    numbered = [
        hotline.citizen("12345", user, "1", caller_name="x", wait_timeout_seconds=2)
        for user in HOSTILE_NUMBERS
    ]
    tickets = await place(hotline, named + numbered)

    for ticket, (number, name) in zip(tickets, HOSTILE_NAMES.items(), strict=False):
        assert ticket["caller"] == number
        assert same_text(ticket["caller_name"], as_received(name)), (ticket["caller_name"], name)
    assert tickets[5]["caller_name"].startswith("\ufffd\ufffd")  # the bytes that are not UTF-8
    for ticket, expected in zip(tickets[len(named) :], HOSTILE_NUMBERS.values(), strict=True):
        assert ticket["caller"] == expected
        assert ticket["outcome"] == "caller_hung_up"  # the menus ran: no fallback
    assert len(await hotline.tickets()) == len(named) + len(numbered)

    log = hotline.controller_log()
    assert not [trouble for trouble in AGI_TROUBLE if trouble in log], log
    assert not PWNED.exists()

    listing = ivr_cli(hotline, "list", "--limit", "100")
    assert_terminal_safe(listing)
    assert "\\r\\nEXEC System id" in listing  # shown, escaped
    for ticket in tickets:
        shown = ivr_cli(hotline, "show", ticket["id"])
        assert_terminal_safe(shown)
    shown = ivr_cli(hotline, "show", tickets[6]["id"])
    assert "\\x1b]0;owned" in shown and "\\x9b31mc" in shown
    as_json = ivr_cli(hotline, "show", tickets[6]["id"], "--json")
    assert_terminal_safe(as_json)


async def test_dialled_strings_other_than_the_lines_are_refused(hotline: HotlineStack) -> None:
    dialled = ["12345abc", "*12345", "1" * 40, "12345%3Bx", "0012345"]
    calls = [
        hotline.citizen(number, "13900000921", "1", wait_timeout_seconds=2) for number in dialled
    ]
    for call in calls:
        assert await call.run() == 0
        messages = call.message_file.read_text(errors="replace")
        assert "SIP/2.0 404" in messages or "SIP/2.0 403" in messages, call.line
        assert "SIP/2.0 200" not in messages, call.line
    assert await hotline.tickets() == []
