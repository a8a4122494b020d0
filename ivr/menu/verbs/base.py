"""What every verb shares: a strict pydantic model for its YAML, the exits the graph
checks follow, the names it uses, and ``run`` for the interpreter.

One verb = one file in this package; ``ivr.menu.verbs`` lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ivr.menu.outcome import Outcome
from ivr.menu.prompts import PromptRef

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState

PathKey = tuple[str | int, ...]

NODE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
NodeId = Annotated[
    str, Field(pattern=NODE_ID_PATTERN, description="Id of a node (unique over all files)")
]
PHONE_KEY_PATTERN = r"^[0-9*#]$"
PhoneKey = Annotated[str, Field(pattern=PHONE_KEY_PATTERN)]
#: Variables with a meaning for the router: checked against routing's codes.
CATEGORY_VARIABLE = "category"
LOCATION_VARIABLE = "location"


@dataclass(frozen=True)
class Exit:
    """A way out of a node. ``target`` None means the run ends there (an outcome).
    ``silent`` exits are taken without the caller pressing anything: a caller who
    presses nothing must still reach an end, so loops are checked along them."""

    path: PathKey
    target: str | None
    silent: bool


@dataclass(frozen=True)
class NameUse:
    """A name the node takes from elsewhere: a calendar or a caller list (dialplans), or a
    category or unit (known to routing). Library prompts are found through prompt_refs."""

    kind: Literal["calendar", "caller_list", "category", "unit"]
    path: PathKey
    name: str


@dataclass(frozen=True)
class Next:
    target: str


@dataclass(frozen=True)
class Call:
    target: str
    return_to: str


@dataclass(frozen=True)
class Return:
    pass


@dataclass(frozen=True)
class Finish:
    outcome: Outcome


Step = Next | Call | Return | Finish
ENDS = Exit((), None, silent=True)


class NodeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    def exits(self) -> Iterator[Exit]:
        return iter(())

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        return iter(())

    def names(self) -> Iterator[NameUse]:
        return iter(())

    def problems(self) -> Iterator[tuple[PathKey, str]]:
        """Checks one field cannot make alone (min <= max, a valid regex, ...)."""
        return iter(())

    async def run(self, state: CallState) -> Step:
        raise NotImplementedError
