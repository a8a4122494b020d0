"""The verbs of the menu language, one file each. A node is a mapping with ``verb:``
naming one of them; the rest of its keys are that verb's fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ivr.menu.verbs.base import NodeBase
from ivr.menu.verbs.call import CallNode
from ivr.menu.verbs.collect import CollectNode
from ivr.menu.verbs.condition import ConditionNode
from ivr.menu.verbs.goto import GotoNode
from ivr.menu.verbs.hangup import HangupNode
from ivr.menu.verbs.menu import MenuNode
from ivr.menu.verbs.play import PlayNode
from ivr.menu.verbs.rate import RateNode
from ivr.menu.verbs.record import RecordNode
from ivr.menu.verbs.return_ import ReturnNode
from ivr.menu.verbs.route import RouteNode
from ivr.menu.verbs.set import SetNode
from ivr.menu.verbs.transfer import TransferNode

Node = (
    PlayNode
    | MenuNode
    | CollectNode
    | SetNode
    | GotoNode
    | CallNode
    | ReturnNode
    | ConditionNode
    | RouteNode
    | TransferNode
    | RecordNode
    | HangupNode
    | RateNode
)
#: verb name -> node model
VERBS: dict[str, type[NodeBase]] = {
    "play": PlayNode,
    "menu": MenuNode,
    "collect": CollectNode,
    "set": SetNode,
    "goto": GotoNode,
    "call": CallNode,
    "return": ReturnNode,
    "condition": ConditionNode,
    "route": RouteNode,
    "transfer": TransferNode,
    "record": RecordNode,
    "hangup": HangupNode,
    "rate": RateNode,
}
#: For the JSON Schema: the node union told apart by ``verb``.
AnyNode = Annotated[Node, Field(discriminator="verb")]

__all__ = [
    "VERBS",
    "AnyNode",
    "CallNode",
    "CollectNode",
    "ConditionNode",
    "GotoNode",
    "HangupNode",
    "MenuNode",
    "Node",
    "NodeBase",
    "PlayNode",
    "RateNode",
    "RecordNode",
    "ReturnNode",
    "RouteNode",
    "SetNode",
    "TransferNode",
]
