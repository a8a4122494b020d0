"""Where call recordings and voice messages live, and their removal after the retention time.

Layout: ``<home>/recordings/YYYY/MM/DD/<ticket id>.wav`` for a call and
``<ticket id>-message.wav`` for a voice message, dated like the ticket id (the day of the
ticket's ``created_at`` in the timezone it was given in), so that the ticket names its files.

The purge keeps every recording whose ticket is still open: a unit working on a complaint may
need to hear it again. It runs as whoever owns the cron job (root, often) in folders the PBX
user owns, so it walks them through directory descriptors opened with O_NOFOLLOW and never
follows a symbolic link: a link planted in recordings/ cannot make it delete anything outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

import structlog

from ivr.home import Home
from ivr.tickets.lifecycle import FINAL_STATUSES, Status
from ivr.tickets.model import TICKET_ID_PREFIX, Ticket

_log = structlog.get_logger(__name__)

RecordingKind = Literal["call", "message", "followup"]
RECORDING_SUFFIX = ".wav"
MESSAGE_MARK = "-message"
#: The reason a citizen gives for a dissatisfied follow-up (回访).
FOLLOWUP_MARK = "-followup"
_MARKS: Mapping[RecordingKind, str] = {"message": MESSAGE_MARK, "followup": FOLLOWUP_MARK}
#: Statuses after which nobody needs to hear the call again: the matter is finished.
DONE_STATUSES: frozenset[Status] = FINAL_STATUSES | {Status.EVALUATED}

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_TICKET_ID = re.compile(rf"^{TICKET_ID_PREFIX}\d{{8}}-\d{{6,}}$")
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class RecordingPath:
    #: Relative to the home, POSIX, without extension: what the menu and the PBX are given.
    relative: str
    #: The file itself, with its extension.
    absolute: Path


def recording_name(ticket_id: str, kind: RecordingKind = "call") -> str:
    """The base name of a ticket's recording: ``T20261127-000042`` or ``...-message``."""
    if not _SAFE_NAME.match(ticket_id):
        raise ValueError(f"{ticket_id!r} cannot name a recording (letters, digits, - and _)")
    if kind not in ("call", *_MARKS):
        raise ValueError(f"unknown recording kind {kind!r}; kinds: call, {', '.join(_MARKS)}")
    return ticket_id + _MARKS.get(kind, "")


def call_stem(linkedid: str) -> str:
    """What names a call's recording while its ticket id is unknown (the ticket is spooled
    during a database outage): the linkedid, whose dot a name may not hold."""
    return "call-" + re.sub(r"[^A-Za-z0-9_-]", "-", linkedid)


def recording_path(
    home: Home, ticket_id: str, created_at: datetime, kind: RecordingKind = "call"
) -> RecordingPath:
    """Where the recording of ``kind`` of the ticket opened at ``created_at`` goes."""
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    folder = PurePosixPath(home.recordings_dir.relative_to(home.root).as_posix())
    relative = folder / f"{created_at:%Y/%m/%d}" / recording_name(ticket_id, kind)
    return RecordingPath(str(relative), home.root / (str(relative) + RECORDING_SUFFIX))


def ensure_day_folder(home: Home, day: datetime) -> Path:
    """The day's folder of recordings, writable by the PBX: Asterisk's RECORD FILE does not
    create folders, and the PBX runs as its own user, the owner of recordings/."""
    folder = home.recordings_dir / f"{day:%Y/%m/%d}"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        owner = home.recordings_dir.stat()
        if os.geteuid() == 0:
            for part in (folder.parent.parent, folder.parent, folder):
                os.chown(part, owner.st_uid, owner.st_gid)
    return folder


@dataclass(frozen=True)
class SpaceCheck:
    room: bool
    free_mb: float
    #: Whether to raise the alarm now (once per ``RecordingSpace.announce_every``).
    announce: bool


@dataclass
class RecordingSpace:
    """Whether the recordings disk has room for one more call. A full disk must cost the
    recording, never the call: MixMonitor on a full disk leaves an empty file and the
    ticket would point at it, so the call is not recorded, the ticket says why, and the
    operators get an alarm (not one per call)."""

    announce_every: timedelta = timedelta(minutes=10)
    last_announced: datetime | None = None

    def check(self, recordings_dir: Path, min_free_mb: int, now: datetime) -> SpaceCheck:
        try:
            free_mb = shutil.disk_usage(recordings_dir).free / 2**20
        except OSError:
            free_mb = 0.0
        if free_mb >= min_free_mb:
            self.last_announced = None  # the next shortage is news again
            return SpaceCheck(True, free_mb, False)
        due = self.last_announced is None or now - self.last_announced >= self.announce_every
        if due:
            self.last_announced = now
        return SpaceCheck(False, free_mb, due)


