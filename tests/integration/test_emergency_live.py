"""Issue 5: key 0 at the first menu reaches the 110 centre at once, with the caller's
number; when 110 cannot be reached the caller still reaches a person, first in line."""

from __future__ import annotations

from hotline_stack import HotlineStack

from ivr.ports import free_port


async def test_key_zero_reaches_the_110_centre_with_the_callers_number(
    hotline: HotlineStack,
) -> None:
    ticket = await hotline.call("12345", "13900000301", keys="0", first_key_delay_ms=800)

    assert ticket["emergency"] is True
    assert ticket["transferred_to"] == "110"
    assert ticket["outcome"] == "transferred_110"
    assert ticket["ivr_path"][:3] == ["hotline_12345", "main_menu", "emergency_110"]
    centre = hotline.phones.phones[-1]
    invites = centre.received_invites()
    assert len(invites) == 1
    assert "INVITE sip:110@" in invites[0]
    headers = {line.split(":", 1)[0].lower(): line for line in invites[0].splitlines()}
    assert "13900000301" in headers["from"]
    assert "13900000301" in headers["p-asserted-identity"]


async def test_110_unreachable_goes_to_the_supervisors_with_an_alarm(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    udp = __import__("socket").SOCK_DGRAM
    stack: HotlineStack = await hotline_factory(
        settings={
            "emergency": {
                "answer_timeout_seconds": 2,
                # An alternate nobody listens on: tried, then given up.
                "alternates": [{"host": "127.0.0.1", "port": free_port(udp)}],
            }
        },
        centre_answers=False,
    )

    ticket = await stack.call("12345", "13900000302", keys="0", first_key_delay_ms=800)

    assert ticket["emergency"] is True
    assert ticket["outcome"] == "answered"  # by a supervisor
    assert ticket["agent"] in {"1001", "1002"}
    assert "emergency_unreachable" in stack.controller_log() or "110 unreachable" in (
        stack.controller_log()
    )
