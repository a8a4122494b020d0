"""A whole hotline on one machine for one home: the PBX rendered from the deployment and
started, and, for demos and tests, simulated SIP phones for every agent and the 110 centre."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import yaml

from ivr.deployment import Deployment
from ivr.home import Home
from ivr.menu import build_prompts
from ivr.pbx.asterisk import AsteriskProcess, Provisioned, provision, wait_fully_booted
from ivr.pbx.plan import build_plan
from ivr.pbx.render import write_files
from ivr.secrets import AMI_SECRET, AMI_USER, SecretStore, agent_secret_name
from ivr.sipp.peers import AgentPhone, AgentPool, PhoneProcess

log = structlog.get_logger(__name__)


class StackError(RuntimeError):
    pass


@dataclass
class Pbx:
    """The Asterisk of one home, rendered from its deployment."""

    home: Home
    deployment: Deployment
    provisioned: Provisioned = field(default_factory=provision)

    def __post_init__(self) -> None:
        self.process = AsteriskProcess(self.home, self.provisioned)
        self.secrets = SecretStore.for_home(self.home)

    @property
    def pbx_home(self) -> str:
        configured = self.deployment.settings.pbx.home_in_pbx
        return configured or self.process.pbx_home

    def render(self) -> None:
        report = build_prompts(self.deployment.menus, self.home)
        if report.failed:
            raise StackError("prompts could not be built:\n" + "\n".join(map(str, report.failed)))
        plan = build_plan(
            self.deployment.settings, self.deployment.routing, self.secrets, self.pbx_home
        )
        self.process.prepare_dirs()
        write_files(plan, self.process.etc_dir)
        self.process.prepare_dirs()

    async def start(self, timeout: float = 60.0) -> None:
        self.render()
        self.process.start()
        pbx = self.deployment.settings.pbx
        await wait_fully_booted(
            pbx.bind, pbx.ami_port, AMI_USER, self.secrets.get(AMI_SECRET), timeout, self.process
        )
        log.info("asterisk ready", sip_port=pbx.sip_port, ami_port=pbx.ami_port)

    def stop(self) -> None:
        self.process.stop()


@dataclass
class SimulatedPhones:
    """A SIPp phone for every agent (registered, answering) and the 110 centre."""

    home: Home
    deployment: Deployment
    ring_ms: int = 600
    #: How long each agent talks before hanging up.
    talk_ms: int = 3000
    #: Agents whose phone is off (not registered): nobody there.
    absent: frozenset[str] = frozenset()
    #: Agents whose phone registers and rings but nobody picks up.
    silent: frozenset[str] = frozenset()
    #: Whether the simulated 110 centre answers (or lets the trunk ring unanswered).
    centre_answers: bool = True
    #: Agents that share one phone process answering any number of calls (load tests).
    pooled: frozenset[str] = frozenset()
    niceness: int = 0
    phones: list[PhoneProcess] = field(default_factory=list)

    async def start(self) -> None:
        secrets = SecretStore.for_home(self.home)
        settings = self.deployment.settings
        work = self.home.var_dir / "phones"
        agents = [
            a
            for a in self.deployment.routing.agents.values()
            if a.id not in self.absent and a.id not in self.pooled
        ]
        if self.pooled:
            self.phones.append(
                AgentPool(
                    user="pool",
                    agents={a: secrets.get(agent_secret_name(a)) for a in self.pooled},
                    pbx_host=settings.pbx.bind,
                    pbx_port=settings.pbx.sip_port,
                    ring_ms=self.ring_ms,
                    talk_ms=self.talk_ms,
                    niceness=self.niceness,
                    work_dir=work,
                )
            )
        for agent in sorted(agents, key=lambda a: a.id):
            phone = AgentPhone(
                user=agent.id,
                secret=secrets.get(agent_secret_name(agent.id)),
                pbx_host=settings.pbx.bind,
                pbx_port=settings.pbx.sip_port,
                ring_ms=self.ring_ms,
                talk_ms=self.talk_ms,
                answer=agent.id not in self.silent,
                niceness=self.niceness,
                work_dir=work,
            )
            self.phones.append(phone)
        centre = PhoneProcess(
            user="110",
            local_port=settings.emergency.trunk.port,
            ring_ms=300,
            answer=self.centre_answers,
            fixed_port=True,
            niceness=self.niceness,
            work_dir=work,
        )
        self.phones.append(centre)
        await asyncio.gather(*(phone.start() for phone in self.phones))

    async def stop(self) -> None:
        await asyncio.gather(*(phone.stop() for phone in self.phones))
        self.phones.clear()


def add_simulated_agents(root: Path, unit: str, agent_ids: Sequence[str]) -> None:
    """Give ``unit`` of the home at ``root`` more agents (ids ``agent_ids``, speaking zh and
    en) and no wrap-up, so that each answers again at once: load tests and benches."""
    agents = root / "routing" / "agents.yaml"
    extra = "".join(
        f'  - {{id: "{agent}", name: 压测{agent}, unit: {unit}, languages: [zh, en]}}\n'
        for agent in agent_ids
    )
    agents.write_text(agents.read_text(encoding="utf-8") + extra, encoding="utf-8")
    without_wrapup(root, [unit])


def without_wrapup(root: Path, units_named: Collection[str] | None = None) -> None:
    """The queues of the home at ``root`` (of ``units_named``, or all) take their agents'
    next call at once (fuzz tests and benches send many calls to the same few agents)."""
    units_file = root / "routing" / "units.yaml"
    units = yaml.safe_load(units_file.read_text(encoding="utf-8"))
    for entry in units["units"]:
        if units_named is None or entry["code"] in units_named:
            entry.setdefault("queue", {})["wrapup"] = 0
    units_file.write_text(
        yaml.safe_dump(units, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
