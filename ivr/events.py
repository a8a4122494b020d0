"""Live events to MQTT: the ONE publisher of events in the controller (docs/events.md).

Every part of the controller that has something to tell wallboards, agent screen pops and
alarm consoles calls :meth:`EventNotifier.publish` on the single notifier it was handed (typed
as :class:`EventPublisher`); nothing else opens an MQTT connection. ``publish`` is synchronous
and never blocks or raises at run time, because it is called from inside live calls: it only
formats the message and puts it on a bounded in-memory queue. A background task sends the queue
to the broker in order, one message at a time, and reconnects with exponential back-off
(aiomqtt's documented ``while True: try: async with Client(...) ... except MqttError`` loop).
When the broker is away the queue fills; what does not fit is dropped and counted, and the
calls go on.

Delivery is at least once for QoS 1 events: a message whose acknowledgement was lost with the
connection is sent again after the reconnect, so subscribers deduplicate on ``origin`` +
``seq``; a gap in ``seq`` from one origin means messages were dropped.

The catalogue :data:`EVENTS` is the one place that names events, their topics, payload fields,
QoS and retain flag; docs/events.md documents it and a unit test keeps the two in step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import json
import os
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from string import Formatter
from types import MappingProxyType
from typing import Final, Protocol
from uuid import UUID

import aiomqtt
import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from ivr.settings import MqttSettings

_log = structlog.get_logger(__name__)

#: Fire and forget: for state that the next message replaces anyway.
QOS_AT_MOST_ONCE: Final = 0
#: Acknowledged by the broker, sent again after a reconnect until it is.
QOS_AT_LEAST_ONCE: Final = 1

#: Why a message was not sent; the ``reason`` label of ``ivr_events_dropped_total``.
DROP_QUEUE_FULL: Final = "queue_full"
DROP_INVALID: Final = "invalid"
DROP_CLOSED: Final = "closed"
DROP_REASONS: Final = (DROP_QUEUE_FULL, DROP_INVALID, DROP_CLOSED)

#: Seconds of silence after which the client pings the broker; a silently dead peer is noticed
#: within at most twice this (sooner when a publish waits for its acknowledgement).
KEEPALIVE_SECONDS: Final = 15


@dataclasses.dataclass(frozen=True)
class EventSpec:
    name: str
    #: Below the topic prefix; ``{field}`` is replaced by that payload field's value.
    topic: str
    #: Every field of the payload's ``data`` object, in the order they are sent.
    fields: tuple[str, ...]
    qos: int
    #: Retained messages give a subscriber that connects later the latest value at once.
    retain: bool
    summary: str

    @property
    def topic_fields(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in Formatter().parse(self.topic) if name)


def _catalogue(*specs: EventSpec) -> Mapping[str, EventSpec]:
    for spec in specs:
        missing = set(spec.topic_fields) - set(spec.fields)
        if missing:
            raise ValueError(f"{spec.name}: topic fields {missing} are not payload fields")
    return MappingProxyType({spec.name: spec for spec in specs})


EVENTS: Final[Mapping[str, EventSpec]] = _catalogue(
    EventSpec(
        "call.started",
        "calls/{linkedid}/started",
        ("linkedid", "ticket_id", "line", "caller"),
        QOS_AT_LEAST_ONCE,
        False,
        "A citizen's call reached the controller and its ticket was opened.",
    ),
    EventSpec(
        "call.ringing",
        "calls/{linkedid}/ringing",
        ("linkedid", "ticket_id", "agent", "unit", "queue", "caller", "history"),
        QOS_AT_LEAST_ONCE,
        False,
        "An agent's phone rings: the screen pop, with the caller's history summary.",
    ),
    EventSpec(
        "call.answered",
        "calls/{linkedid}/answered",
        ("linkedid", "agent", "unit", "queue", "wait_seconds", "ring_seconds"),
        QOS_AT_LEAST_ONCE,
        False,
        "An agent answered.",
    ),
    EventSpec(
        "call.ended",
        "calls/{linkedid}/ended",
        ("linkedid", "agent", "talk_seconds", "outcome", "hung_up_by"),
        QOS_AT_LEAST_ONCE,
        False,
        "The call is over, whoever hung up.",
    ),
    EventSpec(
        "call.abandoned",
        "calls/{linkedid}/abandoned",
        ("linkedid", "unit", "queue", "position", "wait_seconds"),
        QOS_AT_LEAST_ONCE,
        False,
        "The caller hung up while waiting in a queue.",
    ),
    EventSpec(
        "call.emergency",
        "calls/{linkedid}/emergency",
        ("linkedid", "ticket_id", "caller"),
        QOS_AT_LEAST_ONCE,
        False,
        "The caller chose the emergency key: the call is being put through to 110.",
    ),
    EventSpec(
        "queue.stats",
        "queues/{queue}/stats",
        ("queue", "waiting", "available_agents", "longest_wait_seconds"),
        QOS_AT_MOST_ONCE,
        True,
        "A queue's current figures for wallboards; each one replaces the last.",
    ),
    EventSpec(
        "ticket.changed",
        "tickets/{ticket_id}/changed",
        ("ticket_id", "from_status", "to_status", "action", "actor"),
        QOS_AT_LEAST_ONCE,
        False,
        "A ticket moved through its lifecycle (ivr.tickets.lifecycle).",
    ),
    EventSpec(
        "alarm.raised",
        "alarms/{kind}",
        ("kind", "message", "details"),
        QOS_AT_LEAST_ONCE,
        False,
        "Something needs a supervisor now.",
    ),
)
EVENT_NAMES: Final[frozenset[str]] = frozenset(EVENTS)


# -- formatting (pure) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OutgoingMessage:
    event: str
    topic: str
    #: The JSON envelope, UTF-8.
    payload: bytes
    qos: int
    retain: bool


def spec_of(event: str) -> EventSpec:
    """The catalogue entry; ValueError names the known events when there is none."""
    spec = EVENTS.get(event)
    if spec is None:
        raise ValueError(f"unknown event {event!r}; known events: {', '.join(sorted(EVENTS))}")
    return spec


def payload_problems(event: str, payload: Mapping[str, object]) -> list[str]:
    """Fields the catalogue expects but the payload lacks, and fields it does not know."""
    spec = spec_of(event)
    problems = [f"missing field {name!r}" for name in spec.fields if name not in payload]
    problems += [f"unexpected field {name!r}" for name in payload if name not in spec.fields]
    return problems


def topic_of(event: str, payload: Mapping[str, object], prefix: str) -> str:
    """``<prefix>/<topic>`` with the payload's values in place of the topic's fields.

    MQTT gives ``/``, ``+`` and ``#`` a meaning in topics, so those characters (and ``%``, the
    escape itself) are percent-encoded within a value. A missing or empty value is a
    ValueError: the message would have no address.
    """
    spec = spec_of(event)
    values: dict[str, str] = {}
    for name in spec.topic_fields:
        value = payload.get(name)
        text = "" if value is None else str(value.value if isinstance(value, enum.Enum) else value)
        if not text:
            raise ValueError(f"{event}: field {name!r} is needed for the topic but is empty")
        values[name] = _escape_topic_level(text)
    topic = spec.topic.format_map(values)
    prefix = prefix.strip("/")
    return f"{prefix}/{topic}" if prefix else topic


_TOPIC_ESCAPES: Final = str.maketrans({c: f"%{ord(c):02X}" for c in "%/+#\0"})


def _escape_topic_level(text: str) -> str:
    return text.translate(_TOPIC_ESCAPES)


def _json_default(value: object) -> object:
    """What json cannot encode by itself; anything else is a TypeError, never a silent str()."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID | PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_json(document: object) -> bytes:
    """Compact UTF-8 JSON with Chinese text as it is and datetimes in ISO-8601.

    NaN and infinities are a ValueError: they are not JSON, and subscribers would choke.
    """
    text = json.dumps(
        document,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
        default=_json_default,
    )
    return text.encode("utf-8")


