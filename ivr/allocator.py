"""The controller's side of glibc's allocator: a busy asyncio server that runs SQLite in
threads frees memory glibc then keeps, so the soak saw its RSS creep up by megabytes a
minute with no Python object growing. Nothing else in the engine touches malloc; off glibc
these do nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools

import structlog

log = structlog.get_logger(__name__)

#: Arenas the controller's threads share (glibc's own limit: 8 per core).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
#: How often freed memory goes back to the system.
TRIM_SECONDS = 60.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - raises AttributeError off glibc
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        log.info("allocator upkeep off: no glibc")
        return None
    return libc


def limit_malloc_arenas() -> None:
    """Let the threads share MALLOC_ARENAS arenas. glibc gives each new thread an arena of
    its own, each keeping its own high-water mark of freed memory. MALLOC_ARENA_MAX would do
    the same, but only if every way of starting the controller set it."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def return_free_memory() -> None:
    """Give the free pages inside glibc's arenas back to the system (malloc_trim walks every
    arena, not just the top of the heap)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


async def return_free_memory_every(seconds: float = TRIM_SECONDS) -> None:
    while True:
        await asyncio.sleep(seconds)
        return_free_memory()
