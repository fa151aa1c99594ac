"""One connection's notifications, decoded in the order they came, into the link's events.

Bleak's callbacks only put the bytes on the session's queue (`LinkSession.inbound`); the pump
here decodes them one by one: Treadmill Data into merged telemetry (a fragment counts as a
sign of life), Machine Status into the belt's bookkeeping and an event, Training Status into
an event, and Control Point answers to the channel. Malformed bytes from a deck are logged and
dropped, never a crash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from treadmilld.ble.api import (
    LinkEvent,
    MachineStatusReceived,
    Telemetry,
    TelemetryReceived,
    TrainingStatusReceived,
)
from treadmilld.ble.control_channel import ControlChannel
from treadmilld.ble.quirks import SpeedUnit, speed_from_deck
from treadmilld.ble.session import LinkSession
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    CodecError,
    ControlPermissionLost,
    ResetStatus,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetSpeedChanged,
    TreadmillData,
    decode_machine_status,
    decode_training_status,
    merge_treadmill_data,
)
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)


class NotificationPump:
    """Decodes one session's notifications in order; `run` is the session's pump task."""

    def __init__(
        self,
        treadmill_id: str,
        session: LinkSession,
        *,
        clock: Clock,
        channel: ControlChannel,
        emit: Callable[[LinkEvent], None],
    ) -> None:
        self._session = session
        self._clock = clock
        self._channel = channel
        self._emit = emit
        self._log = _log.bind(treadmill_id=treadmill_id)

    async def run(self) -> None:
        session = self._session
        while True:
            uuid, data = await session.inbound.get()
            try:
                if uuid == TREADMILL_DATA_UUID:
                    self._on_treadmill_data(data)
                elif uuid == MACHINE_STATUS_UUID:
                    self._on_machine_status(data)
                elif uuid == CONTROL_POINT_UUID:
                    self._channel.answer(session, data)
                elif uuid == TRAINING_STATUS_UUID:
                    self._on_training_status(data)
            except CodecError as error:
                # Malformed data from a deck is logged and dropped, never a crash.
                self._log.warning(
                    "notification_dropped", characteristic=uuid, data=data.hex(), error=str(error)
                )

    def _on_treadmill_data(self, data: bytes) -> None:
        session = self._session
        now = self._clock.now()
        session.last_data_at = now  # a fragment is a sign of life too
        record = session.assembler.feed(data)
        if record is None:
            return
        if session.quirks.reported_speed_unit is SpeedUnit.MPH:
            record = record_to_kmh(record)
        telemetry = Telemetry(
            data=merge_treadmill_data(session.telemetry.data, record), received_at=now
        )
        session.telemetry = telemetry
        session.belt.record_seen(telemetry.belt_moving, now)
        self._emit(TelemetryReceived(record=record, telemetry=telemetry, at=now))

    def _on_machine_status(self, data: bytes) -> None:
        session = self._session
        status = decode_machine_status(data)
        if (
            isinstance(status, ResetStatus | ControlPermissionLost)
            and self._clock.now() <= session.control.own_reset_until
        ):
            session.control.granted = False
            self._log.info("own_reset_status", status=type(status).__name__)
            return
        if isinstance(status, ControlPermissionLost):
            # FTMS §4.17: permission is gone; the next command asks again (not now: the console
            # or another app took over, and grabbing it back would fight a person).
            session.control.granted = False
        elif isinstance(status, ResetStatus):
            session.control.granted = False
            session.belt.halted_by_deck()
        elif isinstance(status, StoppedOrPausedByUser | StoppedBySafetyKey):
            session.belt.halted_by_deck()
        if isinstance(status, TargetSpeedChanged):
            # Same unit as the deck's Set Target Speed unless the quirks say otherwise.
            unit = session.quirks.effective_status_speed_unit
            status = TargetSpeedChanged(speed_kmh=speed_from_deck(status.speed_kmh, unit))
        self._log.info("machine_status", status=type(status).__name__)
        self._emit(MachineStatusReceived(status=status, at=self._clock.now()))

    def _on_training_status(self, data: bytes) -> None:
        # Reserved and vendor values decode (status stays an int); only bad bytes raise.
        status = decode_training_status(data)
        self._log.debug("training_status", status=status.status, text=status.text)
        self._emit(TrainingStatusReceived(status=status, at=self._clock.now()))


def record_to_kmh(record: TreadmillData) -> TreadmillData:
    """A record from an mph deck with its speeds in km/h."""
    return dataclasses.replace(
        record,
        instantaneous_speed_kmh=(
            None
            if record.instantaneous_speed_kmh is None
            else speed_from_deck(record.instantaneous_speed_kmh, SpeedUnit.MPH)
        ),
        average_speed_kmh=(
            None
            if record.average_speed_kmh is None
            else speed_from_deck(record.average_speed_kmh, SpeedUnit.MPH)
        ),
    )
