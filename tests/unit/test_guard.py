"""The security guard's counting (pure, with a fake clock) and what it asks of Asterisk."""

from __future__ import annotations

from ivr.deployment import load_deployment
from ivr.firewall import NftFirewall
from ivr.guard import CHALLENGE_EVENT, SECURITY_EVENTS, Ban, SecurityGuard, source_address
from ivr.home import ENGINE_ROOT, Home
from ivr.pbx.plan import build_plan
from ivr.pbx.render import render_files
from ivr.secrets import SecretStore
from ivr.settings import SecuritySettings

SCANNER = "IPV4/UDP/203.0.113.7/5060"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(**settings: object) -> tuple[SecurityGuard, FakeClock]:
    clock = FakeClock()
    return SecurityGuard(SecuritySettings.model_validate(settings), clock), clock


def test_source_address_reads_asterisk_remote_addresses() -> None:
    assert source_address("IPV4/UDP/127.0.0.3/47005") == "127.0.0.3"
    assert source_address("IPV6/UDP/2001:db8::1/5060") == "2001:db8::1"
    assert source_address("IPV6/TCP/[::1]/5038") == "::1"
    for bad in ("", "garbage", "IPV4/UDP/not-an-ip/5060", "UNIX/x/y/z", "IPV4/UDP/1.2.3.4"):
        assert source_address(bad) is None


def test_the_fifth_failure_in_the_window_bans_the_source() -> None:
    g, clock = guard(max_failures=5, window_seconds=60, ban_seconds=600)
    for _ in range(4):
        assert g.record("ChallengeResponseFailed", SCANNER) is None
        clock.now += 1
    ban = g.record("InvalidPassword", SCANNER)
    assert ban == Ban("203.0.113.7", 600, "InvalidPassword", 5)
    # Banned already: the packets still in flight do not ban it again.
    assert g.record("InvalidPassword", SCANNER) is None


def test_failures_spread_beyond_the_window_ban_nobody() -> None:
    g, clock = guard(max_failures=3, window_seconds=10)
    for _ in range(20):
        assert g.record("FailedACL", SCANNER) is None
        clock.now += 6  # a person retrying now and then


def test_each_source_is_counted_on_its_own() -> None:
    g, _ = guard(max_failures=3)
    assert g.record("FailedACL", "IPV4/UDP/198.51.100.1/5060") is None
    assert g.record("FailedACL", "IPV4/UDP/198.51.100.2/5060") is None
    assert g.record("FailedACL", "IPV4/UDP/198.51.100.1/5060") is None
    assert g.record("FailedACL", "IPV4/UDP/198.51.100.2/5060") is None
    ban = g.record("FailedACL", "IPV4/UDP/198.51.100.2/5060")
    assert ban is not None and ban.address == "198.51.100.2"


def test_challenges_have_their_own_higher_limit() -> None:
    g, _ = guard(max_failures=2, max_challenges=10)
    for _ in range(9):  # a busy phone: a challenge per call, all answered
        assert g.record(CHALLENGE_EVENT, SCANNER) is None
    ban = g.record(CHALLENGE_EVENT, SCANNER)  # an extension scanner
    assert ban is not None and ban.reason == CHALLENGE_EVENT


def test_a_ban_runs_out_and_counting_starts_again() -> None:
    g, clock = guard(max_failures=2, ban_seconds=30)
    g.record("FailedACL", SCANNER)
    assert g.record("FailedACL", SCANNER) is not None
    clock.now += 31
    assert g.record("FailedACL", SCANNER) is None
    assert g.record("FailedACL", SCANNER) is not None


def test_exempt_sources_unknown_events_and_malformed_ones_ban_nobody() -> None:
    g, _ = guard(max_failures=1, never_ban=["127.0.0.0/8", "::1"])
    assert g.record("FailedACL", "IPV4/UDP/127.0.0.1/5060") is None
    assert g.record("FailedACL", "IPV6/UDP/::1/5060") is None
    assert g.record("SuccessfulAuth", SCANNER) is None
    assert g.record("FailedACL", "IPV4/UDP/999.1.1.1/5060") is None
    assert g.record("FailedACL", "") is None
    off, _ = guard(enabled=False, max_failures=1)
    assert off.record("FailedACL", SCANNER) is None


def test_memory_is_bounded_under_a_flood_of_addresses() -> None:
    g, _ = guard(max_failures=5)
    g.max_sources = 100
    for n in range(1000):
        g.record("FailedACL", f"IPV4/UDP/10.0.{n // 256}.{n % 256}/5060")
    assert len(g._seen) <= 100


def test_the_controller_receives_every_security_event_it_counts() -> None:
    """The AMI user reads the security class and its eventfilter lets the events through:
    without them the guard never hears of an attack."""
    home = Home(ENGINE_ROOT)
    deployment = load_deployment(home, check_prompt_files=False)

    class NoSecrets(SecretStore):
        def get(self, name: str) -> str:
            return "x" * 32

    plan = build_plan(deployment.settings, deployment.routing, NoSecrets(home.secrets_file), "/h")
    manager = render_files(plan)["manager.conf"]
    read = next(line for line in manager.splitlines() if line.startswith("read ="))
    assert "security" in read.split("=", 1)[1].replace(" ", "").split(",")
    event_filter = next(line for line in manager.splitlines() if line.startswith("eventfilter"))
    for event in SECURITY_EVENTS:
        assert f"|{event}|" in event_filter or f"|{event})" in event_filter


def test_the_firewall_drops_only_the_banned_sources_on_the_sip_port() -> None:
    ruleset = NftFirewall(5071).ruleset()
    assert "add table inet ivr_guard_5071" in ruleset
    assert "udp dport 5071 ip saddr @banned_ipv4 drop" in ruleset
    assert "udp dport 5071 ip6 saddr @banned_ipv6 drop" in ruleset
    assert "flags timeout" in ruleset
