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
    StartedOrResumedByUser,
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
from treadmilld.ftms.uuids import (
    HARDWARE_REVISION_UUID,
    SOFTWARE_REVISION_UUID,
    uuid16,
)
from treadmilld.ftms.vendor import KINGSMITH_UNLOCK_CHARACTERISTIC_UUID
from treadmilld.runtime.clock import Clock
from treadmilld_sim.model import RunningState, TreadmillModel

_log = structlog.get_logger(__name__)

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
# Device Information System ID (Bluetooth Assigned Numbers; the spec makes it 8 bytes binary).
SYSTEM_ID_UUID = uuid16(0x2A23)
# Machine Status 0x04 as the Urevo E1L sends it: `04 00 00` (blak3r/treadspan captures).
_STARTED_STATUS_TRAILING_BYTES = b"\x00\x00"

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


def sig_uuid(full_uuid: str) -> Any:
    """The codec's 128-bit SIG UUID as Bumble's 16-bit form (what real servers put in ATT);
    a vendor 128-bit UUID stays 128-bit."""
    if full_uuid.endswith("-0000-1000-8000-00805f9b34fb") and full_uuid.startswith("0000"):
        return UUID.from_16_bits(int(full_uuid[4:8], 16))
    return UUID(full_uuid)


def gatt_characteristic(
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
    return Characteristic(sig_uuid(uuid), properties, permissions, value)


def _control_point_properties(config: Any) -> Characteristic.Properties:
    """FTMS §4.16 makes the Control Point Write + Indicate; a deck may differ (the Urevo E1L:
    Write Without Response + Notify)."""
    properties = Characteristic.Properties(0)
    if config.control_point_writes in ("write", "both"):
        properties |= Characteristic.Properties.WRITE
    if config.control_point_writes in ("write_without_response", "both"):
        properties |= Characteristic.Properties.WRITE_WITHOUT_RESPONSE
    if config.control_point_answers == "notify":
        properties |= Characteristic.Properties.NOTIFY
    else:
        properties |= Characteristic.Properties.INDICATE
    return properties


class FtmsGattServer:
    """FTMS + Device Information on one Bumble device, bound to one `TreadmillModel`."""

    def __init__(
        self, device: Any, model: TreadmillModel, clock: Clock, address: str | None = None
    ) -> None:
        self._device = device
        self._model = model
        self._clock = clock
        self._control_listeners: list[ControlListener] = []
        self._procedure_in_flight = False
        self._answer_tasks: set[asyncio.Task[None]] = set()
        self._outbox: asyncio.Queue[tuple[Any, bytes]] = asyncio.Queue()
        self._background: list[asyncio.Task[None]] = []
        self._deceleration_began = asyncio.Event()
        self._state_changed = asyncio.Event()
        # KingSmith MC21: Control Point requests go unanswered until the vendor characteristic
        # is written on this connection (treadmilld.ftms.vendor).
        self._unlocked = not model.config.vendor_unlock

        config = model.config
        read = Characteristic.Properties.READ
        self.feature = gatt_characteristic(
            FEATURE_UUID, read, lambda: encode_feature(model.feature)
        )
        self.treadmill_data = gatt_characteristic(
            TREADMILL_DATA_UUID, Characteristic.Properties.NOTIFY
        )
        self.training_status = gatt_characteristic(
            TRAINING_STATUS_UUID,
            read | Characteristic.Properties.NOTIFY,
            lambda: encode_training_status(model.training_status),
        )
        self.speed_range = gatt_characteristic(
            SPEED_RANGE_UUID, read, lambda: encode_speed_range(model.speed_range)
        )
        self.inclination_range = gatt_characteristic(
            INCLINATION_RANGE_UUID, read, lambda: encode_inclination_range(model.inclination_range)
        )
        self.control_point = gatt_characteristic(
            CONTROL_POINT_UUID,
            _control_point_properties(config),
            write=self._on_control_point_write,
        )
        self.machine_status = gatt_characteristic(
            MACHINE_STATUS_UUID, Characteristic.Properties.NOTIFY
        )
        ftms = [
            self.feature,
            self.treadmill_data,
            self.training_status,
            self.speed_range,
            self.inclination_range,
            self.control_point,
            self.machine_status,
        ]
        if config.vendor_unlock:
            ftms.append(
                gatt_characteristic(
                    KINGSMITH_UNLOCK_CHARACTERISTIC_UUID,
                    Characteristic.Properties.WRITE,
                    write=self._on_unlock_write,
                )
            )
        device.add_service(Service(sig_uuid(FTMS_SERVICE_UUID), ftms))

        def text(uuid: str, value: str) -> Characteristic[bytes]:
            encoded = value.encode("utf-8")
            return gatt_characteristic(uuid, read, lambda: encoded)

        information = [
            text(MANUFACTURER_NAME_UUID, config.manufacturer),
            text(MODEL_NUMBER_UUID, config.model_number),
            text(SERIAL_NUMBER_UUID, config.serial_number),
        ]
        if config.hardware_revision is not None:
            information.append(text(HARDWARE_REVISION_UUID, config.hardware_revision))
        information.append(text(FIRMWARE_REVISION_UUID, config.firmware_revision))
        if config.software_revision is not None:
            information.append(text(SOFTWARE_REVISION_UUID, config.software_revision))
        if config.system_id_as_text:
            # The Urevo E1L sends its address as text ("5C:CE:21:8F:A4:47"), not the spec's
            # 8-byte binary (blak3r/treadspan urevo-E1L captures).
            information.append(text(SYSTEM_ID_UUID, address or "00:00:00:00:00:00"))
        device.add_service(Service(sig_uuid(DEVICE_INFORMATION_SERVICE_UUID), information))
        for vendor in config.vendor_services:
            device.add_service(
                Service(
                    UUID.from_16_bits(vendor),
                    [
                        gatt_characteristic(
                            uuid16(vendor + 1),
                            Characteristic.Properties.WRITE_WITHOUT_RESPONSE
                            | Characteristic.Properties.NOTIFY,
                            write=self._on_vendor_write,
                        )
                    ],
                )
            )
        self._properties_by_handle = {
            characteristic.handle: characteristic.properties
            for service in device.gatt_server.services
            if isinstance(service, Service)
            for characteristic in service.characteristics
            if isinstance(characteristic, Characteristic)
        }
        self._enforce_write_properties()
        model.add_status_listener(self._on_machine_status)
        model.add_training_status_listener(self._on_training_status)
        model.add_deceleration_listener(self._deceleration_began.set)
        model.add_state_listener(self._state_changed.set)

    def _enforce_write_properties(self) -> None:
        """Refuse writes a characteristic's properties do not offer, as real servers do.

        Bumble 0.0.236's server checks no properties on writes ("TODO: check permissions" in
        `Server.on_att_write_request` / `on_att_write_command`), and BlueZ 5.55 and later does
        not either when bleak names the write type (bluez/bluez 307eb8cc8, "allow 'command' even
        when property not set"): whatever a client asks for goes on air, and the deck decides. So
        the deck answers a Write Request to a characteristic without Write with ATT Write Not
        Permitted (Core Vol 3, Part F, 3.4.5.1), and drops a Write Command to one without Write
        Without Response (3.4.5.3: a command that cannot be done is ignored, never answered).
        Control Point commands go to the Control Point handler, which must not raise.
        """
        server = self._device.gatt_server
        on_request = server.on_att_write_request
        on_command = server.on_att_write_command
        write = Characteristic.Properties.WRITE
        write_command = Characteristic.Properties.WRITE_WITHOUT_RESPONSE

        def write_request(bearer: Any, request: Any) -> None:
            properties = self._properties_by_handle.get(request.attribute_handle)
            if properties is not None and not properties & write:
                _log.info("sim_write_request_refused", handle=request.attribute_handle)
                server.send_response(
                    bearer,
                    att.ATT_Error_Response(
                        request_opcode_in_error=request.op_code,
                        attribute_handle_in_error=request.attribute_handle,
                        error_code=ATT_WRITE_NOT_PERMITTED,
                    ),
                )
                return
            on_request(bearer, request)

        def write_command_received(bearer: Any, command: Any) -> None:
            handle = command.attribute_handle
            properties = self._properties_by_handle.get(handle)
            if properties is not None and not properties & write_command:
                _log.info("sim_write_command_ignored", handle=handle)
                return
            if handle == self.control_point.handle:
                self._spawn(self._on_control_point_command(bearer, bytes(command.attribute_value)))
                return
            on_command(bearer, command)

        server.on_att_write_request = write_request
        server.on_att_write_command = write_command_received

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._answer_tasks.add(task)
        task.add_done_callback(self._answer_tasks.discard)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Begin sending notifications (call with the device powered on)."""
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self._send_outbox(), name="sim-notify"),
            loop.create_task(self._send_treadmill_data(), name="sim-treadmill-data"),
            loop.create_task(self._echo_while_decelerating(), name="sim-deceleration-echo"),
            loop.create_task(self._watch_self_stop(), name="sim-self-stop"),
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
        # The MC21 unlock holds for one connection: the KS Fit app writes it on every connect.
        self._unlocked = not self._model.config.vendor_unlock

    def add_control_listener(self, listener: ControlListener) -> Callable[[], None]:
        self._control_listeners.append(listener)
        return lambda: self._control_listeners.remove(listener)

    # -- Control Point ---------------------------------------------------------------------

    def _answers_enabled(self, connection: Any) -> bool:
        """Whether the client subscribed to Control Point answers.

        An indicating Control Point needs the indicate bit (FTMS §4.16.3). A notifying one takes
        any bit: the apps driving the Urevo E1L enable its CCCD with `02 00` (indications) and
        still get its notifications (blak3r/treadspan captures).
        """
        cccd = self._device.gatt_server.subscribers.get(connection, {}).get(
            self.control_point.handle
        )
        if not cccd:
            return False
        if self._model.config.control_point_answers == "notify":
            return bool(cccd[0] & 0x03)
        return bool(cccd[0] & _CCCD_INDICATE)

    async def _on_unlock_write(self, _connection: Any, value: bytes) -> None:
        _log.info(
            "sim_vendor_unlock_written", treadmill=self._model.config.name, bytes=bytes(value).hex()
        )
        self._unlocked = True

    async def _on_vendor_write(self, _connection: Any, value: bytes) -> None:
        _log.info("sim_vendor_write", treadmill=self._model.config.name, bytes=bytes(value).hex())

    async def _on_control_point_write(self, connection: Any, value: bytes) -> None:
        """A Write Request: check and take it; the answer is indicated (or notified) later.

        Bumble awaits this before its ATT Write Response; only `drops_link_on_stop` waits in
        here, so that the link is gone before the write is acknowledged.
        """
        await self._take_control_point_write(connection, bytes(value), command=False)

    async def _on_control_point_command(self, connection: Any, value: bytes) -> None:
        """A Write Command (Write Without Response): the same, but nothing can be refused at ATT
        level, so what a request would get an ATT error for is dropped and logged."""
        try:
            await self._take_control_point_write(connection, value, command=True)
        except att.ATT_Error as error:
            _log.info("sim_control_command_dropped", bytes=value.hex(), error=error.error_code)

    async def _take_control_point_write(
        self, connection: Any, value: bytes, *, command: bool
    ) -> None:
        del command  # both kinds take the same path; only how a refusal surfaces differs
        if not self._answers_enabled(connection):
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
            _log.info("sim_control_request_rejected", bytes=value.hex(), reason=str(error))
            request = None
            known = opcode in _TREADMILL_OPCODES
            result = ResultCode.INVALID_PARAMETER if known else ResultCode.NOT_SUPPORTED
        if request is not None:
            received_at = self._clock.now()
            for listener in list(self._control_listeners):
                listener(request, received_at)
        if not self._unlocked:
            # KingSmith MC21 before its vendor unlock: taken at ATT level, never acted on or
            # answered, so the client's request times out (treadmilld.ftms.vendor).
            _log.info("sim_control_point_locked", bytes=value.hex())
            return
        faults = self._model.faults
        if isinstance(request, StopOrPause) and faults.drops_link_on_stop:
            # The deck never acts on the Stop and never answers: the belt keeps its target.
            _log.info("sim_link_dropped_on_stop", treadmill=self._model.config.name)
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
            _log.debug("sim_control_response", opcode=opcode, result=result.name)
            if self._model.config.control_point_answers == "notify":
                # force: Bumble would only notify a CCCD with the notify bit, and the E1L's
                # clients write `02 00` (_answers_enabled checked the CCCD already).
                await self._device.notify_subscriber(
                    connection, self.control_point, response, force=True
                )
            else:
                await self._device.indicate_subscriber(connection, self.control_point, response)
        except (TimeoutError, att.ATT_Error) as error:
            _log.warning("sim_control_response_lost", opcode=opcode, error=str(error))
        finally:
            self._procedure_in_flight = False

    # -- notifications ---------------------------------------------------------------------

    def _on_machine_status(self, status: MachineStatus) -> None:
        value = encode_machine_status(status)
        padded = self._model.config.started_status_trailing_bytes
        if padded and isinstance(status, StartedOrResumedByUser):
            value += _STARTED_STATUS_TRAILING_BYTES
        self._outbox.put_nowait((self.machine_status, value))

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
            _log.warning("sim_notification_lost", error=str(error))

    async def _echo_while_decelerating(self) -> None:
        """Urevo E1L: Target Speed Changed with the measured speed while the belt slows.

        The model is lazy (no tick), so this wakes on the clock only while a deceleration is
        under way and the quirk is on; the speed comes from the model at each wake, so it is
        right under real, scaled and virtual time alike.
        """
        model = self._model
        vendor_training_status = model.config.vendor_training_status
        while True:
            await self._deceleration_began.wait()
            self._deceleration_began.clear()
            previous = model.belt_speed_kmh
            while (
                model.faults.echo_target_while_decelerating or vendor_training_status
            ) and model.decelerating:
                await self._clock.sleep(DECELERATION_ECHO_INTERVAL_S)
                current = model.belt_speed_kmh
                if current >= previous:
                    break  # started again
                if model.faults.echo_target_while_decelerating:
                    # The last echo carries the goal itself (`05 00 00` after a stop).
                    model.echo_measured_speed()
                previous = current
            stopped = model.running_state in (RunningState.STOPPED, RunningState.PAUSED)
            if vendor_training_status and stopped and model.belt_speed_kmh <= 0:
                # The E1L's `00 11` once the belt stands after `00 10` (model.training_status).
                self._on_training_status(model.training_status)

    async def _watch_self_stop(self) -> None:
        """Wake when a deck with `self_stop_after_s` is due to stop itself, so its status (if
        any) goes out on time; the model does the stop itself, exactly, on that read."""
        model = self._model
        while True:
            self._state_changed.clear()
            due_in = model.self_stop_due_in()
            if due_in is None:
                await self._state_changed.wait()
                continue
            await self._clock.sleep(due_in)
            model.self_stop_due_in()  # brings the model up to now: stops the belt if due

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
