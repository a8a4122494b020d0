"""AMI client: panoramisk's Manager where it is sound, guarded where panoramisk 1.4 is not.

What is guarded, and how (see /work/shared/notes/libraries.md):

- Actions have no timeout -> every action is awaited with ``asyncio.wait_for``.
- Unanswered actions are resent after a reconnect (a duplicate Originate) -> the Manager's
  resend hook is replaced by one that drops them, and every action still waiting when a
  connection ends fails at once with :class:`AmiConnectionLost`: the caller decides.
- Responses are guessed to be multi-part from their text ("Added interface to queue",
  "Originate successfully queued"), so QueueAdd or an async Originate never completes ->
  actions are sent as :class:`_Action`, which knows from the caller whether one response
  or an event list (ending in ``...Complete``) is expected.
- The keep-alive ping's reply is not checked -> our own keep-alive pings with a timeout
  and, when no reply comes, treats the connection as half-open: close, reconnect with
  exponential back-off, then call ``on_reconnect`` so the controller re-reads queue state
  (events sent while disconnected are lost).
- Incoming bytes are decoded chunk by chunk with errors ignored, which silently drops a
  UTF-8 character split across two reads -> cannot be guarded from outside; fixed in
  :class:`Utf8AmiProtocol` with an incremental decoder.
- Header values are not escaped -> any CR, LF or NUL in an action is refused
  (``ValueError``) before anything is sent, so a caller name cannot inject an action.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager

_log = structlog.get_logger(__name__)

AmiValue = str | Sequence[str]
EventCallback = Callable[["AmiMessage"], Awaitable[None] | None]
ReconnectCallback = Callable[[], Awaitable[None] | None]

#: Asterisk device states as QueueMember's Status reports them.
DEVICE_STATES = {
    0: "unknown",
    1: "not_in_use",
    2: "in_use",
    3: "busy",
    4: "invalid",
    5: "unavailable",
    6: "ringing",
    7: "ring_in_use",
    8: "on_hold",
}


class AmiError(Exception):
    """Base of every AMI failure."""


class AmiNotConnected(AmiError):
    """No logged-in AMI connection right now; the action was not sent."""


class AmiConnectionLost(AmiError):
    """The connection ended while the action awaited its reply. It may or may not have
    run; it is never resent."""


class AmiTimeout(AmiError):
    """No reply in time. The action may still run; it is never resent."""


class AmiLoginFailed(AmiError):
    """Asterisk refused the username/secret."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI {action} failed: {message}")
        self.action = action
        self.message = message


@dataclass(frozen=True)
class AmiMessage:
    """A response or event; header names are case-insensitive, values keep their order."""

    headers: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_panoramisk(cls, message: Any) -> AmiMessage:
        headers: dict[str, tuple[str, ...]] = {}
        for key, value in message.items():
            values = tuple(value) if isinstance(value, list) else (str(value),)
            headers[key.lower()] = headers.get(key.lower(), ()) + values
        return cls(headers)

    def get(self, name: str, default: str = "") -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())

    @property
    def event(self) -> str:
        return self.get("event")

    @property
    def response(self) -> str:
        return self.get("response")

    @property
    def message(self) -> str:
        return self.get("message")

    @property
    def action_id(self) -> str:
        return self.get("actionid")

    @property
    def is_error(self) -> bool:
        return self.response.lower() in ("error", "fail", "failure")


