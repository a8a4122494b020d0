"""Hotspot alarms while the controller runs (issue 9 part 5): every
``reports.hotspot_interval_minutes`` the recent tickets' counts (per place, category and day,
counted by the database) go through the hotspot detector (:mod:`ivr.reports.hotspots`), and
each new hotspot is announced once as ``alarm.raised`` (kind ``hotspot``) with the tickets
behind it.

"Once" means once per episode: a place and category that stay hot on consecutive days (or
are checked again and again on the same day) raise one alarm; after a whole day that is not
hot, a new rise is a new alarm. :class:`HotspotWatch` decides that and reads no clock; the
scheduler at the bottom is the I/O edge. The watch lives in memory: a restarted controller
announces a hotspot that is still going on once more, which a supervisor can live with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import structlog

from ivr.events import EventPublisher
from ivr.reports.hotspots import (
    DEFAULT_HOTSPOT_SETTINGS,
    Hotspot,
    HotspotSettings,
    PlaceTree,
    TicketCounts,
    alarms_for,
    collapse_nested,
    detect_hotspots_in_counts,
    places_from_routing,
    with_ticket_ids,
)
from ivr.routing import RoutingTables
from ivr.tickets import TicketStore

log = structlog.get_logger(__name__)

#: Days checked on each run: today, and yesterday for the tickets of its last minutes.
CHECKED_DAYS = 2


@dataclass
class HotspotWatch:
    """Which hotspots were announced: (place, category) -> the last day it was hot."""

    last_hot: dict[tuple[str, str], date] = field(default_factory=dict)

    def fresh(self, hotspots: Iterable[Hotspot]) -> list[Hotspot]:
        """The hotspots to announce now, oldest day first; remembers all of them."""
        new: list[Hotspot] = []
        for hotspot in sorted(hotspots, key=lambda h: (h.day, h.place, h.category)):
            key = (hotspot.place, hotspot.category)
            last = self.last_hot.get(key)
            if last is None or (hotspot.day - last).days > 1:
                new.append(hotspot)
            if last is None or hotspot.day > last:
                self.last_hot[key] = hotspot.day
        return new

    def forget_before(self, day: date) -> None:
        """Drop episodes that ended before ``day``: they can no longer go on."""
        self.last_hot = {key: last for key, last in self.last_hot.items() if last >= day}


def first_history_day(today: date, settings: HotspotSettings) -> date:
    """The first day of the tickets one run needs: the baseline of the first checked day."""
    return today - timedelta(days=CHECKED_DAYS - 1 + settings.baseline_days)


def fresh_hotspots(
    counts: TicketCounts,
    places: PlaceTree,
    watch: HotspotWatch,
    *,
    today: date,
    settings: HotspotSettings = DEFAULT_HOTSPOT_SETTINGS,
) -> list[Hotspot]:
    """The hotspots of one run to announce: those of the checked days not announced yet
    (the most exact place of each, see :func:`collapse_nested`), still without their
    tickets (see :func:`with_ticket_ids`)."""
    first_checked = today - timedelta(days=CHECKED_DAYS - 1)
    found = detect_hotspots_in_counts(
        counts, places, settings=settings, since=first_checked, until=today
    )
    fresh = watch.fresh(collapse_nested(found, places))
    watch.forget_before(first_checked - timedelta(days=1))
    return fresh


def place_names(tables: RoutingTables) -> dict[str, str]:
    return {code: unit.name.zh for code, unit in tables.units.items()}


async def read_ticket_ids_behind(
    store: TicketStore, hotspot: Hotspot, places: PlaceTree, tz: tzinfo
) -> list[str]:
    """The ids of the tickets a hotspot counted (as :func:`ticket_ids_behind` finds them in
    records): read only for the few hotspots announced."""
    return await store.ticket_ids_opened(
        category=hotspot.category,
        locations=places.within(hotspot.place),
        start=datetime.combine(hotspot.day, time(), tzinfo=tz),
        end=datetime.combine(hotspot.day + timedelta(days=1), time(), tzinfo=tz),
    )


async def check_once(
    store: TicketStore,
    tables: RoutingTables,
    notifier: EventPublisher,
    watch: HotspotWatch,
    now: datetime,
    settings: HotspotSettings = DEFAULT_HOTSPOT_SETTINGS,
) -> list[dict[str, Any]]:
    """Count the recent tickets, publish the new hotspots' alarms, return them.

    The database counts the tickets per location, category and day: the event loop gets a
    row per such count, never a ticket, and reads ids only for the hotspots announced."""
    tz = tables.timezone
    today = now.astimezone(tz).date()
    places = places_from_routing(tables)
    counts = await store.ticket_counts_per_day(
        first_day=first_history_day(today, settings), last_day=today, tz=tz
    )
    announced = [
        with_ticket_ids(hotspot, await read_ticket_ids_behind(store, hotspot, places, tz))
        for hotspot in fresh_hotspots(counts, places, watch, today=today, settings=settings)
    ]
    alarms = alarms_for(announced, place_names(tables))
    for alarm in alarms:
        notifier.publish("alarm.raised", alarm)
    return alarms


async def run_hotspot_scheduler(
    store: TicketStore,
    tables_of: Callable[[], RoutingTables],
    notifier: EventPublisher,
    clock: Callable[[], datetime],
    interval_seconds: float,
) -> None:
    """Check now and then every ``interval_seconds``, for as long as the controller runs."""
    watch = HotspotWatch()
    while True:
        try:
            alarms = await check_once(store, tables_of(), notifier, watch, clock())
            if alarms:
                log.info("hotspots raised", places=[a["details"]["place"] for a in alarms])
        except Exception:
            log.exception("hotspot check failed; trying again later")
        await asyncio.sleep(interval_seconds)
