"""FastAGI: the server Asterisk's AGI() connects to, and the per-call session."""

from ivr.agi.protocol import (
    AgiCommandError,
    AgiError,
    AgiProtocolError,
    AgiResult,
    AgiTimeout,
)
from ivr.agi.server import AgiHandler, FastAgiServer
from ivr.agi.session import AgiSession, RecordFileResult

__all__ = [
    "AgiCommandError",
    "AgiError",
    "AgiHandler",
    "AgiProtocolError",
    "AgiResult",
    "AgiSession",
    "AgiTimeout",
    "FastAgiServer",
    "RecordFileResult",
]
