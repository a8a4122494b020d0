"""The ``followup`` AGI script: the follow-up call (回访) of a resolved ticket.

The controller's dialer placed the call (AMI Originate) and the citizen answered; Asterisk
hands over the ticket id as the only AGI argument. The survey is a menu of dialplans/
(settings ``followup.entry``) run by the same interpreter as the hotline's menus; its
``rate`` verb leaves the answer in the call's ``rating`` variable, written on the ticket
here: satisfied answers close the follow-up, a dissatisfied one reopens the ticket at its
unit with a fresh deadline, with the citizen's spoken reason (if any) noted. The change is
announced on MQTT from the audit trail (ivr.ticket_feed), like every ticket change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from ivr.agi import AgiSession
from ivr.home import Home
from ivr.menu import CallStart, VoiceMessage, run_menu
from ivr.menu.verbs.rate import RATING_VARIABLE
from ivr.recordings import ensure_day_folder, recording_name
from ivr.services import DeploymentSource
from ivr.tickets import Status, TicketError, TicketStore, UnknownTicket

log = structlog.get_logger(__name__)

ACTOR = "followup-call"


@dataclass
class FollowupServices:
    home: Home
    store: TicketStore
    deployments: DeploymentSource
    clock: Callable[[], datetime]


async def handle(session: AgiSession, services: FollowupServices) -> None:
    ticket_ref = session.args[0] if session.args else ""
    structlog.contextvars.bind_contextvars(uniqueid=session.uniqueid, ticket=ticket_ref)
    try:
        ticket = await services.store.get(ticket_ref)
    except (UnknownTicket, TicketError):
        log.error("follow-up call for an unknown ticket", ticket=ticket_ref)
        return
    if Status(ticket.status) is not Status.RESOLVED:
        # Rated meanwhile (by an agent on the phone, or an earlier call): nothing to ask.
        log.info("follow-up call for a ticket no longer resolved", status=ticket.status)
        return
    deployment = services.deployments.current
    now = services.clock().astimezone(deployment.routing.timezone)
    ensure_day_folder(services.home, now)  # where a spoken reason is recorded
    call = CallStart(
        line=deployment.settings.outbound.caller_id,
        caller=ticket.caller or "",
        entry=deployment.settings.followup.entry,
        now=now,
        language=ticket.language or "zh",
        recording_name=recording_name(ticket.id, "followup"),
    )
    result = await run_menu(deployment.menus, session, call)
    rating = result.variables.get(RATING_VARIABLE)
    comment = result.outcome.recording if isinstance(result.outcome, VoiceMessage) else None
    if rating is None:
        await services.store.note(
            ticket.id,
            f"follow-up call: no rating given ({' > '.join(result.path)})",
            actor=ACTOR,
            now=services.clock(),
        )
        log.info("follow-up call ended without a rating", path=result.path)
        return
    note = f"the citizen's reason: {comment}.wav" if comment else None
    try:
        moved = await services.store.follow_up(
            ticket.id, rating, actor=ACTOR, note=note, now=services.clock()
        )
    except TicketError as exc:
        # Changed while the citizen was answering (an agent rated it, say): theirs stands.
        log.warning("follow-up rating not written", rating=rating, reason=str(exc))
        return
    log.info("follow-up rated", rating=rating, status=moved.status)
