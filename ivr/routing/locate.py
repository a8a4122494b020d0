"""Where is the caller? Each method of ``tables.locate_order`` is asked in turn; the first
that names a known territory wins, and the city is the last resort."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ivr.routing.tables import RoutingTables

LocateMethodUsed = Literal["zone", "registry", "ivr", "city"]


@dataclass(frozen=True)
class Location:
    #: A territorial unit code (city, district, street or community).
    unit: str
    method: LocateMethodUsed


def locate(
    tables: RoutingTables,
    *,
    did: str | None,
    caller: str,
    ivr_choice: str | None,
    known_callers: Mapping[str, str],
) -> Location:
    """The caller's territory.

    ``did`` is the number the carrier delivered the call on (a landing zone), ``ivr_choice``
    the unit code the caller picked in the menu (variable ``location``), ``known_callers``
    caller numbers learnt elsewhere (earlier tickets). The registry method consults
    ``known_callers`` first, then the callers section of routing/. Values that name no
    territory are passed over, so a stale registry entry cannot misroute a call.
    """
    for method in tables.locate_order:
        if method == "zone":
            found = [tables.landing_dids.get(did.strip()) if did else None]
        elif method == "registry":
            number = caller.strip()
            found = [known_callers.get(number), tables.known_callers.get(number)]
        else:
            found = [ivr_choice.strip() if ivr_choice else None]
        for unit in found:
            if unit is not None and tables.is_territory(unit):
                return Location(unit, method)
    return Location(tables.city, "city")
