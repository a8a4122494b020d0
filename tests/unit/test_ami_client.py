"""AmiClient against a fake AMI server on 127.0.0.1 speaking the AMI line protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from ivr.ami import (
    AmiActionError,
    AmiClient,
    AmiConnectionLost,
    AmiLoginFailed,
    AmiMessage,
    AmiNotConnected,
    AmiTimeout,
)

STEP_S = 2.0


class FakeAmi:
    """Answers Login, Ping, Queue* and Originate like Asterisk does; records every action
    per connection; can go silent (half-open) or drop connections."""

    def __init__(self) -> None:
        self.connections: list[list[dict[str, str]]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.answer_pings = True
        self.silent_actions: set[str] = {"Hang"}
        self.secret = "s3cret"
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        self.port = port
        return port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self.writers:
            writer.close()
        await self._server.wait_closed()

    def push(self, text: str) -> None:
        """Send raw text to the newest connection."""
        self.writers[-1].write(text.encode("utf-8"))

    def drop_all(self) -> None:
        for writer in self.writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        actions: list[dict[str, str]] = []
        self.connections.append(actions)
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in raw.decode().split("\r\n"):
                    if ": " in line:
                        key, value = line.split(": ", 1)
                        headers[key] = value
                actions.append(headers)
                self._answer(headers, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        name = action.get("Action", "")
        aid = action.get("ActionID", "")

        def reply(*lines: str) -> None:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

        if name in self.silent_actions or (name == "Ping" and not self.answer_pings):
            return
        if name == "Login":
            if action.get("Secret") != self.secret:
                reply("Response: Error", f"ActionID: {aid}", "Message: Authentication failed")
                writer.close()
                return
            reply("Response: Success", f"ActionID: {aid}", "Message: Authentication accepted")
            reply("Event: FullyBooted", "Privilege: system,all", "Status: Fully Booted")
        elif name == "Ping":
            reply("Response: Success", f"ActionID: {aid}", "Ping: Pong", "Timestamp: 1.0")
        elif name == "QueueAdd":
            reply("Response: Success", f"ActionID: {aid}", "Message: Added interface to queue")
        elif name == "QueueRemove":
            reply("Response: Error", f"ActionID: {aid}", "Message: Unable to remove interface")
        elif name == "QueuePause":
            reply("Response: Success", f"ActionID: {aid}", "Message: Interface paused successfully")
        elif name == "Originate":
            reply("Response: Success", f"ActionID: {aid}", "Message: Originate successfully queued")
        elif name == "QueueStatus":
            reply(
                "Response: Success",
                f"ActionID: {aid}",
                "EventList: start",
                "Message: Queue status will follow",
            )
            reply("Event: QueueParams", "Queue: district-3", "Calls: 1", f"ActionID: {aid}")
            for n, (status, paused) in enumerate([("1", "0"), ("2", "1")], start=1):
                reply(
                    "Event: QueueMember",
                    "Queue: district-3",
                    f"Name: 王{n}",
                    f"Location: PJSIP/agent{n}",
                    f"StateInterface: PJSIP/agent{n}",
                    "Membership: dynamic",
                    "CallsTaken: 4",
                    "LastCall: 1700000000",
                    f"Status: {status}",
                    f"Paused: {paused}",
                    "PausedReason: lunch" if paused == "1" else "PausedReason: ",
                    "InCall: 0",
                    f"ActionID: {aid}",
                )
            reply(
                "Event: QueueStatusComplete",
                f"ActionID: {aid}",
                "EventList: Complete",
                "ListItems: 3",
            )
        else:
            reply("Response: Error", f"ActionID: {aid}", "Message: Invalid/unknown command")


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def client_for(port: int, **options: float | Callable[[], None]) -> AmiClient:
    settings: dict[str, object] = {
        "ping_interval_s": 0.1,
        "ping_timeout_s": 0.2,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2,
        "action_timeout_s": 1.0,
    }
    settings.update(options)
    return AmiClient(port=port, username="ivr", secret="s3cret", **settings)  # type: ignore[arg-type]


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(STEP_S):
        while not condition():  # noqa: ASYNC110 - polls state the client owns
            await asyncio.sleep(0.01)


async def test_login_and_events(ami: FakeAmi) -> None:
    port = ami.port
    client = client_for(port, ping_interval_s=5)
    got: list[AmiMessage] = []
    client.on_event("Newchannel", got.append)
    client.on_event("Queue*", lambda message: None)
    await client.start(wait_s=STEP_S)
    try:
        assert client.connected
        login = ami.connections[0][0]
        assert (login["Action"], login["Username"], login["Secret"]) == ("Login", "ivr", "s3cret")
        ami.push("Event: Newchannel\r\nChannel: PJSIP/trunk-1\r\nCallerIDName: 张三\r\n\r\n")
        await eventually(lambda: bool(got))
        assert got[0].event == "Newchannel"
        assert got[0].get("calleridname") == "张三"
    finally:
        await client.close()


async def test_async_event_callbacks_and_failing_callbacks(ami: FakeAmi) -> None:
    port = ami.port
    client = client_for(port, ping_interval_s=5)
    got: list[str] = []

    async def slow(message: AmiMessage) -> None:
        await asyncio.sleep(0.01)
        got.append(message.get("channel"))

    def broken(message: AmiMessage) -> None:
        raise RuntimeError("callback bug")

    client.on_event("*", broken)
    client.on_event("Hangup", slow)
    await client.start(wait_s=STEP_S)
    try:
        ami.push("Event: Hangup\r\nChannel: A\r\n\r\nEvent: Hangup\r\nChannel: B\r\n\r\n")
        await eventually(lambda: sorted(got) == ["A", "B"])
        await client.ping()  # the connection survived the broken callback
    finally:
        await client.close()


async def test_wrong_secret(ami: FakeAmi) -> None:
    port = ami.port
    client = AmiClient(port=port, username="ivr", secret="wrong")
    with pytest.raises(AmiLoginFailed, match="Authentication failed"):
        await client.start(wait_s=STEP_S)


async def test_no_server_times_out_start() -> None:
    client = AmiClient(port=1, username="ivr", secret="x", reconnect_min_s=0.05)
    with pytest.raises(AmiNotConnected):
        await client.start(wait_s=0.2)
    await client.close()


async def test_action_times_out_instead_of_hanging(ami: FakeAmi) -> None:
    client = client_for(ami.port, ping_interval_s=5)
    await client.start(wait_s=STEP_S)
    try:
        with pytest.raises(AmiTimeout):
            await client.send_action({"Action": "Hang"}, timeout_s=0.1)
        await client.ping()  # still usable
    finally:
        await client.close()


async def test_queue_actions_complete(ami: FakeAmi) -> None:
    """panoramisk 1.4 reads "Added interface to queue" as the start of a list and never
    completes QueueAdd; an async Originate ("successfully queued") likewise."""
    client = client_for(ami.port, ping_interval_s=5)
    await client.start(wait_s=STEP_S)
    try:
        await asyncio.wait_for(
            client.queue_add("district-3", "PJSIP/agent7", member_name="王五", paused=True), 1
        )
        await asyncio.wait_for(client.queue_pause("PJSIP/agent7", False, queue="district-3"), 1)
        with pytest.raises(AmiActionError, match="Unable to remove"):
            await asyncio.wait_for(client.queue_remove("district-3", "PJSIP/agent7"), 1)
        action_id = await asyncio.wait_for(
            client.originate(
                "PJSIP/agent7",
                context="callback",
                exten="s",
                variables={"IVR_TICKET": "T-1", "IVR_LINE": "12345"},
            ),
            1,
        )
        sent = {a["Action"]: a for a in ami.connections[0]}
        assert sent["QueueAdd"]["MemberName"] == "王五"
        assert sent["QueueAdd"]["Paused"] == "true"
        assert sent["Originate"]["ActionID"] == action_id
        assert sent["Originate"]["Async"] == "true"
    finally:
        await client.close()


async def test_queue_status(ami: FakeAmi) -> None:
    client = client_for(ami.port, ping_interval_s=5)
    await client.start(wait_s=STEP_S)
    try:
        members = await client.queue_status("district-3")
        assert [(m.interface, m.name, m.status_name, m.paused) for m in members] == [
            ("PJSIP/agent1", "王1", "not_in_use", False),
            ("PJSIP/agent2", "王2", "in_use", True),
        ]
        assert members[1].paused_reason == "lunch"
        assert members[0].calls_taken == 4
    finally:
        await client.close()


async def test_injection_is_refused_before_sending(ami: FakeAmi) -> None:
    client = client_for(ami.port, ping_interval_s=5)
    await client.start(wait_s=STEP_S)
    try:
        evil = "Bob\r\n\r\nAction: Originate\r\nChannel: PJSIP/premium"
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            await client.originate("PJSIP/a", context="c", exten="s", caller_id=evil)
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            await client.send_action({"Action": "Setvar", "Value": ["ok", "bad\n"]})
        with pytest.raises(ValueError, match="header name"):
            await client.send_action({"Action": "Ping", "X: y": "z"})
        await client.ping()
        assert [a["Action"] for a in ami.connections[0]] == ["Login", "Ping"]
    finally:
        await client.close()


async def test_half_open_connection_is_detected_and_replaced(ami: FakeAmi) -> None:
    reconnected = asyncio.Event()
    client = client_for(ami.port, on_reconnect=reconnected.set)
    got: list[str] = []
    client.on_event("Newchannel", lambda m: got.append(m.get("channel")))
    await client.start(wait_s=STEP_S)
    try:
        ami.answer_pings = False  # the peer is gone without a FIN
        await asyncio.wait_for(reconnected.wait(), STEP_S)
        assert len(ami.connections) == 2
        assert ami.connections[1][0]["Action"] == "Login"
        ami.answer_pings = True
        ami.push("Event: Newchannel\r\nChannel: after-reconnect\r\n\r\n")
        await eventually(lambda: got == ["after-reconnect"])
        assert client.connected
    finally:
        await client.close()


async def test_pending_action_fails_on_disconnect_and_is_never_resent(ami: FakeAmi) -> None:
    reconnected = asyncio.Event()
    client = client_for(ami.port, ping_interval_s=5, on_reconnect=reconnected.set)
    booted: list[AmiMessage] = []
    client.on_event("FullyBooted", booted.append)
    await client.start(wait_s=STEP_S)
    try:
        ami.silent_actions.add("Originate")
        pending = asyncio.create_task(client.originate("PJSIP/a", context="c", exten="s"))
        await eventually(lambda: any(a["Action"] == "Originate" for a in ami.connections[0]))
        ami.drop_all()
        with pytest.raises(AmiConnectionLost):
            await asyncio.wait_for(pending, STEP_S)
        with pytest.raises(AmiNotConnected):
            await client.ping()
        await asyncio.wait_for(reconnected.wait(), STEP_S)
        # panoramisk resends waiting actions when FullyBooted arrives: wait for it, then
        # make sure nothing but the login and our own ping reached the new connection.
        await eventually(lambda: len(booted) == 2)
        await client.ping()
        assert [a["Action"] for a in ami.connections[1]] == ["Login", "Ping"]
    finally:
        await client.close()


async def test_reconnect_backs_off_while_the_server_is_down(ami: FakeAmi) -> None:
    port = ami.port
    client = client_for(port, ping_interval_s=5, reconnect_min_s=0.05, reconnect_max_s=0.1)
    await client.start(wait_s=STEP_S)
    try:
        await ami.close()
        await eventually(lambda: not client.connected)
        await asyncio.sleep(0.3)  # several failed attempts, none of them fatal
        assert not client.connected
    finally:
        await client.close()
