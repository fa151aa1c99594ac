"""The FTMS GATT server of one simulated treadmill, on a Bumble `Device`.

Bytes on the wire come from the daemon's codec (`treadmilld.ftms`) only: this module decides
*when* to send what, the model decides *what happens*, the codec decides the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from bumble import att
from bumble.core import UUID, BaseBumbleError
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import HCI_Error, HCI_ErrorCode

from treadmilld.clock import Clock
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    DEVICE_INFORMATION_SERVICE_UUID,
    FEATURE_UUID,
    FIRMWARE_REVISION_UUID,
    FTMS_SERVICE_UUID,
    INCLINATION_RANGE_UUID,
    MACHINE_STATUS_UUID,
    MANUFACTURER_NAME_UUID,
    MODEL_NUMBER_UUID,
    SERIAL_NUMBER_UUID,
    SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    CodecError,
    ControlOpcode,
    ControlRequest,
    ControlResponse,
    MachineStatus,
    ResultCode,
    StopOrPause,
    TrainingStatus,
    decode_control_request,
    encode_control_response,
    encode_feature,
    encode_inclination_range,
    encode_machine_status,
    encode_speed_range,
    encode_training_status,
    encode_treadmill_data,
    encode_treadmill_data_fragments,
)
from treadmilld_sim.model import RunningState, TreadmillModel

log = structlog.get_logger()

ControlListener = Callable[[ControlRequest, float], None]

# Control Point ATT errors (FTMS v1.0.1 §4.16.3, Core Supplement Part B §1.2):
# written while its indications are off / while another procedure is still running.
ATT_CCCD_IMPROPERLY_CONFIGURED = 0xFD
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0xFE
# Core Vol 3, Part F, 3.4.1.1: reads/writes a characteristic does not offer; an empty
# Control Point write has no opcode.
ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
# CCCD bit that enables indications (Core Vol 3, Part G, 3.3.3.3).
_CCCD_INDICATE = 0x02

# Opcodes a treadmill understands; anything else is answered "Not Supported" (FTMS §4.16.2).
_TREADMILL_OPCODES = frozenset(
    {
        ControlOpcode.REQUEST_CONTROL,
        ControlOpcode.RESET,
        ControlOpcode.SET_TARGET_SPEED,
        ControlOpcode.SET_TARGET_INCLINATION,
        ControlOpcode.START_OR_RESUME,
        ControlOpcode.STOP_OR_PAUSE,
        ControlOpcode.SET_TARGETED_DISTANCE,
        ControlOpcode.SET_TARGETED_TRAINING_TIME,
    }
)

# With the fragmentation quirk, records are split as if the ATT MTU were this small: a deck
# with a tiny buffer, forcing the More Data path of FTMS §4.19 even at MTU 247.
FRAGMENT_MTU = 12

# With echo_target_while_decelerating, Target Speed Changed follows the slowing belt this often:
# the Urevo E1L sends one every 0.1 to 0.4 s (blak3r/treadspan protocol-analysis/urevo-E1L).
DECELERATION_ECHO_INTERVAL_S = 0.3


async def lose_link(connection: Any) -> None:
    """Drop `connection` the way a radio link is lost: HCI 0x08, connection timeout.

    The central sees an ordinary disconnection (bleak's disconnected callback fires), not a
    polite one; LocalLink never notices a vanished peer by itself (bumble 0.0.236:
    `LocalLink.remove_controller` disconnects nobody), so the peripheral has to end the link.
    """
    with contextlib.suppress(HCI_Error, BaseBumbleError):
        await connection.disconnect(reason=HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)


def _sig_uuid(full_uuid: str) -> Any:
    """The codec's 128-bit SIG UUID as Bumble's 16-bit form (what real servers put in ATT)."""
    return UUID.from_16_bits(int(full_uuid[4:8], 16))


def _characteristic(
    uuid: str,
    properties: Characteristic.Properties,
    read: Callable[[], bytes] | None = None,
    write: Callable[[Any, bytes], Awaitable[None]] | None = None,
) -> Characteristic[bytes]:
    """A characteristic that refuses what its properties do not offer, as real stacks do.

    (Bumble's server does not check properties itself: a read of a notify-only
    characteristic would otherwise return an empty value instead of Read Not Permitted.)
    """

    def refuse_read(_connection: Any) -> bytes:
        raise att.ATT_Error(ATT_READ_NOT_PERMITTED)

    async def refuse_write(_connection: Any, _value: bytes) -> None:
        raise att.ATT_Error(ATT_WRITE_NOT_PERMITTED)

    permissions = Characteristic.Permissions(0)
    if read is not None:
        permissions |= Characteristic.READABLE
    if write is not None:
        permissions |= Characteristic.WRITEABLE
    value: CharacteristicValue[bytes] = CharacteristicValue(
        read=(lambda _connection: read()) if read is not None else refuse_read,
        write=write if write is not None else refuse_write,
    )
    return Characteristic(_sig_uuid(uuid), properties, permissions, value)


class FtmsGattServer:
    """FTMS + Device Information on one Bumble device, bound to one `TreadmillModel`."""

    def __init__(self, device: Any, model: TreadmillModel, clock: Clock) -> None:
        self._device = device
        self._model = model
        self._clock = clock
        self._control_listeners: list[ControlListener] = []
        self._procedure_in_flight = False
        self._answer_tasks: set[asyncio.Task[None]] = set()
        self._outbox: asyncio.Queue[tuple[Any, bytes]] = asyncio.Queue()
        self._background: list[asyncio.Task[None]] = []
        self._deceleration_began = asyncio.Event()

        config = model.config
        read = Characteristic.Properties.READ
        self.feature = _characteristic(FEATURE_UUID, read, lambda: encode_feature(model.feature))
        self.treadmill_data = _characteristic(TREADMILL_DATA_UUID, Characteristic.Properties.NOTIFY)
        self.training_status = _characteristic(
            TRAINING_STATUS_UUID,
            read | Characteristic.Properties.NOTIFY,
            lambda: encode_training_status(model.training_status),
        )
        self.speed_range = _characteristic(
            SPEED_RANGE_UUID, read, lambda: encode_speed_range(model.speed_range)
        )
        self.inclination_range = _characteristic(
            INCLINATION_RANGE_UUID, read, lambda: encode_inclination_range(model.inclination_range)
        )
        # FTMS §4.16: the Control Point is Write + Indicate, never Write Without Response.
        self.control_point = _characteristic(
            CONTROL_POINT_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            write=self._on_control_point_write,
        )
        self.machine_status = _characteristic(MACHINE_STATUS_UUID, Characteristic.Properties.NOTIFY)
        device.add_service(
            Service(
                _sig_uuid(FTMS_SERVICE_UUID),
                [
                    self.feature,
                    self.treadmill_data,
                    self.training_status,
                    self.speed_range,
                    self.inclination_range,
                    self.control_point,
                    self.machine_status,
                ],
            )
        )

        def text(uuid: str, value: str) -> Characteristic[bytes]:
            encoded = value.encode("utf-8")
            return _characteristic(uuid, read, lambda: encoded)

        device.add_service(
            Service(
                _sig_uuid(DEVICE_INFORMATION_SERVICE_UUID),
                [
                    text(MANUFACTURER_NAME_UUID, config.manufacturer),
                    text(MODEL_NUMBER_UUID, config.model_number),
                    text(SERIAL_NUMBER_UUID, config.serial_number),
                    text(FIRMWARE_REVISION_UUID, config.firmware_revision),
                ],
            )
        )
        model.add_status_listener(self._on_machine_status)
        model.add_training_status_listener(self._on_training_status)
        model.add_deceleration_listener(self._deceleration_began.set)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Begin sending notifications (call with the device powered on)."""
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self._send_outbox(), name="sim-notify"),
            loop.create_task(self._send_treadmill_data(), name="sim-treadmill-data"),
            loop.create_task(self._echo_while_decelerating(), name="sim-deceleration-echo"),
        ]

    async def stop(self) -> None:
        tasks = [*self._background, *self._answer_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._background = []

    def on_disconnection(self) -> None:
        """The client left: it loses control, and any answer still owed to it is dropped."""
        self._model.release_control()
        for task in list(self._answer_tasks):
            task.cancel()
        self._procedure_in_flight = False

    def add_control_listener(self, listener: ControlListener) -> Callable[[], None]:
        self._control_listeners.append(listener)
        return lambda: self._control_listeners.remove(listener)

    # -- Control Point ---------------------------------------------------------------------

    def _indications_enabled(self, connection: Any) -> bool:
        cccd = self._device.gatt_server.subscribers.get(connection, {}).get(
            self.control_point.handle
        )
        return bool(cccd) and bool(cccd[0] & _CCCD_INDICATE)

    async def _on_control_point_write(self, connection: Any, value: bytes) -> None:
        """Check and take one Control Point write; the answer is indicated later.

        Bumble awaits this before its ATT Write Response; only `drops_link_on_stop` waits in
        here, so that the link is gone before the write is acknowledged.
        """
        value = bytes(value)
        if not self._indications_enabled(connection):
            raise att.ATT_Error(ATT_CCCD_IMPROPERLY_CONFIGURED, self.control_point.handle)
        if self._procedure_in_flight:
            raise att.ATT_Error(ATT_PROCEDURE_ALREADY_IN_PROGRESS, self.control_point.handle)
        if not value:
            raise att.ATT_Error(ATT_INVALID_ATTRIBUTE_VALUE_LENGTH, self.control_point.handle)
        opcode = value[0]
        request: ControlRequest | None
        result: ResultCode | None = None
        try:
            request = decode_control_request(value)
        except CodecError as error:
            log.info("sim_control_request_rejected", bytes=value.hex(), reason=str(error))
            request = None
            known = opcode in _TREADMILL_OPCODES
            result = ResultCode.INVALID_PARAMETER if known else ResultCode.NOT_SUPPORTED
        if request is not None:
            received_at = self._clock.now()
            for listener in list(self._control_listeners):
                listener(request, received_at)
        faults = self._model.faults
        if isinstance(request, StopOrPause) and faults.drops_link_on_stop:
            # The deck never acts on the Stop and never answers: the belt keeps its target.
            log.info("sim_link_dropped_on_stop", treadmill=self._model.config.name)
            await lose_link(connection)
            return
        forced = faults.forced_results.get(ControlOpcode(opcode)) if _known_opcode(opcode) else None
        if forced is not None:
            result = forced
        if faults.silent_control_point:
            # Like KingSmith MC21: the command takes effect, the response never comes.
            if result is None and request is not None:
                self._model.apply_control_request(request)
            return
        self._procedure_in_flight = True
        task = asyncio.get_running_loop().create_task(
            self._answer(connection, opcode, request, result, faults.response_delay_s)
        )
        self._answer_tasks.add(task)
        task.add_done_callback(self._answer_tasks.discard)

    async def _answer(
        self,
        connection: Any,
        opcode: int,
        request: ControlRequest | None,
        result: ResultCode | None,
        delay_s: float,
    ) -> None:
        # Runs after the ATT Write Response went out, so the client sees write, then answer.
        try:
            if delay_s > 0:
                await self._clock.sleep(delay_s)
            if result is None and request is not None:
                result = self._model.apply_control_request(request)
            if result is None:
                result = ResultCode.NOT_SUPPORTED
            response = encode_control_response(ControlResponse(opcode, result))
            log.debug("sim_control_response", opcode=opcode, result=result.name)
            await self._device.indicate_subscriber(connection, self.control_point, response)
        except (TimeoutError, att.ATT_Error) as error:
            log.warning("sim_control_response_lost", opcode=opcode, error=str(error))
        finally:
            self._procedure_in_flight = False

    # -- notifications ---------------------------------------------------------------------

    def _on_machine_status(self, status: MachineStatus) -> None:
        self._outbox.put_nowait((self.machine_status, encode_machine_status(status)))

    def _on_training_status(self, status: TrainingStatus) -> None:
        self._outbox.put_nowait((self.training_status, encode_training_status(status)))

    async def _send_outbox(self) -> None:
        # One sender keeps status notifications in the order the treadmill raised them.
        while True:
            characteristic, value = await self._outbox.get()
            await self._notify(characteristic, value)

    async def _notify(self, characteristic: Any, value: bytes) -> None:
        if not self._device.connections:
            return
        try:
            await self._device.notify_subscribers(characteristic, value)
        except (TimeoutError, att.ATT_Error) as error:
            log.warning("sim_notification_lost", error=str(error))

    async def _echo_while_decelerating(self) -> None:
        """Urevo E1L: Target Speed Changed with the measured speed while the belt slows.

        The model is lazy (no tick), so this wakes on the clock only while a deceleration is
        under way and the quirk is on; the speed comes from the model at each wake, so it is
        right under real, scaled and virtual time alike.
        """
        model = self._model
        while True:
            await self._deceleration_began.wait()
            self._deceleration_began.clear()
            previous = model.belt_speed_kmh
            while model.faults.echo_target_while_decelerating and model.decelerating:
                await self._clock.sleep(DECELERATION_ECHO_INTERVAL_S)
                current = model.belt_speed_kmh
                if current >= previous or not model.faults.echo_target_while_decelerating:
                    break  # started again, or the quirk was switched off meanwhile
                # The last echo carries the goal itself (`05 00 00` after a stop).
                model.echo_measured_speed()
                previous = current

    async def _send_treadmill_data(self) -> None:
        model = self._model
        last_sent = self._clock.now()
        while True:
            faults = model.faults
            base_rate = model.config.data_rate_hz
            fast_rate = faults.moving_data_rate_hz
            # Wake at the faster rate when there is one, so a belt that starts moving switches
            # to it at once rather than after the slow interval.
            await self._clock.sleep(1.0 / max(base_rate, fast_rate or base_rate))
            moving = model.running_state is RunningState.RUNNING or model.belt_speed_kmh > 0
            rate = fast_rate if moving and fast_rate is not None else base_rate
            now = self._clock.now()
            if now - last_sent < 1.0 / rate - 1e-6:
                continue
            last_sent = now
            if not self._device.connections:
                continue
            record = model.treadmill_data()
            if faults.fragment_treadmill_data:
                notifications = encode_treadmill_data_fragments(record, FRAGMENT_MTU)
            else:
                notifications = [encode_treadmill_data(record)]
            for notification in notifications:
                await self._notify(self.treadmill_data, notification)


def _known_opcode(opcode: int) -> bool:
    return opcode in ControlOpcode.__members__.values()
