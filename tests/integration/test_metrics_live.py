"""The controller's Prometheus endpoint on the real stack: a real call to 12345 answered by
agent 1009 moves live calls, the calls counter, and the agents on duty."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable

import pytest
from hotline_stack import HotlineStack
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (n, found), value in samples.items() if n == name and wanted <= set(found))


async def _until(url: str, condition: Callable[[Samples], bool], timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = await asyncio.to_thread(_scrape, url)
        if condition(samples):
            return samples
        await asyncio.sleep(0.1)
    pytest.fail(f"/metrics never showed the expected figures; last: {sorted(samples.items())}")


async def test_a_call_moves_the_figures(hotline: HotlineStack) -> None:
    url = f"http://127.0.0.1:{hotline.settings.controller.metrics_port}/metrics"
    before = await _until(url, lambda s: _total(s, "ivr_agents_on_duty") > 0)
    assert _total(before, "ivr_calls_live") == 0
    assert _total(before, "ivr_calls_total") == 0
    assert _total(before, "ivr_events_dropped_total") == 0  # the notifier's, same registry
    assert ("ivr_queue_waiting_callers", (("queue", "q-d-east-zh"),)) in before

    call = asyncio.create_task(hotline.call("12345", "13900000011", keys="11"))
    during = await _until(url, lambda s: _total(s, "ivr_calls_live") == 1 or call.done())
    assert _total(during, "ivr_calls_live") == 1, "the call ended before it was seen live"
    ticket = await call
    assert ticket["agent"] == "1009"

    after = await _until(url, lambda s: _total(s, "ivr_calls_total") == 1)
    assert _total(after, "ivr_calls_live") == 0
    assert _total(after, "ivr_calls_total", line="12345", outcome="answered") == 1
    assert _total(after, "ivr_agents_on_duty", unit=ticket["unit"]) > 0
