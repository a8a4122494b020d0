"""AgiSession over a real socket: the test plays Asterisk, line by line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ivr.agi import AgiCommandError, AgiSession, AgiTimeout, FastAgiServer
from ivr.channel import CallerHungUp, Channel, RecordingResult

STEP_S = 2.0
SOUNDS = "/srv/ivr-home"


class FakeAsterisk:
    """The Asterisk side of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def call(cls, port: int, **header: str) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        variables = {
            "agi_network": "yes",
            "agi_network_script": "ivr",
            "agi_request": f"agi://127.0.0.1:{port}/ivr",
            "agi_channel": "PJSIP/trunk-00000001",
            "agi_uniqueid": "1700000000.1",
            "agi_callerid": "13800138000",
            "agi_calleridname": "张三",
            "agi_dnid": "12345",
            **header,
        }
        writer.write("".join(f"{k}: {v}\n" for k, v in variables.items()).encode() + b"\n")
        await writer.drain()
        return cls(reader, writer)

    async def expect(self, command: str) -> None:
        line = await asyncio.wait_for(self.reader.readline(), STEP_S)
        assert line.decode() == command + "\n"

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\n" for line in lines).encode())
        await self.writer.drain()

    async def exchange(self, command: str, *replies: str) -> None:
        await self.expect(command)
        await self.send(*replies)

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        return await asyncio.wait_for(self.reader.read(), STEP_S)


Script = Callable[[AgiSession], Awaitable[Any]]
Dialog = Callable[[FakeAsterisk], Awaitable[None]]


async def run_call(script: Script, dialog: Dialog, **server_options: Any) -> Any:
    """Run ``script`` as the AGI handler while ``dialog`` plays Asterisk; return what
    the script returned (or raise what it raised)."""
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(session: AgiSession) -> None:
        try:
            outcome.set_result(await script(session))
        except Exception as exc:
            outcome.set_exception(exc)
            raise

    options: dict[str, Any] = {"header_timeout_s": 1.0, "command_timeout_s": 1.0}
    options.update(server_options)
    server = FastAgiServer(port=0, sounds_root=SOUNDS, **options)
    server.register("ivr", handler)
    await server.start()
    fake = await FakeAsterisk.call(server.port)
    try:
        await dialog(fake)
        return await asyncio.wait_for(outcome, STEP_S)
    finally:
        fake.writer.close()
        await server.close()


async def test_header_is_exposed() -> None:
    async def script(session: AgiSession) -> tuple[object, ...]:
        return (
            session.uniqueid,
            session.channel,
            session.caller_id,
            session.caller_name,
            session.dnid,
            session.args,
            session.script,
        )

    async def dialog(fake: FakeAsterisk) -> None:
        pass

    reply = await run_call(script, dialog)
    assert reply == (
        "1700000000.1",
        "PJSIP/trunk-00000001",
        "13800138000",
        "张三",
        "12345",
        [],
        "ivr",
    )


async def test_args_and_unknown_values() -> None:
    async def script(session: AgiSession) -> tuple[object, ...]:
        return session.args, session.caller_id, session.caller_name

    server = FastAgiServer(port=0, sounds_root=SOUNDS)
    seen: asyncio.Future[tuple[object, ...]] = asyncio.get_running_loop().create_future()

    async def handler(session: AgiSession) -> None:
        seen.set_result(await script(session))

    server.register("ivr", handler)
    await server.start()
    try:
        fake = await FakeAsterisk.call(
            server.port,
            agi_callerid="unknown",
            agi_calleridname="unknown",
            agi_arg_1="12315",
            agi_arg_2="",
            agi_arg_4="gap: not an argument",
        )
        assert await asyncio.wait_for(seen, STEP_S) == (["12315", ""], None, None)
        fake.writer.close()
    finally:
        await server.close()


async def test_stream_file_digit_and_no_digit() -> None:
    async def script(session: AgiSession) -> list[str | None]:
        return [
            await session.stream_file("/p/welcome", "12"),
            await session.stream_file("/p/menu", "12#"),
        ]

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('STREAM FILE "/p/welcome" "12"', "200 result=0 endpos=8000")
        await fake.exchange('STREAM FILE "/p/menu" "12#"', "200 result=50 endpos=1200")

    assert await run_call(script, dialog) == [None, "2"]


async def test_missing_prompt_does_not_end_the_call() -> None:
    async def script(session: AgiSession) -> str | None:
        return await session.stream_file("/p/missing")

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('STREAM FILE "/p/missing" ""', "200 result=-1 endpos=0")

    assert await run_call(script, dialog) is None


