"""Issue 9 (1, 2) on the real stack: the hotline calls citizens back.

- A resolved ticket gets a follow-up call (AMI Originate over the citizens trunk to a SIPp
  phone); the citizen's key rates it; dissatisfied reopens the ticket at its unit.
- A caller who gave up waiting in a queue is called back: an agent of the unit first, then
  the citizen.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hotline_stack import HotlineStack

from ivr.ports import free_port
from ivr.settings import database_url
from ivr.sipp.peers import CitizenPhone, PhoneProcess
from ivr.tickets import AuditEntry, Ticket, TicketStore

CONTROLLER_ERROR = re.compile(r"\[error|\[critical|\"level\": \"(error|critical)\"|Traceback")


def outbound_settings(trunk_port: int) -> dict[str, Any]:
    """Calls looked for every second and retried after a few; the citizens trunk is a SIPp
    phone on ``trunk_port``."""
    return {
        "outbound": {"trunk": {"host": "127.0.0.1", "port": trunk_port}, "poll_seconds": 1},
        "followup": {"enabled": True, "retry_seconds": 5},
        "callbacks": {"enabled": True, "retry_seconds": 3, "agent_ring_seconds": 8},
    }


async def citizen_phone(stack: HotlineStack, port: int, keys: str, **options: Any) -> CitizenPhone:
    phone = CitizenPhone(
        user="citizens", keys=keys, local_port=port, fixed_port=True,
        work_dir=stack.home.var_dir / "phones", **options,
    )
    await phone.start()
    stack.phones.phones.append(phone)  # stopped with the stack
    return phone


async def wait_for_ticket(
    stack: HotlineStack, ticket_id: str, done: Callable[[Ticket], bool], timeout: float = 90.0
) -> tuple[Ticket, list[AuditEntry]]:
    async with TicketStore(database_url(stack.home)) as store:
        deadline = time.monotonic() + timeout
        while True:
            ticket = await store.get(ticket_id)
            if done(ticket):
                return ticket, await store.history(ticket_id)
            if time.monotonic() > deadline:
                history = [(e.action, e.note) for e in await store.history(ticket_id)]
                raise AssertionError(f"{ticket_id} stuck: {history}\n{stack.controller_log()}")
            await asyncio.sleep(0.5)


async def resolve(stack: HotlineStack, ticket_id: str) -> None:
    async with TicketStore(database_url(stack.home)) as store:
        await store.resolve(ticket_id, actor="unit-officer", note="pothole filled")


def calls_received(phone: PhoneProcess) -> list[str]:
    """The INVITEs of distinct calls: a retransmitted INVITE (a loaded machine answers late)
    is the same call."""
    by_call_id: dict[str, str] = {}
    for invite in phone.received_invites():
        call_id = re.search(r"^Call-ID:\s*(\S+)", invite, re.MULTILINE | re.IGNORECASE)
        by_call_id.setdefault(call_id.group(1) if call_id else invite, invite)
    return list(by_call_id.values())


def traced(phone: PhoneProcess) -> list[tuple[datetime, str]]:
    """Every message SIPp traced (sent or received), with its time, in order."""
    messages = []
    for block in re.split(r"^-{20,} ", phone.message_file.read_text(errors="replace"),
                          flags=re.MULTILINE)[1:]:
        stamp, _direction, text = block.split("\n", 2)
        messages.append((datetime.fromisoformat(stamp.strip()), text.strip()))
    return messages


def answered_invites(phone: PhoneProcess) -> list[datetime]:
    """When the phone answered each call: its first 200 OK to each call's INVITE."""
    answered: dict[str, datetime] = {}
    for at, text in traced(phone):
        if text.startswith("SIP/2.0 200 OK") and re.search(r"^CSeq: \d+ INVITE", text, re.M):
            call_id = re.search(r"^Call-ID:\s*(\S+)", text, re.M | re.I)
            answered.setdefault(call_id.group(1) if call_id else text, at)
    return sorted(answered.values())


async def test_a_resolved_ticket_is_followed_up_and_dissatisfied_reopens_it(
    hotline_factory: Any,
) -> None:
    trunk = free_port(socket.SOCK_DGRAM)
    stack: HotlineStack = await hotline_factory(settings=outbound_settings(trunk))
    # Two matters, each answered by an agent: a known caller of community c-east-1-1 and a
    # question from the east district.
    unhappy, happy = await asyncio.gather(
        stack.call("12345", "13800000001", keys="11"),
        stack.call("12345", "13900000901", keys="11"),
    )
    assert unhappy["outcome"] == happy["outcome"] == "answered"

    # The unhappy citizen rates 3 (dissatisfied) and says why.
    # The reason is spoken after the prompt asking for it (the "--" lets it play).
    phone = await citizen_phone(stack, trunk, keys="3--~~", talk_ms=4000)
    await resolve(stack, unhappy["id"])
    reopened, history = await wait_for_ticket(stack, unhappy["id"], lambda t: t.rating is not None)

    assert reopened.status == "reopened" and reopened.rating == "dissatisfied"
    assert reopened.unit == "c-east-1-1" and reopened.deadline is not None
    assert reopened.followup_attempts == 1
    actions = [entry.action for entry in history]
    assert actions[-3:] == ["resolve", "followup_call", "follow_up"], actions
    reason = re.search(r"recordings/\S+-followup\.wav", history[-1].note or "")
    assert reason, history[-1].note
    assert (stack.home.root / reason.group(0)).stat().st_size > 8000
    [invite] = calls_received(phone)
    assert invite.startswith("INVITE sip:13800000001@")
    assert '"12345" <sip:12345@' in invite  # the citizen sees the hotline calling

    # The happy one presses 1: followed up, satisfied, nothing reopened.
    await phone.stop()
    await citizen_phone(stack, trunk, keys="1")
    await resolve(stack, happy["id"])
    followed, _ = await wait_for_ticket(stack, happy["id"], lambda t: t.rating is not None)
    assert followed.status == "followed_up" and followed.rating == "satisfied"
    assert not CONTROLLER_ERROR.search(stack.controller_log()), stack.controller_log()


