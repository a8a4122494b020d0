"""The ``ivr`` AGI script: a citizen's call on any line the hotline answers.

Asterisk hands over (line, linkedid, SIP Call-ID, landing DID) as AGI arguments. The call
gets its ticket, walks the menus of its line, and ends with a person (queues tried in the
router's overflow order), the 110 centre, a voice message or a polite goodbye. Whatever
happens, IVR_ACTION=done tells the dialplan not to take its fallback route, except when
the controller could not do its part: then the dialplan still puts the caller to a person.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import structlog

from ivr import chanvars
from ivr.agi import AgiSession
from ivr.channel import CallerHungUp
from ivr.deployment import caller_choice, line_preset, route_request
from ivr.menu import (
    CallStart,
    Goodbye,
    MenuResult,
    Outcome,
    RouteTo,
    TransferTo,
    VoiceMessage,
    run_menu,
)
from ivr.recordings import (
    RECORDING_SUFFIX,
    call_stem,
    ensure_day_folder,
    recording_name,
    recording_path,
)
from ivr.routing import Hop, Line, NobodyAvailable, decide, locate
from ivr.services import CallServices, DeploymentView

log = structlog.get_logger(__name__)

#: QUEUESTATUS values after which the caller is still ours and the next unit up is tried.
OVERFLOW_STATUSES = frozenset(
    {"TIMEOUT", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "FULL"}
)
#: A caller waiting in a queue chose to be called back (the callback offer menu sets its
#: ``callback`` variable to ``requested``): the ticket's outcome, and the wait's end.
CALLBACK_CHOSEN = "callback_chosen"
CALLBACK_VARIABLE = "callback"
CALLBACK_REQUESTED = "requested"
#: Queue() options: ring back instead of hold music, and let the agent transfer (to 110).
QUEUE_OPTIONS = "rt"


@dataclass(frozen=True)
class CallArgs:
    line: str
    linkedid: str
    sip_call_id: str
    did: str
    #: "110" when the police platform hands the call over, with its matter code.
    handover: str = ""
    handover_code: str = ""
    #: Caller ID number and name as the caller sent them (see ``caller_id_argument``).
    caller: str | None = None
    caller_name: str | None = None

    @classmethod
    def of(cls, session: AgiSession) -> CallArgs:
        line, linkedid, sip_call_id, did, handover, code, number, name = (
            [*session.args, *[""] * 8]
        )[:8]
        return cls(
            line,
            linkedid or session.uniqueid,
            sip_call_id,
            did,
            handover,
            code,
            caller_id_argument(number),
            caller_id_argument(name),
        )


def caller_id_argument(encoded: str) -> str | None:
    """Caller ID the dialplan passed in base64 (the AGI header cannot carry a line break):
    intact, except that bytes which are not UTF-8 become U+FFFD. None when absent."""
    if not encoded:
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        log.warning("caller ID argument is not base64; the AGI header's is used", value=encoded)
        return None
    return raw.decode("utf-8", errors="replace") or None


class HotlineCall:
    """One citizen's call, from ticket to its end."""

    def __init__(
        self,
        session: AgiSession,
        services: CallServices,
        deployment: DeploymentView,
        line: Line,
        args: CallArgs,
    ) -> None:
        self.session = session
        self.services = services
        self.args = args
        # The snapshot this call started with: a reload mid-call does not change its menus.
        self.deployment = deployment
        self.line = line
        self.ticket_id = ""
        #: The queue the caller is in now, if any.
        self.queued_at: Hop | None = None
        self.recording_stem = call_stem(args.linkedid)
        self.started = services.clock()
        self.caller = args.caller or session.caller_id or "anonymous"
        self.caller_name = args.caller_name or session.caller_name
        #: What a hang-up at this point of the call means; None where the AMI events tell
        #: it better (in a queue: answered by an agent, or abandoned).
        self.hangup_outcome: str | None = "caller_hung_up"
        #: The outcome last written on the ticket by this call.
        self.outcome: str | None = None

    @property
    def linkedid(self) -> str:
        return self.args.linkedid

    async def update(self, **fields: Any) -> None:
        if "outcome" in fields:
            self.outcome = fields["outcome"]
        await self.services.tickets.update_call(self.linkedid, **fields)

    async def run(self) -> None:
        routing = self.deployment.routing
        line = self.line
        started = self.services.clock()
        # Recordings are filed by the city's calendar day, as the menus file messages.
        self.started = started.astimezone(routing.timezone)
        try:
            ensure_day_folder(self.services.home, self.started)
        except OSError as exc:
            # A full or broken recordings disk costs the recording (see start_recording).
            log.error("recordings folder not made", error=str(exc))
        ticket_id = await self.services.tickets.open_call(
            self.linkedid,
            line=line.number,
            caller=self.caller,
            caller_name=self.caller_name,
            channel=self.session.channel,
            sip_call_id=self.args.sip_call_id or None,
            created_at=started,
        )
        # With the database down the ticket is spooled and has no id yet; its recordings
        # are then named after the call.
        self.ticket_id = ticket_id or ""
        self.recording_stem = ticket_id or call_stem(self.linkedid)
        structlog.contextvars.bind_contextvars(ticket=self.ticket_id)
        self.services.notifier.publish(
            "call.started",
            {
                "ticket_id": ticket_id,
                "linkedid": self.linkedid,
                "line": line.number,
                "caller": self.caller,
            },
        )
        ended: dict[str, Any] = {}
        try:
            if self.args.handover == "110":
                await self.take_handover()
            else:
                result = await run_menu(self.deployment.menus, self.session, self.call_start())
                await self.record_menu(result)
                await self.follow(result)
            # The outcome is on the ticket; a hang-up from here on changes nothing.
            self.hangup_outcome = None
            await self.session.set_variable(chanvars.ACTION, "done")
        except CallerHungUp:
            if self.queued_at is not None:
                ended = await self.left_queue(self.queued_at)
            elif self.hangup_outcome:
                ended["outcome"] = self.hangup_outcome
            elif self.services.emergency_started.pop(self.linkedid, None) is not None:
                # Gone while 110 rang: had 110 answered, DialEnd (ivr.call_events) would
                # have taken the entry and written the hand-over.
                ended["outcome"] = "caller_hung_up"
        finally:
            answered = self.linkedid in self.services.answered_calls
            self.services.answered_calls.discard(self.linkedid)
        await self.update(ended_at=self.services.clock(), **ended)
        self.services.tickets.forget_call(self.linkedid)
        if answered:
            self.outcome = "answered"  # written by ivr.call_events on AgentConnect
        if not answered:
            # An agent's call ends with AgentComplete (ivr.call_events); every other call
            # (menus only, a voice message, 110, abandoned in queue) ends here.
            self.services.notifier.publish(
                "call.ended",
                {
                    "linkedid": self.linkedid,
                    "agent": None,
                    "talk_seconds": None,
                    "outcome": self.outcome,
                    "hung_up_by": "caller" if ended else "",
                },
            )

    def call_start(self) -> CallStart:
        return CallStart(
            line=self.line.number,
            caller=self.caller,
            entry=self.line.entry,
            now=self.started,
            preset=line_preset(self.line),
            recording_name=recording_name(self.recording_stem, "message"),
        )

    async def take_handover(self) -> None:
        """A matter the police platform passes on: no menus, routed ahead of the queue,
        unless it is one of 110's own (then it goes straight back)."""
        routing = self.deployment.routing
        code = self.args.handover_code
        to_110 = {item.code for item in routing.emergency.to_110} if routing.emergency else set()
        from_110 = (
            {item.code: item.category for item in routing.emergency.from_110}
            if routing.emergency
            else {}
        )
        await self.update(from_110=True, variables={"handover_code": code})
        if code in to_110:
            log.warning("hand-over of an emergency matter sent back to 110", code=code)
            await self.update(outcome="returned_to_110", emergency=True)
            back = TransferTo(routing.emergency_number, True)
            await self.transfer(back, self.no_menu({}, back))
            return
        category = from_110.get(code) or (code if code in routing.category_codes else None)
        await self.update(category=category)
        # Hand-overs wait less than callers who dialled in themselves.
        await self.session.set_variable("QUEUE_PRIO", "10")
        variables = {"category": category} if category else {}
        route = RouteTo(category, None, priority=1)
        await self.connect_to_person(route, self.no_menu(variables, route))

    def no_menu(self, variables: dict[str, str], outcome: Outcome) -> MenuResult:
        """What a call that skipped the menus tells the router."""
        return MenuResult(path=[], prompts=[], variables=variables, language="zh", outcome=outcome)

    async def record_menu(self, result: MenuResult) -> None:
        variables = dict(result.variables)
        # One write: the path is the call's first (ticket writes are most of its CPU cost).
        await self.update(
            ivr_path=list(result.path),
            category=variables.get("category"),
            language=result.language,
            variables=variables,
        )

    async def follow(self, result: MenuResult) -> None:
        outcome = result.outcome
        if isinstance(outcome, RouteTo):
            await self.connect_to_person(outcome, result)
        elif isinstance(outcome, TransferTo):
            await self.transfer(outcome, result)
        elif isinstance(outcome, VoiceMessage):
            await self.update(
                recording=f"{outcome.recording}.wav",
                callback_requested=True,
                outcome="voice_message",
            )
        elif isinstance(outcome, Goodbye):
            await self.update(outcome=outcome.reason)

    async def connect_to_person(self, route: RouteTo, result: MenuResult) -> None:
        routing = self.deployment.routing
        location = locate(
            routing,
            did=self.args.did or None,
            caller=self.caller,
            ivr_choice=caller_choice(routing, result),
            known_callers=await self.known_caller(),
        )
        request = route_request(
            routing,
            line=self.line,
            outcome=route,
            location=location,
            language=result.language,
            now=self.services.clock(),
        )
        decision = decide(routing, request, self.services.agents)
        located = {"location": location.unit, "location_method": location.method}
        if isinstance(decision, NobodyAvailable):
            log.info("nobody available", reason=decision.reason, tried=decision.tried)
            await self.update(**located)
            await self.leave_message(result)
            return
        recording = await self.start_recording()
        for index, hop in enumerate(decision.hops):
            first = {**located, "recording": recording} if index == 0 else {}
            await self.update(unit=hop.unit, level=hop.level, **first)
            if index == 0:
                status = await self.wait_offering_callback(hop, result)
            else:
                status = await self.wait_in_queue(hop, hop.timeout_seconds)
            if status == CALLBACK_CHOSEN:
                return
            if status not in OVERFLOW_STATUSES:
                log.info("queue left", queue=hop.queue, status=status)
                return
            await self.services.tickets.append_route_hop(
                self.linkedid,
                unit=hop.unit,
                level=hop.level,
                queue=hop.queue,
                outcome=status.lower(),
            )
        await self.leave_message(result)

    async def wait_in_queue(self, hop: Hop, timeout_s: int) -> str:
        """Queue() at ``hop`` for up to ``timeout_s``; its QUEUESTATUS."""
        await self.session.set_variable(chanvars.QUEUESTATUS, "")
        self.queued_at = hop
        await self.session.exec("Queue", hop.queue, QUEUE_OPTIONS, "", "", str(timeout_s))
        status = (await self.session.get_variable(chanvars.QUEUESTATUS)) or ""
        self.queued_at = None
        return status

    async def wait_offering_callback(self, hop: Hop, result: MenuResult) -> str:
        """Wait at ``hop``; past callbacks.offer_after_seconds the caller is offered, once,
        a callback (回拨) instead of waiting on. Waiting on re-enters the queue for the rest
        of its time (app_queue has no pause in place), behind who joined meanwhile."""
        callbacks = self.deployment.settings.callbacks
        offer_after = callbacks.offer_after_seconds if callbacks.enabled else 0
        if not 0 < offer_after < hop.timeout_seconds:
            return await self.wait_in_queue(hop, hop.timeout_seconds)
        status = await self.wait_in_queue(hop, offer_after)
        if status != "TIMEOUT":
            return status
        call = CallStart(
            line=self.args.line,
            caller=self.caller,
            entry=callbacks.offer_entry,
            now=self.services.clock().astimezone(self.deployment.routing.timezone),
            preset=result.variables,
            language=result.language,
        )
        offer = await run_menu(self.deployment.menus, self.session, call)
        await self.services.tickets.append_path(self.linkedid, offer.path)
        if offer.variables.get(CALLBACK_VARIABLE) == CALLBACK_REQUESTED:
            await self.update(callback_requested=True, outcome=CALLBACK_CHOSEN)
            return CALLBACK_CHOSEN
        return await self.wait_in_queue(hop, hop.timeout_seconds - offer_after)

    async def known_caller(self) -> dict[str, str]:
        """Where earlier tickets found this caller (the registry's first source)."""
        where = await self.services.history.caller_location(self.caller)
        return {self.caller: where} if where else {}

    async def left_queue(self, hop: Hop) -> dict[str, Any]:
        """The caller hung up while queued: after talking to an agent (AMI put that on the
        ticket), or before anyone answered: abandoned, and owed a callback."""
        if self.linkedid in self.services.answered_calls:
            return {}
        await self.services.tickets.append_route_hop(
            self.linkedid, unit=hop.unit, level=hop.level, queue=hop.queue, outcome="abandoned"
        )
        self.services.notifier.publish(
            "call.abandoned",
            {
                "linkedid": self.linkedid,
                "queue": hop.queue,
                "unit": hop.unit,
                "position": None,
                "wait_seconds": None,
            },
        )
        return {"outcome": "abandoned", "callback_requested": True}

    async def start_recording(self) -> str | None:
        """Record the conversation (only while bridged to a person) into recordings/; the
        recording's path relative to the home, for the ticket; None when the disk is full."""
        settings = self.deployment.settings.recordings
        space = self.services.recording_space.check(
            self.services.home.recordings_dir, settings.min_free_mb, self.services.clock()
        )
        if not space.room:
            log.error("recordings disk full: this call is not recorded",
                      free_mb=round(space.free_mb, 1), min_free_mb=settings.min_free_mb)
            if space.announce:
                self.services.notifier.publish(
                    "alarm.raised",
                    {
                        "kind": "recordings_disk_full",
                        "message": "录音磁盘已满，通话未录音 (recordings disk full: calls are "
                        "not recorded)",
                        "details": {"free_mb": round(space.free_mb, 1),
                                    "min_free_mb": settings.min_free_mb},
                    },
                )
            await self.update(variables={"recording_skipped": "disk_full"})
            return None
        where = recording_path(self.services.home, self.recording_stem, self.started)
        # The file name is ours (ticket id and date); nothing the caller sent goes into the
        # application's arguments.
        await self.session.exec(
            "MixMonitor", f"{self.services.pbx_home}/{where.relative}{RECORDING_SUFFIX}", "b"
        )
        return f"{where.relative}{RECORDING_SUFFIX}"

    async def leave_message(self, result: MenuResult) -> None:
        """Nobody can take the call: the caller leaves a message and is called back."""
        entry = self.deployment.settings.calls.nobody_available_entry
        call = CallStart(
            line=self.args.line,
            caller=self.caller,
            entry=entry,
            now=self.services.clock().astimezone(self.deployment.routing.timezone),
            preset=result.variables,
            language=result.language,
            recording_name=recording_name(self.recording_stem, "message"),
        )
        message = await run_menu(self.deployment.menus, self.session, call)
        await self.services.tickets.append_path(self.linkedid, message.path)
        outcome = message.outcome
        if isinstance(outcome, VoiceMessage):
            await self.update(
                recording=f"{outcome.recording}.wav",
                callback_requested=True,
                outcome="voice_message",
            )
        else:
            await self.update(callback_requested=True, outcome="nobody_available")

    async def transfer(self, transfer: TransferTo, result: MenuResult) -> None:
        emergency = self.deployment.settings.emergency
        routing = self.deployment.routing
        if transfer.target != routing.emergency_number:
            # No outside line but 110 exists for citizens; a matter for a person then.
            log.warning("transfer target has no line; routing to a person", target=transfer.target)
            await self.connect_to_person(RouteTo(result.variables.get("category"), None), result)
            return
        pressed = self.services.clock()
        self.services.emergency_started[self.linkedid] = pressed
        await self.update(
            emergency=True,
            transferred_to=transfer.target,
            variables={"emergency_key_at": pressed.isoformat()},
        )
        self.services.notifier.publish(
            "call.emergency",
            {"ticket_id": self.ticket_id, "linkedid": self.linkedid, "caller": self.caller},
        )
        for index in range(1 + len(emergency.alternates)):
            endpoint = emergency_endpoint(index)
            # Answered, the hand-over is told by AMI (DialEnd); a hang-up changes nothing.
            self.hangup_outcome = None
            await self.session.exec(
                "Dial",
                f"PJSIP/{transfer.target}@{endpoint}",
                str(emergency.answer_timeout_seconds),
                "",
            )
            self.hangup_outcome = "caller_hung_up"
            status = (await self.session.get_variable("DIALSTATUS")) or ""
            if status == "ANSWER":
                self.outcome = "transferred_110"  # written by ivr.call_events on DialEnd
                return
            log.warning("110 trunk did not answer", trunk=endpoint, status=status)
        self.services.emergency_started.pop(self.linkedid, None)
        # 110 unreachable: an emergency caller must still reach a person, first in line.
        self.services.notifier.publish(
            "alarm.raised",
            {
                "kind": "emergency_unreachable",
                "message": "110 and every alternate failed; caller sent to supervisors",
                "details": {"ticket_id": self.ticket_id, "since": pressed.isoformat()},
            },
        )
        log.error("110 unreachable; caller to supervisors", ticket=self.ticket_id)
        await self.session.set_variable("QUEUE_PRIO", "100")
        await self.update(outcome="emergency_to_supervisors")
        await self.session.exec("Queue", emergency.supervisors_queue, QUEUE_OPTIONS)


def emergency_endpoint(index: int) -> str:
    """PJSIP endpoint name of the 110 trunk (0) or its alternates (1, 2, ...)."""
    return "trunk-110" if index == 0 else f"trunk-110-alt{index}"


async def handle(session: AgiSession, services: CallServices) -> None:
    structlog.contextvars.bind_contextvars(uniqueid=session.uniqueid)
    args = CallArgs.of(session)
    deployment = services.deployments.current
    line = deployment.routing.lines.get(args.line)
    if line is None:
        # Not a line of ours: the dialplan's fallback still puts the caller to a person.
        log.error("call on unknown line", line=args.line)
        return
    call = HotlineCall(session, services, deployment, line, args)
    with services.call_metrics.live_call(line.number, lambda: call.outcome or "unknown"):
        await call.run()
