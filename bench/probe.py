"""The controller with a stopwatch on its AGI commands: ``python -m bench.probe`` takes the
same arguments as ``python -m ivr``. Every AgiSession.command round trip is timed (send to
200 reply) and kept by command words; SIGUSR1 writes the samples so far to the file named
by IVR_BENCH_PROBE_FILE and starts afresh, so a load step reads exactly its own samples."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from types import FrameType
from typing import Any

from ivr.agi import session as agi_session

PROBE_FILE_VARIABLE = "IVR_BENCH_PROBE_FILE"
#: Samples key of the event loop's lag: how late a LAG_TICK sleep wakes up. Large lag means
#: the controller itself is busy; small lag with slow round trips means Asterisk is.
LOOP_LAG = "LOOP LAG"
LAG_TICK = 0.01
_samples: defaultdict[str, list[float]] = defaultdict(list)


def _install() -> None:
    original = agi_session.AgiSession.command

    async def timed_command(self: Any, text: str, *args: str, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, text, *args, **options)
        finally:
            _samples[text.upper()].append(time.perf_counter() - started)

    agi_session.AgiSession.command = timed_command  # type: ignore[method-assign]

    from ivr import controller

    start = controller.Controller.start

    async def start_watching_lag(self: Any) -> None:
        await start(self)
        _lag_watch.append(asyncio.create_task(_watch_loop_lag()))

    controller.Controller.start = start_watching_lag  # type: ignore[method-assign]


_lag_watch: list[asyncio.Task[None]] = []


async def _watch_loop_lag() -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(LAG_TICK)
        _samples[LOOP_LAG].append(time.perf_counter() - started - LAG_TICK)


def _dump(_signum: int, _frame: FrameType | None) -> None:
    target = os.environ.get(PROBE_FILE_VARIABLE)
    if not target:
        return
    snapshot = {name: list(values) for name, values in _samples.items()}
    _samples.clear()
    tmp = Path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(snapshot))
    tmp.replace(target)


_snapshots: list[Any] = []


def _dump_memory(_signum: int, _frame: FrameType | None) -> None:
    """SIGUSR2 with IVR_BENCH_TRACEMALLOC=<file>: the allocations grown since the last
    SIGUSR2, largest first (finding what a soak's memory growth is made of)."""
    import tracemalloc

    target = os.environ.get(TRACEMALLOC_VARIABLE)
    if not target or not tracemalloc.is_tracing():
        return
    snapshot = tracemalloc.take_snapshot()
    if _snapshots:
        lines = [str(stat) for stat in snapshot.compare_to(_snapshots[-1], "lineno")[:30]]
        with Path(target).open("a") as out:
            out.write("\n".join(["--- growth since the last snapshot", *lines, ""]))
    _snapshots[:] = [snapshot]


TRACEMALLOC_VARIABLE = "IVR_BENCH_TRACEMALLOC"
CENSUS_VARIABLE = "IVR_BENCH_CENSUS"
_census: dict[str, int] = {}


def _write_malloc_info(target: Path) -> None:
    """glibc's per-arena figures (malloc_info): memory malloc holds, in use or not, arena by
    arena, where threads' arenas show what C code running in them (SQLite) allocates."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    stream = libc.fopen(str(target).encode(), b"a")
    if stream:
        libc.malloc_info(0, stream)
        libc.fclose(stream)


def _dump_census(_signum: int, _frame: FrameType | None) -> None:
    """SIGUSR2 with IVR_BENCH_CENSUS=<file>: live objects by type that grew in number since
    the last SIGUSR2, plus the allocator's arena figures (growth tracemalloc cannot see)."""
    import gc
    import reprlib
    import sys
    from collections import Counter, deque

    gc.collect()
    counts = Counter(type(obj).__qualname__ for obj in gc.get_objects())
    grown = sorted(((counts[name] - _census.get(name, 0), name) for name in counts), reverse=True)
    lines = [f"--- census at {time.strftime('%H:%M:%S')}: {sum(counts.values())} objects"]
    lines += [f"{delta:+9d} {counts[name]:9d} {name}" for delta, name in grown[:25]]
    # One container that keeps growing counts once above: the biggest ones, by length.
    containers = (obj for obj in gc.get_objects() if isinstance(obj, dict | list | set | deque))
    biggest = sorted(containers, key=len, reverse=True)[:8]
    lines += [f"  biggest {type(obj).__name__} len {len(obj)}: {reprlib.repr(obj)[:160]}"
              for obj in biggest]
    with Path(os.environ[CENSUS_VARIABLE]).open("a") as out:
        out.write("\n".join(lines) + "\n")
        sys._debugmallocstats()  # writes to stderr: the controller's log keeps it
    _write_malloc_info(Path(os.environ[CENSUS_VARIABLE]).with_suffix(".malloc.xml"))
    _census.clear()
    _census.update(counts)


def main() -> None:
    _install()
    signal.signal(signal.SIGUSR1, _dump)
    if os.environ.get(TRACEMALLOC_VARIABLE):
        import tracemalloc

        tracemalloc.start(1)
        signal.signal(signal.SIGUSR2, _dump_memory)
    elif os.environ.get(CENSUS_VARIABLE):
        signal.signal(signal.SIGUSR2, _dump_census)
    from ivr.cli import main as ivr_main

    ivr_main()


if __name__ == "__main__":
    main()
