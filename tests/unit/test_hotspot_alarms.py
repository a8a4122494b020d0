"""Hotspot alarms of the controller's scheduler: announced once per episode, judged with a
fake clock on tickets made by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ivr.events import RecordingPublisher, spec_of
from ivr.hotspot_alarms import HotspotWatch, first_history_day, fresh_hotspots
from ivr.reports.hotspots import (
    DEFAULT_HOTSPOT_SETTINGS,
    Hotspot,
    PlaceTree,
    alarms_for,
    ticket_ids_behind,
    ticket_ids_per_day,
    with_ticket_ids,
)
from ivr.reports.records import TicketRecord

TZ = ZoneInfo("Asia/Shanghai")
PLACES = PlaceTree(
    parents={"city": None, "d1": "city", "s1": "d1", "c1": "s1", "c2": "s1"},
    levels={"city": "city", "d1": "district", "s1": "street", "c1": "community",
            "c2": "community"},
)  # fmt: skip
FIRST_DAY = date(2026, 3, 1)
#: The day the noise complaints in c1 jump from one a day to nine.
SPIKE = FIRST_DAY + timedelta(days=28)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


def tickets(
    day: date, count: int, place: str = "c1", category: str = "noise"
) -> list[TicketRecord]:
    return [
        TicketRecord(id=f"{place}-{day:%m%d}-{n}", created_at=local(day, 9, n), line="12345",
                     category=category, location=place)
        for n in range(count)
    ]  # fmt: skip


def history(days: int) -> list[TicketRecord]:
    """One noise ticket a day in c1 and one water ticket in c2, from FIRST_DAY on."""
    found: list[TicketRecord] = []
    for index in range(days):
        day = FIRST_DAY + timedelta(days=index)
        found += tickets(day, 1) + tickets(day, 1, "c2", "water")
    return found


def run(records: list[TicketRecord], watch: HotspotWatch, now: datetime) -> list[dict[str, object]]:
    """One run of the scheduler (check_once) with the records standing in for the store."""
    ids = ticket_ids_per_day(records, tz=TZ)
    counts = {key: len(day_ids) for key, day_ids in ids.items()}
    fresh = fresh_hotspots(counts, PLACES, watch, today=now.astimezone(TZ).date())
    announced = [with_ticket_ids(h, ticket_ids_behind(h, ids, PLACES)) for h in fresh]
    return alarms_for(announced, {"c1": "东一社区"})


def test_a_rise_is_announced_once_with_its_tickets() -> None:
    watch = HotspotWatch()
    records = history(28) + tickets(SPIKE, 9)
    assert run(history(28) + tickets(SPIKE, 2), watch, local(SPIKE, 10)) == []
    [alarm] = run(records, watch, local(SPIKE, 12))
    assert alarm["kind"] == "hotspot"
    assert alarm["message"] == f"9 noise tickets in 东一社区 on {SPIKE.isoformat()} (usually 1.0)"
    details = alarm["details"]
    assert isinstance(details, dict)
    # The community names the place best; its street and district are not announced too.
    assert (details["place"], details["level"], details["count"]) == ("c1", "community", 9)
    assert details["ticket_ids"] == [f"c1-{SPIKE:%m%d}-{n}" for n in range(9)]
    # Later runs the same day, even with more tickets, say nothing new.
    assert run(records + tickets(SPIKE, 12)[9:], watch, local(SPIKE, 13)) == []
    assert run(records, watch, local(SPIKE, 23, 59)) == []


def test_an_episode_over_consecutive_days_is_one_alarm_and_a_new_rise_another() -> None:
    watch = HotspotWatch()
    day2, quiet, again = (SPIKE + timedelta(days=n) for n in (1, 2, 3))
    records = history(28) + tickets(SPIKE, 9)
    assert len(run(records, watch, local(SPIKE, 12))) == 1
    records += tickets(day2, 9)
    assert run(records, watch, local(day2, 12)) == []  # still the same episode
    records += tickets(quiet, 1)
    assert run(records, watch, local(quiet, 12)) == []
    records += tickets(again, 9)
    [alarm] = run(records, watch, local(again, 12))
    details = alarm["details"]
    assert isinstance(details, dict) and details["day"] == again.isoformat()


def test_yesterdays_late_rise_is_caught_after_midnight() -> None:
    watch = HotspotWatch()
    records = history(28) + [
        TicketRecord(id=f"late-{n}", created_at=local(SPIKE, 23, 50 + n), category="noise",
                     location="c1")
        for n in range(9)
    ]  # fmt: skip
    [alarm] = run(records, watch, local(SPIKE + timedelta(days=1), 0, 5))
    details = alarm["details"]
    assert isinstance(details, dict) and details["day"] == SPIKE.isoformat()


def test_the_payload_is_the_catalogues_alarm() -> None:
    publisher = RecordingPublisher()
    for alarm in run(history(28) + tickets(SPIKE, 9), HotspotWatch(), local(SPIKE, 12)):
        publisher.publish("alarm.raised", alarm)  # raises on a field the catalogue lacks
    assert [event.topic for event in publisher.events] == ["hotline/alarms/hotspot"]
    assert set(publisher.events[0].data) == set(spec_of("alarm.raised").fields)


def test_the_watch_forgets_ended_episodes() -> None:
    def hot(day: date) -> Hotspot:
        return Hotspot("c1", "community", "noise", day, 9, 1.0, 6.0, ("t1",))

    watch = HotspotWatch()
    assert watch.fresh([hot(SPIKE)]) == [hot(SPIKE)]
    watch.forget_before(SPIKE)
    assert watch.last_hot == {("c1", "noise"): SPIKE}
    watch.forget_before(SPIKE + timedelta(days=1))
    assert watch.last_hot == {}


def test_the_history_covers_the_baseline_of_yesterday() -> None:
    assert first_history_day(SPIKE, DEFAULT_HOTSPOT_SETTINGS) == SPIKE - timedelta(days=29)
