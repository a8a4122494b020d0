"""The event notifier against real Mosquitto brokers: the system one at 127.0.0.1:1883 (started
if it is down; the tests fail, never skip, without it) and a private one on a free port that a
test stops and starts to see the notifier ride out the outage."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import CollectorRegistry

from ivr.events import EventNotifier
from ivr.settings import MqttSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mqtt_service

pytestmark = pytest.mark.integration

LINKEDID = "1795761418.42"
TICKET = "T20261127-000042"

#: The documented events of one call, in the order the controller publishes them.
FAKE_CALL: list[tuple[str, dict[str, object]]] = [
    ("call.started", {"linkedid": LINKEDID, "ticket_id": TICKET, "line": "12345",
                      "caller": "13800138000"}),
    ("queue.stats", {"queue": "q-d-east-zh", "waiting": 1, "available_agents": 1,
                     "longest_wait_seconds": 0}),
    ("call.ringing", {"linkedid": LINKEDID, "ticket_id": TICKET, "agent": "1009",
                      "unit": "d-east", "queue": "q-d-east-zh", "caller": "13800138000",
                      "history": [{"ticket_id": "T20261101-000007", "summary": "夜间施工噪音",
                                   "created_at": datetime(2026, 11, 1, 2, 13, tzinfo=UTC)}]}),
    ("call.answered", {"linkedid": LINKEDID, "agent": "1009", "unit": "d-east",
                       "queue": "q-d-east-zh", "wait_seconds": 31.0, "ring_seconds": 4.0}),
    ("ticket.changed", {"ticket_id": TICKET, "from_status": "accepted",
                        "to_status": "assigned", "action": "assign", "actor": "1009"}),
    ("call.ended", {"linkedid": LINKEDID, "agent": "1009", "talk_seconds": 260.6,
                    "outcome": "answered", "hung_up_by": "caller"}),
    ("alarm.raised", {"kind": "no_agents", "message": "无可用坐席",
                      "details": {"queue": "q-city-zh", "waiting": 4}}),
]


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, so that runs never see each other's messages."""
    return f"ivrtest-{secrets.token_hex(4)}"


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[mqtt_service.PrivateMosquitto]:
    broker = mqtt_service.PrivateMosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _receive(
    client: aiomqtt.Client, count: int, timeout: float = 5.0
) -> list[aiomqtt.Message]:
    received: list[aiomqtt.Message] = []

    async def collect() -> None:
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        pytest.fail(f"received {len(received)} of {count} messages within {timeout} s")
    return received


def _document(message: aiomqtt.Message) -> dict[str, object]:
    assert isinstance(message.payload, bytes | bytearray)
    document = json.loads(message.payload.decode("utf-8"))
    assert isinstance(document, dict)
    return document


async def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


def _call_started(n: int) -> Mapping[str, object]:
    return {"linkedid": f"1795761418.{n}", "ticket_id": f"T20261127-{n:06d}", "line": "12345",
            "caller": "13800138000"}


async def test_a_subscriber_receives_a_fake_calls_events_in_order(
    mosquitto_running: None, prefix: str
) -> None:
    registry = CollectorRegistry()
    settings = MqttSettings(host=mqtt_service.HOST, port=mqtt_service.PORT, topic_prefix=prefix)
    async with aiomqtt.Client(mqtt_service.HOST, mqtt_service.PORT) as subscriber:
        await subscriber.subscribe(f"{prefix}/#", qos=1)
        async with EventNotifier(settings, registry=registry) as notifier:
            for event, payload in FAKE_CALL:
                notifier.publish(event, payload)
            messages = await _receive(subscriber, len(FAKE_CALL))
            await _eventually(lambda: notifier.published == len(FAKE_CALL))
            assert notifier.connected
            assert registry.get_sample_value("ivr_mqtt_connected") == 1

        documents = [_document(message) for message in messages]
        assert [d["event"] for d in documents] == [event for event, _ in FAKE_CALL]
        assert [d["seq"] for d in documents] == list(range(1, len(FAKE_CALL) + 1))
        assert {d["origin"] for d in documents} == {notifier.client_id}
        assert [str(message.topic) for message in messages] == [
            f"{prefix}/calls/{LINKEDID}/started",
            f"{prefix}/queues/q-d-east-zh/stats",
            f"{prefix}/calls/{LINKEDID}/ringing",
            f"{prefix}/calls/{LINKEDID}/answered",
            f"{prefix}/tickets/{TICKET}/changed",
            f"{prefix}/calls/{LINKEDID}/ended",
            f"{prefix}/alarms/no_agents",
        ]
        ringing = documents[2]["data"]
        assert isinstance(ringing, dict)
        assert ringing["history"] == [{"ticket_id": "T20261101-000007", "summary": "夜间施工噪音",
                                       "created_at": "2026-11-01T02:13:00+00:00"}]
        assert "无可用坐席".encode() in messages[-1].payload
        assert [m.qos for m in messages] == [1, 0, 1, 1, 1, 1, 1]
        assert registry.get_sample_value(
            "ivr_events_published_total", {"event": "call.ringing"}
        ) == 1
        assert (notifier.dropped, notifier.connected) == (0, False)

        # queue.stats is retained: a wallboard that subscribes later gets it at once.
        stats_topic = f"{prefix}/queues/q-d-east-zh/stats"
        async with aiomqtt.Client(mqtt_service.HOST, mqtt_service.PORT) as wallboard:
            await wallboard.subscribe(f"{prefix}/queues/+/stats")
            (retained,) = await _receive(wallboard, 1)
            assert retained.retain and str(retained.topic) == stats_topic
            assert _document(retained)["data"] == FAKE_CALL[1][1]
        await subscriber.publish(stats_topic, b"", retain=True)  # leave the broker clean


