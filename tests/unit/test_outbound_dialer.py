"""The dialer's I/O edge against a fake AMI and a real SQLite ticket store: every attempt
counted before its Originate, one Originate per attempt, results from AMI events on the
ticket, and nothing dialled twice while a call is under way or after a lost reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.agent_board import AgentBoard
from ivr.ami import AmiConnectionLost, AmiMessage
from ivr.call_events import CallEventRecorder
from ivr.events import RecordingPublisher
from ivr.home import Home
from ivr.outbound.dialer import OutboundDialer
from ivr.routing import RoutingTables, load_routing
from ivr.services import CallServices
from ivr.settings import Settings
from ivr.tickets import TicketStore

REPO = Path(__file__).resolve().parents[2]
#: 10:00 in the sample city: calling hours.
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SETTINGS = Settings.model_validate(
    {"followup": {"retry_seconds": 600}, "callbacks": {"retry_seconds": 600}}
)


@dataclass
class FakeAmi:
    connected: bool = True
    fail_with: Exception | None = None
    originated: list[dict[str, Any]] = field(default_factory=list)

    def on_event(self, _pattern: str, _callback: Any) -> None:
        pass

    async def originate(self, channel: str, **fields: Any) -> str:
        self.originated.append({"channel": channel, **fields})
        if self.fail_with is not None:
            raise self.fail_with
        return str(fields["action_id"])


@dataclass
class FakeDeployment:
    settings: Settings
    routing: RoutingTables


@dataclass
class FakeDeployments:
    current: FakeDeployment


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def event(**headers: str) -> AmiMessage:
    return AmiMessage({name.lower(): (value,) for name, value in headers.items()})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TicketStore]:
    async with TicketStore(f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}") as opened:
        yield opened


@pytest.fixture
def board() -> AgentBoard:
    return AgentBoard()


@pytest.fixture
def dialer(store: TicketStore, board: AgentBoard) -> OutboundDialer:
    deployments = FakeDeployments(FakeDeployment(SETTINGS, load_routing(Home(REPO))))
    return OutboundDialer(store, FakeAmi(), board, deployments, Clock())  # type: ignore[arg-type]


def fake_ami(dialer: OutboundDialer) -> FakeAmi:
    ami = dialer.ami
    assert isinstance(ami, FakeAmi)
    return ami


async def resolved_ticket(store: TicketStore, linkedid: str = "call-1") -> str:
    ticket_id = await store.open_call(linkedid, line="12345", caller="13800000001",
                                      unit="c-east-1-1", created_at=START - timedelta(days=2))
    await store.resolve(ticket_id, actor="unit")
    return ticket_id


async def test_a_follow_up_is_counted_then_originated_once(
    dialer: OutboundDialer, store: TicketStore
) -> None:
    ticket_id = await resolved_ticket(store)

    await dialer.tick()
    await dialer.tick()  # still under way: not again

    [sent] = fake_ami(dialer).originated
    assert sent["channel"] == "PJSIP/13800000001@citizens"
    assert (sent["context"], sent["exten"]) == ("followup-call", "s")
    assert sent["variables"] == {"IVR_TICKET": ticket_id}
    assert sent["caller_id"] == '"12345" <12345>'
    assert sent["channel_id"].startswith("ivr-followup-")
    ticket = await store.get(ticket_id)
    assert ticket.followup_attempts == 1 and ticket.followup_last_at == START


async def test_an_unanswered_follow_up_is_noted_and_retried_after_the_interval(
    dialer: OutboundDialer, store: TicketStore
) -> None:
    ticket_id = await resolved_ticket(store)
    await dialer.tick()
    [sent] = fake_ami(dialer).originated

    await dialer.on_event(event(Event="OriginateResponse", ActionID=sent["action_id"],
                                Response="Failure", Reason="3"))
    notes = [e.note for e in await store.history(ticket_id)]
    assert notes[-1] == "followup call, attempt 1: the citizen did not answer (no answer)"

    await dialer.tick()
    assert len(fake_ami(dialer).originated) == 1  # the retry waits its interval
    clock = dialer.clock
    assert isinstance(clock, Clock)
    clock.now += timedelta(seconds=600)
    await dialer.tick()
    assert len(fake_ami(dialer).originated) == 2
    assert (await store.get(ticket_id)).followup_attempts == 2


async def test_a_lost_originate_reply_costs_the_attempt_and_is_never_resent(
    dialer: OutboundDialer, store: TicketStore
) -> None:
    ticket_id = await resolved_ticket(store)
    fake_ami(dialer).fail_with = AmiConnectionLost("connection lost")

    await dialer.tick()
    await dialer.tick()

    assert len(fake_ami(dialer).originated) == 1
    ticket = await store.get(ticket_id)
    assert ticket.followup_attempts == 1
    history = await store.history(ticket_id)
    assert history[-1].note == "followup call, attempt 1: not placed: connection lost"


async def test_nothing_is_dialled_while_ami_is_down(
    dialer: OutboundDialer, store: TicketStore
) -> None:
    await resolved_ticket(store)
    fake_ami(dialer).connected = False
    assert await dialer.tick() == []
    assert fake_ami(dialer).originated == []


async def test_a_callback_rings_an_idle_agent_first_and_is_done_when_the_citizen_answers(
    dialer: OutboundDialer, store: TicketStore, board: AgentBoard
) -> None:
    ticket_id = await store.open_call("call-2", line="12345", caller="13800000001",
                                      unit="c-east-1-1", callback_requested=True,
                                      outcome="abandoned", ended_at=START)
    await dialer.tick()
    assert fake_ami(dialer).originated == []  # nobody free in the unit

    board.apply({"event": "QueueMemberStatus", "queue": "q-c-east-1-1-zh",
                 "interface": "PJSIP/1013", "status": "1", "paused": "0"})
    await dialer.tick()
    [sent] = fake_ami(dialer).originated
    assert sent["channel"] == "Local/q-c-east-1-1-zh@callback-agent"
    assert (sent["context"], sent["exten"]) == ("callback-citizen", "13800000001")

    linkedid = sent["channel_id"]
    await dialer.on_event(event(Event="OriginateResponse", ActionID=sent["action_id"],
                                Response="Success", Reason="4"))
    await dialer.on_event(event(Event="AgentConnect", Linkedid=linkedid, Interface="PJSIP/1013"))
    await dialer.on_event(event(Event="DialEnd", Linkedid=linkedid,
                                DestChannel="PJSIP/citizens-00000007", DialStatus="ANSWER"))

    ticket = await store.get(ticket_id)
    assert ticket.callback_done_at == START and ticket.callback_attempts == 1
    last = (await store.history(ticket_id))[-1]
    assert (last.action, last.note) == (
        "callback_done", "attempt 1: 1013 connected to the citizen 13800000001"
    )
    await dialer.on_event(event(Event="Hangup", Linkedid=linkedid, Uniqueid=linkedid))
    await dialer.tick()
    assert len(fake_ami(dialer).originated) == 1


async def test_a_malformed_event_is_ignored(dialer: OutboundDialer) -> None:
    await dialer.on_event(event(Event="OriginateResponse"))
    await dialer.on_event(event(Event="DialEnd", Linkedid="nobody"))


async def test_a_callback_is_settled_when_the_citizen_got_through_on_a_later_call(
    dialer: OutboundDialer, store: TicketStore, board: AgentBoard
) -> None:
    missed = await store.open_call("call-3", line="12345", caller="13800000001",
                                   unit="c-east-1-1", callback_requested=True,
                                   outcome="abandoned", ended_at=START - timedelta(minutes=9),
                                   created_at=START - timedelta(minutes=10))
    await store.open_call("call-4", line="12345", caller="13800000001", unit="c-east-1-1",
                          answered_at=START - timedelta(minutes=5), outcome="answered",
                          created_at=START - timedelta(minutes=6))
    board.apply({"event": "QueueMemberStatus", "queue": "q-c-east-1-1-zh",
                 "interface": "PJSIP/1013", "status": "1", "paused": "0"})

    assert await dialer.tick() == []

    assert fake_ami(dialer).originated == []
    ticket = await store.get(missed)
    assert ticket.callback_done_at == START and ticket.callback_attempts == 0
    last = (await store.history(missed))[-1]
    assert last.note == "not needed: the citizen reached an agent on a later call"


def test_an_agent_in_wrap_up_is_not_free_for_a_callback(board: AgentBoard) -> None:
    board.apply({"event": "QueueMemberStatus", "queue": "q-d-east-zh",
                 "interface": "PJSIP/1009", "status": "1", "paused": "0", "lastcall": "1000"})
    assert board.idle("q-d-east-zh", now=1005, wrapup_s=10) == 0
    assert board.idle("q-d-east-zh", now=1010, wrapup_s=10) == 1
    # A later event without LastCall keeps what was known.
    board.apply({"event": "QueueMemberStatus", "queue": "q-d-east-zh",
                 "interface": "PJSIP/1009", "status": "1"})
    assert board.idle("q-d-east-zh", now=1005, wrapup_s=10) == 0


async def test_a_callback_rings_the_agent_with_the_ticket_on_screen(
    dialer: OutboundDialer, store: TicketStore, board: AgentBoard, tmp_path: Path
) -> None:
    ticket_id = await store.open_call("call-5", line="12345", caller="13800000001",
                                      unit="c-east-1-1", callback_requested=True,
                                      outcome="abandoned", ended_at=START)
    board.apply({"event": "QueueMemberStatus", "queue": "q-c-east-1-1-zh",
                 "interface": "PJSIP/1013", "status": "1", "paused": "0"})
    await dialer.tick()
    [sent] = fake_ami(dialer).originated
    events = RecordingPublisher()
    services = CallServices(
        home=Home(tmp_path), deployments=dialer.deployments, tickets=store,  # type: ignore[arg-type]
        history=store, agents=board, pbx_home=str(tmp_path), notifier=events,
        outbound_calls=dialer.outbound_calls,
    )
    recorder = CallEventRecorder(services)
    linkedid = sent["channel_id"]
    await recorder.on_event({"event": "AgentCalled", "linkedid": linkedid,
                             "queue": "q-c-east-1-1-zh", "interface": "PJSIP/1013",
                             "calleridnum": "13800000001"})
    # The agent's answer is the dialer's to follow, not a call of its own.
    await recorder.on_event({"event": "AgentConnect", "linkedid": linkedid,
                             "queue": "q-c-east-1-1-zh", "interface": "PJSIP/1013"})

    [ringing] = events.events
    assert ringing.event == "call.ringing"
    assert ringing.data["ticket_id"] == ticket_id and ringing.data["agent"] == "1013"
    history = ringing.data["history"]
    assert isinstance(history, list) and [t["ticket_id"] for t in history] == [ticket_id]
    assert (await store.get(ticket_id)).agent is None


async def test_switched_off_the_dialer_reads_no_tickets(
    store: TicketStore, board: AgentBoard
) -> None:
    off = Settings.model_validate({"followup": {"enabled": False}, "callbacks": {"enabled": False}})
    deployments = FakeDeployments(FakeDeployment(off, load_routing(Home(REPO))))
    dialer = OutboundDialer(store, FakeAmi(), board, deployments, Clock())  # type: ignore[arg-type]
    await resolved_ticket(store)
    await store.close()  # a read would now fail
    assert await dialer.tick() == []
