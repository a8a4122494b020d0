"""``return``: go back to the ``next`` of the latest ``call``. Reached without a call
(a mistake the graph checks cannot always see), the caller is routed to a person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ivr.menu.verbs.base import NodeBase, Return, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class ReturnNode(NodeBase):
    verb: Literal["return"]

    async def run(self, state: CallState) -> Step:
        return Return()