def parse_recording_name(file_name: str) -> tuple[str, RecordingKind] | None:
    """(ticket id, kind) of a recording's file name; None when no ticket names it."""
    stem = file_name.split(".", 1)[0]
    kind: RecordingKind = "call"
    for marked, mark in _MARKS.items():
        if stem.endswith(mark):
            stem, kind = stem[: -len(mark)], marked
            break
    return (stem, kind) if _TICKET_ID.match(stem) else None


# -- what to purge (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingFile:
    year: str
    month: str
    day_of_month: str
    name: str
    day: date
    size: int
    modified: datetime
    ticket_id: str | None
    kind: RecordingKind

    @property
    def relative(self) -> str:
        """Relative to the recordings folder: 2026/11/27/T20261127-000042.wav."""
        return f"{self.year}/{self.month}/{self.day_of_month}/{self.name}"


def keeps_recording(status: str, parent_status: str | None = None) -> bool:
    """Whether a ticket in ``status`` still needs its recordings. A merged duplicate keeps
    them while its original (``parent_status``) is open: they are evidence of that matter."""
    try:
        current = Status(status)
    except ValueError:
        return True  # a status this version does not know: keep, to be safe
    if current is Status.MERGED and parent_status is not None:
        return keeps_recording(parent_status)
    return current not in DONE_STATUSES


def is_expired(recording: RecordingFile, cutoff: datetime) -> bool:
    """Filed under a day before the cutoff's, and not changed since the cutoff either (a
    misfiled or restored file is not taken for old)."""
    return recording.day < cutoff.date() and recording.modified < cutoff


def purge_cutoff(now: datetime, older_than_days: int) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if older_than_days < 1:
        raise ValueError(f"older_than_days must be at least 1, not {older_than_days}")
    return now - timedelta(days=older_than_days)


@dataclass(frozen=True)
class PurgePlan:
    remove: list[RecordingFile]
    kept_open: list[RecordingFile]


def plan_purge(
    recordings: Iterable[RecordingFile], open_tickets: Iterable[str], cutoff: datetime
) -> PurgePlan:
    """Which expired recordings go, and which stay because their ticket is open."""
    still_open = set(open_tickets)
    remove: list[RecordingFile] = []
    kept: list[RecordingFile] = []
    for recording in recordings:
        if not is_expired(recording, cutoff):
            continue
        (kept if recording.ticket_id in still_open else remove).append(recording)
    return PurgePlan(remove, kept)


def open_ticket_ids(tickets: Mapping[str, Ticket], parents: Mapping[str, Ticket]) -> set[str]:
    """Ids among ``tickets`` that still need their recordings (``parents``: the originals
    merged duplicates point at)."""
    still_open: set[str] = set()
    for ticket_id, ticket in tickets.items():
        parent = parents.get(ticket.parent_id) if ticket.parent_id else None
        if keeps_recording(ticket.status, parent.status if parent else None):
            still_open.add(ticket_id)
    return still_open


# -- the file system (no symlink is ever followed) ------------------------------------------


def _subdirectories(dir_fd: int, width: int) -> list[str]:
    with os.scandir(dir_fd) as entries:
        return sorted(
            entry.name
            for entry in entries
            if len(entry.name) == width
            and entry.name.isdigit()
            and entry.is_dir(follow_symlinks=False)
        )


@contextlib.contextmanager
def _opened(name: str | Path, parent_fd: int | None = None) -> Iterator[int]:
    fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _day_files(day_fd: int, parts: tuple[str, str, str], day: date) -> list[RecordingFile]:
    found: list[RecordingFile] = []
    with os.scandir(day_fd) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue  # links, folders, sockets: not recordings
            info = entry.stat(follow_symlinks=False)
            named = parse_recording_name(entry.name)
            found.append(
                RecordingFile(
                    *parts,
                    name=entry.name,
                    day=day,
                    size=info.st_size,
                    modified=datetime.fromtimestamp(info.st_mtime, UTC),
                    ticket_id=named[0] if named else None,
                    kind=named[1] if named else "call",
                )
            )
    return found


def _open_root(recordings_dir: Path) -> int:
    # The recordings folder itself may be a link (to a bigger disk, say): that one is followed.
    return os.open(recordings_dir, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))


