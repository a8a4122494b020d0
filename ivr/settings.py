"""Deployment settings from config/hotline.yaml, validated with file:line errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator

from ivr.home import Home
from ivr.routing.hours import WeeklySchedule, parse_schedule
from ivr.yamlsource import load_yaml, validate_model

SETTINGS_FILE = "hotline.yaml"
Port = Annotated[int, Field(ge=1, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PbxSettings(_Strict):
    """Where Asterisk listens. All on loopback by default: AMI must never leave it."""

    bind: str = "127.0.0.1"
    sip_port: Port = 5060
    ami_port: Port = 5038
    rtp_port_start: Port = 10000
    rtp_port_end: Port = 20000
    #: How the PBX sees this home (prompt and recording paths sent to it); empty = decided
    #: by how it runs (``/ivrhome`` in the cached sid root, else the home itself).
    home_in_pbx: str = ""


class ControllerSettings(_Strict):
    agi_host: str = "127.0.0.1"
    agi_port: Port = 4573
    #: Seconds a FastAGI peer may take to send its header before it is dropped.
    agi_header_timeout: float = Field(default=5.0, gt=0)
    #: Prometheus ``/metrics`` (docs/metrics.md) on this port; 0 = not served. Loopback by
    #: default: the figures name units and queues, which is no one else's business.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    #: How often Asterisk's call records are read for calls without a (finished) ticket.
    reconcile_seconds: float = Field(default=30.0, gt=0)


class DatabaseSettings(_Strict):
    #: SQLAlchemy async URL; a relative sqlite path is relative to the home's var/ folder.
    url: str = "sqlite+aiosqlite:///tickets.db"


class MqttSettings(_Strict):
    host: str = "127.0.0.1"
    port: Port = 1883
    topic_prefix: str = "hotline"
    enabled: bool = True


class RecordingSettings(_Strict):
    retention_days: int = Field(default=180, ge=1)
    #: Below this much free space on the recordings disk calls are not recorded (and an
    #: alarm is raised) rather than recorded into empty files.
    min_free_mb: int = Field(default=200, ge=0)


class FallbackSettings(_Strict):
    """Where the dialplan sends callers when the controller is unreachable."""

    queue: str = "fallback"
    timeout_seconds: int = Field(default=300, ge=5)


class TrunkAddress(_Strict):
    host: str = "127.0.0.1"
    port: Port = 5090


class EmergencySettings(_Strict):
    """The police line 110: a PJSIP trunk, with alternates tried in order when it fails."""

    trunk: TrunkAddress = TrunkAddress()
    alternates: tuple[TrunkAddress, ...] = ()
    #: Seconds the 110 centre may ring before the next alternate is tried.
    answer_timeout_seconds: int = Field(default=8, ge=1)
    #: The queue of the city's supervisors: the last resort of an emergency caller.
    supervisors_queue: str = "fallback"
    #: How hand-overs from the 110 platform are recognised. In production, its address
    #: (``inbound_ip``, an IP or CIDR: only that host can reach the from-110 context); on a
    #: test bench where everything is loopback, a header it sends (``inbound_header``,
    #: "Name: value"), which any peer could forge: never use it on a reachable network.
    inbound_ip: str = ""
    inbound_header: str = "X-Police-Handover: 110"
    #: The SIP header in which the police platform names the matter (a from_110 code).
    category_header: str = "X-Handover-Category"


class ReportSettings(_Strict):
    """What the controller works out from the tickets while it runs."""

    #: Minutes between two hotspot checks of the recent tickets (alarm ``hotspot``); 0 = none.
    hotspot_interval_minutes: float = Field(default=15, ge=0)
    #: The service level counts calls answered within this many seconds of waiting.
    answer_within_seconds: float = Field(default=20, gt=0)
    #: The recent window over which ``/metrics`` gives the service level.
    service_level_window_minutes: float = Field(default=60, gt=0)


class CallSettings(_Strict):
    #: Menu node a caller is sent to when nobody anywhere can take the call (leave a message).
    nobody_available_entry: str = "nobody_available"


class OutboundSettings(_Strict):
    """Calls the hotline places to citizens (follow-ups, callbacks): the trunk they leave
    by, the number citizens see, and how often the controller looks for calls owed."""

    trunk: TrunkAddress = TrunkAddress(port=5092)
    caller_id: str = Field(default="12345", pattern=r"^[0-9]{3,20}$")
    poll_seconds: float = Field(default=30.0, gt=0)


class CallingPolicy(_Strict):
    enabled: bool = True
    #: When citizens may be called, in the city's time zone: "24h" or days -> intervals,
    #: written as units' working hours are (e.g. {"daily": ["09:00-20:00"]}).
    calling_hours: dict[str, list[str]] | Literal["24h"] = Field(
        default_factory=lambda: {"daily": ["09:00-20:00"]}
    )
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_seconds: float = Field(default=1800.0, gt=0)
    #: Seconds the citizen's phone may ring.
    ring_seconds: int = Field(default=30, ge=5, le=300)

    @field_validator("calling_hours")
    @classmethod
    def _valid_hours(
        cls, value: dict[str, list[str]] | Literal["24h"]
    ) -> dict[str, list[str]] | Literal["24h"]:
        parse_schedule(value)
        return value

    @property
    def schedule(self) -> WeeklySchedule:
        return parse_schedule(self.calling_hours)


class FollowupSettings(CallingPolicy):
    """The follow-up call (回访) of every resolved ticket: a survey menu of dialplans/."""

    #: The menu node the survey starts at (listed under 'entries:').
    entry: str = "followup_survey"


class CallbackSettings(CallingPolicy):
    """The callback (回拨) of a caller who gave up in a queue or left a message: an agent
    of the ticket's unit is called first, then the citizen."""

    #: Seconds the unit's agents may ring before the attempt counts as failed.
    agent_ring_seconds: int = Field(default=30, ge=5, le=300)
    #: Seconds a caller waits in the first queue before being offered a callback instead
    #: (the menu node ``offer_entry``); 0: never offered.
    offer_after_seconds: int = Field(default=60, ge=0, le=3600)
    offer_entry: str = "callback_offer"


