"""Issue 8.6: 10,000 random key sequences (seeded: digits, * and #, no-input waits) through
the simulator and the router, on every line at random times of the year: none raises, and
every call ends at an agent, a voice message, 110 or a polite goodbye after the tries."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta

from menu_helpers import CITY, REPO

from ivr.deployment import DryRun, dry_run, load_deployment
from ivr.home import Home
from ivr.menu import Goodbye, RouteTo, TransferTo, VoiceMessage
from ivr.menu.simulator import random_key_script
from ivr.routing import NobodyAvailable

SEQUENCES = 10_000
SEED = 8_6


def end_state(run: DryRun, emergency_number: str) -> str:
    """Where the call ends, as a person on the phone would tell it; AssertionError if it
    ends anywhere else."""
    outcome = run.menu.outcome
    if isinstance(outcome, RouteTo):
        if isinstance(run.route, NobodyAvailable):
            return "voice message"  # the controller then takes a message (leave_message)
        assert run.route is not None and run.route.hops, run
        return "agent"
    if isinstance(outcome, VoiceMessage):
        return "voice message"
    if isinstance(outcome, TransferTo):
        # 110 is the only outside line; any other target goes to a person (HotlineCall).
        return "110" if outcome.target == emergency_number and outcome.emergency else "agent"
    assert isinstance(outcome, Goodbye), outcome
    assert outcome.reason in {"goodbye", "failure"}, outcome  # nobody hung up here
    return "goodbye"


def test_ten_thousand_random_key_sequences() -> None:
    deployment = load_deployment(Home.resolve(REPO), check_prompt_files=False)
    lines = sorted(deployment.routing.lines)
    emergency = deployment.routing.emergency_number
    rng = random.Random(SEED)
    start = datetime(2025, 1, 1, tzinfo=CITY)
    tally: Counter[str] = Counter()

    async def run_all() -> None:
        for _ in range(SEQUENCES):
            keys = random_key_script(rng)
            at = start + timedelta(minutes=rng.randrange(60 * 24 * 365))
            line = rng.choice(lines)
            try:
                run = await dry_run(deployment, line=line, caller="13800000000", keys=keys, at=at)
                tally[end_state(run, emergency)] += 1
            except Exception as exc:
                raise AssertionError(f"line {line} keys {keys!r} at {at}: {exc!r}") from exc

    asyncio.run(run_all())
    assert sum(tally.values()) == SEQUENCES
    # A fuzz that never reaches an end tests little. The sample city's menus end with a
    # person when the tries run out, so it has no goodbye to reach.
    assert {"agent", "voice message", "110"} <= set(tally), tally