async def test_the_notifier_rides_out_a_broker_restart(
    private_broker: mqtt_service.PrivateMosquitto, prefix: str
) -> None:
    settings = MqttSettings(host=mqtt_service.HOST, port=private_broker.port, topic_prefix=prefix)
    registry = CollectorRegistry()
    # A persistent session: the broker keeps the subscription, and queues QoS 1 messages for
    # the subscriber while it is away, so nothing races its reconnection below.
    subscriber_id = f"sub-{prefix}"

    def subscriber() -> aiomqtt.Client:
        return aiomqtt.Client(mqtt_service.HOST, private_broker.port,
                              identifier=subscriber_id, clean_session=False)

    notifier = EventNotifier(settings, queue_size=5, registry=registry,
                             reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)
    async with notifier:
        async with subscriber() as client:
            await client.subscribe(f"{prefix}/calls/#", qos=1)
            notifier.publish("call.started", _call_started(1))
            (first,) = await _receive(client, 1)
            assert _document(first)["seq"] == 1

        private_broker.stop()
        await _eventually(lambda: not notifier.connected)
        assert registry.get_sample_value("ivr_mqtt_connected") == 0

        started = time.perf_counter()
        for n in range(2, 10):
            notifier.publish("call.started", _call_started(n))
        assert time.perf_counter() - started < 0.1  # publish never waits for the broker
        assert (notifier.pending, notifier.dropped, notifier.published) == (5, 3, 1)
        assert registry.get_sample_value(
            "ivr_events_dropped_total", {"event": "call.started", "reason": "queue_full"}
        ) == 3

        private_broker.start()
        await _eventually(lambda: notifier.connected)
        async with subscriber() as client:
            notifier.publish("call.started", _call_started(10))
            resumed = await _receive(client, 6)
        await _eventually(lambda: notifier.published == 7)

    # seq 2-6 waited in the queue, 7-9 did not fit, 10 came after the reconnect.
    assert [_document(message)["seq"] for message in resumed] == [2, 3, 4, 5, 6, 10]
    assert [str(m.topic) for m in resumed][-1] == f"{prefix}/calls/1795761418.10/started"
    assert (notifier.dropped, notifier.pending) == (3, 0)
    assert registry.get_sample_value(
        "ivr_events_published_total", {"event": "call.started"}
    ) == 7


async def test_close_gives_up_on_an_unreachable_broker_within_its_grace(
    private_broker: mqtt_service.PrivateMosquitto, prefix: str
) -> None:
    settings = MqttSettings(host=mqtt_service.HOST, port=private_broker.port, topic_prefix=prefix)
    notifier = EventNotifier(settings, registry=None, reconnect_min_seconds=0.05)
    await notifier.start()
    await _eventually(lambda: notifier.connected)
    private_broker.stop()
    await _eventually(lambda: not notifier.connected)
    for n in range(3):
        notifier.publish("call.started", _call_started(n))
    started = time.perf_counter()
    await notifier.close(grace_seconds=0.3)
    assert 0.25 < time.perf_counter() - started < 2.0
    assert (notifier.published, notifier.dropped, notifier.pending) == (0, 3, 0)


async def test_a_hung_broker_is_left_and_the_unacknowledged_message_sent_again(
    private_broker: mqtt_service.PrivateMosquitto, prefix: str
) -> None:
    settings = MqttSettings(host=mqtt_service.HOST, port=private_broker.port, topic_prefix=prefix)
    subscriber_id = f"sub-{prefix}"

    def subscriber() -> aiomqtt.Client:
        return aiomqtt.Client(mqtt_service.HOST, private_broker.port,
                              identifier=subscriber_id, clean_session=False)

    async with subscriber() as client:
        await client.subscribe(f"{prefix}/#", qos=1)
    notifier = EventNotifier(settings, registry=None, publish_timeout_seconds=0.3,
                             reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)
    async with notifier:
        await _eventually(lambda: notifier.connected)
        private_broker.pause()
        try:
            notifier.publish("call.started", _call_started(1))
            await _eventually(lambda: not notifier.connected)  # no PUBACK within 0.3 s
            assert (notifier.published, notifier.pending) == (0, 1)
        finally:
            private_broker.resume()
        await _eventually(lambda: notifier.published == 1)
        notifier.publish("call.started", _call_started(2))
        await _eventually(lambda: notifier.published == 2)
        received: list[object] = []
        async with subscriber() as client:
            while 2 not in received:
                received += [_document(m)["seq"] for m in await _receive(client, 1)]
    # At least once: the first copy may have reached the broker before it froze, so seq 1
    # can come twice; subscribers deduplicate on origin + seq.
    assert received in ([1, 2], [1, 1, 2])
    assert notifier.dropped == 0
