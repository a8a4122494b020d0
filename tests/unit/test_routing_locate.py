"""locate(): zone, registry, IVR choice and city, in the order routing/ configures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ivr.home import Home
from ivr.routing import Location, RoutingTables, load_routing, locate

REPO = Path(__file__).resolve().parents[2]
EAST_DID = "02160000100"
KNOWN_WEST = "13800000002"  # routing/callers.yaml: c-west-2-2


@pytest.fixture(scope="module")
def tables() -> RoutingTables:
    return load_routing(Home(REPO))


@pytest.mark.parametrize(
    ("did", "caller", "ivr_choice", "history", "expected"),
    [
        (EAST_DID, KNOWN_WEST, "s-west-1", {}, Location("d-east", "zone")),
        (None, KNOWN_WEST, "s-west-1", {}, Location("c-west-2-2", "registry")),
        ("99999", KNOWN_WEST, None, {}, Location("c-west-2-2", "registry")),
        (None, "13900000000", "s-west-1", {}, Location("s-west-1", "ivr")),
        (None, "13900000000", None, {}, Location("city", "city")),
        # Earlier tickets come first among known callers.
        (None, KNOWN_WEST, None, {KNOWN_WEST: "c-east-2-2"}, Location("c-east-2-2", "registry")),
        (None, "13900000000", None, {"13900000000": "s-east-2"}, Location("s-east-2", "registry")),
        # Values that name no territory are passed over, never trusted.
        (None, "13900000000", "amr", {"13900000000": "gone"}, Location("city", "city")),
        (None, KNOWN_WEST, None, {KNOWN_WEST: "gone"}, Location("c-west-2-2", "registry")),
        (None, " 13800000002 ", " c-east-1-1 ", {}, Location("c-west-2-2", "registry")),
        (None, "", "c-east-1-1", {}, Location("c-east-1-1", "ivr")),
    ],
)
def test_default_order(tables: RoutingTables, did: str | None, caller: str,
                       ivr_choice: str | None, history: dict[str, str],
                       expected: Location) -> None:
    assert tables.locate_order == ("zone", "registry", "ivr")
    assert locate(tables, did=did, caller=caller, ivr_choice=ivr_choice,
                  known_callers=history) == expected


def test_configured_order_puts_the_callers_choice_first(tables: RoutingTables) -> None:
    def where(order: RoutingTables, choice: str | None) -> Location:
        return locate(order, did=EAST_DID, caller=KNOWN_WEST, ivr_choice=choice,
                      known_callers={})

    ivr_first = replace(tables, locate_order=("ivr", "zone"))
    assert where(ivr_first, "s-west-1") == Location("s-west-1", "ivr")
    assert where(ivr_first, None) == Location("d-east", "zone")
    # Methods left out of the order are not consulted: here the zone and the registry.
    only_ivr = replace(tables, locate_order=("ivr",))
    assert where(only_ivr, None) == Location("city", "city")
