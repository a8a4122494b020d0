"""The controller: the FastAGI server answering Asterisk's AGI() calls, the AMI client
following queues and agents, the ticket store and the event notifier, wired together.

I/O lives here and in the modules it starts; what a call does is decided by the menu
engine and the router, which never see a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry

from ivr.agent_board import AgentBoard, MemberState
from ivr.agi import FastAgiServer
from ivr.allocator import limit_malloc_arenas, return_free_memory_every
from ivr.ami import AmiActionError, AmiClient, AmiMessage, AmiNotConnected
from ivr.call_events import CALL_EVENTS, CallEventRecorder, queue_units
from ivr.deployment import Deployment, DeploymentHolder
from ivr.events import EventNotifier
from ivr.features import followup, hotline
from ivr.firewall import FirewallUnavailable, NftFirewall
from ivr.guard import SECURITY_EVENTS, SecurityGuard
from ivr.home import Home
from ivr.hotspot_alarms import run_hotspot_scheduler
from ivr.live_metrics import (
    QUEUE_CALLER_EVENTS,
    CallMetrics,
    HotlineCollector,
    MetricsServer,
    QueueCallers,
)
from ivr.outbound.dialer import OutboundDialer
from ivr.overdue import run_scheduler
from ivr.reconcile import CdrCall, CdrFollower, default_cdr_path, reconcile_calls
from ivr.secrets import AMI_SECRET, AMI_USER, SecretStore
from ivr.services import CallServices, utc_now
from ivr.settings import Settings, database_url
from ivr.spool import (
    OutageTolerantHistory,
    SpoolingTicketWriter,
    TicketSpool,
    default_spool_path,
)
from ivr.ticket_feed import TicketChangePublisher
from ivr.tickets import TicketStore
from ivr.yamlsource import Problem

log = structlog.get_logger(__name__)

AMI_RECONNECT_MAX_SECONDS = 1.0
RESYNC_TRIES = 40
RESYNC_PAUSE_SECONDS = 0.25
MEMBER_EVENTS = ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause")


def _fields(message: AmiMessage) -> dict[str, str]:
    return {name: values[0] for name, values in message.headers.items() if values}


class Controller:
    def __init__(
        self, home: Home, *, pbx_home: str, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.home = home
        self.pbx_home = pbx_home
        self.clock = clock
        self.deployments = DeploymentHolder(home)
        self.board = AgentBoard()
        self.store: TicketStore | None = None
        self.writer: SpoolingTicketWriter | None = None
        self.ami: AmiClient | None = None
        self.agi: FastAgiServer | None = None
        self.notifier: EventNotifier | None = None
        self.guard: SecurityGuard | None = None
        self.firewall: NftFirewall | None = None
        #: The one registry of every Prometheus figure, the notifier's included.
        self.registry = CollectorRegistry()
        self.queue_callers = QueueCallers()
        self.metrics_server: MetricsServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def state_file(self) -> Path:
        return self.home.var_dir / "run" / "controller.json"

    async def start(self) -> None:
        limit_malloc_arenas()
        deployment = self.deployments.current
        settings = deployment.settings
        self.store = TicketStore(database_url(self.home, settings), deadlines=deployment.deadlines)
        await self.store.start()
        # Calls keep writing when the database is away: the spool holds their tickets.
        self.writer = SpoolingTicketWriter(self.store, TicketSpool(default_spool_path(self.home)))
        await self.writer.start()
        # The one publisher of events; with MQTT switched off it publishes nothing.
        self.notifier = EventNotifier(settings.mqtt, registry=self.registry)
        await self.notifier.start()
        services = CallServices(
            home=self.home,
            deployments=self.deployments,
            tickets=self.writer,
            history=OutageTolerantHistory(self.store),
            agents=self.board,
            pbx_home=self.pbx_home,
            notifier=self.notifier,
            clock=self.clock,
            call_metrics=CallMetrics(self.registry),
        )
        recorder = CallEventRecorder(services)
        secrets = SecretStore.for_home(self.home)
        self.ami = AmiClient(
            host=settings.pbx.bind,
            port=settings.pbx.ami_port,
            username=AMI_USER,
            secret=secrets.get(AMI_SECRET),
            on_reconnect=self.resync_agents,
            # Asterisk is on this machine: after a restart, routing must see its agents
            # again within seconds, and a connect attempt to loopback costs nothing.
            reconnect_max_s=AMI_RECONNECT_MAX_SECONDS,
        )
        for name in MEMBER_EVENTS:
            self.ami.on_event(name, lambda message: self.board.apply(_fields(message)))
        for name in QUEUE_CALLER_EVENTS:
            self.ami.on_event(
                name, lambda message: self.queue_callers.apply(_fields(message), self.clock())
            )
        for name in CALL_EVENTS:
            self.ami.on_event(name, partial(self._on_call_event, recorder))
        dialer = OutboundDialer(
            self.store, self.ami, self.board, self.deployments, self.clock,
            outbound_calls=services.outbound_calls,
        )
        dialer.listen()
        await self._start_guard(settings)
        for name in SECURITY_EVENTS:
            self.ami.on_event(name, self._on_security_event)
        try:
            await self.ami.start()
            await self.resync_agents()
        except AmiNotConnected:
            # Asterisk may come later (or restart); the client keeps trying and resyncs.
            log.warning("AMI not reachable yet; calls still run, routing sees no agents")
        self.agi = FastAgiServer(
            host=settings.controller.agi_host,
            port=settings.controller.agi_port,
            sounds_root=self.pbx_home,
            header_timeout_s=settings.controller.agi_header_timeout,
        )
        self.agi.register("ivr", partial(hotline.handle, services=services))
        followups = followup.FollowupServices(self.home, self.store, self.deployments, self.clock)
        self.agi.register("followup", partial(followup.handle, services=followups))
        await self.agi.start()
        self._tasks.append(asyncio.create_task(self._watch_config()))
        ticket_changes = TicketChangePublisher(self.store, self.notifier)
        await ticket_changes.start_from_now()
        self._tasks.append(asyncio.create_task(ticket_changes.run()))
        # Follow-ups of resolved tickets and callbacks of missed calls (ivr.outbound).
        self._tasks.append(asyncio.create_task(dialer.run()))
        self._tasks.append(asyncio.create_task(self._reconcile_loop()))
        self._tasks.append(asyncio.create_task(return_free_memory_every()))
        self._tasks.append(
            asyncio.create_task(
                run_scheduler(
                    self.store,
                    lambda: self.deployments.current.routing,
                    self.notifier,
                    self.clock,
                )
            )
        )
        await self._start_reports(settings)
        self._write_state()
        log.info("controller ready", agi_port=self.agi.port, ami_port=settings.pbx.ami_port)

    async def _start_reports(self, settings: Settings) -> None:
        """Hotspot alarms, and the operators' figures on /metrics (docs/metrics.md)."""
        assert self.store is not None and self.notifier is not None
        reports = settings.reports
        if reports.hotspot_interval_minutes > 0:
            self._tasks.append(
                asyncio.create_task(
                    run_hotspot_scheduler(
                        self.store,
                        lambda: self.deployments.current.routing,
                        self.notifier,
                        self.clock,
                        reports.hotspot_interval_minutes * 60,
                    )
                )
            )
        if settings.controller.metrics_port == 0:
            return
        collector = HotlineCollector(
            self.board,
            self.queue_callers,
            lambda: {
                queue: unit
                for queue, (unit, _) in queue_units(self.deployments.current.routing).items()
            },
            self.clock,
            reports.answer_within_seconds,
            reports.service_level_window_minutes,
        )
        self.registry.register(collector)
        self._tasks.append(asyncio.create_task(collector.run_service_level(self.store)))
        server = MetricsServer(
            self.registry, settings.controller.metrics_host, settings.controller.metrics_port
        )
        try:
            await server.start()
        except OSError as exc:
            # Calls matter more than figures: the hotline runs on without them.
            log.error("metrics endpoint not started", port=server.port, error=str(exc))
            return
        self.metrics_server = server
        log.info("metrics served", url=f"http://{server.host}:{server.port}/metrics")

    async def _start_guard(self, settings: Settings) -> None:
        """Scanners and password crackers get their source banned (ivr/guard.py)."""
        self.guard = SecurityGuard(settings.security, time.monotonic)
        if not settings.security.enabled:
            return
        firewall = NftFirewall(settings.pbx.sip_port)
        try:
            await firewall.start()
        except FirewallUnavailable as exc:
            # Calls matter more: the hotline runs on and logs the bans it cannot make.
            log.error("bans cannot be enforced", error=str(exc))
            return
        self.firewall = firewall

    async def _on_security_event(self, message: AmiMessage) -> None:
        assert self.guard is not None and self.notifier is not None
        try:
            ban = self.guard.record(message.event, message.get("remoteaddress"))
            if ban is None:
                return
            enforced = False
            if self.firewall is not None:
                await self.firewall.ban(ban.address, ban.seconds)
                enforced = True
            log.warning(
                "source banned" if enforced else "source to ban, but no firewall",
                address=ban.address,
                seconds=ban.seconds,
                reason=ban.reason,
                count=ban.count,
            )
            self.notifier.publish(
                "alarm.raised",
                {
                    "kind": "source_banned",
                    "message": f"{ban.address}: {ban.count} x {ban.reason}; banned {ban.seconds} s",
                    "details": {
                        "address": ban.address,
                        "seconds": ban.seconds,
                        "reason": ban.reason,
                        "count": ban.count,
                        "enforced": enforced,
                    },
                },
            )
        except Exception:
            # A malformed event, or nft failing, must never disturb live calls.
            log.exception("could not act on a security event", ami_event=message.event)

    async def _on_call_event(self, recorder: CallEventRecorder, message: AmiMessage) -> None:
        try:
            await recorder.on_event(_fields(message))
        except Exception:
            # A malformed or unexpected event must never disturb live calls.
            log.exception("could not record a queue event", ami_event=message.event)

    async def resync_agents(self) -> None:
        """Start again from Asterisk's own view of every queue member."""
        if self.ami is None:
            return
        members = None
        for attempt in range(RESYNC_TRIES):
            try:
                members = await self.ami.queue_status()
                break
            except AmiActionError:
                # Asterisk takes AMI logins before app_queue is loaded: just after a restart
                # QueueStatus is still an unknown command for a moment.
                if attempt == RESYNC_TRIES - 1:
                    raise
                await asyncio.sleep(RESYNC_PAUSE_SECONDS)
        assert members is not None
        # Who waits is told by events only: forget callers whose leaving may have been missed.
        self.queue_callers.clear()
        self.board.replace_all(
            MemberState(m.queue, m.interface, m.status, m.paused, m.paused_reason, m.last_call)
            for m in members
        )
        log.info("agent state read", members=len(members))

    async def _watch_config(self) -> None:
        def applied(deployment: Deployment) -> None:
            log.info("configuration reloaded", at=deployment.loaded_at.isoformat())

        def rejected(problems: list[Problem]) -> None:
            for problem in problems:
                log.error("configuration change rejected", problem=str(problem))

        await self.deployments.watch(applied, rejected)

    async def _reconcile_loop(self) -> None:
        """Tickets for the calls the dialplan's fallback took while we were away: at start,
        then now and then for calls that were still going on."""
        assert self.store is not None and self.writer is not None
        follower = CdrFollower(default_cdr_path(self.home))
        unsettled: dict[str, CdrCall] = {}
        while True:
            try:
                await self.writer.drain()
                # Call records carry real time, whatever the controller's (pinned) clock says.
                now = utc_now()
                calls = await asyncio.to_thread(follower.new_calls, now)
                # Calls appended now replace their earlier, shorter versions.
                waiting = {**unsettled, **{call.linkedid: call for call in calls}}
                report = await reconcile_calls(self.store, list(waiting.values()), now=now)
                unsettled = {call.linkedid: call for call in report.unsettled}
                if report.created or report.completed:
                    log.info("tickets reconciled from call records", created=report.created,
                             completed=report.completed)
            except Exception:
                log.exception("reconciliation failed; trying again later")
            await asyncio.sleep(self.deployments.current.settings.controller.reconcile_seconds)

    def _write_state(self) -> None:
        assert self.agi is not None
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        # Whole or absent: `ivr status` and the tests read it while it is being written.
        partial = self.state_file.with_suffix(".tmp")
        partial.write_text(
            json.dumps({"pid": os.getpid(), "agi_port": self.agi.port, "pbx_home": self.pbx_home})
        )
        partial.replace(self.state_file)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.agi is not None:
            await self.agi.close()
        if self.metrics_server is not None:
            await self.metrics_server.close()
        if self.ami is not None:
            await self.ami.close()
        if self.firewall is not None:
            await self.firewall.close()
        if self.notifier is not None:
            await self.notifier.close()
        if self.writer is not None:
            await self.writer.close()
        if self.store is not None:
            await self.store.close()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
