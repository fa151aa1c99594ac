"""The Control Point channel: one procedure at a time, control permission, the vendor unlock.

A procedure is a write and the deck's answer to it (`80 <opcode> <result>`, FTMS §4.16): the
answer's future exists before the write, the answer must name the opcode written, and no
answer within `control_response_timeout_s` is a `ControlTimeoutError`. A result other than
Success becomes the typed error of `control.rejection_error`. The channel is the link's: one
lock across reconnects, so a procedure the deck is still busy with holds it until answered or
timed out, whichever connection comes next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import structlog

from treadmilld.ble.api import (
    ControlNotPermittedError,
    ControlRejectedError,
    ControlTimeoutError,
    LinkError,
    NotConnectedError,
)
from treadmilld.ble.config import LinkSettings
from treadmilld.ble.control import rejection_error
from treadmilld.ble.gatt import PROPERTY_WRITE, PROPERTY_WRITE_WITHOUT_RESPONSE, GattError
from treadmilld.ble.session import LinkSession
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    ControlRequest,
    ControlResponse,
    RequestControl,
    ResultCode,
    decode_control_response,
    encode_control_request,
)
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_for_on_clock

_log = structlog.get_logger(__name__)

HINT_UNLOCK_MISSING: Final = (
    "the quirk set asks for a vendor unlock write but the treadmill has no such characteristic. "
    'If it is not a KingSmith MC21, configure `quirks` without vendor_unlock (e.g. "kingsmith"); '
    "if it is, set quirks.vendor_unlock.characteristic_uuid (and payload_hex) to what its "
    "vendor app writes"
)

# Raises `NotConnectedError` (saying what could not be sent) unless the session is still the
# link's current connection.
RequireCurrent = Callable[[LinkSession, str], None]


class ControlChannel:
    """The link's Control Point procedures, on whichever connection is current."""

    def __init__(
        self,
        treadmill_id: str,
        settings: LinkSettings,
        *,
        clock: Clock,
        background: Background,
        require_current: RequireCurrent,
    ) -> None:
        self._id = treadmill_id
        self._settings = settings
        self._clock = clock
        self._background = background
        self._require_current = require_current
        self._lock = asyncio.Lock()
        self._log = _log.bind(treadmill_id=treadmill_id)

    def require_control_point(self, session: LinkSession, what: str) -> None:
        if not session.control.has_control_point:
            raise ControlRejectedError(
                f"{self._id}: cannot send {what}, the treadmill has no Control Point (it can "
                "only be watched, not driven)",
                request=what,
                result=ResultCode.NOT_SUPPORTED,
            )

    async def command(
        self,
        session: LinkSession,
        request: ControlRequest,
        what: str,
        *,
        ask_control_first: bool = True,
    ) -> None:
        """A command that needs control permission (everything but Request Control).

        With `ask_control_first` False (Stop and Pause) no Request Control goes before it: a
        stop must not wait behind a request a deck may never answer (a KingSmith MC21 without
        its unlock, a deck that ignores Request Control). It is asked for only if the deck
        answers the command itself with Control Not Permitted.
        """
        self.require_control_point(session, what)
        if ask_control_first and session.quirks.request_control_first:
            await self._ensure_control(session)
        try:
            await self._execute(session, request, what)
        except ControlNotPermittedError:
            if session.control.request_not_supported:
                raise  # the deck refuses control and cannot be asked for it
            # Permission was lost without a status, or never asked for (FS-/SF-T decks, a
            # Stop): ask once, then retry the command once.
            session.control.granted = False
            self._log.info("control_rerequested", request=what)
            await self._ensure_control(session)
            await self._execute(session, request, what)

    def answer(self, session: LinkSession, data: bytes) -> None:
        """A Control Point notification or indication: the answer to the procedure in flight.

        Raises `CodecError` for bytes that are no response at all."""
        response = decode_control_response(data)
        control = session.control
        pending = control.pending_response
        if pending is None or pending.done():
            self._log.warning("control_response_unexpected", data=data.hex())
            return
        if response.request_opcode != control.pending_opcode:
            self._log.warning(
                "control_response_mismatch",
                data=data.hex(),
                expected_opcode=control.pending_opcode,
            )
            return
        pending.set_result(response)

    def abandon(self, session: LinkSession, reason: str) -> None:
        """The connection went down: a procedure waiting for its answer fails at once."""
        pending = session.control.pending_response
        if pending is not None and not pending.done():
            pending.set_exception(
                NotConnectedError(
                    f"{self._id}: the link went down while waiting for an answer ({reason}); "
                    "it reconnects by itself, retry after LinkConnected"
                )
            )

    async def _ensure_control(self, session: LinkSession) -> None:
        control = session.control
        async with control.request_lock:
            if control.granted or control.request_not_supported:
                return
            try:
                await self._execute(session, RequestControl(), "Request Control")
            except ControlRejectedError as error:
                if error.result is not ResultCode.NOT_SUPPORTED:
                    raise
                # The deck has no control permission to hand out (FTMS lets a server answer
                # an opcode it does not support with Not Supported, §4.16.2); commands go to
                # it directly, as on decks that never need it (Urevo E1L: Kinomap sends Set
                # Target Inclination first and gets Success, blak3r/treadspan captures).
                control.request_not_supported = True
                self._log.info("control_request_not_supported")
                return
            control.granted = True
            self._log.info("control_granted")

    async def _execute(self, session: LinkSession, request: ControlRequest, what: str) -> None:
        """One Control Point procedure: write, wait for its response, check the result."""
        payload = encode_control_request(request)
        async with self._lock:
            self._require_current(session, what)
            if session.control.unlock_pending:
                session.control.unlock_pending = False  # once per connection, whatever comes
                await self._vendor_unlock(session)
            # If the caller gives up (an emergency stop cancels the engine mid-write), the
            # deck is still busy with this procedure and refuses the next write with ATT 0xFE
            # (FTMS §4.16.3): keep the channel (this lock) until it answers or times out.
            response = await self._background.shielded(
                self._procedure(session, payload, what), wait_when_cancelled=True
            )
        if response.result is not ResultCode.SUCCESS:
            # Info, not warning: the typed error reaches the caller, which knows whether this
            # matters (a Stop refused because the belt is already stopping does not).
            self._log.info("control_rejected", request=what, result=response.result.name)
            raise rejection_error(self._id, what, response.result)
        self._log.debug("control_succeeded", request=what)

    async def _vendor_unlock(self, session: LinkSession) -> None:
        """The vendor write some decks need before FTMS control works (KingSmith MC21).

        A deck without the characteristic, or a write that fails, is logged and driven anyway:
        the requests that follow say whether the deck listens (they time out if not).
        """
        unlock = session.quirks.vendor_unlock
        if unlock is None:
            return
        connection = session.connection
        uuid = unlock.characteristic_uuid
        if not connection.has_characteristic(uuid):
            self._log.warning(
                "vendor_unlock_missing",
                characteristic=uuid,
                quirks=session.quirks.name,
                hint=HINT_UNLOCK_MISSING,
            )
            return
        properties = connection.properties(uuid)
        with_response = PROPERTY_WRITE in properties or (
            PROPERTY_WRITE_WITHOUT_RESPONSE not in properties
        )
        write = connection.write if with_response else connection.write_without_response
        try:
            await wait_for_on_clock(
                write(uuid, unlock.payload), self._settings.control_response_timeout_s, self._clock
            )
        except (GattError, TimeoutError) as error:
            self._log.warning(
                "vendor_unlock_failed",
                characteristic=uuid,
                error=str(error) or "timed out",
                hint="control requests may go unanswered; the unlock is tried again after a "
                "reconnect",
            )
            return
        self._log.info("vendor_unlock_sent", characteristic=uuid, data=unlock.payload_hex)

    async def _procedure(self, session: LinkSession, payload: bytes, what: str) -> ControlResponse:
        # The future exists before the write, so an answer can never arrive unobserved.
        response_future: asyncio.Future[ControlResponse] = (
            asyncio.get_running_loop().create_future()
        )
        control = session.control
        control.pending_opcode = payload[0]
        control.pending_response = response_future
        try:
            return await wait_for_on_clock(
                self._write_and_wait(session, payload, response_future, what),
                self._settings.control_response_timeout_s,
                self._clock,
            )
        except TimeoutError:
            self._log.warning("control_timeout", request=what, data=payload.hex())
            raise ControlTimeoutError(
                f"{self._id}: no answer to {what} within "
                f"{self._settings.control_response_timeout_s:g} s. The treadmill may not "
                "support remote control or be busy; check its console and retry"
            ) from None
        finally:
            control.pending_opcode = None
            control.pending_response = None
            # Nobody waits for the answer any more (the write failed, or the wait was given
            # up): the link's loss set on it, if any, is seen here, not reported by asyncio as
            # an exception never retrieved.
            if not response_future.done():
                response_future.cancel()
            elif not response_future.cancelled():
                response_future.exception()

    async def _write_and_wait(
        self,
        session: LinkSession,
        payload: bytes,
        response_future: asyncio.Future[ControlResponse],
        what: str,
    ) -> ControlResponse:
        connection = session.connection
        write = (
            connection.write if session.control.with_response else connection.write_without_response
        )
        try:
            await write(CONTROL_POINT_UUID, payload)
        except GattError as error:
            raise LinkError(
                f"{self._id}: writing {what} failed ({error}); if the link is dropping it "
                "reconnects by itself, retry after LinkConnected"
            ) from error
        return await response_future
