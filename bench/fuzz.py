"""DTMF fuzz on real calls: a few hundred citizens press random keys (seeded; digits, *, #,
no-input waits) with random timing as RFC 4733 events, several calls at a time, against a
private stack. Prints the tally of where calls ended (agent, voice message, 110, goodbye)
and every call that ended anywhere else or left no ticket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.load import LoadStack, agent_ids, make_bench_home
from bench.report import Report
from ivr.menu.simulator import random_key_script
from ivr.reports.records import CALL_ENDS
from ivr.settings import database_url
from ivr.sipp.peers import CitizenCall
from ivr.stack import SimulatedPhones, without_wrapup
from ivr.tickets import TicketStore, ticket_as_json

SEED = 86
#: Agents talk this long: long enough to be a call, short enough to free the queue.
TALK_MS = 1000


class FuzzStack(LoadStack):
    """The bench stack without the load variants, and every agent of the sample city
    answering (all behind one SIPp process, so any number of calls can be talking at once)."""

    async def start(self) -> None:
        await self.pbx.start()
        self.start_controller()
        await self.wait_controller()
        load_agents = frozenset(agent_ids())
        phones = SimulatedPhones(
            self.home,
            self.deployment,
            # The city's own agents; the load part's extra ones stay away.
            pooled=frozenset(self.deployment.routing.agents) - load_agents,
            absent=load_agents,
            talk_ms=TALK_MS,
            niceness=5,
        )
        try:
            await phones.start()
        finally:
            self.phones.extend(phones.phones)  # stopped by close() even after a failed start


@contextlib.asynccontextmanager
async def fuzz_stack() -> AsyncIterator[FuzzStack]:
    scratch = Path(tempfile.mkdtemp(prefix="ivr-bench-fuzz-"))
    home = make_bench_home(scratch)
    without_wrapup(home.root)
    stack = FuzzStack(home)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close()
        if not os.environ.get("IVR_BENCH_KEEP"):
            shutil.rmtree(scratch, ignore_errors=True)


async def run_fuzz(report: Report, calls: int, at_once: int) -> None:
    report.section("fuzz", f"DTMF fuzz: {calls} real calls, {at_once} at a time, seed {SEED}")
    rng = random.Random(SEED)
    gate = asyncio.Semaphore(at_once)
    scripts: dict[str, str] = {}
    sipp_failed: list[str] = []
    async with fuzz_stack() as stack:
        pbx = stack.settings.pbx

        async def one(index: int) -> None:
            keys = random_key_script(rng, max_keys=8)
            call = CitizenCall(
                pbx_host=pbx.bind,
                pbx_port=pbx.sip_port,
                line="12345",
                caller=f"1390{index:07d}",
                keys=keys,
                first_key_delay_ms=rng.randrange(0, 3000),
                key_gap_ms=rng.randrange(300, 2500),
                no_input_ms=rng.randrange(4000, 8000),
                wait_timeout_seconds=300,
                work_dir=stack.home.var_dir / "calls",
            )
            scripts[call.call_id] = keys
            async with gate:
                if await call.run() != 0:
                    sipp_failed.append(keys)

        started = time.monotonic()
        await asyncio.gather(*(one(index) for index in range(calls)))
        elapsed = time.monotonic() - started
        tickets = await ended_tickets(stack, set(scripts))
    tally: Counter[str] = Counter()
    stray: list[str] = []
    for call_id, keys in scripts.items():
        ticket = tickets.get(call_id)
        outcome = ticket["outcome"] if ticket else None
        end = CALL_ENDS.get(outcome or "")
        tally[end or "elsewhere"] += 1
        if end is None:
            stray.append(f"keys {keys!r}: " + (f"outcome {outcome}" if ticket else "no ticket"))
    report.add("fuzz", "calls", calls, "calls placed")
    report.add("fuzz", "seconds", elapsed, "wall time", "s")
    for end in ("agent", "voice message", "110", "goodbye", "elsewhere"):
        report.add("fuzz", end.replace(" ", "_"), tally[end], f"ended: {end}")
    report.add("fuzz", "sipp_failed", len(sipp_failed), "calls SIPp counted failed")
    for line in stray[:20]:
        report.note(f"fuzz call ended elsewhere: {line}")


async def ended_tickets(stack: FuzzStack, call_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Tickets by SIP Call-ID once every call's has ended (a few seconds at most)."""
    deadline = time.monotonic() + 30
    async with TicketStore(database_url(stack.home)) as store:
        while True:
            ended = {
                ticket.sip_call_id: ticket_as_json(ticket)
                for ticket in await store.list(limit=100_000)
                if ticket.sip_call_id in call_ids and ticket.ended_at is not None
            }
            if len(ended) == len(call_ids) or time.monotonic() > deadline:
                return ended
            await asyncio.sleep(0.5)


def bench_fuzz(report: Report, *, calls: int, at_once: int) -> None:
    asyncio.run(run_fuzz(report, calls, at_once))
