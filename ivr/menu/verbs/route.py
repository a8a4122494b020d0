"""``route``: hand the caller to the router, which finds a person.

Without ``category``/``unit`` the variables ``category`` and ``location`` set earlier
(or preset by the line) are used. This is also where every unfinished path ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.menu.outcome import RouteTo
from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.base import ENDS, Exit, Finish, NameUse, NodeBase, PathKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class RouteNode(NodeBase):
    verb: Literal["route"]
    category: str | None = Field(default=None, description="Category code; default: variable")
    unit: str | None = Field(default=None, description="Unit code; default: variable location")
    priority: int = Field(default=0, ge=0, le=9, description="Higher is answered first")
    prompt: Prompts | None = Field(default=None, description='Said first ("please hold")')

    def exits(self) -> Iterator[Exit]:
        yield ENDS

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        yield from iter_refs(("prompt",), self.prompt)

    def names(self) -> Iterator[NameUse]:
        if self.category is not None:
            yield NameUse("category", ("category",), self.category)
        if self.unit is not None:
            yield NameUse("unit", ("unit",), self.unit)

    async def run(self, state: CallState) -> Step:
        await state.play(as_list(self.prompt))
        default = state.route_to_person(self.priority)
        return Finish(
            RouteTo(
                category=self.category or default.category,
                unit=self.unit or default.unit,
                priority=self.priority,
            )
        )
