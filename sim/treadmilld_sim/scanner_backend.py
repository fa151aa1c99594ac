"""The scanner half of the bleak backend on Bumble: each scan a fresh central `Device` on the
simulated radio, its advertisements and scan responses merged per address like BlueZ does."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from bleak.backends.scanner import AdvertisementDataCallback, BaseBleakScanner
from bleak.exc import BleakError
from bumble import core as bumble_core
from bumble.device import Device
from bumble.hci import HCI_Error

from treadmilld_sim.advertising import parse_advertising_data
from treadmilld_sim.link import SimulatedRadio


class BumbleScannerBackend(BaseBleakScanner):
    """bleak's scanner backend on the radio `_radio`; `make_backends` binds one."""

    _radio: ClassVar[SimulatedRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        bluez: Any = None,
        cb: Any = None,
        **kwargs: Any,
    ) -> None:
        # bluez=/cb= are platform options of other backends; accepted so BleakScanner's
        # fixed call works, and ignored.
        del bluez, cb, kwargs
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._device: Any = None
        self._controller: Any = None
        # Per address: the last advertisement and the last scan response, merged like BlueZ
        # merges them into one Device1 (what bleak's AdvertisementData is built from there).
        self._heard: dict[str, tuple[bytes, bytes]] = {}

    async def start(self) -> None:
        if self._device is not None:
            raise BleakError("this scanner is already scanning; stop() it first")
        # Contract of BaseBleakScanner.seen_devices: cleared when scanning starts.
        self.seen_devices = {}
        self._heard = {}
        device, controller = self._radio.new_central("scanner")
        self._device, self._controller = device, controller
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            await device.power_on()
            await device.start_scanning(active=self._active, filter_duplicates=False)
        except BaseException:
            await self._release()
            raise

    async def stop(self) -> None:
        if self._device is None:
            return
        with contextlib.suppress(HCI_Error, bumble_core.BaseBumbleError):
            await self._device.stop_scanning()
        await self._release()

    async def _release(self) -> None:
        device, controller = self._device, self._controller
        self._device = self._controller = None
        if device is not None:
            device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            await device.power_off()
        if controller is not None:
            self._radio.remove_controller(controller)

    def _on_advertisement(self, advertisement: Any) -> None:
        address = advertisement.address.to_string(with_type_qualifier=False)
        if advertisement.is_scan_response and not self._active:
            return  # a passive scanner sends no scan request, so it hears no response
        # Bumble's own merge (`Advertisement.data`) drops the raw bytes; keep both parts here.
        heard, responded = self._heard.get(address, (b"", b""))
        if advertisement.is_scan_response:
            responded = bytes(advertisement.data_bytes)
        else:
            heard = bytes(advertisement.data_bytes)
        self._heard[address] = (heard, responded)
        advertisement_data = parse_advertising_data(heard + responded, advertisement.rssi)
        if not self.is_allowed_uuid(advertisement_data.service_uuids):
            return
        device = self.create_or_update_device(
            address,
            address,
            advertisement_data.local_name,
            advertisement.address,
            advertisement_data,
        )
        self.call_detection_callbacks(device, advertisement_data)
