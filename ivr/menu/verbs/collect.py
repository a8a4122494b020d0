"""``collect``: read several digits (an ID or a phone number) into a variable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.menu.prompts import PromptRef, as_list
from ivr.menu.verbs.asking import AskingNode
from ivr.menu.verbs.base import Exit, Next, NodeId, PathKey, Step
from ivr.menu.verbs.set import RESERVED_VARIABLES, VariableName

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class CollectNode(AskingNode):
    verb: Literal["collect"]
    variable: VariableName = Field(description="Variable that receives the digits")
    min_digits: int = Field(default=1, ge=1, le=64)
    max_digits: int = Field(default=20, ge=1, le=64)
    terminator: Literal["#", "*", ""] = Field(default="#", description="Key that ends input early")
    pattern: str | None = Field(default=None, description="Regex the whole input must match")
    timeout: float = Field(default=8.0, gt=0, le=60, description="Seconds to wait for a key")
    next: NodeId

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, silent=False)
        yield from super().exits()

    def problems(self) -> Iterator[tuple[PathKey, str]]:
        if self.min_digits > self.max_digits:
            yield ("min_digits",), "min_digits is greater than max_digits"
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                yield ("pattern",), f"invalid regular expression: {exc}"
        if self.variable in RESERVED_VARIABLES:
            yield ("variable",), f"variable {self.variable!r} is set by the engine"

    def accepts(self, digits: str) -> bool:
        if not self.min_digits <= len(digits) <= self.max_digits:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, digits) is not None

    async def run(self, state: CallState) -> Step:
        before: list[PromptRef] = []
        for _ in range(self.tries):
            digits = await state.read_digits(
                [*before, *as_list(self.prompt)],
                max_digits=self.max_digits,
                timeout_s=self.timeout,
                terminator=self.terminator,
            )
            if self.terminator:
                digits = digits.removesuffix(self.terminator)
            if digits and self.accepts(digits):
                state.variables[self.variable] = digits
                return Next(self.next)
            before = self.retry_prompts(digits)
        return await self.fail(state)
