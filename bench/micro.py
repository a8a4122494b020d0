"""Benchmarks without a PBX: routing decisions, YAML validation/reload, ticket writes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.report import Report, summary_ms

PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class EveryoneAvailable:
    """Agent availability for the decision benchmark: every queue has someone."""

    def available(self, queue: str) -> int:
        return 1


def bench_routing(report: Report, *, communities: int, decisions: int) -> None:
    from ivr.routing import RouteRequest, decide
    from ivr.routing.generate import generate_city

    report.section("routing", f"Routing decisions on a generated {communities:,}-community city")
    started = time.perf_counter()
    tables = generate_city(communities, seed=12345)
    report.add("routing", "build_city_s", time.perf_counter() - started,
               "generate + build tables", "s")
    report.add("routing", "units", len(tables.units), "units in the city")
    rng = random.Random(7)
    territories = sorted(tables.covering)
    categories = [*sorted(tables.categories), None]
    base = datetime(2026, 11, 23, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    requests = [
        RouteRequest(
            location=rng.choice(territories),
            category=rng.choice(categories),
            language=rng.choice(("zh", "zh", "zh", "en")),
            now=base + timedelta(minutes=rng.randrange(7 * 24 * 60)),
            priority=rng.choice((0, 0, 0, 0, 1, 2)),
        )
        for _ in range(decisions)
    ]
    agents = EveryoneAvailable()
    samples: list[float] = []
    clock = time.perf_counter
    total_started = clock()
    for request in requests:
        before = clock()
        decide(tables, request, agents)
        samples.append(clock() - before)
    total = clock() - total_started
    figures = summary_ms(samples)
    report.add("routing", "decisions", decisions, "decisions made")
    report.add("routing", "decisions_per_s", decisions / total, "decisions per second", "/s")
    report.add("routing", "p50_us", figures["p50_ms"] * 1000, "decision p50", "µs")
    report.add("routing", "p99_us", figures["p99_ms"] * 1000, "decision p99", "µs")


def bench_validate(report: Report, *, nodes: int, repeat: int) -> None:
    """bench_validate.py's figures (sample home, generated menu tree) into the report."""
    from bench import bench_validate as validate
    from ivr.deployment import DeploymentHolder, cross_check_menus, load_deployment
    from ivr.menu import load_menus

    report.section("validate", f"YAML validation and reload (sample home; {nodes}-node tree)")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-validate-") as scratch:
        root = Path(scratch)
        for name, home in (
            ("sample", validate.sample_home(root / "sample")),
            (f"tree{nodes}", validate.generated_home(root / "generated", nodes)),
        ):
            deployment = load_deployment(home, check_prompt_files=False)
            holder = DeploymentHolder(home, check_prompt_files=False, deployment=deployment)
            figures = {
                "load_deployment": validate.timed(
                    partial(load_deployment, home, check_prompt_files=False), repeat),
                "menus_only": validate.timed(partial(load_menus, home), repeat),
                "cross_checks": validate.timed(
                    partial(cross_check_menus, deployment.menus, deployment.routing), repeat),
                "reload": validate.timed(holder.reload, repeat),
                "save_to_applied": asyncio.run(validate.watch_latency(home, repeat)),
            }
            for key, seconds in figures.items():
                report.add("validate", f"{name}.{key}_ms", seconds * 1000,
                           f"{name}: {key.replace('_', ' ')} (median of {repeat})", "ms")


async def _ticket_writes(url: str, calls: int, concurrency: int) -> tuple[float, list[float]]:
    """``calls`` calls' ticket writes (open_call, update_call, append_path), ``concurrency``
    at a time as live calls do; wall seconds and per-call latencies."""
    from ivr.tickets import TicketStore

    latencies: list[float] = []
    run = uuid.uuid4().hex[:8]
    async with TicketStore(url) as store:
        semaphore = asyncio.Semaphore(concurrency)

        async def one_call(index: int) -> None:
            linkedid = f"bench-{run}-{index}"
            async with semaphore:
                before = time.perf_counter()
                await store.open_call(linkedid, line="12345", caller=f"1390000{index:04d}",
                                      channel=f"PJSIP/citizen-{index:08x}",
                                      sip_call_id=f"{linkedid}@bench")
                await store.update_call(linkedid, category="consultation", language="zh",
                                        variables={"category": "consultation"})
                await store.append_path(linkedid, ["hotline_12345", "main_menu", "consultation",
                                                   "ask_district", "choose_district"])
                latencies.append(time.perf_counter() - before)

        started = time.perf_counter()
        await asyncio.gather(*(one_call(index) for index in range(calls)))
        return time.perf_counter() - started, latencies


@contextlib.asynccontextmanager
async def scratch_postgres() -> AsyncIterator[str]:
    """A private database on the local PostgreSQL, dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"ivr_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def bench_tickets(report: Report, *, calls: int, concurrency: int) -> None:
    report.section("tickets", f"Ticket writes: {calls} calls, {concurrency} concurrent "
                              "(open_call + update_call + append_path)")

    async def both() -> None:
        with tempfile.TemporaryDirectory(prefix="ivr-bench-tickets-") as scratch:
            url = f"sqlite+aiosqlite:///{scratch}/tickets.db"
            wall, latencies = await _ticket_writes(url, calls, concurrency)
            _ticket_figures(report, "sqlite", calls, wall, latencies)
        try:
            async with scratch_postgres() as url:
                wall, latencies = await _ticket_writes(url, calls, concurrency)
                _ticket_figures(report, "postgresql", calls, wall, latencies)
        except OSError as exc:
            report.note(f"PostgreSQL at 127.0.0.1:5432 not reachable: {exc}")

    with contextlib.redirect_stderr(io.StringIO()):
        asyncio.run(both())


def _ticket_figures(report: Report, name: str, calls: int, wall: float,
                    latencies: list[float]) -> None:
    figures = summary_ms(latencies)
    report.add("tickets", f"{name}.calls_per_s", calls / wall, f"{name}: calls' tickets per second",
               "/s")
    report.add("tickets", f"{name}.writes_per_s", 3 * calls / wall,
               f"{name}: ticket writes per second (3 per call)", "/s")
    report.add("tickets", f"{name}.call_p50_ms", figures["p50_ms"],
               f"{name}: one call's 3 writes p50", "ms")
    report.add("tickets", f"{name}.call_p99_ms", figures["p99_ms"],
               f"{name}: one call's 3 writes p99", "ms")
