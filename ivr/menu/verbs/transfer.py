"""``transfer``: hand the call to police (110) or to an external target named in YAML."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.menu.outcome import TransferTo
from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.base import ENDS, Exit, Finish, NodeBase, PathKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState

POLICE = "110"
TRANSFER_TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class TransferNode(NodeBase):
    verb: Literal["transfer"]
    target: str = Field(
        pattern=TRANSFER_TARGET_PATTERN,
        description='"110" (police) or the name of an external target known to the PBX',
    )
    emergency: bool | None = Field(default=None, description="Default: true for 110")
    prompt: Prompts | None = Field(default=None, description="Said first; keep it short")

    @property
    def is_emergency(self) -> bool:
        return self.target == POLICE if self.emergency is None else self.emergency

    def exits(self) -> Iterator[Exit]:
        yield ENDS

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        yield from iter_refs(("prompt",), self.prompt)

    def problems(self) -> Iterator[tuple[PathKey, str]]:
        if self.target == POLICE and self.emergency is False:
            yield ("emergency",), "a transfer to 110 is always an emergency transfer"

    async def run(self, state: CallState) -> Step:
        await state.play(as_list(self.prompt))
        return Finish(TransferTo(target=self.target, emergency=self.is_emergency))
