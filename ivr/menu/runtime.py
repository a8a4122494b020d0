"""The state of one call walking a menu tree, as the verbs see it while they run."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from ivr import chanvars
from ivr.channel import Channel
from ivr.home import Home
from ivr.menu.outcome import Outcome, RouteTo
from ivr.menu.prompts import DEFAULT_LANGUAGE, PromptRef, resolve_all
from ivr.menu.tree import MenuTree
from ivr.menu.verbs.base import CATEGORY_VARIABLE, LOCATION_VARIABLE


@dataclass(frozen=True, kw_only=True)
class CallStart:
    """What the controller knows when the menu starts."""

    line: str  #: the dialled number
    caller: str  #: the caller's number
    entry: str  #: node id the line starts at
    now: datetime  #: aware; conditions on time of day, weekday and holidays use it as given
    preset: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    language: str = DEFAULT_LANGUAGE
    #: Base name of a voice message file (the controller names it after the ticket).
    recording_name: str | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("CallStart.now must be timezone-aware")


@dataclass(frozen=True)
class MenuResult:
    path: list[str]  #: node ids entered, in order
    prompts: list[str]  #: resolved prompt paths asked to be played, in order
    variables: dict[str, str]
    language: str
    outcome: Outcome


#: Where voice messages go, relative to the home (derived, so it cannot drift).
RECORDINGS_SUBDIR = PurePosixPath(Home(Path("/")).recordings_dir.relative_to("/").as_posix())
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class CallState:
    tree: MenuTree
    channel: Channel
    call: CallStart
    language: str
    variables: dict[str, str]
    path: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    return_stack: list[str] = field(default_factory=list)

    def resolve(self, refs: Sequence[PromptRef]) -> list[str]:
        paths = resolve_all(self.tree.prompts, refs, self.language)
        self.prompts.extend(paths)
        return paths

    async def play(self, refs: Sequence[PromptRef], *, interrupt_keys: str = "") -> str | None:
        if not refs:
            return None
        return await self.channel.play(self.resolve(refs), interrupt_keys=interrupt_keys)

    async def read_digits(
        self, refs: Sequence[PromptRef], *, max_digits: int, timeout_s: float, terminator: str
    ) -> str:
        return await self.channel.read_digits(
            self.resolve(refs), max_digits=max_digits, timeout_s=timeout_s, terminator=terminator
        )

    async def switch_language(self, language: str) -> None:
        self.language = language
        await self.channel.set_variable(chanvars.LANGUAGE, language)

    def route_to_person(self, priority: int = 0) -> RouteTo:
        """Where every unfinished path ends: a person, with what the caller told so far."""
        return RouteTo(
            category=self.variables.get(CATEGORY_VARIABLE),
            unit=self.variables.get(LOCATION_VARIABLE),
            priority=priority,
        )

    def recording_path(self) -> str:
        """recordings/YYYY/MM/DD/<name>, relative to the home, without extension."""
        now = self.call.now
        name = self.call.recording_name or (
            f"{now:%Y%m%dT%H%M%S}-{self.call.line}-{self.call.caller}"
        )
        safe = _UNSAFE_NAME.sub("_", name).strip("_") or "message"
        return str(RECORDINGS_SUBDIR / f"{now:%Y/%m/%d}" / safe)

    def result(self, outcome: Outcome) -> MenuResult:
        return MenuResult(
            path=list(self.path),
            prompts=list(self.prompts),
            variables=dict(self.variables),
            language=self.language,
            outcome=outcome,
        )
