"""The client half of the bleak backend on Bumble: each connection a fresh central `Device` on
the simulated radio, GATT discovered into bleak's collections, Bumble's failures raised as
bleak's exceptions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

import structlog
from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDBusError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import core as bumble_core
from bumble.att import ATT_Error
from bumble.device import Peer
from bumble.hci import Address, HCI_Error, HCI_ErrorCode

from treadmilld.runtime.background import Background
from treadmilld_sim.link import SimulatedRadio

_log = structlog.get_logger(__name__)

# Core Vol 3, Part F, 3.2.8: an LE ATT MTU is 23..517; 247 fills one LE data PDU with DLE,
# which is what phones and BlueZ usually negotiate.
REQUESTED_ATT_MTU = 247
DEFAULT_ATT_MTU = 23

# What BlueZ answers StartNotify on a characteristic with neither Notify nor Indicate
# (bluez/bluez src/gatt-client.c `characteristic_start_notify` -> `btd_error_not_supported`,
# src/error.c), which bleak's BlueZ backend raises as BleakDBusError untranslated
# (bleak 3.1.0 `assert_gatt_reply(reply, start_notify=True)`).
BLUEZ_ERROR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
BLUEZ_NOT_SUPPORTED_MESSAGE = "Operation is not supported"


def _bleak_uuid(bumble_uuid: Any) -> str:
    """bleak compares UUID strings as stored, so store them 128-bit and lowercase."""
    return normalize_uuid_str(bumble_uuid.to_hex_str("-"))


def _bleak_properties(bits: int) -> list[CharacteristicPropertyName]:
    return [name for flag, name in CHARACTERISTIC_PROPERTIES.items() if bits & flag]


def _parse_address(address: str) -> Any:
    try:
        return Address(address.upper(), Address.RANDOM_DEVICE_ADDRESS)
    except (ValueError, bumble_core.InvalidArgumentError) as error:
        raise BleakError(
            f"{address!r} is not a Bluetooth address; pass one like 'F0:00:00:00:01:01'"
        ) from error


class BumbleClientBackend(BaseBleakClient):
    """bleak's client backend on the radio `_radio`; `make_backends` binds one."""

    _radio: ClassVar[SimulatedRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        # bleak passes services=, bluez=, winrt=; bleak-retry-connector adds pair=,
        # _is_retry_client=. None changes how a simulated link behaves.
        del kwargs
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._peer_name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._device: Any = None
        self._controller: Any = None
        self._connection: Any = None
        self._peer: Any = None
        self._mtu = DEFAULT_ATT_MTU
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}
        self._teardown_tasks: set[asyncio.Task[None]] = set()
        # GATT requests whose caller left still finish (see `_gatt`).
        self._requests = Background()

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._peer_name or self.address

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connection -------------------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        # bleak-retry-connector passes timeout= (overriding the constructor's) and
        # dangerous_use_bleak_cache=, which has no meaning without BlueZ.
        timeout = float(kwargs.get("timeout", self._timeout))
        if self._connection is not None:
            raise BleakError(f"already connected to {self.address}; disconnect() first")
        await self._finish_teardowns()
        peer_address = _parse_address(self.address)
        device, controller = self._radio.new_central("client")
        self._device, self._controller = device, controller
        try:
            await device.power_on()
            # Bumble's emulated controller never completes LE Create Connection Cancel, so
            # Bumble's own timeout would hang; bound the attempt from outside and throw the
            # whole central away if it expires (its pending connection must not fire later).
            try:
                async with asyncio.timeout(timeout):
                    connection = await device.connect(peer_address, timeout=None)
            except TimeoutError:
                raise TimeoutError(
                    f"no connectable treadmill answered at {self.address} within {timeout:g} s;"
                    " is it switched on and advertising?"
                ) from None
            self._connection = connection
            connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
            self._peer = Peer(connection)
            async with asyncio.timeout(timeout):
                self._mtu = await self._peer.request_mtu(REQUESTED_ATT_MTU)
                self.services = await self._discover()
            if pair:
                _log.info("sim_pairing_skipped", address=self.address, reason="not needed")
        except BaseException:
            await self._abandon()
            raise
        _log.debug("sim_client_connected", address=self.address, mtu=self._mtu)

    async def _discover(self) -> BleakGATTServiceCollection:
        peer = self._peer
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services():
            bleak_service = BleakGATTService(service, service.handle, _bleak_uuid(service.uuid))
            # Order matters: a characteristic's service must be in the collection first.
            collection.add_service(bleak_service)
            for characteristic in await peer.discover_characteristics(service=service):
                bleak_characteristic = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    _bleak_uuid(characteristic.uuid),
                    _bleak_properties(int(characteristic.properties)),
                    lambda: self._mtu - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_characteristic)
                for descriptor in await peer.discover_descriptors(characteristic=characteristic):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor,
                            descriptor.handle,
                            _bleak_uuid(descriptor.type),
                            bleak_characteristic,
                        )
                    )
        return collection

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(HCI_Error, bumble_core.BaseBumbleError, TimeoutError):
                async with asyncio.timeout(max(self._timeout, 1.0)):
                    await connection.disconnect(
                        reason=HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
                    )
            # The disconnection event has normally fired by now; if the link was stuck, act
            # as if it had, so the caller always ends up disconnected.
            if self._connection is connection:
                self._on_disconnection(HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
        await self._finish_teardowns()
        await self._abandon()

    def _on_disconnection(self, reason: int) -> None:
        if self._connection is None:
            return
        _log.debug("sim_client_disconnected", address=self.address, reason=reason)
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        # Nothing can reach a central after its link is gone: take its controller off the
        # air now, power the host down in the background.
        controller, device = self._controller, self._device
        self._controller = self._device = None
        if controller is not None:
            self._radio.remove_controller(controller)
        if device is not None:
            task = asyncio.get_running_loop().create_task(device.power_off())
            self._teardown_tasks.add(task)
            task.add_done_callback(self._teardown_tasks.discard)
        # BlueZ and WinRT call this on every disconnect, local or not; so do we.
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _finish_teardowns(self) -> None:
        if self._teardown_tasks:
            await asyncio.gather(*self._teardown_tasks, return_exceptions=True)

    async def _abandon(self) -> None:
        """Throw away the central of a failed or finished connection."""
        self._connection = self._peer = None
        device, controller = self._device, self._controller
        self._device = self._controller = None
        if controller is not None:
            self._radio.remove_controller(controller)
        if device is not None:
            with contextlib.suppress(HCI_Error, bumble_core.BaseBumbleError):
                await device.power_off()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        # FTMP §6: public-use machines should not require bonding, and the simulator does not.
        del args, kwargs
        _log.info("sim_pairing_skipped", address=self.address, reason="not needed")

    async def unpair(self) -> None:
        _log.info("sim_unpairing_skipped", address=self.address, reason="never paired")

    # -- GATT I/O -------------------------------------------------------------------------

    def _require_peer(self) -> Any:
        if self._peer is None:
            raise BleakError(f"not connected to {self.address}; connect() first")
        return self._peer

    async def _gatt(self, operation: Callable[[Any], Any]) -> Any:
        """Run one GATT operation, translating Bumble's failures into bleak's exceptions."""
        peer = self._require_peer()
        # Shielded: if our caller is cancelled mid-request (a shutdown cancelling a speed write),
        # Bumble's request still completes and consumes its response, as a BlueZ D-Bus call
        # would. Cancelling it instead leaves Bumble to set_result() on a cancelled future when
        # the response arrives (InvalidStateError inside its event handler).
        try:
            return await self._requests.shielded(operation(peer))
        except ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # Bumble cancels an outstanding request when the link drops; that is a failed
            # operation, not a cancellation of our caller.
            if self._connection is not None:
                raise
            raise BleakError(f"{self.address} disconnected during a GATT operation") from None
        except bumble_core.TimeoutError as error:
            raise TimeoutError(f"{self.address} did not answer a GATT request in time") from error

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        del use_cached, kwargs
        value = await self._gatt(lambda peer: peer.read_value(characteristic.obj))
        return bytearray(value)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        del use_cached, kwargs
        value = await self._gatt(lambda peer: peer.read_value(descriptor.obj))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        payload = bytes(data)
        await self._gatt(
            lambda peer: peer.write_value(characteristic.obj, payload, with_response=response)
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        payload = bytes(data)
        await self._gatt(lambda peer: peer.write_value(descriptor.obj, payload, with_response=True))

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        del kwargs
        if not {"notify", "indicate"} & set(characteristic.properties):
            # BlueZ refuses before touching the air (see BLUEZ_ERROR_NOT_SUPPORTED).
            raise BleakDBusError(BLUEZ_ERROR_NOT_SUPPORTED, [BLUEZ_NOT_SUPPORTED_MESSAGE])
        loop = asyncio.get_running_loop()

        def deliver(value: bytes) -> None:
            # Never call back re-entrantly from inside Bumble's receive path: a real stack
            # hands notifications to the application on a later loop iteration.
            loop.call_soon(callback, bytearray(value))

        proxy = characteristic.obj
        # Prefer notifications when a characteristic offers both, like bleak's other backends.
        await self._gatt(lambda peer: peer.subscribe(proxy, deliver, prefer_notify=True))
        self._subscriptions[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        deliver = self._subscriptions.pop(characteristic.handle, None)
        if deliver is None:
            return
        await self._gatt(lambda peer: peer.unsubscribe(characteristic.obj, deliver))
