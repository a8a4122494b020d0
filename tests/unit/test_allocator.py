"""The allocator upkeep calls glibc for real (these machines run glibc): a wrong signature
or parameter would crash the controller at start, not in a test of its own."""

from __future__ import annotations

import asyncio

import pytest

from ivr import allocator


def test_arenas_are_limited_and_free_memory_returned_without_error() -> None:
    assert allocator._glibc() is not None  # Debian and Ubuntu: glibc
    allocator.limit_malloc_arenas()
    allocator.return_free_memory()


async def test_the_upkeep_loop_trims_on_its_period(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[None] = []
    monkeypatch.setattr(allocator, "return_free_memory", lambda: trims.append(None))
    task = asyncio.create_task(allocator.return_free_memory_every(0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    assert len(trims) >= 3
