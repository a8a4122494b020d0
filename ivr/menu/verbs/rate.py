"""``rate``: the citizen's answer to a follow-up survey (满意 / 基本满意 / 不满意).

It only notes the rating in the call's variables (``rating``); the controller writes it on
the ticket when the survey ends, where a dissatisfied answer reopens the ticket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.menu.verbs.base import Exit, Next, NodeBase, NodeId, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState

#: The call variable the survey's answer is kept in.
RATING_VARIABLE = "rating"
#: The ratings of ivr.tickets.lifecycle.Rating (kept in step by a unit test: the menu
#: engine does not import the ticket store).
RatingName = Literal["satisfied", "basically_satisfied", "dissatisfied"]


class RateNode(NodeBase):
    verb: Literal["rate"]
    rating: RatingName = Field(description="What the citizen answered")
    next: NodeId

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, silent=True)

    async def run(self, state: CallState) -> Step:
        state.variables[RATING_VARIABLE] = self.rating
        return Next(self.next)
