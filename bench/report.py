"""Figures as they are measured: printed as a table and collected for the JSON file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); NaN for no samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds and the sample count."""
    return {
        "n": len(seconds),
        "p50_ms": percentile(seconds, 0.5) * 1000,
        "p99_ms": percentile(seconds, 0.99) * 1000,
        "max_ms": max(seconds) * 1000 if seconds else float("nan"),
    }


@dataclass
class Report:
    """One run's figures: ``add`` prints a row at once and keeps it for the JSON file."""

    started: float = field(default_factory=time.time)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def section(self, name: str, title: str) -> None:
        self.sections.setdefault(name, {})
        print(f"\n== {title}", flush=True)

    def add(self, section: str, key: str, value: Any, label: str, unit: str = "") -> None:
        self.sections.setdefault(section, {})[key] = value
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"  {label:<58} {shown:>14} {unit}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  ! {text}", flush=True)

    def write(self, arguments: list[str]) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(self.started))
        path = RESULTS_DIR / f"{stamp}.json"
        document = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "arguments": arguments,
            "machine": machine_facts(),
            "figures": self.sections,
            "notes": self.notes,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        return path


def _first_line(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def asterisk_version() -> str:
    from ivr.pbx.asterisk import provision

    try:
        provisioned = provision()
    except Exception as exc:
        return f"unknown ({exc})"
    if provisioned.mode == "host":
        return _first_line([provisioned.path, "-V"])
    return _first_line(["chroot", provisioned.path, "/usr/sbin/asterisk", "-V"])


def machine_facts() -> dict[str, Any]:
    import sqlalchemy

    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": _memory_mb(),
        "load_average": os.getloadavg(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
        "postgresql": _first_line(["psql", "--version"]),
        "sipp": _first_line(["sipp", "-v"]),
        "asterisk": asterisk_version(),
    }


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
