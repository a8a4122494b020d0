"""Routing: the administrative hierarchy, where a caller is, and which queues take the call.

Everything other parts call is re-exported here; the submodules are implementation.
"""

from ivr.routing.asterisk import AgentSpec, QueueSpec, asterisk_view
from ivr.routing.decide import (
    DEFAULT_RULE,
    PRESET_RULE,
    AgentAvailability,
    Hop,
    NobodyAvailable,
    RouteDecision,
    RoutePlan,
    RouteRequest,
    decide,
)
from ivr.routing.hours import WeeklySchedule
from ivr.routing.load import build_tables, load_routing
from ivr.routing.locate import Location, locate
from ivr.routing.schema import LANGUAGES, LEVELS
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
    queue_name,
)

__all__ = [
    "DEFAULT_RULE",
    "LANGUAGES",
    "LEVELS",
    "PRESET_RULE",
    "Agent",
    "AgentAvailability",
    "AgentSpec",
    "BoundaryItem",
    "Category",
    "EmergencyBoundary",
    "Hop",
    "Line",
    "Location",
    "Names",
    "NobodyAvailable",
    "QueueSettings",
    "QueueSpec",
    "RouteDecision",
    "RoutePlan",
    "RouteRequest",
    "RoutingTables",
    "Rule",
    "Unit",
    "WeeklySchedule",
    "asterisk_view",
    "build_tables",
    "decide",
    "level_rank",
    "load_routing",
    "locate",
    "queue_name",
]
