"""Reports over the tickets (issue 9): service metrics, line usage, department ranking and
hotspot warning. Everything here is pure apart from :mod:`ivr.reports.load`, which reads the
ticket store, and the ``ivr report`` commands in :mod:`ivr.cli.report`."""

from ivr.reports.hotspots import (
    HOTSPOT_ALARM_KIND,
    Hotspot,
    HotspotSettings,
    PlaceTree,
    alarms_for,
    collapse_nested,
    detect_hotspots,
    places_from_routing,
    poisson_tail,
)
from ivr.reports.metrics import (
    DEFAULT_ANSWER_WITHIN_SECONDS,
    GroupBy,
    LineUsage,
    LineUsageReport,
    Period,
    ServiceMetrics,
    UsageThresholds,
    line_usage,
    measure,
    period_key,
    service_metrics,
)
from ivr.reports.ranking import (
    DEFAULT_RANKING,
    RankedUnit,
    RankingConfig,
    RankingWeights,
    load_ranking,
    rank_units,
)
from ivr.reports.records import Disposition, TicketRecord, record_of

__all__ = [
    "DEFAULT_ANSWER_WITHIN_SECONDS",
    "DEFAULT_RANKING",
    "HOTSPOT_ALARM_KIND",
    "Disposition",
    "GroupBy",
    "Hotspot",
    "HotspotSettings",
    "LineUsage",
    "LineUsageReport",
    "Period",
    "PlaceTree",
    "RankedUnit",
    "RankingConfig",
    "RankingWeights",
    "ServiceMetrics",
    "TicketRecord",
    "UsageThresholds",
    "alarms_for",
    "collapse_nested",
    "detect_hotspots",
    "line_usage",
    "load_ranking",
    "measure",
    "period_key",
    "places_from_routing",
    "poisson_tail",
    "rank_units",
    "record_of",
    "service_metrics",
]
