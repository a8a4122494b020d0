"""Service metrics and line usage, on ticket lists small enough to count by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.reports.metrics import (
    GroupBy,
    Period,
    ServiceMetrics,
    UsageThresholds,
    line_usage,
    month_range,
    percentile,
    period_key,
    service_metrics,
)
from ivr.reports.records import Disposition, TicketRecord

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 31, tzinfo=UTC)


def at(month: int, day: int, hour: int = 2, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def answered(ticket_id: str, wait: float, talk: float | None, **fields: object) -> TicketRecord:
    created = fields.pop("created_at", at(3, 2))
    assert isinstance(created, datetime)
    return TicketRecord(
        id=ticket_id, created_at=created, outcome="answered", answered_at=created,
        wait_seconds=wait, talk_seconds=talk, route_hops=1, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


#: Ten calls, counted by hand in the tests below.
RECORDS: tuple[TicketRecord, ...] = (
    answered("r1", 10, 100, unit="u1", level="street", line="12345", status="resolved",
             deadline=at(3, 3), resolved_at=at(3, 2, 12), rating="satisfied"),
    answered("r2", 30, 200, unit="u1", level="street", line="12345", status="closed",
             created_at=at(3, 2, 3), deadline=at(3, 3), resolved_at=at(3, 4),
             rating="dissatisfied"),
    TicketRecord(id="r3", created_at=at(3, 10), unit="u1", level="street", line="12345",
                 outcome="abandoned", wait_seconds=50, route_hops=1),
    TicketRecord(id="r4", created_at=at(3, 10), unit="u2", level="district", line="12315",
                 outcome="voice_message", callback_requested=True),
    # 00:30 on 12 March in Shanghai.
    TicketRecord(id="r5", created_at=at(3, 11, 16, 30), line="12345", emergency=True,
                 outcome="transferred_110"),
    answered("r6", 20, 300, unit="u2", level="district", line="12315", status="assigned",
             created_at=at(3, 20), deadline=at(3, 25)),
    TicketRecord(id="r7", created_at=at(3, 20), unit="u2", level="district", line="12315",
                 outcome="caller_hung_up", wait_seconds=5, route_hops=2),
    TicketRecord(id="r8", created_at=at(3, 21), line="12345", outcome="caller_hung_up"),
    answered("r9", 0, None, unit="u1", level="street", line="12345", status="followed_up",
             created_at=at(3, 27), deadline=at(4, 5), resolved_at=at(3, 28),
             rating="basically_satisfied"),
    answered("r10", 15, 50, unit="u1", level="street", line="12345", status="assigned",
             created_at=at(3, 28), deadline=at(4, 10)),
)  # fmt: skip


def only(rows: list[ServiceMetrics]) -> ServiceMetrics:
    assert len(rows) == 1
    return rows[0]


def test_dispositions() -> None:
    found = {record.id: record.disposition for record in RECORDS}
    assert found == {
        "r1": Disposition.ANSWERED, "r2": Disposition.ANSWERED, "r3": Disposition.ABANDONED,
        "r4": Disposition.UNANSWERED, "r5": Disposition.NOT_OFFERED, "r6": Disposition.ANSWERED,
        "r7": Disposition.ABANDONED, "r8": Disposition.NOT_OFFERED, "r9": Disposition.ANSWERED,
        "r10": Disposition.ANSWERED,
    }  # fmt: skip


def test_every_metric_of_the_whole_list() -> None:
    row = only(service_metrics(RECORDS, now=NOW, tz=TZ))
    assert (row.group, row.period) == ("all", "")
    assert (row.calls, row.offered, row.answered, row.abandoned) == (10, 8, 5, 2)
    # Within 20 s: r1 (10), r6 (exactly 20), r9 (0), r10 (15); not r2 (30).
    assert row.answered_within == 4 and row.service_level == pytest.approx(0.5)
    assert row.answer_rate == pytest.approx(5 / 8)
    assert row.abandon_rate == pytest.approx(2 / 8)
    # Waits of the offered calls that have one: 0 5 10 15 20 30 50.
    assert row.average_wait == pytest.approx(130 / 7)
    assert row.p90_wait == 50
    assert row.average_talk == pytest.approx(650 / 4)
    # Due: r1 and r9 resolved on time, r2 resolved late, r6 past its deadline; r10 not yet.
    assert (row.due, row.resolved_on_time, row.on_time_rate) == (4, 2, 0.5)
    assert (row.rated, row.satisfied) == (3, 2)
    assert row.satisfaction_rate == pytest.approx(2 / 3)


def test_threshold_is_configurable() -> None:
    row = only(service_metrics(RECORDS, now=NOW, tz=TZ, answer_within=30))
    assert row.answered_within == 5 and row.service_level == pytest.approx(5 / 8)
    assert row.answer_within_seconds == 30


def test_by_unit() -> None:
    rows = {row.group: row for row in service_metrics(RECORDS, now=NOW, tz=TZ, by=GroupBy.UNIT)}
    assert list(rows) == ["(none)", "u1", "u2"]
    u1, u2, none = rows["u1"], rows["u2"], rows["(none)"]
    assert (u1.calls, u1.offered, u1.answered, u1.abandoned, u1.answered_within) == (5, 5, 4, 1, 3)
    assert u1.service_level == pytest.approx(0.6)
    assert (u2.calls, u2.offered, u2.answered, u2.abandoned, u2.answered_within) == (3, 3, 1, 1, 1)
    assert u2.p90_wait == 20 and u2.average_wait == pytest.approx(12.5)
    assert (u2.due, u2.resolved_on_time, u2.on_time_rate) == (1, 0, 0.0)
    assert u2.satisfaction_rate is None  # nobody rated: no data, not 0 %
    assert (none.calls, none.offered, none.service_level, none.average_wait) == (2, 0, None, None)


def test_by_level_and_by_line_with_unused_lines() -> None:
    levels = service_metrics(RECORDS, now=NOW, tz=TZ, by=GroupBy.LEVEL)
    assert [(row.group, row.calls) for row in levels] == [
        ("(none)", 2),
        ("district", 3),
        ("street", 5),
    ]
    lines = service_metrics(
        RECORDS, now=NOW, tz=TZ, by=GroupBy.LINE, groups=["12345", "12315", "12320"]
    )
    assert [(row.group, row.calls, row.answered) for row in lines] == [
        ("12315", 3, 1),
        ("12320", 0, 0),
        ("12345", 7, 4),
    ]
    assert lines[1].service_level is None


def test_periods_are_local_days_weeks_months() -> None:
    days = service_metrics(RECORDS, now=NOW, tz=TZ, period=Period.DAY)
    assert [(row.period, row.calls) for row in days] == [
        ("2026-03-02", 2), ("2026-03-10", 2), ("2026-03-12", 1), ("2026-03-20", 2),
        ("2026-03-21", 1), ("2026-03-27", 1), ("2026-03-28", 1),
    ]  # fmt: skip
    weeks = service_metrics(RECORDS, now=NOW, tz=TZ, period=Period.WEEK)
    assert [(row.period, row.calls) for row in weeks] == [
        ("2026-W10", 2),
        ("2026-W11", 3),
        ("2026-W12", 3),
        ("2026-W13", 2),
    ]
    months = service_metrics(RECORDS, now=NOW, tz=TZ, by=GroupBy.UNIT, period=Period.MONTH)
    assert [(row.group, row.period, row.calls) for row in months] == [
        ("(none)", "2026-03", 2),
        ("u1", "2026-03", 5),
        ("u2", "2026-03", 3),
    ]


def test_period_keys_and_helpers() -> None:
    late_evening = datetime(2026, 12, 31, 17, tzinfo=UTC)  # 1 January 01:00 in Shanghai
    assert period_key(late_evening, Period.DAY, TZ) == "2027-01-01"
    assert period_key(late_evening, Period.WEEK, TZ) == "2026-W53"
    assert period_key(late_evening, Period.MONTH, TZ) == "2027-01"
    assert period_key(late_evening, Period.MONTH, UTC) == "2026-12"
    assert month_range(datetime(2025, 11, 5).date(), datetime(2026, 2, 1).date()) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert percentile([], 0.9) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert percentile([float(v) for v in range(1, 12)], 0.9) == 10.0


def test_resolved_without_audit_time_is_on_time_unless_flagged_overdue() -> None:
    plain = TicketRecord(id="a", created_at=at(3, 1), status="resolved", deadline=at(3, 2))
    flagged = TicketRecord(id="b", created_at=at(3, 1), status="resolved", deadline=at(3, 2),
                           overdue_at=at(3, 2))  # fmt: skip
    merged = TicketRecord(id="c", created_at=at(3, 1), status="merged", deadline=at(3, 2))
    reopened = TicketRecord(id="d", created_at=at(3, 1), status="reopened", deadline=at(3, 2),
                            resolved_at=at(3, 1, 5))  # fmt: skip
    row = only(service_metrics([plain, flagged, merged, reopened], now=NOW, tz=TZ))
    assert (row.due, row.resolved_on_time) == (3, 1)


def record_on(line: str, when: datetime) -> TicketRecord:
    return TicketRecord(id=f"{line}-{when.isoformat()}", created_at=when, line=line)


def test_line_usage_counts_months_by_line() -> None:
    records = [
        *(record_on("12345", at(1, 5, minute=m)) for m in range(7)),
        *(record_on("12345", at(3, 9, minute=m)) for m in range(3)),
        record_on("12315", at(1, 5)),
        record_on("12315", datetime(2026, 1, 31, 20, tzinfo=UTC)),  # 1 February locally
        record_on("12315", at(3, 1)),
    ]
    report = line_usage(
        records, tz=TZ, lines=["12345", "12315", "12369"],
        thresholds=UsageThresholds(busy=3, used=2, idle=1),
    )  # fmt: skip
    assert report.months == ("2026-01", "2026-02", "2026-03")
    usage = {entry.line: entry for entry in report.lines}
    assert [entry.line for entry in report.lines] == ["12315", "12345", "12369"]
    assert usage["12345"].monthly == (("2026-01", 7), ("2026-02", 0), ("2026-03", 3))
    assert usage["12345"].total == 10
    assert usage["12345"].average_per_month == pytest.approx(10 / 3)
    assert (usage["12345"].months_under_used, usage["12345"].months_under_idle) == (1, 1)
    assert usage["12315"].monthly == (("2026-01", 1), ("2026-02", 1), ("2026-03", 1))
    assert (usage["12315"].months_under_used, usage["12315"].months_under_idle) == (3, 0)
    assert usage["12315"].share_months_under_used == 1.0
    assert usage["12369"].total == 0 and usage["12369"].share_months_under_idle == 1.0
    assert (report.lines_over_busy, report.lines_over_used) == (1, 1)
    assert report.share_lines_under_used == pytest.approx(2 / 3)
    assert report.share_lines_under_idle == pytest.approx(1 / 3)


def test_line_usage_with_the_essays_thresholds_and_given_months() -> None:
    records = [record_on("12345", at(2, 10, minute=i % 60)) for i in range(1200)]
    report = line_usage(records, tz=TZ, lines=["12320"], months=["2026-01", "2026-02"])
    usage = {entry.line: entry for entry in report.lines}
    assert usage["12345"].monthly == (("2026-01", 0), ("2026-02", 1200))
    assert usage["12345"].months_under_used == 1 and usage["12345"].months_under_idle == 1
    assert (report.lines_over_busy, report.lines_over_used) == (0, 0)  # 600 a month on average
    assert report.share_lines_under_used == 1.0 and report.share_lines_under_idle == 0.5
    empty = line_usage([], tz=TZ)
    assert empty.months == () and empty.lines == () and empty.share_lines_under_used is None
