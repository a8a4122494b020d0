"""Integration tests run on the real stack: Asterisk 22, SIPp phones, Mosquitto and the
databases. A missing piece is started or installed, and a test that cannot get it fails."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import mqtt_service
import pg_service
import pytest
from hotline_stack import HotlineStack, make_home

from ivr.deployment import load_deployment
from ivr.menu import build_prompts
from ivr.pbx.asterisk import provision


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def asterisk_provisioned() -> None:
    provision()  # raises (fails the test) if Asterisk cannot be had


@pytest.fixture(scope="session")
def mosquitto_running() -> None:
    """The machine's Mosquitto at 127.0.0.1:1883, started if it is down."""
    try:
        mqtt_service.ensure_mosquitto()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample city's prompts, synthesized once for the whole session."""
    home = make_home(tmp_path_factory.mktemp("prompts"))
    report = build_prompts(load_deployment(home, check_prompt_files=False).menus, home)
    assert not report.failed, report
    return home.prompts_dir


StackFactory = Callable[..., Any]

#: ``postgresql`` runs every hotline of the suite on a scratch PostgreSQL database instead of
#: the SQLite default (``make test-postgres``); tests that pick a database keep theirs.
TEST_DATABASE = os.environ.get("IVR_TEST_DATABASE", "sqlite")


@pytest.fixture
async def hotline_factory(
    tmp_path: Path, asterisk_provisioned: None, prompt_cache: Path
) -> AsyncIterator[StackFactory]:
    """Start hotlines with options: ``await hotline_factory(absent=..., settings=...)``."""
    if TEST_DATABASE not in ("sqlite", "postgresql"):
        pytest.fail(f"IVR_TEST_DATABASE={TEST_DATABASE!r}: sqlite or postgresql", pytrace=False)
    stacks: list[HotlineStack] = []
    async with contextlib.AsyncExitStack() as databases:

        async def start(
            settings: dict[str, Any] | None = None,
            tweak: Callable[[Path], None] | None = None,
            **options: Any,
        ) -> HotlineStack:
            settings = dict(settings or {})
            if TEST_DATABASE == "postgresql" and "database" not in settings:
                pg_service.ensure_running()
                url = await databases.enter_async_context(pg_service.scratch_database("ivr_stack"))
                settings["database"] = {"url": url}
            root = tmp_path / f"home{len(stacks)}"
            home = make_home(root, settings, prompt_cache)
            if tweak is not None:
                tweak(home.root)  # edit the sample city's YAML for this test
            stack = HotlineStack(home, **options)
            stacks.append(stack)
            await stack.start()
            return stack

        yield start
        for stack in stacks:
            await stack.close()


@pytest.fixture
async def hotline(hotline_factory: StackFactory) -> HotlineStack:
    stack: HotlineStack = await hotline_factory()
    return stack