class SecuritySettings(_Strict):
    """Fail2ban-style protection of the SIP port (ivr/guard.py, ivr/firewall.py): a source
    with too many security failures in a window is dropped by a kernel rule for a while."""

    enabled: bool = True
    #: The sliding window the counts below are taken over.
    window_seconds: float = Field(default=60.0, gt=0)
    #: Failed authentications, unknown accounts, ACL refusals from one source in the window.
    #: A person mistyping a password does it a few times; a cracker does it hundreds.
    max_failures: int = Field(default=5, ge=1)
    #: Digest challenges sent to one source in the window. A phone is challenged once per
    #: registration or call; an extension scanner is challenged for every agent it finds.
    max_challenges: int = Field(default=30, ge=1)
    #: How long a banned source stays banned (the kernel expires the rule by itself).
    ban_seconds: int = Field(default=600, ge=1)
    #: Sources never banned (IPs or CIDRs): this host, where the controller and the test
    #: phones live, and trusted carriers' or call-centre NAT addresses.
    never_ban: tuple[IPvAnyNetwork, ...] = (
        ipaddress.IPv4Network("127.0.0.1/32"),
        ipaddress.IPv6Network("::1/128"),
    )


class CitySettings(_Strict):
    name: str = "Sample City"
    code: str = "city"


class Settings(_Strict):
    city: CitySettings = CitySettings()
    pbx: PbxSettings = PbxSettings()
    controller: ControllerSettings = ControllerSettings()
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    recordings: RecordingSettings = RecordingSettings()
    fallback: FallbackSettings = FallbackSettings()
    emergency: EmergencySettings = EmergencySettings()
    calls: CallSettings = CallSettings()
    outbound: OutboundSettings = OutboundSettings()
    followup: FollowupSettings = FollowupSettings()
    callbacks: CallbackSettings = CallbackSettings()
    reports: ReportSettings = ReportSettings()
    security: SecuritySettings = SecuritySettings()


def load_settings(home: Home) -> Settings:
    """config/hotline.yaml of ``home``; a missing file means every default."""
    path = home.config_dir / SETTINGS_FILE
    if not path.exists():
        return Settings()
    return validate_model(Settings, load_yaml(path, home.display(path)))


def database_url(home: Home, settings: Settings | None = None) -> str:
    """The tickets database URL with a relative SQLite path anchored in the home's var/."""
    url = (settings or load_settings(home)).database.url
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        relative = url[len(prefix) :]
        if relative and relative != ":memory:":
            return prefix + str(home.var_dir / Path(relative))
    return url
