"""The FastAGI server: accepts Asterisk's connections and runs one handler per call.

Why not panoramisk's ``fast_agi.Application``: its header loop
(``while b'\\n\\n' not in buffer: buffer += await reader.read(...)``) never yields once the
peer has closed, because ``read()`` at end of stream returns at once; a single peer that
sends half a header and hangs up freezes the whole event loop and so every live call. It
also has no header size limit or timeout, swallows task cancellation in its route wrapper
and escapes nothing. None of that can be guarded from outside, so this small piece is ours
(tests/unit/test_agi_server.py reproduces the freeze first).

Every failure takes one fixed path: log it bound to the call's uniqueid, write ``FAILURE``
(Asterisk then ends AGI() with AGISTATUS=FAILURE and the dialplan takes its fallback) and
close. Nothing propagates except task cancellation.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ivr.agi.protocol import AgiProtocolError, parse_header_line, script_name
from ivr.agi.session import AgiSession
from ivr.channel import CallerHungUp

AgiHandler = Callable[[AgiSession], Awaitable[None]]

_log = structlog.get_logger(__name__)
#: res_agi ends AGI() with AGISTATUS=FAILURE when the script sends a line starting so.
FAILURE_LINE = b"FAILURE\n"


class HeaderEndedEarly(AgiProtocolError):
    """The peer closed before the blank line that ends the AGI header."""


class FastAgiServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        sounds_root: str,
        header_timeout_s: float = 5.0,
        command_timeout_s: float = 30.0,
        media_timeout_s: float = 600.0,
        exec_timeout_s: float = 4 * 3600.0,
        max_header_bytes: int = 16 * 1024,
        max_header_lines: int = 256,
        backlog: int = 4096,
        read_limit: int = 64 * 1024,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.sounds_root = sounds_root
        self.header_timeout_s = header_timeout_s
        self.command_timeout_s = command_timeout_s
        self.media_timeout_s = media_timeout_s
        self.exec_timeout_s = exec_timeout_s
        self.max_header_bytes = max_header_bytes
        self.max_header_lines = max_header_lines
        # asyncio's default of 100 makes a burst of calls wait ~1 s in the kernel's retry.
        self.backlog = backlog
        # Caps what one peer can make us buffer (StreamReader pauses reading past it).
        self.read_limit = read_limit
        self._handlers: dict[str, AgiHandler] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, name: str, handler: AgiHandler) -> None:
        """Serve agi://host:port/``name`` with ``handler`` (an ``async def``)."""
        key = name.strip("/")
        if not key or "?" in key:
            raise ValueError(f"bad AGI script name: {name!r}")
        if key in self._handlers:
            raise ValueError(f"AGI script {key!r} is already registered")
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"AGI handler for {key!r} must be an async function")
        self._handlers[key] = handler

    async def start(self) -> None:
        """Listen; returns once the socket is bound (port 0 picks a free port)."""
        if self._server is not None:
            raise RuntimeError("FastAGI server already started")
        self._server = await asyncio.start_server(
            self._accept,
            self.host,
            self._requested_port,
            backlog=self.backlog,
            limit=self.read_limit,
        )
        _log.info("agi.listening", host=self.host, port=self.port)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAGI server is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Stop accepting, cancel live sessions and wait for them to end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback that makes our own task: asyncio's wrapper task for a coroutine
        # callback logs a spurious error when it is cancelled (Python 3.11).
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log = _log.bind(peer=_peer(writer))
        try:
            try:
                async with asyncio.timeout(self.header_timeout_s):
                    variables = await self._read_header(reader)
            except TimeoutError:
                log.warning("agi.header_timeout", seconds=self.header_timeout_s)
                return
            except HeaderEndedEarly as exc:
                log.info("agi.header_incomplete", reason=str(exc))
                return
            except ConnectionError as exc:
                # A reset (RST) while the header comes in: otherwise the task dies with an
                # unretrieved exception and the connection goes unlogged.
                log.info("agi.header_incomplete", reason=f"connection lost: {exc}")
                return
            except AgiProtocolError as exc:
                log.warning("agi.header_rejected", reason=str(exc))
                return
            log = log.bind(uniqueid=variables.get("agi_uniqueid", ""))
            await self._run_handler(variables, reader, writer, log)
        finally:
            writer.close()

    async def _run_handler(
        self,
        variables: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        log: Any,
    ) -> None:
        name = script_name(variables)
        log = log.bind(script=name)
        handler = self._handlers.get(name)
        if handler is None:
            log.error("agi.unknown_script", known=sorted(self._handlers))
            writer.write(FAILURE_LINE)
            return
        session = AgiSession(
            variables,
            reader,
            writer,
            sounds_root=self.sounds_root,
            command_timeout_s=self.command_timeout_s,
            media_timeout_s=self.media_timeout_s,
            exec_timeout_s=self.exec_timeout_s,
            log=log,
        )
        try:
            await handler(session)
        except CallerHungUp:
            log.info("agi.caller_hung_up")
        except Exception:
            log.exception("agi.handler_failed")
            if not session.hung_up:
                writer.write(FAILURE_LINE)
        else:
            log.debug("agi.session_done")

    async def _read_header(self, reader: asyncio.StreamReader) -> dict[str, str]:
        variables: dict[str, str] = {}
        total = 0
        for _ in range(self.max_header_lines + 1):
            try:
                raw = await reader.readline()
            except ValueError:
                raise AgiProtocolError(f"header line longer than {self.read_limit} bytes") from None
            if not raw.endswith(b"\n"):
                raise HeaderEndedEarly(f"peer closed after {total + len(raw)} header bytes")
            total += len(raw)
            if total > self.max_header_bytes:
                raise AgiProtocolError(f"header larger than {self.max_header_bytes} bytes")
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise AgiProtocolError("header is not UTF-8") from None
            if not line:
                if not variables:
                    raise AgiProtocolError("empty header")
                return variables
            key, value = parse_header_line(line)
            variables[key] = value
        raise AgiProtocolError(f"header has more than {self.max_header_lines} lines")


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
