"""Issue 8.6 on real calls: random key sequences with random timing, sent as RFC 4733
events a few calls at a time. Every call ends at an agent, a voice message, 110 or a
polite goodbye, with one ticket, and the controller logs no error. (10,000 sequences run
through the simulator in tests/unit/test_dtmf_fuzz.py; a few hundred real calls in
``python -m bench --only fuzz``.)"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from hotline_stack import HotlineStack
from test_hangups_live import assert_no_controller_error

from ivr.menu.simulator import random_key_script
from ivr.reports.records import CALL_ENDS
from ivr.stack import without_wrapup

CALLS = 24
AT_ONCE = 8
SEED = 86
#: A silent caller can spend three minutes in the menus (every try of every menu times out
#: over long prompts) before a person answers: the citizen waits longer than that.
PATIENCE_S = 300


async def test_random_key_sequences_on_real_calls(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    stack: HotlineStack = await hotline_factory(tweak=without_wrapup, talk_ms=1000)
    rng = random.Random(SEED)
    gate = asyncio.Semaphore(AT_ONCE)
    tally: Counter[str] = Counter()

    async def one(index: int) -> None:
        keys = random_key_script(rng, max_keys=8)
        timing = {
            "first_key_delay_ms": rng.randrange(0, 3000),
            "key_gap_ms": rng.randrange(300, 2500),
            "no_input_ms": rng.randrange(4000, 8000),
        }
        async with gate:
            call = stack.citizen(
                "12345", f"139000007{index:02d}", keys, wait_timeout_seconds=PATIENCE_S, **timing
            )
            assert await call.run() == 0, (keys, timing)
        ticket: dict[str, Any] | None = await stack.ticket_of(call, timeout=30)
        assert ticket is not None, (keys, timing)
        end = CALL_ENDS.get(ticket["outcome"] or "")
        assert end is not None, (keys, timing, ticket["outcome"], ticket["ivr_path"])
        tally[end] += 1

    await asyncio.gather(*(one(index) for index in range(CALLS)))

    assert sum(tally.values()) == CALLS == len(await stack.tickets())
    assert_no_controller_error(stack)
