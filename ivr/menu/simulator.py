"""Running a menu without a phone: keys given in advance, for ``ivr simulate`` and tests.

Key script notation (whitespace is ignored):

    0-9 * #   the caller presses that key
    -         the caller lets one wait pass without pressing anything (a timeout)
    !         the caller hangs up

Each request for input takes what it needs from the front of the script: a menu takes
one key (or one ``-``); a collect takes keys up to its maximum, stopping after its
terminator or at a ``-``. A key waiting at the front of the script while an
interruptible prompt plays is pressed during that prompt (barge-in). When the script
runs out the caller stays silent, so menus run out of tries and end at their failure
path (by default a person). Voice messages last ``record_seconds``.

Example: ``ivr simulate --keys "3-1 1"``: press 3, stay silent once, press 1, then 1.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from ivr.channel import CallerHungUp, RecordingResult
from ivr.menu.interpreter import run_menu
from ivr.menu.prompts import DEFAULT_LANGUAGE, LANGUAGES, resolve_prompt
from ivr.menu.runtime import CallStart, MenuResult
from ivr.menu.tree import MenuTree

KEYS = "0123456789*#"
SILENCE = "-"
HANG_UP = "!"
SCRIPT_ALPHABET = KEYS + SILENCE + HANG_UP


def random_key_script(rng: random.Random, *, max_keys: int = 12) -> str:
    """A caller pressing anything: keys and no-input waits, never a hang-up (fuzzing)."""
    alphabet = KEYS + SILENCE * 3  # a silent wait about once in five presses
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(max_keys + 1)))


def prompt_labels(tree: MenuTree) -> dict[str, str]:
    """Sound path -> its text (or recorded file name), for transcripts."""
    labels: dict[str, str] = {}
    for _, _, prompt in tree.all_prompts():
        for language in LANGUAGES:
            if prompt.recorded(language) is None and prompt.text(language) is None:
                continue
            path = resolve_prompt(prompt, language)
            labels[path] = prompt.text(language) or f"[{path}]"
    return labels


@dataclass
class ScriptedChannel:
    """A Channel whose caller follows a key script (see the module docstring)."""

    keys: str
    record_seconds: float = 12.0
    #: Sound path -> what it says, to make ``events`` readable (see ``prompt_labels``).
    labels: Mapping[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    _script: list[str] = field(init=False)
    _hung_up: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        script = [c for c in self.keys if not c.isspace()]
        unknown = sorted({c for c in script if c not in SCRIPT_ALPHABET})
        if unknown:
            raise ValueError(f"unknown key script characters {''.join(unknown)!r}: use 0-9 * # - !")
        self._script = script

    def _played(self, prompts: Sequence[str]) -> list[str]:
        return [
            f"play {path}" + (f"  {self.labels[path]}" if path in self.labels else "")
            for path in prompts
        ]

    def _check_alive(self) -> None:
        if self._hung_up or (self._script and self._script[0] == HANG_UP):
            self._hung_up = True
            self.events.append("hangup")
            raise CallerHungUp()

    async def play(self, prompts: Sequence[str], *, interrupt_keys: str = "") -> str | None:
        self._check_alive()
        self.events.extend(self._played(prompts))
        if interrupt_keys and self._script and self._script[0] in interrupt_keys:
            key = self._script.pop(0)
            self.events.append(f"key {key} (barge-in)")
            return key
        return None

    async def read_digits(
        self,
        prompts: Sequence[str],
        *,
        max_digits: int,
        timeout_s: float,
        terminator: str = "#",
    ) -> str:
        self._check_alive()
        self.events.extend(self._played(prompts))
        digits = ""
        while len(digits) < max_digits and self._script:
            head = self._script[0]
            if head == HANG_UP:
                self._check_alive()
            self._script.pop(0)
            if head == SILENCE:
                break
            if terminator and head == terminator:
                self.events.append(f"key {head} (end)")
                break
            digits += head
            self.events.append(f"key {head}")
        if not digits:
            self.events.append(f"timeout {timeout_s:g}s")
        return digits

    async def record(
        self, path: str, *, max_seconds: int, silence_seconds: int, beep: bool = True
    ) -> RecordingResult:
        self._check_alive()
        seconds = min(self.record_seconds, float(max_seconds))
        self.events.append(f"record {path} ({seconds:g}s)")
        return RecordingResult(path=path, seconds=seconds, ended_by="silence")

    async def set_variable(self, name: str, value: str) -> None:
        self._check_alive()
        self.variables[name] = value
        self.events.append(f"set {name}={value}")


async def simulate(
    tree: MenuTree,
    *,
    line: str,
    caller: str,
    keys: str,
    at: datetime,
    entry: str,
    preset: Mapping[str, str] = MappingProxyType({}),
    language: str = DEFAULT_LANGUAGE,
    recording_name: str | None = None,
    events: list[str] | None = None,
) -> MenuResult:
    """Run the tree for one simulated call. ``keys`` follows the module's notation (a
    ValueError names unknown characters); ``events``, if given, receives what the caller
    heard and did ("play var/prompts/…", "key 1", "timeout 5s", ...)."""
    scripted = ScriptedChannel(keys, labels=prompt_labels(tree))
    call = CallStart(
        line=line,
        caller=caller,
        entry=entry,
        now=at,
        preset=preset,
        language=language,
        recording_name=recording_name,
    )
    try:
        return await run_menu(tree, scripted, call)
    finally:
        if events is not None:
            events.extend(scripted.events)
