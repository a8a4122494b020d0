"""What ``menu`` and ``collect`` share: ask, retry on no input or invalid input with
their own prompts, and after ``tries`` attempts go to ``failure``.

Without ``failure`` the caller is routed to a person with what is known so far: a caller
who presses nothing (often elderly) must still end with someone, so that is the default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import Field

from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.base import Exit, Finish, Next, NodeBase, NodeId, PathKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState

DEFAULT_TRIES = 3


class AskingNode(NodeBase):
    prompt: Prompts = Field(description="Asked on every try (barge-in: a key stops it)")
    timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds to wait for a key")
    tries: int = Field(default=DEFAULT_TRIES, ge=1, le=10)
    no_input: Prompts | None = Field(default=None, description="Said before a retry after silence")
    invalid: Prompts | None = Field(default=None, description="Said before a retry after a bad key")
    failure_prompt: Prompts | None = Field(default=None, description="Said when tries run out")
    failure: NodeId | None = Field(
        default=None, description="Where to go when tries run out; default: route to a person"
    )

    def exits(self) -> Iterator[Exit]:
        yield Exit(("failure",), self.failure, silent=True)

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        for name in ("prompt", "no_input", "invalid", "failure_prompt"):
            yield from iter_refs((name,), getattr(self, name))

    def retry_prompts(self, answer: str) -> list[PromptRef]:
        return as_list(self.no_input if answer == "" else self.invalid)

    async def fail(self, state: CallState) -> Step:
        await state.play(as_list(self.failure_prompt))
        if self.failure is not None:
            return Next(self.failure)
        return Finish(state.route_to_person())
