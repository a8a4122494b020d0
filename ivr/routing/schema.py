"""The shape of routing/*.yaml as pydantic models: what an admin may write, field by field.

Every file of routing/ is a mapping with any of the sections below; list sections from
several files are joined (a big city may keep one file of units per district), the
single-valued ones (``timezone``, ``locate``, ``emergency``) may appear in one file only.
Cross-references (parents, units of agents, categories of rules, ...) are checked later,
in :mod:`ivr.routing.load`, where all files are known.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ivr.routing.hours import ALWAYS, WeeklySchedule, parse_schedule

Level = Literal["city", "district", "street", "community"]
UnitKind = Literal["government", "utility", "social_organisation"]
Language = Literal["zh", "en"]
CategoryKind = Literal["consultation", "help", "complaint", "report", "suggestion", "praise"]
Urgency = Literal["urgent", "high", "normal", "low"]
LineKind = Literal["hotline", "legacy"]
LocateMethod = Literal["zone", "registry", "ivr"]
QueueStrategy = Literal[
    "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"
]

#: Lowest level first: overflow climbs this list.
LEVELS: tuple[Level, ...] = ("community", "street", "district", "city")
LANGUAGES: tuple[Language, ...] = ("zh", "en")
#: A rule target meaning "the lowest unit covering the caller", as the default route does.
LOWEST_COVERING = "lowest_covering"


def _quoted_digits(value: Any) -> Any:
    # YAML reads 0551 as the octal number 361: an unquoted number silently changes, so
    # numbers must be written as strings.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"write numbers in quotes, e.g. '{value}'")
    return value


UnitCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
CategoryCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
PhoneNumber = Annotated[
    str, BeforeValidator(_quoted_digits), Field(pattern=r"^\+?[0-9]{2,20}$")
]
AgentId = Annotated[str, BeforeValidator(_quoted_digits), Field(pattern=r"^[0-9]{2,10}$")]
Schedule = Annotated[WeeklySchedule, BeforeValidator(parse_schedule)]
Seconds = Annotated[int, Field(ge=1, le=3600)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class UnitNames(_Strict):
    zh: str = Field(min_length=1)
    en: str | None = None


class BothNames(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class QueueModel(_Strict):
    strategy: QueueStrategy = "rrmemory"
    #: Seconds one agent's phone rings before the next is tried.
    ring_timeout: Annotated[int, Field(ge=5, le=300)] = 15
    #: Seconds a caller waits in this unit's queue before overflowing to the parent.
    queue_timeout: Seconds = 60
    wrapup: Annotated[int, Field(ge=0, le=600)] = 10
    announce_position: bool = True
    announce_holdtime: bool = True


class UnitModel(_Strict):
    code: UnitCode
    name: UnitNames
    level: Level
    parent: UnitCode | None = None
    kind: UnitKind = "government"
    #: Territorial units whose areas this unit serves; omitted = the unit is itself a
    #: territory (a district, street or community) and covers its own code.
    area: list[UnitCode] | None = Field(default=None, min_length=1)
    #: Landing DIDs: the carrier delivers calls from this territory on these numbers.
    dids: list[PhoneNumber] = []
    categories: list[CategoryCode] | Literal["all"] = Field(min_length=1)
    languages: list[Language] = Field(default=["zh"], min_length=1)
    hours: Schedule = ALWAYS
    queue: QueueModel = QueueModel()


class CategoryModel(_Strict):
    code: CategoryCode
    name: BothNames
    kind: CategoryKind
    default_urgency: Urgency = "normal"


class AgentModel(_Strict):
    id: AgentId
    name: str = Field(min_length=1)
    unit: UnitCode
    #: Categories this agent handles; omitted = all of the unit's.
    skills: list[CategoryCode] | None = None
    languages: list[Language] = Field(default=["zh"], min_length=1)


class PresetModel(_Strict):
    category: CategoryCode | None = None
    unit: UnitCode | None = None


class LineModel(_Strict):
    number: PhoneNumber
    name: UnitNames
    kind: LineKind
    #: The dialplan node a call on this line starts at.
    entry: Name
    #: Whether the entry menu must offer key 0 (emergency, to 110).
    emergency_key: bool = True
    preset: PresetModel = PresetModel()


class MatchModel(_Strict):
    categories: list[CategoryCode] | None = Field(default=None, min_length=1)
    languages: list[Language] | None = Field(default=None, min_length=1)
    #: The caller's location lies in this unit's subtree.
    within: UnitCode | None = None
    lines: list[PhoneNumber] | None = Field(default=None, min_length=1)
    min_priority: int | None = None
    time: Schedule | None = None


class RuleModel(_Strict):
    name: Name
    match: MatchModel = MatchModel()
    #: A unit code, or ``lowest_covering`` for the default choice.
    target: str = Field(pattern=r"^([a-z0-9][a-z0-9-]{0,62}|lowest_covering)$")


class ToPoliceModel(_Strict):
    code: Name
    name: BothNames


class FromPoliceModel(_Strict):
    code: Name
    name: BothNames
    #: The 12345 category a matter handed over by 110 is filed under.
    category: CategoryCode


class EmergencyModel(_Strict):
    transfer_number: PhoneNumber = "110"
    to_110: list[ToPoliceModel] = Field(min_length=1)
    from_110: list[FromPoliceModel] = Field(min_length=1)


class CallerModel(_Strict):
    number: PhoneNumber
    unit: UnitCode


class RoutingFile(_Strict):
    """One file of routing/: any of these sections."""

    timezone: str | None = None
    locate: list[LocateMethod] | None = None
    units: list[UnitModel] = []
    categories: list[CategoryModel] = []
    agents: list[AgentModel] = []
    lines: list[LineModel] = []
    rules: list[RuleModel] = []
    emergency: EmergencyModel | None = None
    callers: list[CallerModel] = []


SINGLE_SECTIONS = ("timezone", "locate", "emergency")
