"""Utf8AmiProtocol: a UTF-8 character split across two reads survives (panoramisk 1.4
drops it), and a peer that never ends a message cannot grow the buffer without bound."""

from __future__ import annotations

from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from ivr.ami import Utf8AmiProtocol

NAME = "张三"
EVENT = f"Event: Newchannel\r\nCallerIDName: {NAME}\r\nChannel: PJSIP/t-1\r\n\r\n".encode()
# Cut inside the three bytes of 张.
SPLIT_AT = EVENT.index(NAME.encode()) + 2


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        pass


class FakeManager:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def dispatch(self, message: Any) -> None:
        self.events.append(message)


def feed(protocol: Any, *chunks: bytes) -> tuple[FakeManager, FakeTransport]:
    transport = FakeTransport()
    manager = FakeManager()
    protocol.connection_made(transport)
    protocol.factory = manager
    protocol.encoding = "utf-8"  # what panoramisk's Manager sets after connecting
    for chunk in chunks:
        protocol.data_received(chunk)
    return manager, transport


def test_panoramisk_drops_a_split_character() -> None:
    manager, _ = feed(AMIProtocol(), EVENT[:SPLIT_AT], EVENT[SPLIT_AT:])
    [event] = manager.events
    assert event["CallerIDName"] != NAME  # the defect Utf8AmiProtocol exists for


def test_split_character_survives() -> None:
    manager, _ = feed(Utf8AmiProtocol(), EVENT[:SPLIT_AT], EVENT[SPLIT_AT:])
    [event] = manager.events
    assert event["CallerIDName"] == NAME


def test_byte_by_byte_delivery() -> None:
    chunks = [EVENT[i : i + 1] for i in range(len(EVENT))]
    manager, _ = feed(Utf8AmiProtocol(), *chunks)
    [event] = manager.events
    assert event["CallerIDName"] == NAME
    assert event["Channel"] == "PJSIP/t-1"


def test_invalid_bytes_are_replaced_not_dropped_silently() -> None:
    manager, _ = feed(Utf8AmiProtocol(), b"Event: X\r\nName: a\xffb\r\n\r\n")
    assert manager.events[0]["Name"] == "a\ufffdb"


def test_endless_message_closes_the_connection() -> None:
    protocol = Utf8AmiProtocol()
    protocol.max_pending_chars = 1000
    _, transport = feed(protocol, b"Event: X\r\nJunk: " + b"x" * 600, b"y" * 600)
    assert transport.closed