async def test_hangup_line_before_the_reply_raises_and_nothing_more_is_sent() -> None:
    after: list[str] = []

    async def script(session: AgiSession) -> None:
        try:
            await session.stream_file("/p/welcome")
        except CallerHungUp:
            after.append("hung up")
        await session.set_variable("X", "1")  # must raise without sending

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('STREAM FILE "/p/welcome" ""', "HANGUP", "200 result=-1 endpos=2400")
        # Only the close remains: no SET VARIABLE, no FAILURE (the caller is gone).
        assert await fake.rest() == b""

    with pytest.raises(CallerHungUp):
        await run_call(script, dialog)
    assert after == ["hung up"]


async def test_hangup_line_while_idle_is_seen_by_the_next_command() -> None:
    async def script(session: AgiSession) -> None:
        await asyncio.sleep(0.05)
        await session.answer()

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.send("HANGUP")
        await fake.exchange("ANSWER", "511 Command Not Permitted on a dead channel")

    with pytest.raises(CallerHungUp):
        await run_call(script, dialog)


async def test_511_and_eof_raise_caller_hung_up() -> None:
    async def script(session: AgiSession) -> None:
        await session.wait_for_digit(1000)

    async def dead(fake: FakeAsterisk) -> None:
        await fake.exchange('WAIT FOR DIGIT "1000"', "511 Command Not Permitted on a dead channel")

    async def eof(fake: FakeAsterisk) -> None:
        await fake.expect('WAIT FOR DIGIT "1000"')
        fake.writer.close()

    for dialog in (dead, eof):
        with pytest.raises(CallerHungUp):
            await run_call(script, dialog)


async def test_510_and_520_raise_command_errors_and_keep_the_session_usable() -> None:
    async def script(session: AgiSession) -> list[str]:
        errors = []
        for words in ("FOO", "GET DATA"):
            try:
                await session.command(words)
            except AgiCommandError as exc:
                errors.append(exc.reply[:3])
        await session.verbose("still here")
        return errors

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange("FOO", "510 Invalid or unknown command")
        await fake.exchange(
            "GET DATA",
            "520-Invalid command syntax.  Proper usage follows:",
            " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]",
            "520 End of proper usage.",
        )
        await fake.exchange('VERBOSE "still here" "1"', "200 result=1")

    assert await run_call(script, dialog) == ["510", "520"]


async def test_100_trying_is_skipped() -> None:
    async def script(session: AgiSession) -> int:
        return await session.exec("Wait", "1")

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('EXEC "Wait" "1"', "100 result=0 Trying...", "200 result=0")

    assert await run_call(script, dialog) == 0


async def test_exec_joins_arguments_and_refuses_commas() -> None:
    async def script(session: AgiSession) -> int:
        with pytest.raises(ValueError, match="comma"):
            await session.exec("Dial", "PJSIP/100,30")
        return await session.exec("Queue", "district-3", "t", "", "", "300")

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('EXEC "Queue" "district-3,t,,,300"', "200 result=0")

    assert await run_call(script, dialog) == 0


async def test_exec_of_a_missing_application() -> None:
    async def script(session: AgiSession) -> int:
        return await session.exec("NoSuchApp")

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('EXEC "NoSuchApp" ""', "200 result=-2")

    with pytest.raises(AgiCommandError, match="not found"):
        await run_call(script, dialog)


async def test_injection_is_refused_before_anything_is_sent() -> None:
    async def script(session: AgiSession) -> None:
        with pytest.raises(ValueError):
            await session.set_variable("NAME", 'x"\nEXEC System "rm -rf /')
        await session.set_variable("NAME", 'quote " and \\ kept')

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('SET VARIABLE "NAME" "quote \\" and \\\\ kept"', "200 result=1")

    await run_call(script, dialog)


async def test_variables() -> None:
    async def script(session: AgiSession) -> list[str | None]:
        return [
            await session.get_variable("IVR_LINE"),
            await session.get_variable("NOPE"),
            await session.get_full_variable("${CALLERID(name)}"),
        ]

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('GET VARIABLE "IVR_LINE"', "200 result=1 (12315)")
        await fake.exchange('GET VARIABLE "NOPE"', "200 result=0")
        await fake.exchange('GET FULL VARIABLE "${CALLERID(name)}"', "200 result=1 (李四 (Li Si))")

    assert await run_call(script, dialog) == ["12315", None, "李四 (Li Si)"]


async def test_get_data_digits_timeout_and_hangup() -> None:
    async def script(session: AgiSession) -> list[str]:
        got = [
            await session.get_data("/p/id", 3000, 6),
            await session.get_data("/p/id", 3000, 6),
        ]
        await session.get_data("/p/id", 3000, 6)
        return got

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('GET DATA "/p/id" "3000" "6"', "200 result=123456")
        await fake.exchange('GET DATA "/p/id" "3000" "6"', "200 result=12 (timeout)")
        await fake.exchange('GET DATA "/p/id" "3000" "6"', "200 result=-1")

    with pytest.raises(CallerHungUp):
        await run_call(script, dialog)


