"""The FastAGI server: the panoramisk freeze it replaces, header limits, the failure path."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
import structlog

from ivr.agi import AgiSession, FastAgiServer
from ivr.channel import CallerHungUp

STEP_S = 2.0
#: A probe that is not served within this time means the event loop is not running.
FROZEN_AFTER_S = 0.5
PROBE_HEADER = (
    b"agi_network: yes\nagi_network_script: probe\nagi_uniqueid: 1700000000.9\n"
    b"agi_channel: PJSIP/probe-1\n\n"
)
PARTIAL_HEADER = b"agi_network: yes\nagi_network_script: ivr\n"  # no blank line, then EOF

PANORAMISK_FASTAGI = textwrap.dedent(
    """
    import asyncio
    from panoramisk.fast_agi import Application

    async def probe(request):
        await request.send_command('VERBOSE "alive" 1')

    async def main():
        app = Application(loop=asyncio.get_running_loop())
        app.add_route("probe", probe)
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(30)

    asyncio.run(main())
    """
)


async def probe_is_served(port: int) -> bool:
    """Make a well-formed AGI request; True if the server's handler sends its command."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(PROBE_HEADER)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), FROZEN_AFTER_S)
        writer.write(b"200 result=1\n")
        await writer.drain()
        return line == b'VERBOSE "alive" "1"\n' or line == b'VERBOSE "alive" 1\n'
    except TimeoutError:
        return False
    finally:
        writer.close()


async def send_and_close(port: int, data: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # Let the server's loop see the end of stream before anything else happens.
    await asyncio.sleep(0.2)


async def test_panoramisk_fastagi_freezes_on_a_partial_header() -> None:
    """The defect this server exists for: run in a child process because the frozen loop
    can only be stopped by killing it."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PANORAMISK_FASTAGI, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        port = int(await asyncio.wait_for(child.stdout.readline(), 10))
        assert await probe_is_served(port)
        await send_and_close(port, PARTIAL_HEADER)
        assert not await probe_is_served(port), "panoramisk 1.4 no longer freezes?"
    finally:
        child.kill()
        await child.wait()


@pytest.fixture
async def server() -> AsyncIterator[FastAgiServer]:
    async def probe(session: AgiSession) -> None:
        await session.verbose("alive")

    agi = FastAgiServer(port=0, sounds_root="/srv/ivr-home", header_timeout_s=0.3)
    agi.register("probe", probe)
    await agi.start()
    try:
        yield agi
    finally:
        await agi.close()


async def test_our_server_survives_a_partial_header(server: FastAgiServer) -> None:
    with structlog.testing.capture_logs() as logs:
        assert await probe_is_served(server.port)
        await send_and_close(server.port, PARTIAL_HEADER)
        assert await probe_is_served(server.port)
    assert "agi.header_incomplete" in [entry["event"] for entry in logs]


async def test_port_zero_exposes_the_bound_port(server: FastAgiServer) -> None:
    assert server.port > 0


async def rejected_with(server: FastAgiServer, data: bytes, close: bool = False) -> str:
    """Send ``data``; return the log event of the server dropping the connection."""
    with structlog.testing.capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(data)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), STEP_S) == b""
        writer.close()
    return str(logs[-1]["event"])


async def test_slow_peer_is_dropped_after_the_header_timeout(server: FastAgiServer) -> None:
    assert await rejected_with(server, b"agi_network: yes\n") == "agi.header_timeout"


async def test_oversized_or_garbage_headers_are_dropped(server: FastAgiServer) -> None:
    big = b"".join(b"agi_x%d: %s\n" % (i, b"y" * 200) for i in range(100))
    many = b"agi_x: 1\n" * 300
    huge_line = b"agi_x: " + b"z" * 70_000 + b"\n"
    for data in (big, many, huge_line, b"GET / HTTP/1.0\r\n\r\n", b"agi_x: \xff\xfe\n\n", b"\n"):
        assert await rejected_with(server, data) == "agi.header_rejected", data[:20]
    assert await probe_is_served(server.port)


async def test_unknown_script_answers_failure(server: FastAgiServer) -> None:
    with structlog.testing.capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network_script: nope?x=1\nagi_uniqueid: 42.1\n\n")
        assert await asyncio.wait_for(reader.read(), STEP_S) == b"FAILURE\n"
        writer.close()
    [entry] = [e for e in logs if e["event"] == "agi.unknown_script"]
    assert entry["uniqueid"] == "42.1"
    assert entry["script"] == "nope"


async def test_handler_exception_is_logged_with_uniqueid_and_answers_failure() -> None:
    async def broken(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("bug in the IVR")

    agi = FastAgiServer(port=0, sounds_root="/s")
    agi.register("ivr", broken)
    await agi.start()
    try:
        with structlog.testing.capture_logs() as logs:
            reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
            writer.write(b"agi_network_script: ivr\nagi_uniqueid: 77.3\n\n")
            assert await asyncio.wait_for(reader.readline(), STEP_S) == b"ANSWER\n"
            writer.write(b"200 result=0\n")
            assert await asyncio.wait_for(reader.read(), STEP_S) == b"FAILURE\n"
            writer.close()
        [entry] = [e for e in logs if e["event"] == "agi.handler_failed"]
        assert entry["uniqueid"] == "77.3"
        assert entry["log_level"] == "error"
    finally:
        await agi.close()


async def test_caller_hang_up_is_not_a_failure() -> None:
    async def hung(session: AgiSession) -> None:
        raise CallerHungUp("gone")

    agi = FastAgiServer(port=0, sounds_root="/s")
    agi.register("ivr", hung)
    await agi.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
        writer.write(b"agi_network_script: ivr\nagi_uniqueid: 1.1\n\n")
        assert await asyncio.wait_for(reader.read(), STEP_S) == b""
        writer.close()
    finally:
        await agi.close()


async def test_close_cancels_live_sessions_and_cancellation_propagates() -> None:
    started = asyncio.Event()
    seen: list[str] = []

    async def long_call(session: AgiSession) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    agi = FastAgiServer(port=0, sounds_root="/s")
    agi.register("ivr", long_call)
    await agi.start()
    port = agi.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network_script: ivr\nagi_uniqueid: 1.2\n\n")
    await asyncio.wait_for(started.wait(), STEP_S)
    assert agi.active_sessions == 1
    await asyncio.wait_for(agi.close(), STEP_S)
    assert seen == ["cancelled"]
    assert agi.active_sessions == 0
    assert await asyncio.wait_for(reader.read(), STEP_S) == b""  # no FAILURE on shutdown
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def test_register_checks_names_and_handlers() -> None:
    async def handler(session: AgiSession) -> None:
        pass

    def not_async(session: AgiSession) -> None:
        pass

    agi = FastAgiServer(sounds_root="/s")
    agi.register("/ivr", handler)
    with pytest.raises(ValueError, match="already"):
        agi.register("ivr", handler)
    with pytest.raises(ValueError):
        agi.register("x?y", handler)
    with pytest.raises(TypeError):
        agi.register("sync", not_async)  # type: ignore[arg-type]
