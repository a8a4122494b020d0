"""Live state of every queue member, followed from AMI, answering the router's question
"how many agents could take a call in this queue now?" (ivr.routing.AgentAvailability).

Pure state: the controller feeds it AMI events and QueueStatus replies; tests feed it dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Asterisk device states in which a member can be offered a call now or after the call it
#: is on (NOT_INUSE, INUSE, BUSY, RINGING, RINGINUSE, ONHOLD). UNKNOWN, INVALID and
#: UNAVAILABLE (phone not registered) mean nobody is there.
PRESENT_STATES = frozenset({1, 2, 3, 6, 7, 8})
#: NOT_INUSE: registered and on no call.
IDLE_STATE = 1
#: Pause reason the ``ivr agents logout`` command uses: members are static in queues.conf so
#: the PBX can route on its own; logging out is a pause that routing treats as absence.
LOGGED_OUT_REASON = "logged-out"


@dataclass(frozen=True)
class MemberState:
    queue: str
    interface: str
    status: int
    paused: bool
    paused_reason: str = ""
    #: When the member's last call ended (epoch seconds, Asterisk's clock; 0 = never).
    last_call: int = 0

    @property
    def present(self) -> bool:
        return not self.paused and self.status in PRESENT_STATES

    @property
    def agent_id(self) -> str:
        return agent_id_of(self.interface)


_INTERFACE = re.compile(r"^(?:[^/]+/)?(?P<endpoint>.+?)(?:-[0-9a-f]{8})?$")


def agent_id_of(interface: str) -> str:
    """``PJSIP/1001`` (or its channel ``PJSIP/1001-0000002a``) -> ``1001``."""
    match = _INTERFACE.match(interface)
    return match.group("endpoint") if match else interface


def _as_int(value: object, default: int = 0) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


class AgentBoard:
    def __init__(self) -> None:
        self._members: dict[tuple[str, str], MemberState] = {}

    def available(self, queue: str) -> int:
        return sum(1 for (q, _), m in self._members.items() if q == queue and m.present)

    def idle(self, queue: str, now: float | None = None, wrapup_s: int = 0) -> int:
        """Agents of ``queue`` free to take a call this moment: present, on no call and, at
        ``now`` (epoch seconds), past the queue's wrap-up time after their last call, in
        which app_queue would not ring them."""
        return sum(
            1
            for (q, _), m in self._members.items()
            if q == queue
            and not m.paused
            and m.status == IDLE_STATE
            and (now is None or now - m.last_call >= wrapup_s)
        )

    def members(self) -> list[MemberState]:
        return sorted(self._members.values(), key=lambda m: (m.queue, m.interface))

    def replace_all(self, states: Iterable[MemberState]) -> None:
        """Start again from a full QueueStatus (after connecting or reconnecting)."""
        self._members = {(s.queue, s.interface): s for s in states}

    def apply(self, event: Mapping[str, str]) -> None:
        """Apply one AMI event (header names lower-cased) about a queue member."""
        name = event.get("event", "")
        queue = event.get("queue", "")
        interface = event.get("interface") or event.get("location") or ""
        if not queue or not interface:
            return
        key = (queue, interface)
        if name == "QueueMemberRemoved":
            self._members.pop(key, None)
            return
        if name not in {"QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMember"}:
            return
        previous = self._members.get(key)
        status = _as_int(event.get("status"), previous.status if previous else 0)
        paused_text = event.get("paused")
        paused = (
            paused_text == "1" if paused_text is not None else bool(previous and previous.paused)
        )
        reason = event.get("pausedreason", previous.paused_reason if previous else "")
        last_call = _as_int(event.get("lastcall"), previous.last_call if previous else 0)
        self._members[key] = MemberState(
            queue, interface, status, paused, reason if paused else "", last_call
        )
