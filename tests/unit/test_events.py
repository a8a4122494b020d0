"""The event notifier without a broker: topics, payloads, the catalogue against docs/events.md,
and a queue that fills while the broker (a closed port) is unreachable."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from ivr.events import (
    DROP_CLOSED,
    DROP_INVALID,
    DROP_QUEUE_FULL,
    EVENTS,
    QOS_AT_LEAST_ONCE,
    QOS_AT_MOST_ONCE,
    EventNotifier,
    RecordingPublisher,
    encode_json,
    format_message,
    payload_problems,
    topic_of,
)
from ivr.ports import free_port
from ivr.settings import MqttSettings
from ivr.tickets.lifecycle import Action, Status

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LINKEDID = "1795761418.42"

#: One complete payload per event, and the topic it must get under the prefix "hotline".
SAMPLES: dict[str, tuple[dict[str, object], str]] = {
    "call.started": (
        {"linkedid": LINKEDID, "ticket_id": "T20261127-000042", "line": "12345",
         "caller": "13800138000"},
        f"hotline/calls/{LINKEDID}/started",
    ),
    "call.ringing": (
        {"linkedid": LINKEDID, "ticket_id": "T20261127-000042", "agent": "1009",
         "unit": "d-east", "queue": "q-d-east-zh", "caller": "13800138000", "history": []},
        f"hotline/calls/{LINKEDID}/ringing",
    ),
    "call.answered": (
        {"linkedid": LINKEDID, "agent": "1009", "unit": "d-east", "queue": "q-d-east-zh",
         "wait_seconds": 12.5, "ring_seconds": 4.0},
        f"hotline/calls/{LINKEDID}/answered",
    ),
    "call.ended": (
        {"linkedid": LINKEDID, "agent": "1009", "talk_seconds": 260.6, "outcome": "answered",
         "hung_up_by": "caller"},
        f"hotline/calls/{LINKEDID}/ended",
    ),
    "call.abandoned": (
        {"linkedid": LINKEDID, "unit": "city", "queue": "q-city-zh", "position": 3,
         "wait_seconds": 94.0},
        f"hotline/calls/{LINKEDID}/abandoned",
    ),
    "call.emergency": (
        {"linkedid": LINKEDID, "ticket_id": "T20261127-000042", "caller": "13800138000"},
        f"hotline/calls/{LINKEDID}/emergency",
    ),
    "queue.stats": (
        {"queue": "q-city-zh", "waiting": 4, "available_agents": 1,
         "longest_wait_seconds": 131.2},
        "hotline/queues/q-city-zh/stats",
    ),
    "ticket.changed": (
        {"ticket_id": "T20261127-000042", "from_status": Status.ACCEPTED,
         "to_status": Status.ASSIGNED, "action": Action.ASSIGN, "actor": "1009"},
        "hotline/tickets/T20261127-000042/changed",
    ),
    "alarm.raised": (
        {"kind": "no_agents", "message": "无可用坐席", "details": {"waiting": 4}},
        "hotline/alarms/no_agents",
    ),
}


def _decode(payload: bytes) -> dict[str, object]:
    document = json.loads(payload.decode("utf-8"))
    assert isinstance(document, dict)
    return document


def _format(
    event: str, payload: Mapping[str, object], prefix: str = "hotline"
) -> dict[str, object]:
    message = format_message(event, payload, prefix=prefix, seq=7, origin="ivr-test", at=NOW)
    return _decode(message.payload)


def _closed_port_settings(**overrides: object) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=free_port(), **overrides)  # type: ignore[arg-type]


# -- the catalogue ---------------------------------------------------------------------------


def test_every_event_has_a_sample_here() -> None:
    assert set(SAMPLES) == set(EVENTS)


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_topic_of_each_event(event: str) -> None:
    payload, topic = SAMPLES[event]
    assert topic_of(event, payload, "hotline") == topic
    assert payload_problems(event, payload) == []


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_each_event_sends_exactly_its_catalogue_fields(event: str) -> None:
    payload, topic = SAMPLES[event]
    message = format_message(event, payload, prefix="hotline", seq=1, origin="o", at=NOW)
    assert message.topic == topic
    assert (message.qos, message.retain) == (EVENTS[event].qos, EVENTS[event].retain)
    data = _decode(message.payload)["data"]
    assert isinstance(data, dict)
    assert list(data) == list(EVENTS[event].fields)


def test_qos_choices() -> None:
    assert EVENTS["alarm.raised"].qos == QOS_AT_LEAST_ONCE
    assert EVENTS["call.ringing"].qos == QOS_AT_LEAST_ONCE
    assert (EVENTS["queue.stats"].qos, EVENTS["queue.stats"].retain) == (QOS_AT_MOST_ONCE, True)
    assert not any(spec.retain for name, spec in EVENTS.items() if name != "queue.stats")


# -- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("hotline", "hotline/alarms/ami_down"),
        ("city/hotline/", "city/hotline/alarms/ami_down"),
        ("/hotline", "hotline/alarms/ami_down"),
        ("", "alarms/ami_down"),
    ],
)
def test_topic_prefix(prefix: str, expected: str) -> None:
    assert topic_of("alarm.raised", {"kind": "ami_down"}, prefix) == expected


def test_mqtt_wildcards_and_separators_in_values_are_escaped() -> None:
    topic = topic_of("queue.stats", {"queue": "a/b+c#d%e"}, "hotline")
    assert topic == "hotline/queues/a%2Fb%2Bc%23d%25e/stats"


def test_non_string_topic_values() -> None:
    assert topic_of("ticket.changed", {"ticket_id": 42}, "h") == "h/tickets/42/changed"


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_topic_value_is_an_error_of_formatting(value: object) -> None:
    with pytest.raises(ValueError, match="linkedid"):
        topic_of("call.ended", {"linkedid": value}, "hotline")
    with pytest.raises(ValueError, match="linkedid"):
        topic_of("call.ended", {}, "hotline")


# -- payloads --------------------------------------------------------------------------------


def test_envelope() -> None:
    document = _format("call.emergency", {"linkedid": LINKEDID, "ticket_id": "T1",
                                          "caller": "139"})
    assert document == {
        "event": "call.emergency",
        "origin": "ivr-test",
        "seq": 7,
        "time": "2026-11-27T08:00:00+00:00",
        "data": {"linkedid": LINKEDID, "ticket_id": "T1", "caller": "139"},
    }


def test_chinese_text_is_sent_as_utf8_not_escaped() -> None:
    message = format_message(
        "alarm.raised",
        {"kind": "no_agents", "message": "无可用坐席", "details": None},
        prefix="hotline", seq=1, origin="o", at=NOW,
    )
    assert "无可用坐席".encode() in message.payload
    assert b"\\u" not in message.payload


@dataclass(frozen=True)
class _PastTicket:
    ticket_id: str
    created_at: datetime
    status: Status


class _Summary(BaseModel):
    calls: int
    last_call: datetime


def test_history_values_of_many_types() -> None:
    history = [
        _PastTicket("T20261101-000007", datetime(2026, 11, 1, 2, 13, tzinfo=UTC), Status.CLOSED),
        _Summary(calls=3, last_call=datetime(2026, 11, 20, tzinfo=UTC)),
        {
            "on": date(2026, 11, 2),
            "took": timedelta(minutes=2, seconds=30),
            "cost": Decimal("1.5"),
            "id": UUID(int=1),
            "tags": {"噪音", "夜间"},
            "path": Path("/var/rec/a"),
        },
    ]
    payload = dict(SAMPLES["call.ringing"][0], history=history)
    data = _format("call.ringing", payload)["data"]
    assert isinstance(data, dict)
    assert data["history"] == [
        {"ticket_id": "T20261101-000007", "created_at": "2026-11-01T02:13:00+00:00",
         "status": "closed"},
        {"calls": 3, "last_call": "2026-11-20T00:00:00Z"},
        {
            "on": "2026-11-02",
            "took": 150.0,
            "cost": 1.5,
            "id": "00000000-0000-0000-0000-000000000001",
            "tags": sorted({"噪音", "夜间"}),
            "path": "/var/rec/a",
        },
    ]


def test_missing_fields_are_null_and_unknown_fields_are_left_out() -> None:
    payload = {"linkedid": LINKEDID, "ticket": "T1", "caller": "139"}
    assert payload_problems("call.emergency", payload) == [
        "missing field 'ticket_id'",
        "unexpected field 'ticket'",
    ]
    data = _format("call.emergency", payload)["data"]
    assert data == {"linkedid": LINKEDID, "ticket_id": None, "caller": "139"}


@pytest.mark.parametrize("value", [math.nan, math.inf, object()])
def test_values_without_a_json_form_are_refused(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        encode_json({"x": value})


def test_unknown_event_names() -> None:
    with pytest.raises(ValueError, match=r"unknown event 'call\.rang'.*call\.ringing"):
        format_message("call.rang", {}, prefix="h", seq=1, origin="o", at=NOW)


# -- docs/events.md --------------------------------------------------------------------------


def _doc_section(event: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(event)}\n(.*?)(?=^##)", text, re.S | re.M)
    assert match, f"docs/events.md has no '### {event}' section"
    return match.group(1)


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_docs_describe_each_event_as_the_catalogue_does(event: str) -> None:
    spec = EVENTS[event]
    section = _doc_section(event)
    assert f"`hotline/{spec.topic}`" in section
    assert f"QoS {spec.qos}, {'retained' if spec.retain else 'not retained'}" in section
    for name in spec.fields:
        assert f"`{name}`" in section, f"docs/events.md does not describe {event}.{name}"
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example, f"docs/events.md has no JSON example for {event}"
    document = json.loads(example.group(1))
    assert document["event"] == event
    assert set(document) == {"event", "origin", "seq", "time", "data"}
    assert list(document["data"]) == list(spec.fields)
    datetime.fromisoformat(document["time"])


# -- the notifier with no broker -------------------------------------------------------------


def _counter(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"{name} {labels} is not registered"
    return value


async def test_publish_never_blocks_and_counts_what_the_full_queue_drops() -> None:
    registry = CollectorRegistry()
    notifier = EventNotifier(
        _closed_port_settings(), queue_size=5, registry=registry,
        reconnect_min_seconds=0.01, reconnect_max_seconds=0.05,
    )
    await notifier.start()
    payload = SAMPLES["call.started"][0]
    started = time.perf_counter()
    for _ in range(5000):
        notifier.publish("call.started", payload)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0  # about 10 µs a call; far from any wait on the network
    assert (notifier.pending, notifier.dropped, notifier.published) == (5, 4995, 0)
    await asyncio.sleep(0.1)  # the reconnect loop runs and fails meanwhile
    assert not notifier.connected
    assert _counter(registry, "ivr_mqtt_connected") == 0
    assert _counter(registry, "ivr_events_dropped_total", event="call.started",
                    reason=DROP_QUEUE_FULL) == 4995

    closing = time.perf_counter()
    await notifier.close(grace_seconds=0.2)
    assert time.perf_counter() - closing < 1.0
    assert (notifier.pending, notifier.dropped) == (0, 5000)
    assert _counter(registry, "ivr_events_dropped_total", event="call.started",
                    reason=DROP_CLOSED) == 5
    assert _counter(registry, "ivr_events_published_total", event="call.started") == 0


async def test_a_payload_without_its_topic_value_is_dropped_not_raised() -> None:
    registry = CollectorRegistry()
    notifier = EventNotifier(_closed_port_settings(), registry=registry)
    notifier.publish("call.ended", {"talk_seconds": 3, "outcome": "answered"})
    notifier.publish("alarm.raised", {"kind": "x", "message": "m", "details": math.nan})
    notifier.publish("alarm.raised", {"kind": "x", "message": "m", "details": object()})
    assert (notifier.pending, notifier.dropped) == (0, 3)
    assert _counter(registry, "ivr_events_dropped_total", event="alarm.raised",
                    reason=DROP_INVALID) == 2
    notifier.publish("call.answered", {"linkedid": LINKEDID})  # nulls are still worth sending
    assert (notifier.pending, notifier.dropped) == (1, 3)
    await notifier.close(grace_seconds=0)


async def test_payload_is_formatted_when_published_not_when_sent() -> None:
    notifier = EventNotifier(_closed_port_settings(), registry=None, clock=lambda: NOW)
    payload: dict[str, object] = {"kind": "k", "message": "before", "details": None}
    notifier.publish("alarm.raised", payload)
    payload["message"] = "after"
    queued = notifier._queue.get_nowait()
    assert _decode(queued.payload)["data"] == {"kind": "k", "message": "before", "details": None}
    assert _decode(queued.payload)["time"] == NOW.isoformat()
    await notifier.close(grace_seconds=0)


async def test_unknown_event_raises_in_every_state() -> None:
    notifier = EventNotifier(_closed_port_settings(), registry=None)
    with pytest.raises(ValueError, match="unknown event"):
        notifier.publish("call.rang", {})
    await notifier.close()
    with pytest.raises(ValueError, match="unknown event"):
        notifier.publish("call.rang", {})
    disabled = EventNotifier(_closed_port_settings(enabled=False), registry=None)
    with pytest.raises(ValueError, match="unknown event"):
        disabled.publish("call.rang", {})


async def test_after_close_messages_are_dropped_and_start_is_refused() -> None:
    registry = CollectorRegistry()
    notifier = EventNotifier(_closed_port_settings(), registry=registry)
    await notifier.start()
    await notifier.close()
    await notifier.close()
    notifier.publish("alarm.raised", SAMPLES["alarm.raised"][0])
    assert notifier.dropped == 1
    assert _counter(registry, "ivr_events_dropped_total", event="alarm.raised",
                    reason=DROP_CLOSED) == 1
    with pytest.raises(RuntimeError, match="closed"):
        await notifier.start()


async def test_disabled_notifier_sends_and_counts_nothing() -> None:
    async with EventNotifier(_closed_port_settings(enabled=False), registry=None) as notifier:
        notifier.publish("alarm.raised", SAMPLES["alarm.raised"][0])
        assert (notifier.pending, notifier.dropped, notifier.connected) == (0, 0, False)
    assert notifier.dropped == 0


async def test_client_ids_differ_between_notifiers() -> None:
    settings = _closed_port_settings()
    first = EventNotifier(settings, registry=None)
    second = EventNotifier(settings, registry=None)
    assert first.client_id != second.client_id
    assert EventNotifier(settings, client_id="ivr-a", registry=None).client_id == "ivr-a"


def test_the_queue_holds_at_least_one_message() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        EventNotifier(MqttSettings(), queue_size=0, registry=None)


# -- the recorder other modules' tests use ---------------------------------------------------


def test_recording_publisher_keeps_what_subscribers_would_see() -> None:
    recorder = RecordingPublisher()
    for event in ("call.started", "call.answered", "call.ended"):
        recorder.publish(event, SAMPLES[event][0])
    assert recorder.names() == ["call.started", "call.answered", "call.ended"]
    assert recorder.events[1].topic == f"hotline/calls/{LINKEDID}/answered"
    assert recorder.events[1].data == SAMPLES["call.answered"][0]


def test_recording_publisher_is_strict_about_fields() -> None:
    recorder = RecordingPublisher()
    with pytest.raises(ValueError, match="missing field 'outcome'"):
        recorder.publish("call.ended", {"linkedid": LINKEDID, "talk_seconds": 1})
    with pytest.raises(ValueError, match="unknown event"):
        recorder.publish("call.rang", {})
    assert recorder.events == []
