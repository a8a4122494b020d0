"""What AMI tells about calls in queues, written on their tickets and announced.

The FastAGI session knows the menu and the overflow hops; only Asterisk's queue events know
which agent rang, who answered, how long the caller waited and talked, and who gave up.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from ivr.agent_board import agent_id_of
from ivr.routing import RoutingTables, queue_name
from ivr.services import CallServices
from ivr.tickets import UnknownTicket

log = structlog.get_logger(__name__)

CALL_EVENTS = ("AgentCalled", "AgentConnect", "AgentComplete", "QueueCallerAbandon", "DialEnd")
#: The channels of the 110 trunk and its alternates (see ivr.features.hotline).
EMERGENCY_CHANNEL_PREFIX = "PJSIP/trunk-110"


def queue_units(tables: RoutingTables) -> dict[str, tuple[str, str]]:
    """Queue name -> (unit code, level) for every queue the routing tables render."""
    return {
        queue_name(unit.code, language): (unit.code, unit.level)
        for unit in tables.units.values()
        for language in unit.languages
    }


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class CallEventRecorder:
    def __init__(self, services: CallServices) -> None:
        self.services = services
        self._units_of: tuple[int, dict[str, tuple[str, str]]] = (0, {})

    def _unit_of(self, queue: str) -> tuple[str, str | None]:
        tables = self.services.deployments.current.routing
        if self._units_of[0] != id(tables):
            self._units_of = (id(tables), queue_units(tables))
        unit, level = self._units_of[1].get(queue, (queue, ""))
        return unit, level or None

    async def on_event(self, event: Mapping[str, str]) -> None:
        name = event.get("event", "")
        linkedid = event.get("linkedid", "")
        if not linkedid:
            return
        outbound_ticket = self.services.outbound_calls.get(linkedid)
        if outbound_ticket is not None:
            # A callback ringing an agent: the agent's screen shows the ticket called back;
            # the rest of the call is the dialer's to follow (ivr.outbound.dialer).
            if name == "AgentCalled":
                await self._ringing(linkedid, outbound_ticket, event)
            return
        try:
            await self._record(name, linkedid, event)
        except UnknownTicket:
            # A call the controller never saw (the dialplan's fallback while it was down):
            # reconciliation from Asterisk's call records writes its ticket later.
            log.info("queue event for a call without ticket", event_name=name, linkedid=linkedid)

    async def _record(self, name: str, linkedid: str, event: Mapping[str, str]) -> None:
        tickets = self.services.tickets
        notifier = self.services.notifier
        queue = event.get("queue", "")
        agent = agent_id_of(event.get("interface") or event.get("membername", ""))
        if name == "AgentCalled":
            await self._ringing(linkedid, await tickets.ticket_id_of(linkedid), event)
        elif name == "AgentConnect":
            self.services.answered_calls.add(linkedid)
            now = self.services.clock()
            unit, level = self._unit_of(queue)
            wait = _number(event.get("holdtime", ""))
            ring = _number(event.get("ringtime", "")) or 0.0
            await tickets.update_call(
                linkedid,
                agent=agent,
                unit=unit,
                level=level,
                answered_at=now,
                wait_seconds=wait,
                outcome="answered",
            )
            await tickets.append_route_hop(
                linkedid, unit=unit, level=level, queue=queue, outcome="answered"
            )
            notifier.publish(
                "call.answered",
                {
                    "linkedid": linkedid,
                    "agent": agent,
                    "queue": queue,
                    "unit": unit,
                    "wait_seconds": wait,
                    "ring_seconds": ring,
                },
            )
        elif name == "AgentComplete":
            talk = _number(event.get("talktime", ""))
            await tickets.update_call(linkedid, talk_seconds=talk)
            notifier.publish(
                "call.ended",
                {
                    "linkedid": linkedid,
                    "agent": agent,
                    "talk_seconds": talk,
                    "outcome": "answered",
                    "hung_up_by": event.get("reason", ""),
                },
            )
        elif name == "DialEnd":
            await self._emergency_answered(linkedid, event)

    async def _ringing(
        self, linkedid: str, ticket_id: str | None, event: Mapping[str, str]
    ) -> None:
        queue = event.get("queue", "")
        caller = event.get("calleridnum", "")
        unit, _ = self._unit_of(queue)
        self.services.notifier.publish(
            "call.ringing",
            {
                "linkedid": linkedid,
                "ticket_id": ticket_id,
                "agent": agent_id_of(event.get("interface") or event.get("membername", "")),
                "unit": unit,
                "queue": queue,
                "caller": caller,
                # The caller's earlier matters, for the agent's screen.
                "history": await self.services.history.caller_history(caller),
            },
        )

    async def _emergency_answered(self, linkedid: str, event: Mapping[str, str]) -> None:
        """The 110 centre picked up: the hand-over is done, and how fast goes on the ticket."""
        if not event.get("destchannel", "").startswith(EMERGENCY_CHANNEL_PREFIX):
            return
        if event.get("dialstatus") != "ANSWER":
            return
        now = self.services.clock()
        pressed = self.services.emergency_started.pop(linkedid, None)
        timing: dict[str, str] = {"emergency_answered_at": now.isoformat()}
        if pressed is not None:
            timing["emergency_answer_seconds"] = f"{(now - pressed).total_seconds():.3f}"
        # Also a hand-over by an agent (ivr agents transfer-110), not only the emergency key.
        await self.services.tickets.update_call(
            linkedid,
            outcome="transferred_110",
            emergency=True,
            transferred_to=self.services.deployments.current.routing.emergency_number,
            variables=timing,
        )
