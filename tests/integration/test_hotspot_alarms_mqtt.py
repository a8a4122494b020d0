"""The controller's hotspot scheduler on real parts: a SQLite ticket store holding four weeks
of injected tickets and a sudden rise, the real notifier, and a subscriber on the real
Mosquitto that receives the alarm, once, with the tickets behind it."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from hotline_stack import make_home
from prometheus_client import CollectorRegistry

from ivr.deployment import load_deployment
from ivr.events import EventNotifier
from ivr.hotspot_alarms import run_hotspot_scheduler
from ivr.settings import MqttSettings, database_url
from ivr.tickets import TicketStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mqtt_service

pytestmark = pytest.mark.integration

#: Noon in Shanghai on the day of the rise.
NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)
RUNS_AFTER_THE_ALARM = 3


async def _eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def _inject(store: TicketStore) -> list[str]:
    """One urban ticket a day in c-east-1-2 for four weeks, then nine in c-west-1-1 today:
    the ids of today's nine."""
    for day in range(1, 29):
        await store.open_call(f"usual-{day}", created_at=NOW - timedelta(days=day), line="12345",
                              category="urban", location="c-east-1-2")  # fmt: skip
    return [
        await store.open_call(
            f"rise-{n}",
            created_at=NOW - timedelta(minutes=n),
            line="12369",
            category="environment",
            location="c-west-1-1",
        )
        for n in range(9)
    ]


async def test_the_scheduler_raises_a_hotspot_alarm_once(tmp_path: Path) -> None:
    try:
        mqtt_service.ensure_mosquitto()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    home = make_home(tmp_path / "home")
    routing = load_deployment(home, check_prompt_files=False).routing
    prefix = f"ivrtest-{secrets.token_hex(4)}"
    settings = MqttSettings(host=mqtt_service.HOST, port=mqtt_service.PORT, topic_prefix=prefix)
    runs = 0

    def clock() -> datetime:
        nonlocal runs
        runs += 1
        return NOW + timedelta(seconds=runs)

    received: list[aiomqtt.Message] = []

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            received.append(message)

    async with (
        TicketStore(database_url(home)) as store,
        aiomqtt.Client(mqtt_service.HOST, mqtt_service.PORT) as subscriber,
        EventNotifier(settings, registry=CollectorRegistry()) as notifier,
    ):
        rise = await _inject(store)
        await subscriber.subscribe(f"{prefix}/alarms/#", qos=1)
        listener = asyncio.create_task(collect(subscriber))
        scheduler = asyncio.create_task(
            run_hotspot_scheduler(store, lambda: routing, notifier, clock, interval_seconds=0.05)
        )
        try:
            await _eventually(lambda: len(received) >= 1)
            seen = runs
            # Later runs find the same hotspot and must stay silent.
            await _eventually(lambda: runs >= seen + RUNS_AFTER_THE_ALARM)
            await _eventually(lambda: notifier.pending == 0)
        finally:
            scheduler.cancel()
            await asyncio.gather(scheduler, return_exceptions=True)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    # Acknowledged by the broker: exactly one alarm left the notifier.
    assert notifier.published == 1, [m.payload for m in received]
    [message] = received
    assert str(message.topic) == f"{prefix}/alarms/hotspot"
    assert isinstance(message.payload, bytes | bytearray)
    document = json.loads(message.payload.decode("utf-8"))
    data = document["data"]
    assert data["kind"] == "hotspot"
    assert data["details"]["place"] == "c-west-1-1"
    assert data["details"]["category"] == "environment"
    assert data["details"]["day"] == "2026-06-15"
    assert sorted(data["details"]["ticket_ids"]) == sorted(rise)
    assert "c-west-1-1" not in data["message"]  # named for people: the community's name
