"""Issue 8.1: the FastAGI port under abuse. Slow senders, oversized headers, binary garbage,
bursts of connects and peers that vanish mid-command: each bad connection is closed and
logged, nothing piles up (sessions, file descriptors, memory) and good calls are still
served."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import socket
import struct
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog
from test_agi_server import PROBE_HEADER, STEP_S, probe_is_served

from ivr.agi import AgiSession, FastAgiServer

HEADER_TIMEOUT_S = 0.4
#: The events the server logs when it drops a connection that never became a call.
DROPPED = {"agi.header_timeout", "agi.header_incomplete", "agi.header_rejected"}
CALL_HEADER = b"agi_network: yes\nagi_network_script: call\nagi_uniqueid: 1700000000.7\n\n"


@pytest.fixture
async def server() -> AsyncIterator[FastAgiServer]:
    async def probe(session: AgiSession) -> None:
        await session.verbose("alive")

    async def call(session: AgiSession) -> None:
        # Waits for replies like a real call's menu would.
        await session.answer()
        await session.stream_file("sounds/greeting", "0123456789")

    agi = FastAgiServer(port=0, sounds_root="/srv/ivr-home", header_timeout_s=HEADER_TIMEOUT_S)
    agi.register("probe", probe)
    agi.register("call", call)
    await agi.start()
    try:
        yield agi
    finally:
        await agi.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def wait_idle(server: FastAgiServer) -> None:
    """Until every connection's task has ended (the server closes the socket first)."""
    async with asyncio.timeout(10 * STEP_S):
        while server.active_sessions:  # noqa: ASYNC110 - polls state the server owns
            await asyncio.sleep(0.01)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing; fails if it keeps the connection open."""
    try:
        return await asyncio.wait_for(reader.read(), STEP_S)
    except ConnectionError:  # reset, or our own late write hit the closed socket
        return b""


def events_of(logs: list[dict[str, Any]], names: set[str]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] in names]


async def send_slowly(port: int, data: bytes, gap_s: float) -> asyncio.StreamReader:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            await asyncio.sleep(gap_s)
    except ConnectionError:
        pass  # the server hung up on us: what a slow sender over the timeout gets
    return reader


async def test_slow_sender_within_the_header_timeout_is_served(server: FastAgiServer) -> None:
    header = b"agi_network_script: probe\nagi_uniqueid: 1.5\n\n"
    gap = HEADER_TIMEOUT_S / len(header) / 4
    reader = await send_slowly(server.port, header, gap)
    assert await asyncio.wait_for(reader.readline(), STEP_S) == b'VERBOSE "alive" "1"\n'


async def test_slow_sender_over_the_header_timeout_is_closed_and_logged(
    server: FastAgiServer,
) -> None:
    # Every byte arrives well within any per-read timeout: only a deadline on the whole
    # header stops a peer that trickles forever.
    gap = HEADER_TIMEOUT_S / 8
    with structlog.testing.capture_logs() as logs:
        slow = asyncio.create_task(send_slowly(server.port, PROBE_HEADER, gap))
        assert await probe_is_served(server.port)  # others are served meanwhile
        reader = await slow
        assert await closed_by_server(reader) == b""
        await wait_idle(server)
    assert [e["event"] for e in events_of(logs, DROPPED)] == ["agi.header_timeout"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"agi_x: " + b"y" * 200_000, id="one-endless-line"),
        pytest.param(b"".join(b"agi_v%d: %s\n" % (i, b"w" * 900) for i in range(40)), id="big"),
        pytest.param(b"agi_x: 1\n" * 5000, id="many-lines"),
    ],
)
async def test_oversized_header_is_closed_and_logged(server: FastAgiServer, data: bytes) -> None:
    with structlog.testing.capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(data)
        with_drain = asyncio.create_task(writer.drain())
        assert await closed_by_server(reader) == b""
        with_drain.cancel()
        writer.close()
        await wait_idle(server)
    [dropped] = events_of(logs, DROPPED)
    assert dropped["event"] == "agi.header_rejected"
    assert dropped["log_level"] == "warning"
    assert await probe_is_served(server.port)


async def test_binary_garbage_is_closed_and_logged(server: FastAgiServer) -> None:
    rng = random.Random(8)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))) for _ in range(60)]
    blobs += [b"\x00" * 100 + b"\n\n", b"\xff\xfe\n\n", b"\r\n\r\n", b"agi_\x00: 1\n\n"]
    with structlog.testing.capture_logs() as logs:
        for blob in blobs:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(blob)
            await writer.drain()
            # Garbage that stops short of a newline looks like the start of a header: the
            # deadline then closes it.
            assert await asyncio.wait_for(reader.read(), STEP_S) == b""
            writer.close()
        await wait_idle(server)
    assert len(events_of(logs, DROPPED)) == len(blobs)
    assert not events_of(logs, {"agi.handler_failed", "agi.unknown_script"})
    assert await probe_is_served(server.port)


async def abuse(port: int, kind: int) -> None:
    """One bad connection of the burst: connect and close, half a header, garbage, or a
    reset (RST instead of FIN)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == 1:
        writer.write(b"agi_network: yes\nagi_network_script: pro")
    elif kind == 2:
        writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n")
    elif kind == 3:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if kind == 2:
        await closed_by_server(reader)
    writer.close()


