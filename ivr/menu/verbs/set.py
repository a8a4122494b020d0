"""``set``: set call variables (category, location, ...) and/or the prompt language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from ivr.menu.prompts import Language
from ivr.menu.verbs.base import (
    CATEGORY_VARIABLE,
    LOCATION_VARIABLE,
    Exit,
    NameUse,
    Next,
    NodeBase,
    NodeId,
    PathKey,
    Step,
)

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState

VARIABLE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
VariableName = Annotated[str, Field(pattern=VARIABLE_NAME_PATTERN)]
#: Names the interpreter (or a verb of their own: ``rate``) fills; a YAML ``set`` of them
#: would be silently confusing.
RESERVED_VARIABLES = frozenset({"language", "line", "caller", "rating"})


class SetNode(NodeBase):
    verb: Literal["set"]
    variables: dict[VariableName, str] = Field(
        default_factory=dict,
        description="category = a category code, location = a unit code, others free",
    )
    language: Language | None = Field(
        default=None, description="Switch every prompt for the rest of the call"
    )
    next: NodeId

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, silent=True)

    def names(self) -> Iterator[NameUse]:
        for name, value in self.variables.items():
            if name == CATEGORY_VARIABLE:
                yield NameUse("category", ("variables", name), value)
            elif name == LOCATION_VARIABLE:
                yield NameUse("unit", ("variables", name), value)

    def problems(self) -> Iterator[tuple[PathKey, str]]:
        if not self.variables and self.language is None:
            yield (), "set needs variables or language"
        for name in self.variables:
            if name in RESERVED_VARIABLES:
                hint = "; use 'language:' to switch" if name == "language" else ""
                yield ("variables", name), f"variable {name!r} is set by the engine{hint}"

    async def run(self, state: CallState) -> Step:
        state.variables.update(self.variables)
        if self.language is not None:
            await state.switch_language(self.language)
        return Next(self.next)