def scan_recordings(recordings_dir: Path) -> list[RecordingFile]:
    """Every regular file in a recordings/YYYY/MM/DD/ folder; other entries are ignored."""
    try:
        root = _open_root(recordings_dir)
    except FileNotFoundError:
        return []
    found: list[RecordingFile] = []
    try:
        for year in _subdirectories(root, 4):
            with _opened(year, root) as year_fd:
                for month in _subdirectories(year_fd, 2):
                    with _opened(month, year_fd) as month_fd:
                        for day_name in _subdirectories(month_fd, 2):
                            try:
                                day = date(int(year), int(month), int(day_name))
                            except ValueError:
                                continue
                            with _opened(day_name, month_fd) as day_fd:
                                found.extend(_day_files(day_fd, (year, month, day_name), day))
    finally:
        os.close(root)
    found.sort(key=lambda recording: recording.relative)
    return found


def _remove_day(
    root: int, parts: tuple[str, str, str], recordings: Sequence[RecordingFile], cutoff: datetime
) -> list[tuple[RecordingFile, int]]:
    year, month, day = parts
    removed: list[tuple[RecordingFile, int]] = []
    with _opened(year, root) as year_fd, _opened(month, year_fd) as month_fd:
        with _opened(day, month_fd) as day_fd:
            for recording in recordings:
                try:
                    info = os.stat(recording.name, dir_fd=day_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                changed = datetime.fromtimestamp(info.st_mtime, UTC)
                # Checked again: it may have become a link, or been written to, since the scan.
                if not stat.S_ISREG(info.st_mode) or changed >= cutoff:
                    continue
                os.unlink(recording.name, dir_fd=day_fd)
                removed.append((recording, info.st_size))
        # The emptied day folder goes, and so do the month and year it emptied in turn.
        for name, parent_fd in ((day, month_fd), (month, year_fd)):
            try:
                os.rmdir(name, dir_fd=parent_fd)
            except OSError:
                return removed
    with contextlib.suppress(OSError):
        os.rmdir(year, dir_fd=root)
    return removed


def remove_recordings(
    recordings_dir: Path, recordings: Iterable[RecordingFile], cutoff: datetime
) -> list[tuple[RecordingFile, int]]:
    """Delete ``recordings`` (still regular files, still older than ``cutoff``) and the day
    folders this empties; (recording, bytes) of each one removed."""
    by_day: dict[tuple[str, str, str], list[RecordingFile]] = {}
    for recording in recordings:
        by_day.setdefault((recording.year, recording.month, recording.day_of_month), []).append(
            recording
        )
    removed: list[tuple[RecordingFile, int]] = []
    root = _open_root(recordings_dir)
    try:
        for parts, day_recordings in sorted(by_day.items()):
            try:
                removed.extend(_remove_day(root, parts, day_recordings, cutoff))
            except OSError as exc:
                _log.error("recordings.remove_failed", folder="/".join(parts), error=str(exc))
    finally:
        os.close(root)
    return removed


# -- the purge --------------------------------------------------------------------------------


class TicketLookup(Protocol):
    async def get_many(self, ticket_ids: Iterable[str]) -> dict[str, Ticket]: ...


@dataclass
class PurgeReport:
    #: Removed (or, in a dry run, to be removed) files, relative to the home.
    removed: list[str] = field(default_factory=list)
    #: Expired files kept because their ticket is still open.
    kept_open: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "removed": list(self.removed),
            "kept_open": list(self.kept_open),
            "bytes_freed": self.bytes_freed,
            "dry_run": self.dry_run,
        }


async def purge(
    home: Home,
    store: TicketLookup,
    *,
    older_than_days: int,
    now: datetime,
    dry_run: bool = False,
) -> PurgeReport:
    """Remove the recordings older than ``older_than_days`` except those of open tickets
    (see keeps_recording), and the day folders that empties."""
    cutoff = purge_cutoff(now, older_than_days)
    recordings_dir = home.recordings_dir
    found = await asyncio.to_thread(scan_recordings, recordings_dir)
    candidates = [recording for recording in found if is_expired(recording, cutoff)]
    tickets = await store.get_many(
        {recording.ticket_id for recording in candidates if recording.ticket_id}
    )
    parents = await store.get_many(
        {ticket.parent_id for ticket in tickets.values() if ticket.parent_id}
    )
    plan = plan_purge(candidates, open_ticket_ids(tickets, parents), cutoff)
    folder = PurePosixPath(recordings_dir.relative_to(home.root).as_posix())
    report = PurgeReport(
        kept_open=[str(folder / recording.relative) for recording in plan.kept_open],
        dry_run=dry_run,
    )
    if dry_run:
        removed = [(recording, recording.size) for recording in plan.remove]
    elif plan.remove:
        removed = await asyncio.to_thread(remove_recordings, recordings_dir, plan.remove, cutoff)
    else:
        removed = []
    report.removed = [str(folder / recording.relative) for recording, _ in removed]
    report.bytes_freed = sum(size for _, size in removed)
    return report
