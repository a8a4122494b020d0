"""Shared by the menu tests: the sample home, the corpus context, a fake channel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.channel import CallerHungUp, RecordingResult

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "dialplans"
CATEGORIES = frozenset(
    [
        "consultation",
        "help",
        "complaint",
        "suggestion",
        "praise",
        "consumer",
        "health",
        "environment",
        "urban",
        "mayor",
        "emergency",
    ]
)
UNITS = frozenset({"d-east", "d-west"})
SAMPLE_LINES = {
    "12345": "hotline_12345",
    "12315": "line_12315",
    "12320": "line_12320",
    "12369": "line_12369",
    "88880000": "line_mayor",
}
CITY = ZoneInfo("Asia/Shanghai")
WEDNESDAY_10AM = datetime(2025, 3, 5, 10, 0, tzinfo=CITY)
WEDNESDAY_10PM = datetime(2025, 3, 5, 22, 0, tzinfo=CITY)
NATIONAL_DAY_10AM = datetime(2025, 10, 1, 10, 0, tzinfo=CITY)
MAKEUP_SATURDAY_10AM = datetime(2025, 10, 11, 10, 0, tzinfo=CITY)


@dataclass
class FakeChannel:
    """Answers each read_digits with the next of ``answers`` ("" = silence); a
    ``CallerHungUp`` instance among them is raised instead."""

    answers: list[str | CallerHungUp]
    reads: list[list[str]] = field(default_factory=list)
    plays: list[list[str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    recorded: list[str] = field(default_factory=list)
    record_seconds: float = 9.5

    async def play(self, prompts: Sequence[str], *, interrupt_keys: str = "") -> str | None:
        self.plays.append(list(prompts))
        return None

    async def read_digits(
        self, prompts: Sequence[str], *, max_digits: int, timeout_s: float, terminator: str = "#"
    ) -> str:
        self.reads.append(list(prompts))
        answer = self.answers.pop(0) if self.answers else ""
        if isinstance(answer, CallerHungUp):
            raise answer
        return answer

    async def record(
        self, path: str, *, max_seconds: int, silence_seconds: int, beep: bool = True
    ) -> RecordingResult:
        self.recorded.append(path)
        return RecordingResult(path=path, seconds=self.record_seconds, ended_by="silence")

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value