@dataclass(frozen=True)
class QueueMemberState:
    """One QueueMember event of a QueueStatus reply."""

    queue: str
    interface: str
    name: str
    state_interface: str
    membership: str  # "static", "dynamic" or "realtime"
    status: int  # device state, see DEVICE_STATES
    paused: bool
    paused_reason: str
    in_call: bool
    calls_taken: int
    last_call: int  # epoch seconds, 0 if never

    @property
    def status_name(self) -> str:
        return DEVICE_STATES.get(self.status, "unknown")

    @classmethod
    def from_event(cls, event: AmiMessage) -> QueueMemberState:
        return cls(
            queue=event.get("queue"),
            interface=event.get("location") or event.get("interface"),
            name=event.get("name") or event.get("membername"),
            state_interface=event.get("stateinterface"),
            membership=event.get("membership"),
            status=_int(event.get("status")),
            paused=event.get("paused") == "1",
            paused_reason=event.get("pausedreason"),
            in_call=event.get("incall") == "1",
            calls_taken=_int(event.get("callstaken")),
            last_call=_int(event.get("lastcall")),
        )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def check_action(fields: Mapping[str, AmiValue]) -> None:
    """Refuse anything that could end an AMI header line (or the whole action) early."""
    if not any(key.lower() == "action" for key in fields):
        raise ValueError("an AMI action needs an 'Action' header")
    for key, value in fields.items():
        if not key or any(ch in key for ch in "\r\n\x00: "):
            raise ValueError(f"bad AMI header name: {key!r}")
        for item in [value] if isinstance(value, str) else value:
            if any(ch in item for ch in "\r\n\x00"):
                raise ValueError(f"AMI header {key} contains CR, LF or NUL, refused: {item!r}")