async def test_command_timeout_makes_the_session_unusable() -> None:
    async def script(session: AgiSession) -> str:
        with pytest.raises(AgiTimeout):
            await session.answer()
        with pytest.raises(Exception, match="unusable"):
            await session.answer()
        return "done"

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.expect("ANSWER")  # and never reply

    assert await run_call(script, dialog, command_timeout_s=0.1) == "done"


# -- the Channel protocol -----------------------------------------------------------------


async def test_session_is_a_channel() -> None:
    async def script(session: AgiSession) -> str | None:
        channel: Channel = session
        return await channel.play(["prompts/zh/welcome", "prompts/zh/menu"], interrupt_keys="12")

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange(
            f'STREAM FILE "{SOUNDS}/prompts/zh/welcome" "12"', "200 result=0 endpos=16000"
        )
        await fake.exchange(
            f'STREAM FILE "{SOUNDS}/prompts/zh/menu" "12"', "200 result=49 endpos=100"
        )

    assert await run_call(script, dialog) == "1"


async def test_sound_paths_must_be_relative() -> None:
    async def script(session: AgiSession) -> None:
        for bad in ("/etc/passwd", "../secrets", ""):
            with pytest.raises(ValueError):
                await session.play([bad])

    async def dialog(fake: FakeAsterisk) -> None:
        pass

    await run_call(script, dialog)


async def test_read_digits_barge_in_then_wait_for_digit_until_terminator() -> None:
    async def script(session: AgiSession) -> str:
        return await session.read_digits(["prompts/id"], max_digits=6, timeout_s=3)

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange(
            f'STREAM FILE "{SOUNDS}/prompts/id" "0123456789*#"', "200 result=52 endpos=10"
        )
        await fake.exchange('WAIT FOR DIGIT "3000"', "200 result=50")
        await fake.exchange('WAIT FOR DIGIT "3000"', "200 result=35")  # '#'

    assert await run_call(script, dialog) == "42"


async def test_read_digits_stops_at_max_and_on_timeout() -> None:
    async def script(session: AgiSession) -> list[str]:
        return [
            await session.read_digits([], max_digits=2, timeout_s=0.5),
            await session.read_digits([], max_digits=4, timeout_s=0.5),
            await session.read_digits(["p"], max_digits=4, timeout_s=0.5),
        ]

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange('WAIT FOR DIGIT "500"', "200 result=55")
        await fake.exchange('WAIT FOR DIGIT "500"', "200 result=42")  # '*' is a digit here
        await fake.exchange('WAIT FOR DIGIT "500"', "200 result=0")  # timeout, nothing typed
        await fake.exchange(f'STREAM FILE "{SOUNDS}/p" "0123456789*#"', "200 result=35")

    assert await run_call(script, dialog) == ["7*", "", ""]


async def test_record_reports_how_it_ended() -> None:
    async def script(session: AgiSession) -> list[RecordingResult]:
        done = [
            await session.record("recordings/a", max_seconds=60, silence_seconds=3),
            await session.record("recordings/b", max_seconds=60, silence_seconds=3, beep=False),
            await session.record("recordings/c", max_seconds=2, silence_seconds=0),
            await session.record("recordings/d", max_seconds=60, silence_seconds=3),
        ]
        with pytest.raises(CallerHungUp):
            await session.set_variable("X", "1")
        return done

    async def dialog(fake: FakeAsterisk) -> None:
        await fake.exchange(
            f'RECORD FILE "{SOUNDS}/recordings/a" "wav" "#" "60000" "0" "BEEP" "s=3"',
            "200 result=35 (dtmf) endpos=40000",
        )
        await fake.exchange(
            f'RECORD FILE "{SOUNDS}/recordings/b" "wav" "#" "60000" "0" "s=3"',
            "200 result=0 (timeout) endpos=80000",
        )
        await fake.exchange(
            f'RECORD FILE "{SOUNDS}/recordings/c" "wav" "#" "2000" "0" "BEEP"',
            "200 result=0 (timeout) endpos=16000",
        )
        await fake.exchange(
            f'RECORD FILE "{SOUNDS}/recordings/d" "wav" "#" "60000" "0" "BEEP" "s=3"',
            "200 result=-1 (hangup) endpos=24000",
        )

    results = await run_call(script, dialog)
    assert [(r.path, r.seconds, r.ended_by) for r in results] == [
        ("recordings/a", 5.0, "dtmf"),
        ("recordings/b", 10.0, "silence"),
        ("recordings/c", 2.0, "timeout"),
        ("recordings/d", 3.0, "hangup"),
    ]
