"""``goto``: continue at another node (possibly in another file)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from ivr.menu.verbs.base import Exit, Next, NodeBase, NodeId, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class GotoNode(NodeBase):
    verb: Literal["goto"]
    target: NodeId

    def exits(self) -> Iterator[Exit]:
        yield Exit(("target",), self.target, silent=True)

    async def run(self, state: CallState) -> Step:
        return Next(self.target)
