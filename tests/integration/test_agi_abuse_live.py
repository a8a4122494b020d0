"""Issue 8.1 on the real stack: a citizen's call goes through the menus to the right agent
while the controller's FastAGI port takes every abuse at once (bursts of connects, half
headers, resets, slow senders, oversized headers, binary garbage). Each bad connection is
logged and the controller's own sessions are back to zero afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct

from hotline_stack import HotlineStack
from test_hangups_live import assert_no_controller_error

BURST = 400
#: What the controller logs for a connection it drops before it becomes a call.
DROPPED = ("agi.header_timeout", "agi.header_incomplete", "agi.header_rejected")


async def bad_connection(port: int, kind: int, rng: random.Random) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == 0:  # connect and go
            pass
        elif kind == 1:  # half a header
            writer.write(b"agi_network: yes\nagi_network_script: ivr\nagi_chan")
        elif kind == 2:  # binary garbage
            writer.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
        elif kind == 3:  # oversized header
            writer.write(b"agi_x: " + b"y" * 100_000 + b"\n")
        elif kind == 4:  # a reset instead of a close
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:  # a slow sender, byte by byte, until the controller hangs up
            for byte in b"agi_network: yes\nagi_request: agi://127.0.0.1/ivr\n":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.3)
        await writer.drain()
    except ConnectionError:
        pass  # the controller closed it first: what it should do
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def abuse_until(port: int, done: asyncio.Event) -> int:
    """Waves of bad connections of every kind until ``done``; how many were made."""
    rng = random.Random(81)
    made = 0
    while not done.is_set():
        await asyncio.gather(
            *(bad_connection(port, (made + i) % 6, rng) for i in range(BURST)),
            return_exceptions=True,
        )
        made += BURST
    return made


async def test_a_live_call_completes_while_the_agi_port_is_abused(hotline: HotlineStack) -> None:
    done = asyncio.Event()
    abuser = asyncio.create_task(abuse_until(hotline.settings.controller.agi_port, done))
    try:
        ticket = await hotline.call("12345", "13900000851", keys="11")
    finally:
        done.set()
        made = await abuser

    assert made >= BURST
    assert ticket["_sipp_exit"] == 0
    assert ticket["_answered_by"] == "1009" and ticket["agent"] == "1009"
    assert ticket["outcome"] == "answered" and ticket["unit"] == "d-east"
    assert ticket["ivr_path"][:3] == ["hotline_12345", "main_menu", "consultation"]
    assert len(await hotline.tickets()) == 1
    # Every bad connection was closed and logged (the last ones may still be on the way).
    async with asyncio.timeout(30):
        while (dropped := logged_drops(hotline)) < made:  # noqa: ASYNC110 - a log file
            await asyncio.sleep(0.2)
    assert dropped == made
    assert_no_controller_error(hotline)


def logged_drops(stack: HotlineStack) -> int:
    log = (stack.home.var_dir / "log" / "controller.log").read_text(errors="replace")
    return sum(log.count(f'"event": "{event}"') for event in DROPPED)