async def test_a_burst_of_bad_connects_leaves_nothing_behind(server: FastAgiServer) -> None:
    connects = 3000
    wave = 300
    await probe_is_served(server.port)  # warm up whatever is allocated once
    await wait_idle(server)
    gc.collect()
    fds_before = open_fds()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        with structlog.testing.capture_logs() as logs:
            for start in range(0, connects, wave):
                await asyncio.gather(
                    *(abuse(server.port, i % 4) for i in range(start, start + wave))
                )
                # Calls are still served in the middle of the burst.
                assert await probe_is_served(server.port)
            await wait_idle(server)
        del logs[:]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 512 * 1024, f"{grown} bytes still held after {connects} connects"
    assert server.active_sessions == 0
    assert open_fds() <= fds_before


async def test_every_connect_of_a_burst_is_logged(server: FastAgiServer) -> None:
    connects = 2000
    with structlog.testing.capture_logs() as logs:
        for start in range(0, connects, 250):
            await asyncio.gather(*(abuse(server.port, i % 4) for i in range(start, start + 250)))
        await wait_idle(server)
    assert len(events_of(logs, DROPPED)) == connects


Vanish = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def half_a_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"200 resu")
    await writer.drain()
    writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def endless_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"200 result=0 " + b"x" * 200_000)
    await writer.drain()


@pytest.mark.parametrize("vanish", [close_at_once, half_a_reply, reset, endless_reply])
async def test_client_vanishing_mid_command_ends_only_its_session(
    server: FastAgiServer, vanish: Vanish
) -> None:
    with structlog.testing.capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(CALL_HEADER)
        assert await asyncio.wait_for(reader.readline(), STEP_S) == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert (await asyncio.wait_for(reader.readline(), STEP_S)).startswith(b"STREAM FILE")
        await vanish(reader, writer)  # mid-command: STREAM FILE waits for its reply
        assert await probe_is_served(server.port)
        await wait_idle(server)
        writer.close()
    ended = [e for e in logs if e.get("uniqueid") == "1700000000.7" and e["log_level"] != "debug"]
    assert ended, "the vanished call's end was not logged"
    if vanish is endless_reply:
        # Not a hang-up but a broken peer: logged as a failure, told FAILURE, closed.
        assert [e["event"] for e in ended] == ["agi.handler_failed"]
    else:
        assert [e["event"] for e in ended] == ["agi.caller_hung_up"]
    assert server.active_sessions == 0
