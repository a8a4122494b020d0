"""``menu``: one key chooses among options; no input and invalid keys are retried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.asking import AskingNode
from ivr.menu.verbs.base import Exit, Next, NodeId, PathKey, PhoneKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class MenuNode(AskingNode):
    verb: Literal["menu"]
    intro: Prompts | None = Field(
        default=None, description="Said once before the first prompt (a greeting), not on retries"
    )
    options: dict[PhoneKey, NodeId] = Field(
        min_length=1, description='Key -> node; quote "*" and "#" in YAML'
    )

    def exits(self) -> Iterator[Exit]:
        for key, target in self.options.items():
            yield Exit(("options", key), target, silent=False)
        yield from super().exits()

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        yield from iter_refs(("intro",), self.intro)
        yield from super().prompt_refs()

    async def run(self, state: CallState) -> Step:
        before = as_list(self.intro)
        for _ in range(self.tries):
            key = await state.read_digits(
                [*before, *as_list(self.prompt)],
                max_digits=1,
                timeout_s=self.timeout,
                terminator="",  # '#' may be an option here
            )
            if key in self.options:
                return Next(self.options[key])
            before = self.retry_prompts(key)
        return await self.fail(state)