class Utf8AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's AMI protocol with whole-character decoding and a bounded buffer.

    AMIProtocol.data_received decodes each chunk on its own with errors ignored, so a
    multi-byte character split across two TCP reads (a Chinese caller name) vanishes.
    That happens inside the method, so it cannot be guarded from outside: here an
    incremental decoder keeps an incomplete trailing sequence for the next chunk and
    hands panoramisk only whole characters.
    """

    #: A peer that never ends a message must not grow our buffer without bound.
    max_pending_chars = 1024 * 1024

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        super().data_received(text.encode("utf-8"))
        if sum(len(part) for part in self.queue) > self.max_pending_chars:
            _log.error("ami.message_too_large", limit=self.max_pending_chars)
            self.transport.close()


class _Action(actions.Action):  # type: ignore[misc]
    """Completes on the caller's stated shape, not on panoramisk's guess from the text:
    one response, or (``as_list``) the response plus events up to the ``...Complete``
    event; an Error response ends a list action too."""

    def add_message(self, message: Any) -> bool:
        self.responses.append(message)
        if self.future.done():  # timed out or connection lost: just forget it
            return True
        if not self.as_list:
            self.future.set_result([message])
            return True
        first = len(self.responses) == 1
        if first and str(message.get("response", "")).lower() in ("error", "fail", "failure"):
            self.future.set_result([message])
            return True
        if str(message.get("eventlist", "")).lower() == "complete" or str(
            message.get("event", "")
        ).endswith("Complete"):
            self.future.set_result(list(self.responses))
            return True
        return False


class _GuardedManager(Manager):  # type: ignore[misc]
    """Manager with its connection lifecycle handed to AmiClient (back-off, half-open
    detection, no resend); login, parsing and event dispatch stay panoramisk's."""

    def __init__(self, client: AmiClient, **config: Any) -> None:
        super().__init__(**config)
        self._client = client

    def connect(
        self, run_forever: bool = False, on_startup: Any = None, on_shutdown: Any = None
    ) -> Any:
        if self._client.closing:
            return None
        self.loop = asyncio.get_running_loop()
        task = self.loop.create_task(
            asyncio.wait_for(
                self.loop.create_connection(
                    self.config["protocol_factory"],
                    self.config["host"],
                    self.config["port"],
                    ssl=self.config["ssl"],
                ),
                self._client.connect_timeout_s,
            )
        )
        task.add_done_callback(self.connection_made)
        return task

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if self._client.closing:
            if error is None:
                future.result()[0].close()
            return
        if error is not None:
            _log.warning("ami.connect_failed", error=repr(error))
            self._client.schedule_reconnect()
            return
        super().connection_made(future)
        self._client.connected_not_logged_in(self.protocol)

    def login(self, future: asyncio.Future[Any]) -> bool:
        if future.cancelled() or future.exception() is not None:
            return False
        logged_in: bool = super().login(future)
        self._client.login_answered(future.result())
        return logged_in

    def ping(self) -> None:
        """panoramisk's ping never checks the reply; AmiClient's keep-alive replaces it."""

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Never resend: an action without a reply may already have run (Originate)."""
        self.awaiting_actions.clear()

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        self._client.connection_ended(f"connection lost: {exc!r}")


class AmiClient:
    """One AMI connection to Asterisk, kept alive and re-established for the process's life.

    ``on_event(pattern, callback)`` registers for events by name (fnmatch pattern, "*" for
    all); callbacks get an :class:`AmiMessage` and may be ``async``. ``on_reconnect`` runs
    after every successful login that follows a lost connection.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str,
        secret: str,
        on_reconnect: ReconnectCallback | None = None,
        action_timeout_s: float = 10.0,
        ping_interval_s: float = 10.0,
        ping_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
    ) -> None:
        check_action({"Action": "Login", "Username": username, "Secret": secret})
        self.on_reconnect = on_reconnect
        self.action_timeout_s = action_timeout_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.closing = False
        self._manager = _GuardedManager(
            self,
            host=host,
            port=port,
            username=username,
            secret=secret,
            events="on",
            encoding="utf-8",
            protocol_factory=Utf8AmiProtocol,
            ping_delay=3600,
            log=logging.getLogger("ivr.ami.panoramisk"),
        )
        self._logged_in = False
        self._ever_logged_in = False
        self._login_error: str | None = None
        self._login_changed = asyncio.Event()
        self._backoff_s = reconnect_min_s
        self._reconnect_handle: asyncio.TimerHandle | None = None
        self._login_watchdog: asyncio.TimerHandle | None = None
        self._in_flight: dict[str, _Action] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._keepalive: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, wait_s: float = 10.0) -> None:
        """Connect and log in; returns once logged in. Raises AmiLoginFailed (and stops)
        if the secret is refused, AmiNotConnected if not logged in within ``wait_s``
        (the client then keeps retrying in the background until close())."""
        if self._keepalive is not None:
            raise RuntimeError("AMI client already started")
        self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive())
        self._manager.connect()
        try:
            async with asyncio.timeout(wait_s):
                while not self._logged_in:
                    if self._login_error is not None:
                        error = self._login_error
                        await self.close()
                        raise AmiLoginFailed(error)
                    self._login_changed.clear()
                    await self._login_changed.wait()
        except TimeoutError:
            raise AmiNotConnected(f"no AMI login within {wait_s:g} s; still trying") from None

    @property
    def connected(self) -> bool:
        """Logged in on a live connection (as far as the keep-alive knows)."""
        return self._logged_in

    async def close(self) -> None:
        self.closing = True
        for handle in (self._reconnect_handle, self._login_watchdog):
            if handle is not None:
                handle.cancel()
        tasks = [t for t in [self._keepalive, *self._background] if t is not None]
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._manager.close()
        self._logged_in = False
        self._fail_in_flight(AmiNotConnected("AMI client closed"))
        await asyncio.gather(
            *(t for t in tasks if t is not asyncio.current_task()), return_exceptions=True
        )

    # -- called by _GuardedManager --------------------------------------------------------

    def connected_not_logged_in(self, protocol: Any) -> None:
        def check() -> None:
            if self._manager.protocol is protocol and not self._logged_in:
                self._drop("no login reply")

        self._login_watchdog = asyncio.get_running_loop().call_later(self.connect_timeout_s, check)

    def login_answered(self, response: Any) -> None:
        if self._login_watchdog is not None:
            self._login_watchdog.cancel()
        message = AmiMessage.from_panoramisk(response)
        if message.is_error:
            self._login_error = message.message or "login refused"
            _log.error("ami.login_failed", message=self._login_error)
            self._login_changed.set()
            return
        reconnected = self._ever_logged_in
        self._logged_in = self._ever_logged_in = True
        self._login_error = None
        self._backoff_s = self.reconnect_min_s
        self._login_changed.set()
        _log.info("ami.logged_in", reconnected=reconnected)
        if reconnected and self.on_reconnect is not None:
            self._run_callback(self.on_reconnect, "on_reconnect")

    def connection_ended(self, reason: str) -> None:
        was_logged_in = self._logged_in
        self._logged_in = False
        self._manager.authenticated = False
        self._manager.awaiting_actions.clear()
        self._fail_in_flight(AmiConnectionLost(reason))
        if not self.closing:
            _log.warning("ami.disconnected", reason=reason, was_logged_in=was_logged_in)
            self.schedule_reconnect()

    def schedule_reconnect(self) -> None:
        if self.closing or self._reconnect_handle is not None:
            return
        delay, self._backoff_s = self._backoff_s, min(self._backoff_s * 2, self.reconnect_max_s)

        def reconnect() -> None:
            self._reconnect_handle = None
            self._manager.connect()

        self._reconnect_handle = asyncio.get_running_loop().call_later(delay, reconnect)

    # -- internals ------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        """Close a connection we no longer trust (half-open) and start over."""
        self._manager.close()  # panoramisk then does not report the loss: we do
        self.connection_ended(reason)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            if not self._logged_in:
                continue
            try:
                await self.ping()
            except AmiTimeout:
                self._drop(f"no Ping reply within {self.ping_timeout_s:g} s (half-open)")
            except AmiError as exc:
                _log.info("ami.ping_failed", error=str(exc))

    def _fail_in_flight(self, error: AmiError) -> None:
        in_flight, self._in_flight = self._in_flight, {}
        for action in in_flight.values():
            if not action.future.done():
                action.future.set_exception(error)

    def _run_callback(self, callback: Callable[..., Any], what: str, *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            _log.exception("ami.callback_failed", callback=what)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._background.add(task)
            task.add_done_callback(lambda t: self._callback_done(t, what))

    def _callback_done(self, task: asyncio.Future[Any], what: str) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("ami.callback_failed", callback=what, exc_info=task.exception())

    # -- events ---------------------------------------------------------------------------

    def on_event(self, pattern: str, callback: EventCallback) -> None:
        """Call ``callback(message)`` for each event whose name matches ``pattern``."""

        def dispatch(_manager: Any, message: Any) -> None:
            self._run_callback(callback, pattern, AmiMessage.from_panoramisk(message))

        self._manager.register_event(pattern, dispatch)

    # -- actions --------------------------------------------------------------------------

    async def send_action(
        self, fields: Mapping[str, AmiValue], *, timeout_s: float | None = None
    ) -> AmiMessage:
        """Send one action and return its single response (Error responses included)."""
        [response] = await self._send(fields, as_list=False, timeout_s=timeout_s)
        return response

    async def send_list_action(
        self, fields: Mapping[str, AmiValue], *, timeout_s: float | None = None
    ) -> list[AmiMessage]:
        """Send an action answered by an event list (QueueStatus, Status, ...): returns
        the response followed by every event up to and including the ``...Complete``."""
        return await self._send(fields, as_list=True, timeout_s=timeout_s)

    async def _send(
        self, fields: Mapping[str, AmiValue], *, as_list: bool, timeout_s: float | None
    ) -> list[AmiMessage]:
        check_action(fields)
        protocol = self._manager.protocol
        if not self._logged_in or protocol is None or protocol.closed:
            raise AmiNotConnected("not logged in to AMI")
        headers: dict[str, Any] = {
            k: (v if isinstance(v, str) else list(v)) for k, v in fields.items()
        }
        if not any(k.lower() == "actionid" for k in headers):
            headers["ActionID"] = f"ivr-{uuid.uuid4().hex}"
        action = _Action(headers, as_list=as_list)
        action_id: str = action.action_id
        if action_id in self._in_flight:
            raise ValueError(f"ActionID {action_id!r} is already in flight")
        self._in_flight[action_id] = action
        limit = self.action_timeout_s if timeout_s is None else timeout_s
        try:
            protocol.send(action, as_list=as_list)
            replies = await asyncio.wait_for(action.future, limit)
        except TimeoutError:
            raise AmiTimeout(f"no reply to {action['action']} within {limit:g} s") from None
        finally:
            self._in_flight.pop(action_id, None)
            protocol.responses.pop(action_id, None)
        return [AmiMessage.from_panoramisk(m) for m in replies]

    async def _checked(
        self, fields: Mapping[str, AmiValue], timeout_s: float | None = None
    ) -> AmiMessage:
        response = await self.send_action(fields, timeout_s=timeout_s)
        if response.is_error:
            raise AmiActionError(str(fields.get("Action", "?")), response.message)
        return response

    async def ping(self) -> None:
        await self._checked({"Action": "Ping"}, timeout_s=self.ping_timeout_s)

    async def queue_status(self, queue: str | None = None) -> list[QueueMemberState]:
        fields: dict[str, AmiValue] = {"Action": "QueueStatus"}
        if queue is not None:
            fields["Queue"] = queue
        messages = await self.send_list_action(fields)
        if messages[0].is_error:
            raise AmiActionError("QueueStatus", messages[0].message)
        return [QueueMemberState.from_event(m) for m in messages if m.event == "QueueMember"]

    async def queue_add(
        self,
        queue: str,
        interface: str,
        *,
        member_name: str | None = None,
        state_interface: str | None = None,
        penalty: int = 0,
        paused: bool = False,
    ) -> None:
        """Raises AmiActionError, e.g. "Unable to add interface: Already there"."""
        fields: dict[str, AmiValue] = {
            "Action": "QueueAdd",
            "Queue": queue,
            "Interface": interface,
            "Penalty": str(penalty),
            "Paused": "true" if paused else "false",
        }
        if member_name is not None:
            fields["MemberName"] = member_name
        if state_interface is not None:
            fields["StateInterface"] = state_interface
        await self._checked(fields)

    async def queue_remove(self, queue: str, interface: str) -> None:
        await self._checked({"Action": "QueueRemove", "Queue": queue, "Interface": interface})

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str | None = None, reason: str = ""
    ) -> None:
        """Pause or unpause ``interface`` in ``queue``, or in every queue if None."""
        fields: dict[str, AmiValue] = {
            "Action": "QueuePause",
            "Interface": interface,
            "Paused": "true" if paused else "false",
        }
        if queue is not None:
            fields["Queue"] = queue
        if reason:
            fields["Reason"] = reason
        await self._checked(fields)

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str | None = None,
        ring_timeout_s: int = 30,
        variables: Mapping[str, str] | None = None,
        account: str | None = None,
        channel_id: str | None = None,
        action_id: str | None = None,
    ) -> str:
        """Start an asynchronous Originate; returns its ActionID, which the later
        ``OriginateResponse`` event carries. The action is sent at most once: on a timeout
        or lost connection it may or may not have run (check before trying again)."""
        # The caller may choose the ActionID so as to know it before any event can carry it.
        action_id = action_id or f"ivr-originate-{uuid.uuid4().hex}"
        fields: dict[str, AmiValue] = {
            "Action": "Originate",
            "ActionID": action_id,
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Timeout": str(ring_timeout_s * 1000),
            "Async": "true",
        }
        if caller_id is not None:
            fields["CallerID"] = caller_id
        if account is not None:
            fields["Account"] = account
        if channel_id is not None:
            # The new channel's uniqueid, hence the linkedid of everything it leads to.
            fields["ChannelId"] = channel_id
        if variables:
            fields["Variable"] = [f"{name}={value}" for name, value in variables.items()]
        await self._checked(fields)
        return action_id
