"""The ticket store tests of tests/unit/test_tickets_store.py, run against the real
PostgreSQL at 127.0.0.1:5432, one scratch database per test. Fails (never skips) when
PostgreSQL cannot be reached, after trying to start it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pg_service

pytestmark = pytest.mark.integration


def _load_store_cases() -> Any:
    path = Path(__file__).resolve().parents[1] / "unit" / "test_tickets_store.py"
    spec = importlib.util.spec_from_file_location("tickets_store_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cases = _load_store_cases()
SHARED_TESTS = sorted(
    name
    for name in vars(_cases)
    if name.startswith("test_") and not name.startswith("test_sqlite_")
)
for _name in SHARED_TESTS:
    globals()[_name] = getattr(_cases, _name)
#: The unit module's store fixture; here its ``ticket_db_url`` is the PostgreSQL one below.
store = _cases.store


@pytest.fixture(scope="session")
def postgres_running() -> None:
    try:
        pg_service.ensure_running()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
async def ticket_db_url(postgres_running: None) -> AsyncIterator[str]:
    async with pg_service.scratch_database("ivr_tickets") as url:
        yield url


def test_the_shared_store_tests_are_all_here() -> None:
    assert len(SHARED_TESTS) >= 18
    assert "test_100_concurrent_open_calls_with_50_linkedids_make_50_tickets" in SHARED_TESTS
