"""Who is attacking the PBX: security failures counted per source address over a window.

Asterisk reports every failed authentication, refused request and sent challenge as an AMI
security event (class ``security``) naming the peer's address. A scanner or a password
cracker produces many of them from one address within seconds; a real phone produces a
challenge per registration or call and, at worst, a few failures after a mistyped password.
:class:`SecurityGuard` tells the two apart and says when an address is to be banned. It only
decides: the ban itself (a kernel rule) is ivr.firewall's, wired by the controller.

PJSIP's own ``unidentified_request_*`` limits never fire on this platform: the ``anonymous``
endpoint identifies every peer (citizens must reach the hotline unauthenticated), so no
request is "unidentified". Hence the counting here.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ivr.settings import SecuritySettings

#: Events that only an attacker or a misconfigured phone causes: wrong passwords, unknown
#: accounts, requests refused by an ACL (a REGISTER for an account that is no agent), etc.
FAILURE_EVENTS: frozenset[str] = frozenset(
    {
        "InvalidAccountID",
        "InvalidPassword",
        "ChallengeResponseFailed",
        "FailedACL",
        "RequestBadFormat",
        "RequestNotAllowed",
        "AuthMethodNotAllowed",
        "UnexpectedAddress",
    }
)
#: A digest challenge sent: normal once per registration or call, so counted apart with a
#: higher limit; an extension scanner (svwar) shows up only as a burst of these.
CHALLENGE_EVENT = "ChallengeSent"
SECURITY_EVENTS: frozenset[str] = FAILURE_EVENTS | {CHALLENGE_EVENT}


@dataclass(frozen=True)
class Ban:
    address: str
    seconds: int
    #: The event kind whose count went over its limit, and that count.
    reason: str
    count: int


def source_address(remote: str) -> str | None:
    """The IP of an AMI security event's RemoteAddress (``IPV4/UDP/127.0.0.3/47005``),
    or None when it is not one: a malformed event bans nobody."""
    parts = remote.split("/")
    if len(parts) < 4 or parts[0].upper() not in ("IPV4", "IPV6"):
        return None
    # An IPv6 address holds no "/", but be lenient about what sits between kind and port.
    text = "/".join(parts[2:-1])
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


class SecurityGuard:
    """Counts failures and challenges per source over a sliding window; decides bans."""

    #: Sources followed at once; beyond it the longest-quiet one is forgotten, so a flood
    #: of forged addresses cannot grow memory without bound.
    max_sources = 10_000

    def __init__(self, settings: SecuritySettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._banned_until: dict[str, float] = {}

    def is_exempt(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.settings.never_ban if net.version == ip.version)

    def record(self, event: str, remote_address: str) -> Ban | None:
        """Take one AMI security event; a :class:`Ban` when its source must be banned now."""
        if event not in SECURITY_EVENTS or not self.settings.enabled:
            return None
        address = source_address(remote_address)
        if address is None or self.is_exempt(address):
            return None
        now = self.clock()
        self._expire_bans(now)
        if address in self._banned_until:
            return None  # already banned: packets still in flight when the rule went in
        kind = CHALLENGE_EVENT if event == CHALLENGE_EVENT else "failure"
        limit = (
            self.settings.max_challenges if kind == CHALLENGE_EVENT else self.settings.max_failures
        )
        times = self._times(address, kind)
        times.append(now)
        while times and times[0] <= now - self.settings.window_seconds:
            times.popleft()
        if len(times) < limit:
            return None
        count = len(times)
        self._forget(address)
        self._banned_until[address] = now + self.settings.ban_seconds
        return Ban(address, self.settings.ban_seconds, event, count)

    def _times(self, address: str, kind: str) -> deque[float]:
        key = (address, kind)
        times = self._seen.pop(key, None)
        if times is None:
            times = deque()
            if len(self._seen) >= self.max_sources:
                del self._seen[next(iter(self._seen))]
        # Re-inserted last: dict order is then least recently heard from first.
        self._seen[key] = times
        return times

    def _expire_bans(self, now: float) -> None:
        for address in [a for a, until in self._banned_until.items() if until <= now]:
            del self._banned_until[address]

    def _forget(self, address: str) -> None:
        for kind in ("failure", CHALLENGE_EVENT):
            self._seen.pop((address, kind), None)
