"""Recording paths, and the retention purge on a real folder tree and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ivr.home import Home
from ivr.recordings import (
    RecordingFile,
    is_expired,
    keeps_recording,
    parse_recording_name,
    plan_purge,
    purge,
    purge_cutoff,
    recording_name,
    recording_path,
)
from ivr.settings import database_url
from ivr.tickets.store import TicketStore

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
OLD = datetime(2026, 9, 1, 9, 30, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


# -- paths ----------------------------------------------------------------------------------


def test_recording_path_of_a_call_and_a_message(tmp_path: Path) -> None:
    home = Home(tmp_path)
    call = recording_path(home, "T20261127-000042", NOW)
    assert call.relative == "recordings/2026/11/27/T20261127-000042"
    assert call.absolute == tmp_path / "recordings/2026/11/27/T20261127-000042.wav"
    message = recording_path(home, "T20261127-000042", NOW, kind="message")
    assert message.relative == "recordings/2026/11/27/T20261127-000042-message"
    assert message.absolute.name == "T20261127-000042-message.wav"


def test_recording_path_is_dated_like_the_ticket_id(tmp_path: Path) -> None:
    # 23:30 UTC on the 26th is the 27th in Beijing: a ticket opened with that local time is
    # T20261127-..., and so is its folder.
    late = datetime(2026, 11, 26, 23, 30, tzinfo=UTC).astimezone(BEIJING)
    path = recording_path(Home(tmp_path), "T20261127-000001", late)
    assert path.relative == "recordings/2026/11/27/T20261127-000001"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "T1/2", "", "a b", "x.wav"])
def test_recording_names_are_safe(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot name a recording"):
        recording_name(bad)


def test_recording_path_wants_an_aware_time(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        recording_path(Home(tmp_path), "T20261127-000001", datetime(2026, 11, 27))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown recording kind"):
        recording_name("T20261127-000001", "video")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("T20261127-000042.wav", ("T20261127-000042", "call")),
        ("T20261127-000042-message.wav", ("T20261127-000042", "message")),
        ("T20261127-1234567.WAV", ("T20261127-1234567", "call")),
        ("20261127T083000-12345-13800000000.wav", None),
        ("notes.txt", None),
    ],
)
def test_parse_recording_name(name: str, parsed: tuple[str, str] | None) -> None:
    assert parse_recording_name(name) == parsed


# -- decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "parent", "keeps"),
    [
        ("accepted", None, True),
        ("assigned", None, True),
        ("in_progress", None, True),
        ("returned", None, True),
        ("reopened", None, True),
        ("resolved", None, True),
        ("followed_up", None, True),
        ("evaluated", None, False),
        ("closed", None, False),
        ("merged", None, False),
        ("merged", "assigned", True),
        ("merged", "closed", False),
        ("a-future-status", None, True),
    ],
)
def test_keeps_recording(status: str, parent: str | None, keeps: bool) -> None:
    assert keeps_recording(status, parent) is keeps


def _file(day: date, modified: datetime, ticket_id: str | None = None) -> RecordingFile:
    return RecordingFile(
        f"{day:%Y}", f"{day:%m}", f"{day:%d}", f"{ticket_id or 'x'}.wav", day, 10, modified,
        ticket_id, "call",
    )  # fmt: skip


def test_expiry_needs_an_old_day_and_an_old_change() -> None:
    cutoff = purge_cutoff(NOW, 30)
    assert cutoff == datetime(2026, 10, 28, 8, 0, tzinfo=UTC)
    assert is_expired(_file(date(2026, 10, 27), OLD), cutoff)
    assert not is_expired(_file(date(2026, 10, 28), OLD), cutoff)  # the cutoff's own day
    assert not is_expired(_file(date(2026, 10, 1), NOW), cutoff)  # restored or misfiled


def test_plan_purge_keeps_open_tickets() -> None:
    cutoff = purge_cutoff(NOW, 30)
    old_open = _file(date(2026, 9, 1), OLD, "T20260901-000001")
    old_closed = _file(date(2026, 9, 1), OLD, "T20260901-000002")
    fresh = _file(date(2026, 11, 27), NOW, "T20261127-000003")
    plan = plan_purge([old_open, old_closed, fresh], {"T20260901-000001"}, cutoff)
    assert plan.remove == [old_closed]
    assert plan.kept_open == [old_open]


@pytest.mark.parametrize("days", [0, -3])
def test_purge_cutoff_refuses_nonsense(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        purge_cutoff(NOW, days)


# -- the purge on disk ----------------------------------------------------------------------


def _url(home: Home) -> str:
    return database_url(home)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
async def store(home: Home) -> AsyncIterator[TicketStore]:
    async with TicketStore(_url(home), clock=lambda: NOW) as opened:
        yield opened


def _write(path: Path, size: int, modified: datetime) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


async def _ticket(store: TicketStore, linkedid: str, created_at: datetime) -> str:
    return await store.open_call(linkedid, line="12345", caller="13800000000",
                                 created_at=created_at)  # fmt: skip


@pytest.fixture
async def tree(home: Home, store: TicketStore, tmp_path: Path) -> dict[str, Path]:
    return await _build_tree(home, store, tmp_path)


def _tree_for_cli(home: Home, tmp_path: Path) -> dict[str, Path]:
    async def build() -> dict[str, Path]:
        async with TicketStore(_url(home), clock=lambda: NOW) as store:
            return await _build_tree(home, store, tmp_path)

    return asyncio.run(build())


async def _build_tree(home: Home, store: TicketStore, tmp_path: Path) -> dict[str, Path]:
    """Old recordings of tickets in every state, a fresh one, and links pointing outside."""
    closed = await _ticket(store, "c.1", OLD)
    await store.close_ticket(closed, actor="t", now=OLD)
    still_open = await _ticket(store, "c.2", OLD)
    await store.assign(still_open, "district-east", actor="t", now=OLD)
    evaluated = await _ticket(store, "c.3", OLD)
    await store.resolve(evaluated, actor="t", now=OLD)
    await store.follow_up(evaluated, "satisfied", actor="t", now=OLD)
    await store.evaluate(evaluated, actor="t", score=90, now=OLD)
    duplicate = await _ticket(store, "c.4", OLD)
    await store.merge(duplicate, still_open, actor="t", now=OLD)
    fresh = await _ticket(store, "c.5", NOW)

    def at(ticket_id: str, when: datetime, kind: str = "call") -> Path:
        return recording_path(home, ticket_id, when, kind).absolute  # type: ignore[arg-type]

    outside = _write(tmp_path / "outside" / "precious.wav", 7, OLD)
    files = {
        "closed": _write(at(closed, OLD), 100, OLD),
        "closed_message": _write(at(closed, OLD, "message"), 50, OLD),
        "open": _write(at(still_open, OLD), 200, OLD),
        "evaluated": _write(at(evaluated, OLD), 300, OLD),
        "merged_into_open": _write(at(duplicate, OLD), 400, OLD),
        "fresh": _write(at(fresh, NOW), 500, NOW),
        "unnamed": _write(home.recordings_dir / "2026/08/15/20260815T101010-12345-1.wav", 60,
                          datetime(2026, 8, 15, tzinfo=UTC)),
        "outside": outside,
    }  # fmt: skip
    # A link to a file outside, inside an old day folder, and a whole day folder that is a link.
    link = home.recordings_dir / "2026/09/01/T20260901-999999.wav"
    link.symlink_to(outside)
    os.utime(link, (OLD.timestamp(), OLD.timestamp()), follow_symlinks=False)
    (home.recordings_dir / "2026/09/02").symlink_to(outside.parent, target_is_directory=True)
    files["link"] = link
    return files


async def test_purge_removes_old_recordings_of_finished_tickets(
    home: Home, store: TicketStore, tree: dict[str, Path]
) -> None:
    report = await purge(home, store, older_than_days=30, now=NOW)
    assert sorted(report.removed) == sorted(
        str(tree[name].relative_to(home.root))
        for name in ("closed", "closed_message", "evaluated", "unnamed")
    )
    assert report.bytes_freed == 100 + 50 + 300 + 60
    assert sorted(report.kept_open) == sorted(
        str(tree[name].relative_to(home.root)) for name in ("open", "merged_into_open")
    )
    assert not report.dry_run
    for name in ("closed", "closed_message", "evaluated", "unnamed"):
        assert not tree[name].exists()
    for name in ("open", "merged_into_open", "fresh", "outside"):
        assert tree[name].exists()
    # Links are neither followed nor removed; what they point at is untouched.
    assert tree["link"].is_symlink()
    assert (home.recordings_dir / "2026/09/02").is_symlink()
    assert (tree["outside"].parent / "precious.wav").read_bytes() == b"\0" * 7
    # The emptied day folder went, with its month and year; the others stay.
    assert not (home.recordings_dir / "2026/08").exists()
    assert (home.recordings_dir / "2026/09/01").is_dir()
    assert home.recordings_dir.is_dir()


async def test_purge_twice_removes_nothing_more(
    home: Home, store: TicketStore, tree: dict[str, Path]
) -> None:
    await purge(home, store, older_than_days=30, now=NOW)
    again = await purge(home, store, older_than_days=30, now=NOW)
    assert again.removed == [] and again.bytes_freed == 0
    assert len(again.kept_open) == 2


async def test_emptied_folders_go_up_to_the_year(home: Home, store: TicketStore) -> None:
    ticket = await _ticket(store, "y.1", datetime(2025, 1, 5, tzinfo=UTC))
    await store.close_ticket(ticket, actor="t")
    path = _write(recording_path(home, ticket, datetime(2025, 1, 5, tzinfo=UTC)).absolute, 9,
                  datetime(2025, 1, 5, tzinfo=UTC))  # fmt: skip
    report = await purge(home, store, older_than_days=30, now=NOW)
    assert report.removed == [str(path.relative_to(home.root))]
    assert not (home.recordings_dir / "2025").exists()
    assert home.recordings_dir.is_dir()


async def test_dry_run_removes_nothing(
    home: Home, store: TicketStore, tree: dict[str, Path]
) -> None:
    report = await purge(home, store, older_than_days=30, now=NOW, dry_run=True)
    assert report.dry_run
    assert len(report.removed) == 4
    assert report.bytes_freed == 510
    assert all(path.exists() or path.is_symlink() for path in tree.values())


async def test_a_longer_retention_keeps_everything(
    home: Home, store: TicketStore, tree: dict[str, Path]
) -> None:
    report = await purge(home, store, older_than_days=365, now=NOW)
    assert report.removed == [] and report.kept_open == []


async def test_the_recordings_folder_itself_may_be_a_link(
    home: Home, store: TicketStore, tmp_path: Path
) -> None:
    disk = tmp_path / "big-disk" / "recordings"
    disk.mkdir(parents=True)
    home.root.mkdir(parents=True, exist_ok=True)
    home.recordings_dir.symlink_to(disk, target_is_directory=True)
    ticket = await _ticket(store, "l.1", OLD)
    await store.close_ticket(ticket, actor="t", now=OLD)
    path = _write(recording_path(home, ticket, OLD).absolute, 5, OLD)
    report = await purge(home, store, older_than_days=30, now=NOW)
    assert report.removed == [str(path.relative_to(home.root))]
    assert not (disk / "2026").exists()
    assert disk.is_dir()


async def test_no_recordings_folder_is_nothing_to_do(home: Home, store: TicketStore) -> None:
    report = await purge(home, store, older_than_days=30, now=NOW)
    assert report.removed == [] and report.bytes_freed == 0


async def test_a_file_swapped_for_a_link_after_the_scan_is_not_removed(
    home: Home, store: TicketStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await _ticket(store, "s.1", OLD)
    await store.close_ticket(ticket, actor="t", now=OLD)
    path = _write(recording_path(home, ticket, OLD).absolute, 5, OLD)
    victim = _write(tmp_path / "victim.txt", 3, OLD)

    import ivr.recordings as recordings

    real_scan = recordings.scan_recordings

    def scan_then_swap(folder: Path) -> list[RecordingFile]:
        found = real_scan(folder)
        path.unlink()
        path.symlink_to(victim)
        os.utime(path, (OLD.timestamp(), OLD.timestamp()), follow_symlinks=False)
        return found

    monkeypatch.setattr(recordings, "scan_recordings", scan_then_swap)
    report = await purge(home, store, older_than_days=30, now=NOW)
    assert report.removed == []
    assert victim.exists() and path.is_symlink()


# -- the command ----------------------------------------------------------------------------


def _cli(home: Home, *args: str) -> tuple[int, str, str]:
    from ivr.cli import app
    from ivr.cli.recordings import recordings_app

    assert recordings_app is not None  # imported for its registration on ``app``
    result = CliRunner().invoke(app, ["--home", str(home.root), "recordings", "purge", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_dry_run_json_uses_the_retention_setting(home: Home, tmp_path: Path) -> None:
    tree = _tree_for_cli(home, tmp_path)
    (home.config_dir).mkdir(parents=True)
    (home.config_dir / "hotline.yaml").write_text("recordings:\n  retention_days: 100000\n")
    code, out, _ = _cli(home, "--dry-run", "--json")
    assert code == 0
    assert json.loads(out) == {"removed": [], "kept_open": [], "bytes_freed": 0, "dry_run": True}
    code, out, _ = _cli(home, "--older-than", "30", "--dry-run", "--json")
    assert code == 0
    assert len(json.loads(out)["removed"]) == 4
    assert tree["closed"].exists()


def test_cli_purges_and_says_so(home: Home, tmp_path: Path) -> None:
    tree = _tree_for_cli(home, tmp_path)
    code, out, _ = _cli(home, "--older-than", "30")
    assert code == 0
    assert "removed 4 recording(s), 510 B; kept 2 of open tickets" in out
    assert not tree["closed"].exists()


def test_cli_bad_settings_is_one_line(home: Home) -> None:
    home.config_dir.mkdir(parents=True)
    (home.config_dir / "hotline.yaml").write_text("recordings:\n  retention_days: 0\n")
    code, _, err = _cli(home)
    assert code == 1
    assert err.startswith("error: config/hotline.yaml:2:")


def test_cli_refuses_zero_days(home: Home) -> None:
    code, _, _ = _cli(home, "--older-than", "0")
    assert code == 2


def test_recording_space_announces_a_shortage_once_per_period(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from ivr.recordings import RecordingSpace

    space = RecordingSpace(announce_every=timedelta(minutes=10))
    t0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert space.check(tmp_path, 0, t0).room  # any disk has 0 MB free
    full = 10**9  # more than any disk here: a full disk
    first = space.check(tmp_path, full, t0)
    assert not first.room and first.announce
    assert not space.check(tmp_path, full, t0 + timedelta(minutes=5)).announce
    assert space.check(tmp_path, full, t0 + timedelta(minutes=10)).announce
    assert space.check(tmp_path, 0, t0 + timedelta(minutes=11)).room
    assert space.check(tmp_path, full, t0 + timedelta(minutes=12)).announce  # news again
    assert not space.check(tmp_path / "gone", 1, t0).room
