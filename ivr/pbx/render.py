"""Render every Asterisk file of a deployment from asterisk/templates.

The inputs are plain data (``PbxPlan``) built from config/ and routing/, so what Asterisk
runs is always derived from the YAML admins edit and never edited by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ivr import chanvars
from ivr.guard import SECURITY_EVENTS
from ivr.home import ENGINE_ROOT
from ivr.settings import Settings

TEMPLATES_DIR = ENGINE_ROOT / "asterisk" / "templates"

#: Every module the hotline uses. Loading only these keeps start-up short and the AMI quiet
#: (the autoloaded test modules alone emit a third of all events).
MODULES: tuple[str, ...] = (
    "res_sorcery_config.so",
    "res_sorcery_memory.so",
    "res_sorcery_astdb.so",
    "res_timing_timerfd.so",
    "res_pjproject.so",
    "res_pjsip.so",
    "res_pjsip_session.so",
    "res_pjsip_sdp_rtp.so",
    "res_pjsip_authenticator_digest.so",
    "res_pjsip_outbound_authenticator_digest.so",
    "res_pjsip_endpoint_identifier_user.so",
    "res_pjsip_endpoint_identifier_anonymous.so",
    "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_registrar.so",
    "res_pjsip_caller_id.so",
    "res_pjsip_header_funcs.so",
    "res_pjsip_rfc3326.so",
    "res_pjsip_refer.so",
    "res_pjsip_pubsub.so",
    "res_pjsip_dtmf_info.so",
    "res_pjsip_nat.so",
    "res_pjsip_acl.so",
    "res_pjsip_logger.so",
    "chan_pjsip.so",
    "func_pjsip_endpoint.so",
    "res_rtp_asterisk.so",
    "res_agi.so",
    "res_speech.so",
    "res_security_log.so",
    "app_queue.so",
    "app_mixmonitor.so",
    "app_dial.so",
    "app_playback.so",
    "app_record.so",
    "app_stack.so",
    "app_verbose.so",
    "app_echo.so",
    "app_senddtmf.so",
    "app_exec.so",
    "app_originate.so",
    "app_read.so",
    "app_userevent.so",
    "app_softhangup.so",
    "app_chanspy.so",
    "app_attended_transfer.so",
    "app_blind_transfer.so",
    "bridge_simple.so",
    "bridge_native_rtp.so",
    "bridge_softmix.so",
    "bridge_builtin_features.so",
    "bridge_holding.so",
    "codec_ulaw.so",
    "codec_gsm.so",  # the beep before a voice message is a GSM file
    "codec_alaw.so",
    "codec_a_mu.so",
    "codec_resample.so",
    "format_wav.so",
    "format_pcm.so",
    "format_sln.so",
    "format_gsm.so",
    "func_callerid.so",
    "func_channel.so",
    "func_strings.so",
    # BASE64_ENCODE: caller ID goes to the controller in base64 (extensions.conf).
    "func_base64.so",
    "func_logic.so",
    "func_cdr.so",
    "func_global.so",
    "func_hangupcause.so",
    "func_math.so",
    "func_uri.so",
    "func_timeout.so",
    "func_db.so",
    "pbx_config.so",
    "cdr_csv.so",
    "res_clioriginate.so",
)

FILES: tuple[str, ...] = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "rtp.conf",
    "manager.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "cdr.conf",
    "indications.conf",
    "stasis.conf",
    "cel.conf",
    "features.conf",
    "acl.conf",
    "udptl.conf",
    "pjproject.conf",
    "ccss.conf",
)


@dataclass(frozen=True)
class AgentEndpoint:
    id: str
    name: str
    unit: str
    secret: str


@dataclass(frozen=True)
class QueuePlan:
    name: str
    members: tuple[str, ...]
    strategy: str = "rrmemory"
    ring_timeout: int = 15
    wrapup: int = 0
    announce_position: bool = False
    announce_holdtime: bool = False


@dataclass(frozen=True)
class LinePlan:
    #: The number Asterisk receives (a line, or a carrier's DID for one).
    number: str
    #: The line it is (the same number, or the hotline for a landing DID).
    line: str
    #: The landing DID passed to the controller, empty for the line itself.
    did: str


@dataclass(frozen=True)
class TrunkPlan:
    """A PJSIP trunk to the 110 centre, identified by its address."""

    endpoint: str
    host: str
    port: int


@dataclass(frozen=True)
class PbxPlan:
    settings: Settings
    #: Where the PBX sees the deployment's home (``/ivrhome`` in the sid root).
    pbx_home: str
    ami_user: str
    ami_secret: str
    agents: Sequence[AgentEndpoint]
    queues: Sequence[QueuePlan]
    lines: Sequence[LinePlan]
    trunks: Sequence[TrunkPlan] = ()
    emergency_number: str = "110"
    modules: Sequence[str] = field(default=MODULES)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_files(plan: PbxPlan) -> dict[str, str]:
    """Every Asterisk file's text, by file name."""
    env = _environment()
    context = {
        "pbx": plan.settings.pbx,
        "controller": plan.settings.controller,
        "fallback": plan.settings.fallback,
        "emergency": plan.settings.emergency,
        "outbound": plan.settings.outbound,
        "callbacks": plan.settings.callbacks,
        "pbx_home": plan.pbx_home,
        "ami_user": plan.ami_user,
        "ami_secret": plan.ami_secret,
        "agents": plan.agents,
        "queues": plan.queues,
        "lines": plan.lines,
        "trunks": plan.trunks,
        "emergency_number": plan.emergency_number,
        "modules": plan.modules,
        "vars": chanvars,
        "security_events": sorted(SECURITY_EVENTS),
    }
    return {name: env.get_template(f"{name}.j2").render(context) for name in FILES}


def write_files(plan: PbxPlan, etc_dir: Path) -> None:
    """Write the rendered files; secrets inside make them readable by their owner only."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_files(plan).items():
        target = etc_dir / name
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        tmp.replace(target)
