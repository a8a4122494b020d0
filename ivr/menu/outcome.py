"""How a menu run ends: exactly one of four outcomes, handed to the controller.

The interpreter decides nothing about queues, agents or the PBX; it says what the caller
asked for (or what the tree decided) and the controller acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RouteTo:
    """Hand the caller to the router, which finds a person. ``unit`` is a preset
    department (a unit code such as ``d-east``), ``category`` a request category code."""

    category: str | None
    unit: str | None
    priority: int = 0


@dataclass(frozen=True)
class TransferTo:
    """Hand the call to another service: ``"110"`` for police or a target name from YAML."""

    target: str
    emergency: bool


@dataclass(frozen=True)
class VoiceMessage:
    """The caller left a message; ``recording`` is relative to the home, without extension."""

    recording: str
    seconds: float


GoodbyeReason = Literal["goodbye", "caller_hung_up", "failure"]


@dataclass(frozen=True)
class Goodbye:
    """The call ends without a person: the tree said goodbye, the caller hung up, or the
    tree ended in a polite failure."""

    reason: GoodbyeReason


Outcome = RouteTo | TransferTo | VoiceMessage | Goodbye
