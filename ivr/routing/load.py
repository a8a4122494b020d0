"""Loading routing/*.yaml into :class:`RoutingTables`, reporting every problem at once.

Two passes: first each file against the schema (:mod:`ivr.routing.schema`); only when all
files are well formed, the cross-file checks (hierarchy, areas, agents, lines, rules), since
references into a half-read file would only produce echoes of the first error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.home import Home
from ivr.routing.schema import (
    SINGLE_SECTIONS,
    AgentModel,
    CallerModel,
    CategoryModel,
    EmergencyModel,
    LineModel,
    LocateMethod,
    RoutingFile,
    RuleModel,
    UnitModel,
    UnitNames,
)
from ivr.routing.tables import (
    Agent,
    BoundaryItem,
    Category,
    EmergencyBoundary,
    Line,
    Names,
    QueueSettings,
    RoutingTables,
    Rule,
    Unit,
    level_rank,
)
from ivr.yamlsource import (
    ConfigError,
    PathKey,
    Problem,
    YamlDocument,
    iter_yaml_files,
    load_yaml,
    validate_model,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_LOCATE_ORDER: tuple[LocateMethod, ...] = ("zone", "registry", "ivr")
_KIND_ORDER = ("government", "utility", "social_organisation")

T = TypeVar("T")


@dataclass(frozen=True)
class _Source:
    """Where one value was written."""

    doc: YamlDocument
    path: PathKey

    def problem(self, *sub: str | int, message: str) -> Problem:
        return self.doc.problem((*self.path, *sub), message)

    @property
    def where(self) -> str:
        return f"{self.doc.file}:{self.doc.line_of(self.path)}"

    @property
    def order(self) -> tuple[str, int]:
        return self.doc.file, self.doc.line_of(self.path)


@dataclass(frozen=True)
class _Item(Generic[T]):
    model: T
    source: _Source


def load_routing(home: Home) -> RoutingTables:
    """Read and check every routing/*.yaml of ``home``; raises ConfigError with all problems."""
    directory = home.routing_dir
    documents: list[YamlDocument] = []
    problems: list[Problem] = []
    for path in iter_yaml_files(directory):
        try:
            documents.append(load_yaml(path, home.display(path)))
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    if not documents:
        raise ConfigError([Problem(home.display(directory), 1, "no routing files (*.yaml)")])
    return build_tables(documents)


def build_tables(documents: Sequence[YamlDocument]) -> RoutingTables:
    """Check parsed routing documents and build the tables (also used by the generator)."""
    files: list[tuple[YamlDocument, RoutingFile]] = []
    problems: list[Problem] = []
    for doc in documents:
        try:
            files.append((doc, validate_model(RoutingFile, doc)))
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return _Builder(files).build()


def _sorted_units(units: Iterable[Unit]) -> tuple[str, ...]:
    """Lowest level first; at the city level the city itself last, as the catch-all; then
    government before utilities before organisations."""
    ordered = sorted(units, key=lambda u: (
        level_rank(u.level), u.parent is None, _KIND_ORDER.index(u.kind), u.code))
    return tuple(unit.code for unit in ordered)


class _Builder:
    def __init__(self, files: Sequence[tuple[YamlDocument, RoutingFile]]) -> None:
        self.files = files
        self.problems: list[Problem] = []
        #: Units with a wrong parent, level or area: left out of the overlap check, whose
        #: findings would only echo the first problem.
        self.misplaced: set[str] = set()

    # -- helpers -------------------------------------------------------------------------

    def _items(self, section: PathKey, models: Iterable[tuple[YamlDocument, Sequence[T]]]
               ) -> Iterator[_Item[T]]:
        for doc, sequence in models:
            for index, model in enumerate(sequence):
                yield _Item(model, _Source(doc, (*section, index)))

    def _unique(self, items: Iterable[_Item[T]], key: str, what: str) -> dict[str, _Item[T]]:
        """Items by their key; a second item with the same key is a problem at its line."""
        result: dict[str, _Item[T]] = {}
        for item in items:
            value = str(getattr(item.model, key))
            first = result.get(value)
            if first is not None:
                self.problems.append(item.source.problem(
                    key, message=f"duplicate {what} {value!r} (first at {first.source.where})"))
            else:
                result[value] = item
        return result

    def _single(self, section: str) -> tuple[YamlDocument, object] | None:
        found = [(doc, getattr(model, section)) for doc, model in self.files
                 if getattr(model, section) is not None]
        for doc, _ in found[1:]:
            first = found[0][0]
            self.problems.append(doc.problem(
                (section,),
                f"{section} is already given in {first.file}:{first.line_of((section,))}"))
        return found[0] if found else None

    # -- the build -----------------------------------------------------------------------

    def build(self) -> RoutingTables:
        for section in SINGLE_SECTIONS:
            self._single(section)
        timezone = self._timezone()
        locate_order = self._locate_order()
        categories = self._categories()
        unit_items = self._unique(
            self._items(("units",), [(d, f.units) for d, f in self.files]), "code", "unit code")
        units = {code: self._unit(item, categories) for code, item in unit_items.items()}
        city, chains = self._hierarchy(units, unit_items)
        self._levels_and_areas(units, unit_items, chains)
        self._overlaps(units, unit_items, chains)
        lines = self._lines(units, categories)
        landing_dids = self._dids(units, unit_items, lines)
        agents = self._agents(units, categories)
        self._unhandled_categories(units, categories)
        known_callers = self._callers(units)
        rules = self._rules(units, categories, lines, chains)
        emergency = self._emergency(categories)
        if self.problems:
            raise ConfigError(self.problems)
        assert city is not None  # a missing city is a problem raised above
        return RoutingTables(
            timezone=timezone,
            locate_order=locate_order,
            units=MappingProxyType(units),
            categories=MappingProxyType({c: i for c, (i, _) in categories.items()}),
            agents=MappingProxyType(agents),
            lines=MappingProxyType(lines),
            rules=rules,
            emergency=emergency,
            known_callers=MappingProxyType(known_callers),
            landing_dids=MappingProxyType(landing_dids),
            city=city,
            chains=MappingProxyType(chains),
            covering=MappingProxyType(self._covering(units, chains)),
        )

    def _timezone(self) -> ZoneInfo:
        found = self._single("timezone")
        name = str(found[1]) if found else DEFAULT_TIMEZONE
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            if found:
                self.problems.append(found[0].problem(("timezone",), f"unknown time zone {name!r}"))
            return ZoneInfo("UTC")

    def _locate_order(self) -> tuple[LocateMethod, ...]:
        found = self._single("locate")
        if not found:
            return DEFAULT_LOCATE_ORDER
        doc, value = found
        methods: list[LocateMethod] = list(value)  # type: ignore[call-overload]
        for index, method in enumerate(methods):
            if method in methods[:index]:
                self.problems.append(doc.problem(("locate", index), f"{method} is listed twice"))
        return tuple(dict.fromkeys(methods))

    def _categories(self) -> dict[str, tuple[Category, _Source]]:
        items = self._unique(
            self._items(("categories",), [(d, f.categories) for d, f in self.files]),
            "code", "category code")
        result: dict[str, tuple[Category, _Source]] = {}
        for code, item in items.items():
            model: CategoryModel = item.model
            result[code] = (
                Category(code, Names(model.name.zh, model.name.en), model.kind,
                         model.default_urgency),
                item.source,
            )
        return result

    def _known_categories(self, codes: Iterable[str], source: _Source, field: str,
                          categories: Mapping[str, object]) -> frozenset[str]:
        known = []
        for index, code in enumerate(codes):
            if code in categories:
                known.append(code)
            else:
                self.problems.append(source.problem(field, index,
                                                    message=f"unknown category {code!r}"))
        return frozenset(known)

    def _unit(self, item: _Item[UnitModel], categories: Mapping[str, object]) -> Unit:
        model = item.model
        if model.categories == "all":
            handled = frozenset(categories)
        else:
            handled = self._known_categories(model.categories, item.source, "categories",
                                             categories)
        queue = model.queue
        return Unit(
            code=model.code,
            name=_names(model.name, model.code),
            level=model.level,
            parent=model.parent,
            kind=model.kind,
            area=tuple(dict.fromkeys(model.area)) if model.area else (model.code,),
            territorial=model.area is None,
            dids=tuple(model.dids),
            categories=handled,
            languages=tuple(dict.fromkeys(model.languages)),
            hours=model.hours,
            queue=QueueSettings(queue.strategy, queue.ring_timeout, queue.queue_timeout,
                                queue.wrapup, queue.announce_position, queue.announce_holdtime),
        )

    def _hierarchy(self, units: Mapping[str, Unit], items: Mapping[str, _Item[UnitModel]]
                   ) -> tuple[str | None, dict[str, tuple[str, ...]]]:
        """The city and each unit's chain up to it; units with a broken chain get none."""
        roots = [code for code, unit in units.items() if unit.parent is None]
        city: str | None = None
        if not roots:
            doc = self.files[0][0]
            first_unit = next(iter(items.values()), None)
            self.problems.append(
                first_unit.source.problem(message="no city: exactly one unit must have no parent")
                if first_unit else doc.problem((), "no units: routing needs at least the city"))
        elif len(roots) > 1:
            for code in roots:
                others = ", ".join(r for r in roots if r != code)
                self.problems.append(items[code].source.problem("code", message=(
                    f"unit {code!r} has no parent, nor do {others}: "
                    "exactly one unit (the city) may have none")))
        else:
            city = roots[0]
            if units[city].level != "city":
                self.problems.append(items[city].source.problem("level", message=(
                    f"unit {city!r} has no parent, so it is the city and needs level city")))
            if not units[city].territorial:
                self.problems.append(items[city].source.problem("area", message=(
                    "the city covers itself: give it no area")))
        for code, unit in units.items():
            if unit.parent is not None and unit.parent not in units:
                self.problems.append(items[code].source.problem(
                    "parent", message=f"unknown parent unit {unit.parent!r}"))

        chains: dict[str, tuple[str, ...]] = {}
        reported_loops: set[frozenset[str]] = set()
        for code in units:
            path: list[str] = []
            current: str | None = code
            while current is not None and current not in chains:
                if current in path:
                    loop = path[path.index(current):]
                    if frozenset(loop) not in reported_loops:
                        reported_loops.add(frozenset(loop))
                        first = min(loop)
                        start = loop.index(first)
                        shown = " -> ".join([*loop[start:], *loop[:start], first])
                        self.problems.append(items[first].source.problem(
                            "parent", message=f"parents form a loop: {shown}"))
                    break
                if current not in units:
                    break
                path.append(current)
                current = units[current].parent
            else:
                tail = chains[current] if current is not None else ()
                if current is None and path[-1] != city:
                    continue  # a second root: already reported
                for index, member in enumerate(path):
                    chains[member] = (*path[index:], *tail)
        return city, chains

    def _levels_and_areas(self, units: Mapping[str, Unit],
                          items: Mapping[str, _Item[UnitModel]],
                          chains: Mapping[str, tuple[str, ...]]) -> None:
        self.misplaced.update(code for code in units if code not in chains)
        for code, unit in units.items():
            before = len(self.problems)
            self._level_and_area(unit, units, items[code].source, chains)
            if len(self.problems) > before:
                self.misplaced.add(code)

    def _level_and_area(self, unit: Unit, units: Mapping[str, Unit], source: _Source,
                        chains: Mapping[str, tuple[str, ...]]) -> None:
        code = unit.code
        parent = units.get(unit.parent) if unit.parent else None
        if parent is not None:
            if unit.territorial and not parent.territorial:
                self.problems.append(source.problem("parent", message=(
                    f"territory {code!r} must sit under a territory, "
                    f"not under {parent.code!r} which has an area of its own")))
            elif unit.territorial and level_rank(parent.level) <= level_rank(unit.level):
                self.problems.append(source.problem("parent", message=(
                    f"territory {code!r} ({unit.level}) must sit under a higher level, "
                    f"but parent {parent.code!r} is {parent.level}")))
            elif level_rank(parent.level) < level_rank(unit.level):
                self.problems.append(source.problem("parent", message=(
                    f"unit {code!r} ({unit.level}) would overflow down to "
                    f"{parent.code!r} ({parent.level}): a parent is never lower")))
        if unit.territorial:
            return
        for index, zone in enumerate(unit.area):
            target = units.get(zone)
            if target is None:
                self.problems.append(source.problem("area", index,
                                                    message=f"unknown unit {zone!r}"))
            elif not target.territorial:
                self.problems.append(source.problem("area", index, message=(
                    f"{zone!r} is not a territory (it has an area of its own)")))
            elif parent is not None and zone in chains and not any(
                    outer in chains[zone] for outer in parent.area):
                self.problems.append(source.problem("area", index, message=(
                    f"{zone!r} lies outside the area of parent {parent.code!r}, "
                    "so calls overflowing there would leave the caller's area")))

    def _overlaps(self, units: Mapping[str, Unit], items: Mapping[str, _Item[UnitModel]],
                  chains: Mapping[str, tuple[str, ...]]) -> None:
        """Two units of one level and kind whose areas meet and that share a category and
        language: the default route could not choose between them. The city is exempt: it
        takes whatever the units of its level leave, as the last stop of every overflow."""
        by_zone: dict[tuple[str, str, str], list[Unit]] = defaultdict(list)
        placed = [unit for code, unit in units.items() if code not in self.misplaced]
        for unit in placed:
            for zone in unit.area:
                by_zone[(unit.level, unit.kind, zone)].append(unit)
        reported: set[frozenset[str]] = set()
        for unit in placed:
            for zone in unit.area:
                for outer in chains.get(zone, ()):
                    for other in by_zone.get((unit.level, unit.kind, outer), ()):
                        pair = frozenset((unit.code, other.code))
                        if (other.code == unit.code or pair in reported
                                or unit.parent is None or other.parent is None):
                            continue
                        shared = sorted(unit.categories & other.categories)
                        languages = [lang for lang in unit.languages if lang in other.languages]
                        if not shared or not languages:
                            continue
                        reported.add(pair)
                        earlier, later = sorted(
                            (unit, other), key=lambda u: items[u.code].source.order)
                        shown = ", ".join(shared[:5]) + (" ..." if len(shared) > 5 else "")
                        self.problems.append(items[later.code].source.problem("code", message=(
                            f"area of {later.code!r} overlaps {earlier.code!r} "
                            f"({items[earlier.code].source.where}), both {unit.level} "
                            f"{unit.kind} units handling {shown} in {', '.join(languages)}")))

    def _dids(self, units: Mapping[str, Unit], items: Mapping[str, _Item[UnitModel]],
              lines: Mapping[str, Line]) -> dict[str, str]:
        landing: dict[str, str] = {}
        for code, unit in units.items():
            source = items[code].source
            for index, did in enumerate(unit.dids):
                if not unit.territorial:
                    self.problems.append(source.problem("dids", index, message=(
                        "only territories have landing DIDs: a DID locates the caller")))
                elif did in landing:
                    self.problems.append(source.problem("dids", index, message=(
                        f"duplicate DID {did!r} (also of unit {landing[did]!r})")))
                elif did in lines:
                    self.problems.append(source.problem("dids", index, message=(
                        f"DID {did!r} is also the number of a line")))
                else:
                    landing[did] = code
        return landing

    def _agents(self, units: Mapping[str, Unit],
                categories: Mapping[str, object]) -> dict[str, Agent]:
        items = self._unique(
            self._items(("agents",), [(d, f.agents) for d, f in self.files]), "id", "agent id")
        agents: dict[str, Agent] = {}
        for agent_id, item in items.items():
            model: AgentModel = item.model
            unit = units.get(model.unit)
            if unit is None:
                self.problems.append(item.source.problem(
                    "unit", message=f"unknown unit {model.unit!r}"))
                continue
            if model.skills is None:
                skills = unit.categories
            else:
                skills = self._known_categories(model.skills, item.source, "skills", categories)
                for index, skill in enumerate(model.skills):
                    if skill in categories and skill not in unit.categories:
                        self.problems.append(item.source.problem("skills", index, message=(
                            f"unit {unit.code!r} does not handle {skill!r}")))
            for index, language in enumerate(model.languages):
                if language not in unit.languages:
                    self.problems.append(item.source.problem("languages", index, message=(
                        f"unit {unit.code!r} has no {language} queue: add {language} to "
                        "its languages")))
            agents[agent_id] = Agent(agent_id, model.name, unit.code, skills,
                                     tuple(dict.fromkeys(model.languages)))
        return agents

    def _unhandled_categories(self, units: Mapping[str, Unit],
                              categories: Mapping[str, tuple[Category, _Source]]) -> None:
        handled = set().union(*(unit.categories for unit in units.values()))
        for code, (_, source) in categories.items():
            if code not in handled:
                self.problems.append(source.problem(
                    "code", message=f"no unit at any level handles category {code!r}"))

    def _lines(self, units: Mapping[str, Unit],
               categories: Mapping[str, object]) -> dict[str, Line]:
        items = self._unique(
            self._items(("lines",), [(d, f.lines) for d, f in self.files]), "number", "line")
        lines: dict[str, Line] = {}
        for number, item in items.items():
            model: LineModel = item.model
            preset = model.preset
            if preset.unit is not None and preset.unit not in units:
                self.problems.append(item.source.problem(
                    "preset", "unit", message=f"unknown unit {preset.unit!r}"))
            if preset.category is not None and preset.category not in categories:
                self.problems.append(item.source.problem(
                    "preset", "category", message=f"unknown category {preset.category!r}"))
            elif (preset.unit is not None and preset.unit in units
                  and preset.category is not None
                  and preset.category not in units[preset.unit].categories):
                self.problems.append(item.source.problem("preset", "unit", message=(
                    f"unit {preset.unit!r} does not handle category {preset.category!r}")))
            lines[number] = Line(number, _names(model.name, number), model.kind, model.entry,
                                 model.emergency_key, preset.category, preset.unit)
        return lines

    def _callers(self, units: Mapping[str, Unit]) -> dict[str, str]:
        items = self._unique(
            self._items(("callers",), [(d, f.callers) for d, f in self.files]), "number",
            "caller number")
        callers: dict[str, str] = {}
        for number, item in items.items():
            model: CallerModel = item.model
            if self._territory(model.unit, units, item.source, "unit"):
                callers[number] = model.unit
        return callers

    def _territory(self, code: str, units: Mapping[str, Unit], source: _Source,
                   *field: str | int) -> bool:
        unit = units.get(code)
        if unit is None:
            self.problems.append(source.problem(*field, message=f"unknown unit {code!r}"))
            return False
        if not unit.territorial:
            self.problems.append(source.problem(*field, message=(
                f"{code!r} is not a territory: a caller's location is a city, district, "
                "street or community")))
            return False
        return True

    def _rules(self, units: Mapping[str, Unit], categories: Mapping[str, object],
               lines: Mapping[str, Line], chains: Mapping[str, tuple[str, ...]]
               ) -> tuple[Rule, ...]:
        items = self._unique(
            self._items(("rules",), [(d, f.rules) for d, f in self.files]), "name", "rule name")
        accepted: list[tuple[Rule, _Source]] = []
        for item in items.values():
            rule = self._rule(item, units, categories, lines, chains)
            if rule is None:
                continue
            for earlier, earlier_source in accepted:
                if _shadows(earlier, rule, chains):
                    what = "catch-all rule" if earlier.is_catch_all else "rule"
                    self.problems.append(item.source.problem("name", message=(
                        f"rule {rule.name!r} can never match: {what} {earlier.name!r} "
                        f"({earlier_source.where}) matches every call it would")))
                    break
            accepted.append((rule, item.source))
        return tuple(rule for rule, _ in accepted)

    def _rule(self, item: _Item[RuleModel], units: Mapping[str, Unit],
              categories: Mapping[str, object], lines: Mapping[str, Line],
              chains: Mapping[str, tuple[str, ...]]) -> Rule | None:
        model, source = item.model, item.source
        match = model.match
        before = len(self.problems)
        rule_categories = None
        if match.categories is not None:
            rule_categories = self._known_categories(match.categories, source,
                                                     "match", categories)
        if match.within is not None:
            self._territory(match.within, units, source, "match", "within")
        for index, number in enumerate(match.lines or ()):
            if number not in lines:
                self.problems.append(source.problem("match", "lines", index,
                                                    message=f"unknown line {number!r}"))
        target = None if model.target == "lowest_covering" else model.target
        if target is not None:
            unit = units.get(target)
            if unit is None:
                self.problems.append(source.problem("target", message=f"unknown unit {target!r}"))
            else:
                for code in sorted(rule_categories or ()):
                    if code not in unit.categories:
                        self.problems.append(source.problem("target", message=(
                            f"rule can never route: {target!r} does not handle {code!r}")))
                for language in match.languages or ():
                    if language not in unit.languages:
                        self.problems.append(source.problem("target", message=(
                            f"rule can never route: {target!r} has no {language} queue")))
                if match.within is not None and match.within in chains and not any(
                        match.within in chains.get(zone, ()) or zone in chains[match.within]
                        for zone in unit.area):
                    self.problems.append(source.problem("target", message=(
                        f"{target!r} serves no part of {match.within!r}, "
                        "the area this rule matches")))
        if len(self.problems) > before:
            return None
        return Rule(
            name=model.name,
            categories=rule_categories,
            languages=frozenset(match.languages) if match.languages else None,
            within=match.within,
            lines=frozenset(match.lines) if match.lines else None,
            min_priority=match.min_priority,
            time=match.time,
            target=target,
        )

    def _emergency(self, categories: Mapping[str, object]) -> EmergencyBoundary | None:
        found = self._single("emergency")
        if found is None:
            return None
        doc, value = found
        model = value if isinstance(value, EmergencyModel) else None
        assert model is not None
        to_items = self._unique(
            self._items(("emergency", "to_110"), [(doc, model.to_110)]), "code", "110 matter")
        from_items = self._unique(
            self._items(("emergency", "from_110"), [(doc, model.from_110)]), "code", "110 matter")
        for code, item in from_items.items():
            source = item.source
            if code in to_items:
                self.problems.append(source.problem("code", message=(
                    f"{code!r} is in both to_110 and from_110: a matter goes one way")))
            if item.model.category not in categories:
                self.problems.append(source.problem(
                    "category", message=f"unknown category {item.model.category!r}"))
        return EmergencyBoundary(
            transfer_number=model.transfer_number,
            to_110=tuple(BoundaryItem(m.code, Names(m.name.zh, m.name.en), None)
                         for m in model.to_110),
            from_110=tuple(BoundaryItem(m.code, Names(m.name.zh, m.name.en), m.category)
                           for m in model.from_110),
        )

    @staticmethod
    def _covering(units: Mapping[str, Unit], chains: Mapping[str, tuple[str, ...]]
                  ) -> dict[str, tuple[str, ...]]:
        by_zone: dict[str, list[Unit]] = defaultdict(list)
        for unit in units.values():
            for zone in unit.area:
                by_zone[zone].append(unit)
        return {
            code: _sorted_units(u for zone in chains.get(code, ()) for u in by_zone.get(zone, ()))
            for code, unit in units.items()
            if unit.territorial
        }


def _names(names: UnitNames, fallback: str) -> Names:
    return Names(names.zh, names.en or fallback)


def _shadows(earlier: Rule, later: Rule, chains: Mapping[str, tuple[str, ...]]) -> bool:
    """Whether every call ``later`` matches is already taken by ``earlier``."""

    def wider(mine: frozenset[str] | None, theirs: frozenset[str] | None) -> bool:
        return mine is None or (theirs is not None and theirs <= mine)

    return (
        wider(earlier.categories, later.categories)
        and wider(earlier.languages, later.languages)
        and wider(earlier.lines, later.lines)
        and (earlier.within is None or (
            later.within is not None and earlier.within in chains.get(later.within, ())))
        and (earlier.min_priority is None or (
            later.min_priority is not None and later.min_priority >= earlier.min_priority))
        and (earlier.time is None or earlier.time == later.time)
    )
