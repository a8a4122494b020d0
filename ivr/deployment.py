"""Everything an admin edits, loaded and cross-checked as one snapshot.

A :class:`Deployment` is config/hotline.yaml, config/deadlines.yaml, routing/ and
dialplans/ of one home, each valid on its own and all consistent with each other (every
line's entry node exists and offers 0 where it must, the categories and units the menus
use are known to routing, prompts can play). It is immutable: a call keeps the snapshot it
started with, and a reload builds a new one and swaps the reference
(:class:`DeploymentHolder`), so an admin's edit never changes a call half way through, and
an invalid edit never replaces a valid snapshot.

The dry run at the bottom answers one call on paper (menus, caller location, route) with
no PBX, for ``ivr simulate`` and tests; it is pure apart from the clock the caller passes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import structlog
from watchfiles import Change, DefaultFilter, awatch

from ivr.home import Home
from ivr.menu import (
    MenuResult,
    MenuTree,
    RouteTo,
    check_menus,
    check_prompts,
    load_menus,
    menu_json_schema,
    simulate,
)
from ivr.menu.verbs.base import CATEGORY_VARIABLE, LOCATION_VARIABLE
from ivr.routing import (
    Line,
    Location,
    RouteDecision,
    RouteRequest,
    RoutingTables,
    asterisk_view,
    build_tables,
    decide,
    locate,
)
from ivr.routing.schema import RoutingFile
from ivr.settings import SETTINGS_FILE, Settings, load_settings
from ivr.tickets.deadlines import DeadlinePolicy, load_deadlines
from ivr.yamlsource import ConfigError, Problem, YamlDocument, iter_yaml_files, load_yaml

T = TypeVar("T")
log = structlog.get_logger(__name__)

#: Where a problem about a line is reported: (file, line of its ``entry:``).
LineLocations = Mapping[str, tuple[str, int]]


# -- the snapshot ------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    home: Home
    settings: Settings
    routing: RoutingTables
    menus: MenuTree
    deadlines: DeadlinePolicy
    #: When the files were read (UTC).
    loaded_at: datetime

    def line(self, number: str) -> Line:
        """The configured line ``number``; :class:`UnknownLine` lists the known ones."""
        found = self.routing.lines.get(number)
        if found is None:
            raise UnknownLine(number, tuple(self.routing.lines))
        return found

    def counts(self) -> dict[str, int]:
        """What the snapshot holds, for one-line summaries and logs."""
        return {
            "units": len(self.routing.units),
            "agents": len(self.routing.agents),
            "lines": len(self.routing.lines),
            "menu_nodes": len(self.menus.nodes),
            "prompts": sum(1 for _ in self.menus.all_prompts()),
        }


class UnknownLine(LookupError):
    def __init__(self, number: str, known: Sequence[str]) -> None:
        self.number = number
        self.known = tuple(known)
        listing = ", ".join(self.known) or "none configured"
        super().__init__(f"unknown line {number!r} (lines: {listing})")


def load_deployment(home: Home, *, check_prompt_files: bool = True) -> Deployment:
    """Load every file an admin edits in ``home`` and check them against each other.

    Each part is loaded even when another failed, so one ConfigError lists every problem
    of every file, sorted. The cross checks run only on parts that loaded: checking menus
    against half-read routing would only echo the routing problems. ``check_prompt_files``
    also requires every prompt to have its sound file (recorded, or synthesized by
    ``ivr prompts build``)."""
    problems: list[Problem] = []
    settings = _collect(problems, home, home.config_dir, lambda: load_settings(home))
    deadlines = _collect(problems, home, home.config_dir, lambda: load_deadlines(home))
    routing_read = _collect(problems, home, home.routing_dir, lambda: _load_routing(home))
    menus = _collect(problems, home, home.dialplans_dir, lambda: load_menus(home))
    if menus is not None and routing_read is not None:
        routing, line_locations = routing_read
        problems.extend(cross_check_menus(menus, routing, line_locations=line_locations))
    if menus is not None and check_prompt_files:
        problems.extend(check_prompts(menus, home))
    if menus is not None and settings is not None:
        problems.extend(_settings_entry_problems(settings, menus, home))
    if problems:
        raise ConfigError(problems)
    assert settings is not None and deadlines is not None
    assert routing_read is not None and menus is not None
    return Deployment(
        home=home,
        settings=settings,
        routing=routing_read[0],
        menus=menus,
        deadlines=deadlines,
        loaded_at=datetime.now(UTC),
    )


def _settings_entry_problems(settings: Settings, menus: MenuTree, home: Home) -> list[Problem]:
    """The menu nodes config/hotline.yaml starts calls at must be listed entries."""
    where = home.display(home.config_dir / SETTINGS_FILE)
    named = {"calls.nobody_available_entry": settings.calls.nobody_available_entry}
    if settings.followup.enabled:
        named["followup.entry"] = settings.followup.entry
    if settings.callbacks.enabled and settings.callbacks.offer_after_seconds:
        named["callbacks.offer_entry"] = settings.callbacks.offer_entry
    return [
        Problem(where, 1, f"{name}: node {entry!r} is not listed under 'entries:' in dialplans/")
        for name, entry in named.items()
        if entry not in menus.entries
    ]


def cross_check_menus(
    menus: MenuTree, routing: RoutingTables, *, line_locations: LineLocations | None = None
) -> list[Problem]:
    """The menus against routing: each line's entry (and key 0 where the line requires
    it), categories and units the menus name, and ``location`` values, which must be
    places a caller can be (territorial units), since the router locates callers by them."""
    lines = routing.lines.values()
    problems = check_menus(
        menus,
        entries={line.number: line.entry for line in lines},
        emergency_required=[line.number for line in lines if line.emergency_required],
        known_categories=routing.category_codes,
        known_units=routing.unit_codes,
        line_locations=line_locations,
    )
    problems.extend(_location_problems(menus, routing))
    return sorted(set(problems))


def _location_problems(menus: MenuTree, routing: RoutingTables) -> list[Problem]:
    problems = []
    for node_id, node in menus.nodes.items():
        for use in node.names():
            named_keys = [part for part in use.path if isinstance(part, str)]
            if (
                use.kind == "unit"
                and named_keys[-1:] == [LOCATION_VARIABLE]
                # unknown codes are reported by check_menus already
                and use.name in routing.units
                and not routing.is_territory(use.name)
            ):
                message = (
                    f"location {use.name!r} is not a place a caller can be: use a "
                    "territorial unit (city, district, street or community), not a department"
                )
                problems.append(menus.problem(node_id, use.path, message))
    return problems


def _collect(problems: list[Problem], home: Home, folder: Path, load: Callable[[], T]) -> T | None:
    """Run one loader; its problems (or an unreadable file) go to ``problems``."""
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
    except OSError as exc:
        # A file that is unreadable (permissions) or vanishes between listing and
        # reading, as happens while an editor saves: a problem, not a traceback.
        where = Path(exc.filename) if exc.filename else folder
        problems.append(Problem(home.display(where), 1, f"cannot read: {exc.strerror or exc}"))
    return None


def _load_routing(home: Home) -> tuple[RoutingTables, dict[str, tuple[str, int]]]:
    """routing/*.yaml as ``ivr.routing.load_routing`` reads it, keeping the documents to
    name where each line is configured: read once, so the locations always belong to the
    very files the tables were built from, even while an admin is saving."""
    documents: list[YamlDocument] = []
    problems: list[Problem] = []
    for path in iter_yaml_files(home.routing_dir):
        try:
            documents.append(load_yaml(path, home.display(path)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    if not documents:
        raise ConfigError([Problem(home.display(home.routing_dir), 1, "no routing files (*.yaml)")])
    return build_tables(documents), _line_locations(documents)


def _line_locations(documents: Iterable[YamlDocument]) -> dict[str, tuple[str, int]]:
    """Line number -> (file, line of its ``entry:``) in routing documents."""
    found: dict[str, tuple[str, int]] = {}
    for doc in documents:
        lines = doc.data.get("lines") if isinstance(doc.data, dict) else None
        for index, item in enumerate(lines if isinstance(lines, list) else []):
            if isinstance(item, dict) and "number" in item:
                where = doc.line_of(("lines", index, "entry"))
                found.setdefault(str(item["number"]), (doc.file, where))
    return found


# -- hot reload --------------------------------------------------------------------------

OnReload = Callable[[Deployment], Awaitable[None] | None]
OnRejected = Callable[[list[Problem]], Awaitable[None] | None]
#: Editors save by writing a temporary file and renaming it; group the burst.
WATCH_DEBOUNCE_MS = 200
_CONFIG_SUFFIXES = (".yaml", ".yml")
_SOUND_SUFFIX = ".wav"


class DeploymentHolder:
    """The live deployment of a running controller and how it is replaced.

    ``current`` is read once per call at its start; the call then keeps that object, so a
    reload mid-call changes nothing for it. The constructor loads the home (ConfigError if
    it is invalid: the controller must not start on a broken configuration)."""

    def __init__(
        self,
        home: Home,
        *,
        check_prompt_files: bool = True,
        deployment: Deployment | None = None,
    ) -> None:
        self.home = home
        self.check_prompt_files = check_prompt_files
        self._current = (
            deployment
            if deployment is not None
            else load_deployment(home, check_prompt_files=check_prompt_files)
        )
        # Two reloads at once (the watcher and an admin command) must not let the older
        # snapshot land last.
        self._reload_lock = threading.Lock()

    @property
    def current(self) -> Deployment:
        return self._current

    def reload(self) -> list[Problem]:
        """Load the files again. Valid: the new snapshot becomes ``current``, returns [].
        Invalid: ``current`` stays, each problem is logged and returned."""
        outcome = self._reload()
        return [] if isinstance(outcome, Deployment) else outcome

    def _reload(self) -> Deployment | list[Problem]:
        with self._reload_lock:
            started = time.perf_counter()
            try:
                fresh = load_deployment(self.home, check_prompt_files=self.check_prompt_files)
            except ConfigError as exc:
                for problem in exc.problems:
                    log.warning(
                        "deployment change rejected",
                        problem=str(problem),
                        file=problem.file,
                        line=problem.line,
                    )
                log.warning(
                    "keeping the previous deployment",
                    problems=len(exc.problems),
                    loaded_at=self._current.loaded_at.isoformat(),
                )
                return list(exc.problems)
            self._current = fresh
        log.info(
            "deployment reloaded",
            seconds=round(time.perf_counter() - started, 4),
            **fresh.counts(),
        )
        return fresh

    def watched_folders(self) -> list[Path]:
        """The folders whose changes trigger a reload (those that exist): the admin's
        files, and the synthesized prompts, so that a prompt text edit rejected for want
        of its sound file applies once ``ivr prompts build`` has made it."""
        folders = [self.home.config_dir, self.home.dialplans_dir, self.home.routing_dir]
        if self.check_prompt_files:
            folders.append(self.home.prompts_dir)
        return [folder for folder in folders if folder.is_dir()]

    async def watch(
        self,
        on_reload: OnReload | None = None,
        on_rejected: OnRejected | None = None,
        *,
        stop_event: asyncio.Event | None = None,
        debounce_ms: int = WATCH_DEBOUNCE_MS,
    ) -> None:
        """Reload on every change of the watched folders until ``stop_event`` is set (or
        the task is cancelled). Loading runs in a worker thread so live calls are not held
        up; ``on_reload`` gets each applied snapshot, ``on_rejected`` the problems of each
        rejected change (plain or async callables; their errors are logged, not raised)."""
        folders = self.watched_folders()
        if not folders:
            raise ConfigError([Problem(self.home.display(self.home.root), 1, "nothing to watch")])
        watch_filter = _DeploymentFilter(self.home)
        async for changes in awatch(
            *folders,
            watch_filter=watch_filter,
            debounce=debounce_ms,
            step=50,
            stop_event=stop_event,
        ):
            files = sorted({self.home.display(Path(path)) for _, path in changes})
            log.info("deployment files changed", files=files)
            outcome = await asyncio.to_thread(self._reload)
            if isinstance(outcome, Deployment):
                await _notify(on_reload, outcome)
            else:
                await _notify(on_rejected, outcome)


class _DeploymentFilter(DefaultFilter):
    """YAML files of the config folders and synthesized sound files; editor swap files,
    READMEs and the like are ignored."""

    def __init__(self, home: Home) -> None:
        super().__init__()
        self.prompts_dir = str(home.prompts_dir)

    def __call__(self, change: Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        if path.startswith(self.prompts_dir):
            return path.endswith(_SOUND_SUFFIX)
        return path.endswith(_CONFIG_SUFFIXES)


async def _notify(callback: Callable[[T], Awaitable[None] | None] | None, value: T) -> None:
    if callback is None:
        return
    try:
        result = callback(value)
        if inspect.isawaitable(result):
            await result
    except Exception:
        # A failing listener must not stop the watcher: later edits still need applying.
        log.exception("deployment listener failed", listener=getattr(callback, "__name__", "?"))


# -- JSON Schemas for editors ------------------------------------------------------------

#: Where ``ivr schema --write`` puts them, relative to the engine's source tree.
SCHEMA_DIR_NAME = "schema"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_INTERVAL_SCHEMA = {"type": "string", "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$"}
#: Schedules as written (ivr.routing.hours), not as parsed.
_SCHEDULE_SCHEMA: dict[str, Any] = {
    "description": "24h, or days (mon..sun, mon-fri, daily) to HH:MM-HH:MM intervals; "
    "an interval ending before it starts runs past midnight",
    "anyOf": [
        {"const": "24h"},
        {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": f"^({_DAY}(-{_DAY})?|daily)$"},
            "additionalProperties": {
                "anyOf": [_INTERVAL_SCHEMA, {"type": "array", "items": _INTERVAL_SCHEMA}]
            },
        },
    ],
}
_DURATION_SCHEMA = {
    "anyOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}],
    "description": "2h, 90m, 7d or 1d 12h; a bare number is hours",
}


def config_json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of each kind of file an admin edits, for editors
    (yaml-language-server: ``# yaml-language-server: $schema=../schema/<name>``)."""
    routing = _model_schema(RoutingFile, "12345 hotline routing file")
    routing["$defs"].pop("Interval", None)
    routing["$defs"]["WeeklySchedule"] = _SCHEDULE_SCHEMA
    schemas = {
        "dialplan.schema.json": menu_json_schema(),
        "routing.schema.json": _without_defaults_of(routing, "#/$defs/WeeklySchedule"),
        "hotline.schema.json": _model_schema(Settings, "12345 hotline settings (hotline.yaml)"),
        "deadlines.schema.json": _replace_durations(
            _model_schema(DeadlinePolicy, "12345 hotline time limits (deadlines.yaml)")
        ),
    }
    return {
        name: {
            "$schema": _DRAFT,
            "$id": name,
            **{key: value for key, value in schema.items() if key not in ("$schema", "$id")},
        }
        for name, schema in schemas.items()
    }


def schema_text(schema: Mapping[str, Any]) -> str:
    """A schema as written to disk: stable, readable, ending with a newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path, names: Iterable[str] | None = None) -> dict[Path, bool]:
    """Write the schemas (all, or those ``names``) into ``directory``; path -> whether
    the file changed. Unchanged files are left alone so their timestamps mean something."""
    schemas = config_json_schemas()
    chosen = list(schemas) if names is None else list(names)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[Path, bool] = {}
    for name in chosen:
        path = directory / name
        text = schema_text(schemas[name])
        changed = not path.is_file() or path.read_text(encoding="utf-8") != text
        if changed:
            path.write_text(text, encoding="utf-8")
        written[path] = changed
    return written


def _model_schema(model: Any, title: str) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    schema["title"] = title
    return schema


def _replace_durations(schema: Any) -> Any:
    """pydantic describes a timedelta as an ISO 8601 duration ("PT2H"); deadlines.yaml
    takes the friendlier "2h", so an editor must not flag it."""
    if isinstance(schema, dict):
        if schema.get("format") == "duration":
            return dict(_DURATION_SCHEMA)
        return {key: _replace_durations(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_replace_durations(item) for item in schema]
    return schema


def _without_defaults_of(schema: Any, ref: str) -> Any:
    """Drop the defaults of fields of type ``ref``: pydantic shows them in their parsed
    form, which is not how they are written."""
    if isinstance(schema, dict):
        cleaned = {key: _without_defaults_of(value, ref) for key, value in schema.items()}
        if cleaned.get("$ref") == ref:
            cleaned.pop("default", None)
        return cleaned
    if isinstance(schema, list):
        return [_without_defaults_of(item, ref) for item in schema]
    return schema


# -- dry runs: one call on paper ---------------------------------------------------------


@dataclass(frozen=True)
class RosterAvailability:
    """Agent availability as configured: every agent of a queue counts as logged in and
    free unless listed as absent. What a dry run assumes; the controller asks Asterisk."""

    members: Mapping[str, tuple[str, ...]]
    absent: frozenset[str] = frozenset()

    @classmethod
    def of(cls, routing: RoutingTables, absent: Iterable[str] = ()) -> RosterAvailability:
        queues, _ = asterisk_view(routing)
        members = MappingProxyType({queue.name: queue.members for queue in queues})
        return cls(members, frozenset(absent))

    def available(self, queue: str) -> int:
        return sum(1 for agent in self.members.get(queue, ()) if agent not in self.absent)


def line_preset(line: Line) -> dict[str, str]:
    """Menu variables a line sets before its entry node runs: a legacy line's category."""
    return {CATEGORY_VARIABLE: line.preset_category} if line.preset_category else {}


def caller_choice(routing: RoutingTables, result: MenuResult) -> str | None:
    """The territory the menu learnt from the caller (``ivr`` locate method): a route's
    territorial unit, else the ``location`` variable."""
    outcome = result.outcome
    if isinstance(outcome, RouteTo) and outcome.unit and routing.is_territory(outcome.unit):
        return outcome.unit
    return result.variables.get(LOCATION_VARIABLE)


def route_request(
    routing: RoutingTables,
    *,
    line: Line,
    outcome: RouteTo,
    location: Location,
    language: str,
    now: datetime,
) -> RouteRequest:
    """What the router is asked for a menu's RouteTo. A department named by the menu's
    route (``unit: amr``) takes the place of the line's preset department; a territory
    named there is where the caller is (see ``caller_choice``), not a department."""
    named = outcome.unit or ""
    is_department = named in routing.units and not routing.is_territory(named)
    return RouteRequest(
        location=location.unit,
        category=outcome.category,
        language=language,
        now=now,
        priority=outcome.priority,
        preset_unit=named if is_department else line.preset_unit,
        line=line.number,
    )


@dataclass(frozen=True)
class DryRun:
    line: Line
    caller: str
    #: When the call came, in the city's time zone.
    at: datetime
    menu: MenuResult
    #: What the caller heard and did, in order ("play …", "key 1", "timeout 5s").
    events: tuple[str, ...]
    #: Only for calls that end at the router (a RouteTo outcome).
    location: Location | None
    route: RouteDecision | None


async def dry_run(
    deployment: Deployment,
    *,
    line: str,
    caller: str,
    keys: str = "",
    at: datetime,
    did: str | None = None,
    absent: Iterable[str] = (),
    known_callers: Mapping[str, str] = MappingProxyType({}),
) -> DryRun:
    """One call of ``caller`` to ``line`` at ``at`` (aware, any zone) pressing ``keys`` (notation
    of :mod:`ivr.menu.simulator`), with every configured agent present except ``absent``.
    UnknownLine for a line not configured; ValueError for a bad key script."""
    configured = deployment.line(line)
    # Menus read the time of day as given, so they must see the city's clock.
    local = at.astimezone(deployment.routing.timezone)
    events: list[str] = []
    result = await simulate(
        deployment.menus,
        line=configured.number,
        caller=caller,
        keys=keys,
        at=local,
        entry=configured.entry,
        preset=line_preset(configured),
        events=events,
    )
    location: Location | None = None
    route: RouteDecision | None = None
    if isinstance(result.outcome, RouteTo):
        routing = deployment.routing
        location = locate(
            routing,
            did=did,
            caller=caller,
            ivr_choice=caller_choice(routing, result),
            known_callers=known_callers,
        )
        request = route_request(
            routing,
            line=configured,
            outcome=result.outcome,
            location=location,
            language=result.language,
            now=local,
        )
        route = decide(routing, request, RosterAvailability.of(routing, absent))
    return DryRun(configured, caller, local, result, tuple(events), location, route)