def format_message(
    event: str,
    payload: Mapping[str, object],
    *,
    prefix: str,
    seq: int,
    origin: str,
    at: datetime,
) -> OutgoingMessage:
    """The message for one event: only the catalogue's fields, missing ones as null.

    ValueError when the event is unknown, the topic cannot be built, or the payload cannot be
    encoded (TypeError for a value of a type JSON has no form for).
    """
    spec = spec_of(event)
    envelope = {
        "event": event,
        "origin": origin,
        "seq": seq,
        "time": at,
        "data": {name: payload.get(name) for name in spec.fields},
    }
    return OutgoingMessage(
        event=event,
        topic=topic_of(event, payload, prefix),
        payload=encode_json(envelope),
        qos=spec.qos,
        retain=spec.retain,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_client_id() -> str:
    """Unique per process and notifier: the broker disconnects an older client with the same
    id, so two controllers (or two test notifiers) must never share one."""
    return f"ivr-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


# -- publishers ----------------------------------------------------------------------------


class EventPublisher(Protocol):
    """What the rest of the controller depends on: the notifier, or a recorder in tests."""

    def publish(self, event: str, payload: Mapping[str, object]) -> None: ...


@dataclasses.dataclass(frozen=True)
class RecordedEvent:
    event: str
    topic: str
    #: The envelope's ``data`` as a subscriber decodes it.
    data: dict[str, object]


class RecordingPublisher:
    """An :class:`EventPublisher` for unit tests. Stricter than the notifier: a payload with a
    missing or unexpected field raises ValueError here, where the live notifier only logs."""

    def __init__(self, prefix: str = "hotline") -> None:
        self.prefix = prefix
        self.events: list[RecordedEvent] = []
        self._seq = itertools.count(1)

    def publish(self, event: str, payload: Mapping[str, object]) -> None:
        problems = payload_problems(event, payload)
        if problems:
            raise ValueError(f"{event}: {'; '.join(problems)}")
        message = format_message(
            event, payload, prefix=self.prefix, seq=next(self._seq), origin="test", at=utc_now()
        )
        data = json.loads(message.payload)["data"]
        self.events.append(RecordedEvent(event, message.topic, data))

    def names(self) -> list[str]:
        return [recorded.event for recorded in self.events]


class EventNotifier:
    """The controller's one MQTT publisher. ``await start()`` once the event loop runs and
    ``await close()`` at shutdown (or ``async with``). :meth:`publish` may be called before
    ``start``: messages wait in the queue. Call it from the event loop's thread only.

    ``registry`` follows prometheus_client: the default registry, another one, or None for no
    metrics (the default registry accepts one notifier per process).
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str | None = None,
        queue_size: int = 10000,
        registry: CollectorRegistry | None = REGISTRY,
        clock: Callable[[], datetime] = utc_now,
        reconnect_min_seconds: float = 0.5,
        reconnect_max_seconds: float = 30.0,
        publish_timeout_seconds: float = 5.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.settings = settings
        self.client_id = client_id or default_client_id()
        self._clock = clock
        self._reconnect_min = reconnect_min_seconds
        self._reconnect_max = max(reconnect_max_seconds, reconnect_min_seconds)
        self._publish_timeout = publish_timeout_seconds
        self._queue: asyncio.Queue[OutgoingMessage] = asyncio.Queue(maxsize=queue_size)
        #: Taken from the queue, not yet acknowledged: sent again after a reconnect.
        self._in_flight: OutgoingMessage | None = None
        self._seq = itertools.count(1)
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._connected = False
        self._published = 0
        self._dropped = 0
        #: Log the start of a run of queue-full drops, not every drop.
        self._dropping = False
        #: Payload problems already logged, so that a buggy caller does not flood the log.
        self._warned: set[tuple[str, str]] = set()
        self._metrics = _Metrics(registry)

    # -- what callers read ---------------------------------------------------------------

    @property
    def published(self) -> int:
        """Messages the broker accepted (acknowledged, for QoS 1)."""
        return self._published

    @property
    def dropped(self) -> int:
        """Messages given up on: queue full, unpublishable payload, or still queued at close."""
        return self._dropped

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending(self) -> int:
        """Messages queued or in flight."""
        return self._queue.qsize() + (self._in_flight is not None)

    # -- publishing ----------------------------------------------------------------------

    def publish(self, event: str, payload: Mapping[str, object]) -> None:
        """Queue one event. Raises ValueError for an unknown event name (a programming error)
        and for nothing else; a message that cannot be sent is dropped, counted and logged."""
        spec_of(event)
        if not self.settings.enabled:
            return
        if self._closed:
            self._drop(event, DROP_CLOSED)
            return
        try:
            self._warn_about_fields(event, payload)
            message = format_message(
                event,
                payload,
                prefix=self.settings.topic_prefix,
                seq=next(self._seq),
                origin=self.client_id,
                at=self._clock(),
            )
        # Broad on purpose: a value's own model_dump or __str__ may raise anything, and an
        # exception here would end a citizen's call.
        except Exception as error:
            _log.error("events.unpublishable", event_name=event, error=str(error))
            self._drop(event, DROP_INVALID)
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            if not self._dropping:
                _log.warning(
                    "events.queue_full", size=self._queue.maxsize, connected=self.connected
                )
                self._dropping = True
            self._drop(event, DROP_QUEUE_FULL)

    def _warn_about_fields(self, event: str, payload: Mapping[str, object]) -> None:
        for problem in payload_problems(event, payload):
            if (event, problem) not in self._warned:
                self._warned.add((event, problem))
                _log.warning("events.payload_mismatch", event_name=event, problem=problem)

    def _drop(self, event: str, reason: str) -> None:
        self._dropped += 1
        self._metrics.dropped.labels(event=event, reason=reason).inc()

    # -- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("this EventNotifier is closed; make a new one")
        if self._worker is None and self.settings.enabled:
            self._worker = asyncio.create_task(self._run(), name="mqtt-events")

    async def close(self, grace_seconds: float = 2.0) -> None:
        """Send what is queued within ``grace_seconds``, then stop; the rest counts as dropped."""
        if self._closed:
            return
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                await asyncio.wait_for(self._queue.join(), grace_seconds)
            except TimeoutError:
                _log.warning("events.close_unsent", pending=self.pending)
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        for message in self._take_unsent():
            self._drop(message.event, DROP_CLOSED)

    def _take_unsent(self) -> Iterator[OutgoingMessage]:
        if self._in_flight is not None:
            yield self._in_flight
            self._in_flight = None
        while not self._queue.empty():
            yield self._queue.get_nowait()

    async def __aenter__(self) -> EventNotifier:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- the background task -------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._reconnect_min
        while True:
            try:
                async with self._client() as client:
                    self._set_connected(True)
                    delay = self._reconnect_min
                    await self._session(client)
            except aiomqtt.MqttError as error:
                _log.info("events.mqtt_unavailable", error=str(error), retry_in=delay)
            # A bug here must not silence every later event: log it and start over.
            except Exception:
                _log.exception("events.publisher_failed", retry_in=delay)
            finally:
                if self._connected and not self._closed:
                    _log.warning("events.mqtt_disconnected", pending=self.pending)
                self._set_connected(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    def _client(self) -> aiomqtt.Client:
        # A new client per connection: no state of a dead session leaks into the next one,
        # the message in flight is resent by this module.
        return aiomqtt.Client(
            self.settings.host,
            self.settings.port,
            identifier=self.client_id,
            keepalive=KEEPALIVE_SECONDS,
            timeout=self._publish_timeout,
        )

    def _set_connected(self, connected: bool) -> None:
        if connected and not self._connected:
            _log.info("events.mqtt_connected", host=self.settings.host, port=self.settings.port)
        self._connected = connected
        self._metrics.connected.set(1 if connected else 0)

    async def _session(self, client: aiomqtt.Client) -> None:
        """Send until cancelled; MqttError when the connection is lost.

        aiomqtt's publish waits for its acknowledgement without watching the connection, so
        a second task watches it and cuts the wait short when the broker goes away.
        """
        sender = asyncio.create_task(self._send_queued(client))
        watcher = asyncio.create_task(_until_disconnected(client))
        try:
            done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, watcher):
                task.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        for task in done:
            task.result()

    async def _send_queued(self, client: aiomqtt.Client) -> None:
        while True:
            if self._in_flight is None:
                self._in_flight = await self._queue.get()
            message = self._in_flight
            await client.publish(
                message.topic,
                message.payload,
                qos=message.qos,
                retain=message.retain,
                timeout=self._publish_timeout,
            )
            self._in_flight = None
            self._queue.task_done()
            self._published += 1
            self._dropping = False
            self._metrics.published.labels(event=message.event).inc()


async def _until_disconnected(client: aiomqtt.Client) -> None:
    # Nothing is subscribed, so no message ever comes: the iteration ends only with the
    # MqttError that aiomqtt raises when the connection drops.
    async for _message in client.messages:
        pass
    raise aiomqtt.MqttError("the MQTT connection ended")


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.published = Counter(
            "ivr_events_published",
            "Events the MQTT broker accepted.",
            ["event"],
            registry=registry,
        )
        self.dropped = Counter(
            "ivr_events_dropped",
            "Events not sent: queue full, unpublishable payload, or unsent at shutdown.",
            ["event", "reason"],
            registry=registry,
        )
        self.connected = Gauge(
            "ivr_mqtt_connected",
            "1 while the event notifier is connected to the MQTT broker.",
            registry=registry,
        )
        for event in EVENTS:
            self.published.labels(event=event)
            for reason in DROP_REASONS:
                self.dropped.labels(event=event, reason=reason)