async def test_an_abandoned_caller_is_called_back_agent_first(hotline_factory: Any) -> None:
    trunk = free_port(socket.SOCK_DGRAM)
    # Agents talk 20 s: the east district's only agent (1009) is busy with a first caller
    # while a second one waits in its queue (no phone rings for them) and gives up.
    stack: HotlineStack = await hotline_factory(settings=outbound_settings(trunk), talk_ms=20_000)
    citizen = await citizen_phone(stack, trunk, keys="", talk_ms=15_000)
    busy = asyncio.create_task(stack.call("12345", "13900000701", keys="11"))
    agent = phone_of(stack, "1009")
    while not agent.received_invites():  # noqa: ASYNC110 - a file SIPp writes
        await asyncio.sleep(0.2)
    gave_up = await stack.call("12345", "13900000702", keys="11", wait_timeout_seconds=6)
    assert gave_up["outcome"] == "abandoned" and gave_up["callback_requested"] is True
    assert gave_up["unit"] == "d-east" and gave_up["answered_at"] is None
    first = await busy
    assert first["agent"] == "1009"

    # Once 1009 is free again the controller rings 1009 first, then the citizen.
    done, history = await wait_for_ticket(
        stack, gave_up["id"], lambda t: t.callback_done_at is not None
    )
    assert done.callback_attempts == 1
    assert [e.action for e in history][-2:] == ["callback_call", "callback_done"]
    assert history[-1].note == "attempt 1: 1009 connected to the citizen 13900000702"
    [citizen_invite] = calls_received(citizen)
    assert citizen_invite.startswith("INVITE sip:13900000702@")
    assert '"12345" <sip:12345@' in citizen_invite  # the citizen sees the hotline calling
    first_answered, callback_answered = answered_invites(agent)
    citizen_called = next(at for at, text in traced(citizen) if text.startswith("INVITE sip:"))
    assert first_answered < callback_answered < citizen_called
    # Done once: no further callback is placed.
    await asyncio.sleep(3)
    assert len(calls_received(citizen)) == 1
    assert not CONTROLLER_ERROR.search(stack.controller_log()), stack.controller_log()


def phone_of(stack: HotlineStack, user: str) -> PhoneProcess:
    [phone] = [p for p in stack.phones.phones if p.user == user]
    return phone


async def test_a_caller_waiting_too_long_chooses_a_callback(hotline_factory: Any) -> None:
    trunk = free_port(socket.SOCK_DGRAM)
    settings = outbound_settings(trunk)
    settings["callbacks"]["offer_after_seconds"] = 5
    stack: HotlineStack = await hotline_factory(settings=settings, talk_ms=20_000)
    citizen = await citizen_phone(stack, trunk, keys="", talk_ms=15_000)
    # 1009, the east district's only agent, is busy: the second caller waits, hears the
    # offer after 5 s and presses 1. app_queue notices its timeout only between its retry
    # cycles, so the offer comes 5-10 s into the wait: the caller presses 1 every 3 s
    # (keys pressed in the queue itself do nothing).
    busy = asyncio.create_task(stack.call("12345", "13900000711", keys="11"))
    agent = phone_of(stack, "1009")
    while not agent.received_invites():  # noqa: ASYNC110 - a file SIPp writes
        await asyncio.sleep(0.2)
    chose = await stack.call("12345", "13900000712", keys="11-111111", key_gap_ms=3000,
                             no_input_ms=5000, wait_timeout_seconds=30)
    assert chose["outcome"] == "callback_chosen" and chose["callback_requested"] is True
    assert chose["ivr_path"][-3:] == ["callback_offer", "callback_chosen", "callback_promised"]
    assert chose["unit"] == "d-east" and chose["answered_at"] is None
    await busy

    _, history = await wait_for_ticket(
        stack, chose["id"], lambda t: t.callback_done_at is not None
    )
    assert history[-1].note == "attempt 1: 1009 connected to the citizen 13900000712"
    assert [invite.split()[1] for invite in calls_received(citizen)] == [
        f"sip:13900000712@127.0.0.1:{trunk}"
    ]
    assert not CONTROLLER_ERROR.search(stack.controller_log()), stack.controller_log()
