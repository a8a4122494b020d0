"""The dialer: the I/O edge that places the calls ivr.outbound.plan finds due.

Every few seconds (settings ``outbound.poll_seconds``) it reads the tickets owed a call and
the agent board, and for each call due:

1. counts the attempt on the ticket first (audit row included), so that no crash, timeout
   or lost AMI reply can ever make it dial a citizen twice unknowingly: AMI actions are
   never resent either (ivr.ami);
2. sends one asynchronous AMI Originate whose new channel gets a uniqueid of ours
   (ChannelId), hence the linkedid of every channel of that call;
   - a follow-up dials the citizen on the citizens trunk; once answered, the dialplan's
     ``followup-call`` context runs the survey (ivr.features.followup);
   - a callback rings the unit's queue first (``Local/<queue>@callback-agent``); once an
     agent answers, ``callback-citizen`` dials the citizen with the hotline's number;
3. follows the call on AMI: OriginateResponse (answered or not, and why), DialEnd of the
   citizens trunk (a callback reached the citizen: done), Hangup (the call is over).

A call still under way is never planned again; its ticket is released at its hang-up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from ivr import chanvars
from ivr.agent_board import AgentBoard, agent_id_of
from ivr.ami import AmiClient, AmiError, AmiMessage
from ivr.outbound.plan import (
    OutboundCall,
    callback_owed,
    plan_calls,
    retry_policy,
    settled_callbacks,
)
from ivr.routing import RoutingTables, queue_name
from ivr.services import DeploymentSource
from ivr.settings import Settings
from ivr.spool import is_database_outage
from ivr.tickets import OutboundKind, Ticket, TicketError, TicketStore

log = structlog.get_logger(__name__)

ACTOR = "outbound-dialer"
#: The PJSIP endpoint and dialplan contexts of asterisk/templates (pjsip, extensions).
CITIZENS_ENDPOINT = "citizens"
FOLLOWUP_CONTEXT = "followup-call"
CALLBACK_AGENT_CONTEXT = "callback-agent"
CALLBACK_CITIZEN_CONTEXT = "callback-citizen"
#: Events the dialer follows (all pass the AMI user's eventfilter in manager.conf).
DIALER_EVENTS = ("OriginateResponse", "DialEnd", "AgentConnect", "Hangup")
#: A call heard nothing of for this long is forgotten (its hang-up may have been lost in an
#: AMI reconnect); it was counted as an attempt long before.
FORGET_AFTER_SECONDS = 3600.0
#: Asterisk's OriginateResponse Reason codes (AST_CONTROL_*) in words.
ORIGINATE_REASONS = {
    "0": "no such number or trunk down",
    "1": "hung up",
    "3": "no answer",
    "5": "busy",
    "8": "congestion",
}


@dataclass
class CallUnderWay:
    call: OutboundCall
    channel_id: str
    action_id: str
    started: float
    #: The Originate's channel answered (the citizen, or for a callback an agent).
    answered: bool = False
    agent: str | None = None


class OutboundDialer:
    def __init__(
        self,
        store: TicketStore,
        ami: AmiClient,
        board: AgentBoard,
        deployments: DeploymentSource,
        clock: Callable[[], datetime],
        outbound_calls: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.ami = ami
        self.board = board
        self.deployments = deployments
        self.clock = clock
        #: By channel id (the linkedid of the call's channels).
        self._under_way: dict[str, CallUnderWay] = {}
        #: linkedid -> ticket of every call placed, shared with the queue event recorder
        #: (ivr.call_events), kept past the hang-up of the Originate's own channel: a
        #: callback's agent and citizen talk on after it (Local channels step aside).
        self.outbound_calls = {} if outbound_calls is None else outbound_calls
        self._placed_at: dict[str, float] = {}

    @property
    def busy(self) -> frozenset[str]:
        """Tickets whose call is under way."""
        return frozenset(c.call.ticket_id for c in self._under_way.values())

    def listen(self) -> None:
        for name in DIALER_EVENTS:
            self.ami.on_event(name, self.on_event)

    async def run(self) -> None:
        """Look for calls owed, for as long as the controller runs."""
        while True:
            try:
                await self.tick()
            except Exception as exc:
                if not is_database_outage(exc):
                    log.exception("outbound calls not placed; trying again later")
                else:
                    # Calls go on during an outage (the spool); these wait for its end.
                    log.warning("outbound calls wait for the ticket database", error=str(exc))
            await asyncio.sleep(self.deployments.current.settings.outbound.poll_seconds)

    async def tick(self) -> list[OutboundCall]:
        if not self.ami.connected:
            return []
        self._forget_old()
        deployment = self.deployments.current
        settings = deployment.settings
        followup, callbacks = retry_policy(settings.followup), retry_policy(settings.callbacks)
        if followup is None and callbacks is None:
            return []
        candidates = await self.store.outbound_candidates()
        settled = await self._settle_callbacks(candidates) if callbacks else frozenset()
        calls = plan_calls(
            candidates,
            now=self.clock(),
            tables=deployment.routing,
            followup=followup,
            callbacks=callbacks,
            idle_agents=self._idle_agents(deployment.routing),
            busy=self.busy | settled,
        )
        for call in calls:
            await self.place(call, settings)
        return calls

    def _idle_agents(self, tables: RoutingTables) -> Callable[[str], int]:
        """Agents free in a queue now, past its wrap-up time (compared with Asterisk's
        own clock for the last call's end, hence the wall clock, not the controller's)."""
        wrapups = {
            queue_name(unit.code, language): unit.queue.wrapup
            for unit in tables.units.values()
            for language in unit.languages
        }
        now = time.time()
        return lambda queue: self.board.idle(queue, now, wrapups.get(queue, 0))

    async def _settle_callbacks(self, candidates: list[Ticket]) -> frozenset[str]:
        """Mark done the callbacks of citizens an agent answered on a later call."""
        owed = [t for t in candidates if callback_owed(t)]
        if not owed:
            return frozenset()
        answered = await self.store.last_answered(t.caller for t in owed if t.caller)
        settled = settled_callbacks(owed, answered)
        for ticket_id in settled:
            await self.store.callback_done(
                ticket_id,
                actor=ACTOR,
                note="not needed: the citizen reached an agent on a later call",
                now=self.clock(),
            )
        return frozenset(settled)

    async def place(self, call: OutboundCall, settings: Settings) -> None:
        hotline = settings.outbound.caller_id
        channel_id = f"ivr-{call.kind.value}-{uuid.uuid4().hex}"
        action_id = f"ivr-originate-{uuid.uuid4().hex}"
        if call.kind is OutboundKind.FOLLOW_UP:
            channel = f"PJSIP/{call.number}@{CITIZENS_ENDPOINT}"
            context, exten = FOLLOWUP_CONTEXT, "s"
            ring = settings.followup.ring_seconds
            # What the citizen's phone shows: the hotline.
            caller_id = f'"{hotline}" <{hotline}>'
            what = f"follow-up call to {call.number}"
        else:
            assert call.queue is not None
            channel = f"Local/{call.queue}@{CALLBACK_AGENT_CONTEXT}"
            context, exten = CALLBACK_CITIZEN_CONTEXT, call.number
            ring = settings.callbacks.agent_ring_seconds + 5
            # What the agent's phone shows: whom they are about to call back.
            caller_id = f'"callback {call.ticket_id}" <{call.number}>'
            what = f"callback of {call.number}: an agent of {call.queue} first"
        # The controller's clock, which the planner judges retries by.
        await self.store.record_outbound_attempt(
            call.ticket_id, call.kind, actor=ACTOR, note=what, now=self.clock()
        )
        under_way = CallUnderWay(call, channel_id, action_id, time.monotonic())
        self._under_way[channel_id] = under_way
        self.outbound_calls[channel_id] = call.ticket_id
        self._placed_at[channel_id] = under_way.started
        try:
            await self.ami.originate(
                channel,
                context=context,
                exten=exten,
                caller_id=caller_id,
                ring_timeout_s=ring,
                variables={chanvars.TICKET: call.ticket_id},
                channel_id=channel_id,
                action_id=action_id,
            )
        except AmiError as exc:
            # Sent at most once: whether it ran or not, the next try waits its turn.
            self._under_way.pop(channel_id, None)
            log.warning("originate failed", ticket=call.ticket_id, error=str(exc))
            await self._note(under_way, f"not placed: {exc}")
            return
        log.info("outbound call placed", ticket=call.ticket_id, kind=call.kind.value,
                 attempt=call.attempt, channel_id=channel_id)

    async def on_event(self, message: AmiMessage) -> None:
        try:
            await self._on_event(message)
        except Exception:
            # A malformed or unexpected event must never disturb live calls.
            log.exception("could not follow an outbound call event", ami_event=message.event)

    async def _on_event(self, message: AmiMessage) -> None:
        name = message.event
        if name == "OriginateResponse":
            await self._originate_answered(message)
            return
        under_way = self._under_way.get(message.get("linkedid"))
        if under_way is None:
            return
        if name == "AgentConnect":
            under_way.agent = agent_id_of(message.get("interface") or message.get("membername"))
        elif name == "DialEnd" and under_way.call.kind is OutboundKind.CALLBACK:
            if message.get("destchannel").startswith(f"PJSIP/{CITIZENS_ENDPOINT}-"):
                await self._callback_dialled(under_way, message.get("dialstatus"))
        elif name == "Hangup" and message.get("uniqueid") == under_way.channel_id:
            cause = message.get("cause-txt") or message.get("cause") or "?"
            await self._over(under_way, f"hung up ({cause})")

    async def _originate_answered(self, message: AmiMessage) -> None:
        action_id = message.action_id
        under_way = next((c for c in self._under_way.values() if c.action_id == action_id), None)
        if under_way is None:
            return
        if message.response.lower() == "success":
            under_way.answered = True
            log.info("outbound call answered", ticket=under_way.call.ticket_id,
                     kind=under_way.call.kind.value)
            return
        reason = message.get("reason")
        await self._over(under_way, ORIGINATE_REASONS.get(reason, f"reason {reason or '?'}"))

    async def _over(self, under_way: CallUnderWay, why: str) -> None:
        """The call ended (its hang-up, or an Originate that never made a channel, whichever
        AMI tells first); a call nobody answered says so on the ticket."""
        if self._under_way.pop(under_way.channel_id, None) is None:
            return
        log.info("outbound call over", ticket=under_way.call.ticket_id, why=why)
        if not under_way.answered:
            who = "the citizen" if under_way.call.kind is OutboundKind.FOLLOW_UP else "no agent"
            await self._note(under_way, f"{who} did not answer ({why})")

    async def _callback_dialled(self, under_way: CallUnderWay, status: str) -> None:
        call = under_way.call
        agent = under_way.agent or "an agent"
        if status == "ANSWER":
            await self.store.callback_done(
                call.ticket_id,
                actor=ACTOR,
                note=f"attempt {call.attempt}: {agent} connected to the citizen {call.number}",
                now=self.clock(),
            )
            log.info("callback connected", ticket=call.ticket_id, agent=under_way.agent)
        else:
            await self._note(under_way, f"the citizen did not answer ({status or '?'})")

    async def _note(self, under_way: CallUnderWay, text: str) -> None:
        call = under_way.call
        try:
            await self.store.note(
                call.ticket_id,
                f"{call.kind.value} call, attempt {call.attempt}: {text}",
                actor=ACTOR,
                now=self.clock(),
            )
        except TicketError:
            log.exception("outbound call result not written", ticket=call.ticket_id)

    def _forget_old(self) -> None:
        limit = time.monotonic() - FORGET_AFTER_SECONDS
        for channel_id, placed in list(self._placed_at.items()):
            if placed < limit:
                del self._placed_at[channel_id]
                self.outbound_calls.pop(channel_id, None)
        for channel_id, under_way in list(self._under_way.items()):
            if under_way.started < limit:
                del self._under_way[channel_id]
                log.warning("outbound call forgotten", ticket=under_way.call.ticket_id)
