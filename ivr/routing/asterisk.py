"""What the Asterisk renderer needs from the routing tables: queues and agents, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.routing.schema import Language, QueueStrategy
from ivr.routing.tables import RoutingTables, queue_name


@dataclass(frozen=True)
class QueueSpec:
    name: str
    strategy: QueueStrategy
    ring_timeout: int
    wrapup: int
    announce_position: bool
    announce_holdtime: bool
    #: Agent ids (SIP usernames), sorted.
    members: tuple[str, ...]


@dataclass(frozen=True)
class AgentSpec:
    id: str
    name: str
    unit: str
    languages: tuple[Language, ...]


def asterisk_view(tables: RoutingTables) -> tuple[list[QueueSpec], list[AgentSpec]]:
    """One queue per (unit, language the unit handles), with every agent of the unit who
    speaks it; agents sorted by id. A queue may have no members (a unit that only passes
    calls on): routing skips it, but the dialplan may still name it."""
    members: dict[str, list[str]] = {}
    for agent in sorted(tables.agents.values(), key=lambda a: a.id):
        for language in agent.languages:
            members.setdefault(queue_name(agent.unit, language), []).append(agent.id)
    queues = []
    for code in sorted(tables.units):
        unit = tables.units[code]
        settings = unit.queue
        for language in unit.languages:
            name = queue_name(code, language)
            queues.append(QueueSpec(
                name=name,
                strategy=settings.strategy,
                ring_timeout=settings.ring_timeout,
                wrapup=settings.wrapup,
                announce_position=settings.announce_position,
                announce_holdtime=settings.announce_holdtime,
                members=tuple(members.get(name, ())),
            ))
    agents = [AgentSpec(a.id, a.name, a.unit, a.languages)
              for a in sorted(tables.agents.values(), key=lambda a: a.id)]
    return queues, agents
