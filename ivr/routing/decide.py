"""The route decision: a pure function of the request, the tables and who is logged in.

Like adhearsion's router, the ordered rules of routing/ are tried top to bottom and the
first whose conditions all hold decides; when none does, the default applies. The result is
a plan of hops, lowest unit first: the dialplan queues the caller at the first hop and, when
nobody answers within its timeout, moves on to the next, ending at the city.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ivr.routing.schema import Level
from ivr.routing.tables import RoutingTables, Rule, Unit, queue_name

#: RoutePlan.rule when no rule matched and the line named no department.
DEFAULT_RULE = "default"
#: RoutePlan.rule when no rule matched and the line's preset department decided.
PRESET_RULE = "preset"


class AgentAvailability(Protocol):
    def available(self, queue: str) -> int:
        """Agents of ``queue`` logged in and not paused."""
        ...


@dataclass(frozen=True)
class RouteRequest:
    #: A territorial unit code, as :func:`ivr.routing.locate.locate` returns.
    location: str
    #: A category code, or None while the call is not classified yet.
    category: str | None
    language: str
    #: Timezone-aware; converted to the city's time zone for working hours.
    now: datetime
    priority: int = 0
    #: The department of a legacy line (``Line.preset_unit``).
    preset_unit: str | None = None
    #: The number dialled, for rules that match on lines.
    line: str | None = None


@dataclass(frozen=True)
class Hop:
    unit: str
    level: Level
    queue: str
    timeout_seconds: int


@dataclass(frozen=True)
class RoutePlan:
    hops: tuple[Hop, ...]
    rule: str


@dataclass(frozen=True)
class NobodyAvailable:
    reason: str
    #: Units considered, in the order they were, that handle the call but could not take it.
    tried: tuple[str, ...]


RouteDecision = RoutePlan | NobodyAvailable


def decide(tables: RoutingTables, request: RouteRequest,
           agents: AgentAvailability) -> RouteDecision:
    """Where the call goes. Unknown locations count as the city and unknown categories as
    unclassified, so a stale value still reaches a person instead of failing the call."""
    if request.now.tzinfo is None:
        raise ValueError("RouteRequest.now must be timezone-aware")
    local = request.now.astimezone(tables.timezone)
    location = request.location if tables.is_territory(request.location) else tables.city
    category = request.category if request.category in tables.categories else None
    request = RouteRequest(location, category, request.language, local, request.priority,
                           request.preset_unit, request.line)

    for rule in tables.rules:
        if _matches(rule, request, tables):
            preferred = (_lowest_covering(tables, request) if rule.target is None
                         else tables.chains[rule.target])
            return _plan(tables, request, preferred, agents, rule.name)
    return _plan(tables, request, _lowest_covering(tables, request), agents,
                 PRESET_RULE if _preset(tables, request) else DEFAULT_RULE)


def _matches(rule: Rule, request: RouteRequest, tables: RoutingTables) -> bool:
    return (
        (rule.categories is None or request.category in rule.categories)
        and (rule.languages is None or request.language in rule.languages)
        and (rule.within is None or tables.in_subtree(request.location, rule.within))
        and (rule.lines is None or request.line in rule.lines)
        and (rule.min_priority is None or request.priority >= rule.min_priority)
        and (rule.time is None or rule.time.contains(request.now))
    )


def _preset(tables: RoutingTables, request: RouteRequest) -> str | None:
    preset = request.preset_unit
    return preset if preset is not None and preset in tables.units else None


def _lowest_covering(tables: RoutingTables, request: RouteRequest) -> tuple[str, ...]:
    """Units to start at, best first: those covering the caller, lowest level first, then
    the city. Without a preset only government units take calls by default; utilities and
    social organisations are dispatch targets, reached by a rule or a line's preset (a
    legacy line starts among its department's own units)."""
    covering = tables.covering[request.location]
    preset = _preset(tables, request)
    if preset is None:
        return tuple(code for code in covering if tables.units[code].kind == "government")
    inside = tuple(code for code in covering if tables.in_subtree(code, preset))
    return (*inside, *tables.chains[preset])


def _plan(tables: RoutingTables, request: RouteRequest, preferred: Iterable[str],
          agents: AgentAvailability, rule: str) -> RouteDecision:
    tried: list[str] = []

    def takes_call(unit: Unit) -> bool:
        if not unit.handles(request.category, request.language):
            return False
        if unit.code not in tried:
            tried.append(unit.code)
        return unit.hours.contains(request.now) and agents.available(
            queue_name(unit.code, request.language)) > 0

    start = next((tables.units[code] for code in dict.fromkeys(preferred)
                  if takes_call(tables.units[code])), None)
    if start is None:
        what = request.category or "unclassified calls"
        if not tried:
            return NobodyAvailable(
                f"no unit for {request.location} handles {what} in {request.language}", ())
        return NobodyAvailable(
            f"nobody on duty and available for {what} in {request.language}", tuple(tried))
    hops = [start] + [
        tables.units[code] for code in tables.chains[start.code][1:]
        if takes_call(tables.units[code])
    ]
    return RoutePlan(
        tuple(Hop(u.code, u.level, queue_name(u.code, request.language), u.queue.queue_timeout)
              for u in hops),
        rule,
    )
