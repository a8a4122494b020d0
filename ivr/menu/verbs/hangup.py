"""``hangup``: end the call politely with a goodbye prompt."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.channel import CallerHungUp
from ivr.menu.outcome import Goodbye
from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.base import ENDS, Exit, Finish, NodeBase, PathKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class HangupNode(NodeBase):
    verb: Literal["hangup"]
    prompt: Prompts | None = Field(default=None, description="Goodbye prompt")
    reason: Literal["goodbye", "failure"] = Field(
        default="goodbye", description="failure: the tree could not help (counted apart)"
    )

    def exits(self) -> Iterator[Exit]:
        yield ENDS

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        yield from iter_refs(("prompt",), self.prompt)

    async def run(self, state: CallState) -> Step:
        # the tree's own end was reached; hanging up during goodbye is polite enough
        with contextlib.suppress(CallerHungUp):
            await state.play(as_list(self.prompt))
        return Finish(Goodbye(self.reason))
