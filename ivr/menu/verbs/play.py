"""``play``: say something, then go on. Not interruptible: a key pressed here is not
an answer to anything yet, and a menu right after it takes keys from its first word."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.base import Exit, Next, NodeBase, NodeId, PathKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class PlayNode(NodeBase):
    """Play a prompt (recorded file or text), then continue at ``next``."""

    verb: Literal["play"]
    prompt: Prompts
    next: NodeId = Field(description="Node to continue at")

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, silent=True)

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        yield from iter_refs(("prompt",), self.prompt)

    async def run(self, state: CallState) -> Step:
        await state.play(as_list(self.prompt))
        return Next(self.next)
