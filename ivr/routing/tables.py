"""The routing tables as the rest of the engine sees them: immutable, validated, indexed.

Built only by :func:`ivr.routing.load.load_routing` (from routing/*.yaml) or by
:func:`ivr.routing.generate.generate_city`; never constructed by hand elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ivr.routing.hours import WeeklySchedule
from ivr.routing.schema import (
    LEVELS,
    CategoryKind,
    Language,
    Level,
    LineKind,
    LocateMethod,
    QueueStrategy,
    UnitKind,
    Urgency,
)


def queue_name(unit: str, language: str) -> str:
    """The one Asterisk queue of ``unit`` for callers speaking ``language``."""
    return f"q-{unit}-{language}"


def level_rank(level: Level) -> int:
    """0 for community up to 3 for city: overflow never goes to a lower rank."""
    return LEVELS.index(level)


@dataclass(frozen=True)
class Names:
    zh: str
    en: str


@dataclass(frozen=True)
class QueueSettings:
    strategy: QueueStrategy
    ring_timeout: int
    queue_timeout: int
    wrapup: int
    announce_position: bool
    announce_holdtime: bool


@dataclass(frozen=True)
class Unit:
    code: str
    name: Names
    level: Level
    #: None only for the city, the root every overflow ends at.
    parent: str | None
    kind: UnitKind
    #: Territorial units whose subtrees this unit serves; ``(code,)`` for a territory.
    area: tuple[str, ...]
    #: True for districts, streets, communities and the city: places a caller can be.
    territorial: bool
    dids: tuple[str, ...]
    categories: frozenset[str]
    languages: tuple[Language, ...]
    hours: WeeklySchedule
    queue: QueueSettings

    def handles(self, category: str | None, language: str) -> bool:
        """Whether calls of this category and language belong here. A call not classified
        yet (None) belongs only to territories: departments take their own matters only."""
        if language not in self.languages:
            return False
        return self.territorial if category is None else category in self.categories


@dataclass(frozen=True)
class Agent:
    #: The SIP username; secrets are generated per id elsewhere, never kept here.
    id: str
    name: str
    unit: str
    skills: frozenset[str]
    languages: tuple[Language, ...]


@dataclass(frozen=True)
class Category:
    code: str
    name: Names
    kind: CategoryKind
    default_urgency: Urgency


@dataclass(frozen=True)
class Line:
    number: str
    name: Names
    kind: LineKind
    entry: str
    emergency_required: bool
    preset_category: str | None
    preset_unit: str | None


@dataclass(frozen=True)
class Rule:
    """One line of the ordered rule list; a None condition matches anything."""

    name: str
    categories: frozenset[str] | None
    languages: frozenset[str] | None
    within: str | None
    lines: frozenset[str] | None
    min_priority: int | None
    time: WeeklySchedule | None
    #: A unit code, or None for the lowest unit covering the caller.
    target: str | None

    @property
    def is_catch_all(self) -> bool:
        return all(
            condition is None
            for condition in (
                self.categories, self.languages, self.within, self.lines, self.min_priority,
                self.time,
            )
        )


@dataclass(frozen=True)
class BoundaryItem:
    code: str
    name: Names
    #: For matters 110 hands to 12345: the category they are filed under.
    category: str | None


@dataclass(frozen=True)
class EmergencyBoundary:
    """The published 110 linkage lists (issue 5): what goes to 110, what comes back."""

    transfer_number: str
    to_110: tuple[BoundaryItem, ...]
    from_110: tuple[BoundaryItem, ...]


@dataclass(frozen=True)
class RoutingTables:
    timezone: ZoneInfo
    #: How a caller is located, in order; the city is always the last resort.
    locate_order: tuple[LocateMethod, ...]
    units: Mapping[str, Unit]
    categories: Mapping[str, Category]
    agents: Mapping[str, Agent]
    lines: Mapping[str, Line]
    rules: tuple[Rule, ...]
    emergency: EmergencyBoundary | None
    #: Caller number -> territorial unit code, from routing's callers section.
    known_callers: Mapping[str, str]
    #: Landing DID -> territorial unit code.
    landing_dids: Mapping[str, str]
    #: The root unit: level city, no parent.
    city: str
    #: Unit -> the unit itself and its ancestors up to the city, lowest first.
    chains: Mapping[str, tuple[str, ...]]
    #: Territorial unit -> every unit whose area covers it, lowest level first.
    covering: Mapping[str, tuple[str, ...]]

    @property
    def emergency_number(self) -> str:
        """The number emergencies are handed to (110 unless routing/ says otherwise)."""
        return self.emergency.transfer_number if self.emergency else "110"

    @property
    def category_codes(self) -> frozenset[str]:
        return frozenset(self.categories)

    @property
    def unit_codes(self) -> frozenset[str]:
        return frozenset(self.units)

    @property
    def territorial_codes(self) -> frozenset[str]:
        """Units a caller can be located in (valid values of the IVR ``location`` variable)."""
        return frozenset(self.covering)

    def is_territory(self, code: str) -> bool:
        return code in self.covering

    def in_subtree(self, unit: str, root: str) -> bool:
        """Whether ``unit`` is ``root`` or lies below it."""
        return root in self.chains.get(unit, ())
