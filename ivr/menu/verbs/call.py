"""``call``: run a sub-menu that ends with ``return``, then continue at ``next``.

Lets one sub-menu (e.g. "press your district") serve many branches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from ivr.menu.verbs.base import Call, Exit, NodeBase, NodeId, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class CallNode(NodeBase):
    verb: Literal["call"]
    target: NodeId
    next: NodeId

    def exits(self) -> Iterator[Exit]:
        yield Exit(("target",), self.target, silent=True)
        yield Exit(("next",), self.next, silent=True)

    async def run(self, state: CallState) -> Step:
        return Call(self.target, return_to=self.next)
