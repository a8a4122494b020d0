"""What Asterisk must be, derived from the deployment: agents' endpoints with their
secrets, one queue per unit and language, the lines and landing DIDs, the 110 trunks."""

from __future__ import annotations

from ivr.pbx.render import AgentEndpoint, LinePlan, PbxPlan, QueuePlan, TrunkPlan
from ivr.routing import RoutingTables, asterisk_view
from ivr.secrets import AMI_SECRET, AMI_USER, SecretStore, agent_secret_name
from ivr.settings import Settings


def fallback_members(tables: RoutingTables) -> tuple[str, ...]:
    """The city unit's own agents answer when the controller cannot route."""
    return tuple(sorted(a.id for a in tables.agents.values() if a.unit == tables.city))


def build_plan(
    settings: Settings, tables: RoutingTables, secrets: SecretStore, pbx_home: str
) -> PbxPlan:
    queues, agents = asterisk_view(tables)
    queue_plans = [
        QueuePlan(
            name=q.name,
            members=tuple(q.members),
            strategy=q.strategy,
            ring_timeout=q.ring_timeout,
            wrapup=q.wrapup,
            announce_position=q.announce_position,
            announce_holdtime=q.announce_holdtime,
        )
        for q in queues
    ]
    city_queue_names = {q.name for q in queue_plans}
    if settings.fallback.queue not in city_queue_names:
        queue_plans.append(QueuePlan(settings.fallback.queue, fallback_members(tables)))
    if settings.emergency.supervisors_queue not in {q.name for q in queue_plans}:
        queue_plans.append(
            QueuePlan(settings.emergency.supervisors_queue, fallback_members(tables))
        )
    lines = [LinePlan(number, number, "") for number in sorted(tables.lines)]
    hotline = next((n for n, line in sorted(tables.lines.items()) if line.kind == "hotline"), None)
    if hotline is not None:
        # A carrier delivers the hotline on one DID per zone; each lands on the hotline line
        # with the DID passed along so the router knows where the caller is.
        lines += [LinePlan(did, hotline, did) for did in sorted(tables.landing_dids)]
    trunks = [
        TrunkPlan(
            "trunk-110" if index == 0 else f"trunk-110-alt{index}", address.host, address.port
        )
        for index, address in enumerate((settings.emergency.trunk, *settings.emergency.alternates))
    ]
    return PbxPlan(
        settings=settings,
        pbx_home=pbx_home,
        ami_user=AMI_USER,
        ami_secret=secrets.get(AMI_SECRET),
        agents=[
            AgentEndpoint(a.id, a.name, a.unit, secrets.get(agent_secret_name(a.id)))
            for a in agents
        ],
        queues=queue_plans,
        lines=lines,
        trunks=trunks,
        emergency_number=tables.emergency_number,
    )
