"""How long validating a deployment and applying a reload take.

    .venv/bin/python bench/bench_validate.py [--nodes 2000] [--repeat 5]

Measures, for the repository's sample home and for a home whose dialplans are one
generated tree of ``--nodes`` nodes (``ivr.menu.generate_dialplan``, every line entering
it): a full ``load_deployment`` (what ``ivr validate`` does, prompt files not checked),
the menus alone, the cross checks alone, a ``DeploymentHolder.reload()`` and the time from
saving a file to the watcher having applied it (watchfiles, 200 ms debounce).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ivr.deployment import Deployment, DeploymentHolder, cross_check_menus, load_deployment
from ivr.home import ENGINE_ROOT, Home
from ivr.logs import configure_logging
from ivr.menu import generate_dialplan, load_menus

HOME_FOLDERS = ("config", "routing", "dialplans")


def timed(work: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def sample_home(root: Path) -> Home:
    for folder in HOME_FOLDERS:
        shutil.copytree(ENGINE_ROOT / folder, root / folder)
    return Home(root.resolve())


def generated_home(root: Path, nodes: int) -> Home:
    home = sample_home(root)
    # The sample's menus stay beside the tree: the settings name entries in them (survey,
    # callback offer, nobody available).
    (home.dialplans_dir / "generated.yaml").write_text(generate_dialplan(nodes), encoding="utf-8")
    lines = home.routing_dir / "lines.yaml"
    lines.write_text(
        re.sub(r"entry: \S+", "entry: n0", lines.read_text(encoding="utf-8")), encoding="utf-8"
    )
    return home


def touch_a_prompt(home: Home) -> None:
    """A real edit: one prompt's text changes (alternating, so every edit is new)."""
    path = next(iter(sorted(home.dialplans_dir.glob("*.yaml"))))
    text = path.read_text(encoding="utf-8")
    marker = "请选择" if "请选择" in text else "没有收到您的按键"
    swapped = marker[::-1]
    text = text.replace(marker, swapped, 1) if marker in text else text.replace(swapped, marker, 1)
    path.write_text(text, encoding="utf-8")


async def watch_latency(home: Home, repeat: int) -> float:
    holder = DeploymentHolder(home, check_prompt_files=False)
    applied: asyncio.Queue[Deployment] = asyncio.Queue()
    stop = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(applied.put_nowait, stop_event=stop))
    await asyncio.sleep(0.3)
    samples = []
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            touch_a_prompt(home)
            await asyncio.wait_for(applied.get(), timeout=10)
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await watcher
    return statistics.median(samples)


def measure(name: str, home: Home, repeat: int) -> None:
    deployment = load_deployment(home, check_prompt_files=False)
    counts = deployment.counts()
    holder = DeploymentHolder(home, check_prompt_files=False, deployment=deployment)
    figures = {
        "load_deployment": timed(lambda: load_deployment(home, check_prompt_files=False), repeat),
        "  menus only": timed(lambda: load_menus(home), repeat),
        "  cross checks only": timed(
            lambda: cross_check_menus(deployment.menus, deployment.routing), repeat
        ),
        "reload (load + swap)": timed(holder.reload, repeat),
        "save -> applied (watch)": asyncio.run(watch_latency(home, repeat)),
    }
    print(
        f"{name}: {counts['menu_nodes']} menu nodes, {counts['units']} units, "
        f"{counts['agents']} agents, {counts['lines']} lines"
    )
    for label, seconds in figures.items():
        print(f"  {label:<26} {seconds * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configure_logging(json=False, level="WARNING")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        measure("sample home", sample_home(root / "sample"), args.repeat)
        measure(
            f"generated {args.nodes}-node tree",
            generated_home(root / "generated", args.nodes),
            args.repeat,
        )


if __name__ == "__main__":
    main()
