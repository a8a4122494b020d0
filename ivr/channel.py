"""What the menu interpreter may ask of a live call, and nothing more.

The interpreter (pure decision code) talks only to this protocol; the FastAGI session
implements it against a real channel, tests and ``ivr simulate`` implement it with keys
given in advance. Prompts are named by their sound path without extension, as Asterisk
wants them; the interpreter resolves prompt texts to those paths before it calls here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class CallerHungUp(Exception):
    """The caller is gone; every Channel method raises it once the channel is dead."""


@dataclass(frozen=True)
class RecordingResult:
    path: str
    seconds: float
    ended_by: str  # "dtmf", "silence", "timeout" or "hangup"


class Channel(Protocol):
    async def play(self, prompts: Sequence[str], *, interrupt_keys: str = "") -> str | None:
        """Play prompts in order. A key among ``interrupt_keys`` pressed during a prompt
        stops playback (barge-in) and is returned; otherwise None once all have played."""
        ...

    async def read_digits(
        self,
        prompts: Sequence[str],
        *,
        max_digits: int,
        timeout_s: float,
        terminator: str = "#",
    ) -> str:
        """Play prompts (interruptible by any key), then collect up to ``max_digits`` keys;
        the caller may end early with ``terminator``. Returns "" on no input within
        ``timeout_s`` after the prompts (or between keys)."""
        ...

    async def record(
        self, path: str, *, max_seconds: int, silence_seconds: int, beep: bool = True
    ) -> RecordingResult:
        """Record the caller's voice into ``path`` (without extension, wav format)."""
        ...

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (for the dialplan, CDR and the ticket)."""
        ...
