"""A simulated heart-rate strap: the Heart Rate Service (0x180D) on a Bumble device, fed by the
wearer's `HeartRateModel`.

Bytes come from the daemon's codec (`treadmilld.ftms.encode_heart_rate_measurement`) only: the
physiology decides the heart rate, the faults decide what the strap makes of it, the codec
decides the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from bumble import att
from bumble.core import BaseBumbleError
from bumble.gatt import Characteristic, Service
from bumble.hci import HCI_Error, HCI_ErrorCode

from treadmilld.ftms import (
    BODY_SENSOR_LOCATION_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    HeartRateMeasurement,
    encode_heart_rate_measurement,
)
from treadmilld.runtime.clock import Clock
from treadmilld_sim.advertising import build_strap_advertising_data
from treadmilld_sim.physiology import STANDING_STILL, HeartRateModel, Work
from treadmilld_sim.server import gatt_characteristic, lose_link, sig_uuid
from treadmilld_sim.strap_config import Facing, SimulatedStrapConfig, StrapFaults

_log = structlog.get_logger(__name__)

# Body Sensor Location 0x01: chest (HRS v1.0 §3.2, its value table).
_CHEST = b"\x01"
# RR intervals one notification can carry at the default ATT MTU of 23: 20 value bytes minus
# flags, a uint16 heart rate and the energy field leave 8 (HRS v1.0 §3.1 notes the same limit).
_MAX_RR_PER_NOTIFICATION = 8
_U16 = 0xFFFF

WorkSource = Callable[[], Work]


class SimulatedStrap:
    """One chest strap on a Bumble device: a heart, the service that reports it, its faults."""

    def __init__(
        self,
        device: Any,
        config: SimulatedStrapConfig,
        address: str,
        clock: Clock,
        on_closed: Callable[[], None] = lambda: None,
    ) -> None:
        """Serve `config` on `device`, a powered-off Bumble `Device`. The wearer stands still
        until `walk_on` gives them a treadmill (the fleet does, from `config.treadmill`)."""
        self.config = config
        self.address = address
        self.name = config.name
        self.faults = StrapFaults.from_config(config)
        self.facing: Facing = config.facing
        self._work_source: WorkSource = lambda: STANDING_STILL
        self.model = HeartRateModel(config, clock, self._work)
        self._clock = clock
        self._device = device
        self._on_closed = on_closed
        self._last_sent_bpm = 0
        self._last_spike_at = clock.now()
        self.notifications_sent = 0
        self.measurement = gatt_characteristic(
            HEART_RATE_MEASUREMENT_UUID, Characteristic.Properties.NOTIFY
        )
        location = gatt_characteristic(
            BODY_SENSOR_LOCATION_UUID, Characteristic.Properties.READ, lambda: _CHEST
        )
        device.add_service(Service(sig_uuid(HEART_RATE_SERVICE_UUID), [self.measurement, location]))
        device.on(device.EVENT_CONNECTION, self._on_connection)
        self._sender: asyncio.Task[None] | None = None

    def walk_on(self, speed_and_incline: Callable[[], tuple[float, float]]) -> None:
        """The wearer walks on a belt whose `(speed_kmh, incline_pct)` this returns, facing
        `self.facing` (which a test or demo changes when the rider turns)."""
        self._work_source = lambda: Work(*speed_and_incline(), facing=self.facing)

    @property
    def work(self) -> Work:
        """What the wearer is doing right now."""
        return self._work_source()

    def _work(self) -> Work:
        return self._work_source()

    # -- lifecycle ------------------------------------------------------------------------------

    async def power_on(self) -> None:
        await self._device.power_on()
        self._sender = asyncio.get_running_loop().create_task(
            self._send_measurements(), name=f"sim-strap-{self.name}"
        )
        await self.start_advertising()

    @property
    def connections(self) -> list[Any]:
        return list(self._device.connections.values())

    @property
    def is_connected(self) -> bool:
        return bool(self._device.connections)

    def _on_connection(self, connection: Any) -> None:
        _log.info("sim_strap_connected", strap=self.name, peer=str(connection.peer_address))

    async def start_advertising(self) -> None:
        interval = self.config.advertising_interval_ms
        await self._device.start_advertising(
            advertising_data=build_strap_advertising_data(self.name),
            auto_restart=True,
            advertising_interval_min=interval,
            advertising_interval_max=interval,
        )

    async def stop_advertising(self) -> None:
        await self._device.stop_advertising()

    async def drop_link(self) -> None:
        """Lose the radio link as if the wearer walked out of range (HCI 0x08)."""
        for connection in self.connections:
            await lose_link(connection)
        await asyncio.sleep(0)

    async def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(HCI_Error, BaseBumbleError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await connection.disconnect(
                        reason=HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
                    )
        await asyncio.sleep(0)
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        with contextlib.suppress(HCI_Error, BaseBumbleError):
            await self._device.stop_advertising()
        await self._device.power_off()
        self._on_closed()

    # -- notifications --------------------------------------------------------------------------

    def next_measurement(self) -> HeartRateMeasurement:
        """What the strap sends now: the heart rate as its faults leave it."""
        c = self.config
        faults = self.faults
        now = self._clock.now()
        bpm = round(self.model.heart_rate_bpm)
        rr = tuple(min(round(s * 1024), _U16) for s in self.model.take_rr_intervals())
        energy = min(round(self.model.energy_expended_kj), _U16)
        if faults.out_of_range_bpm is not None:
            bpm = faults.out_of_range_bpm
        if faults.spike_every_s is not None and now - self._last_spike_at >= faults.spike_every_s:
            faults.spikes_pending += 1
            self._last_spike_at = now
        contact = True
        if faults.contact_lost:
            contact = False
            bpm = 0 if faults.contact_lost_value == "zero" else self._last_sent_bpm
            rr = ()  # no beats are detected without contact
        elif faults.spikes_pending > 0:
            faults.spikes_pending -= 1
            bpm = faults.spike_bpm
        self._last_sent_bpm = bpm
        return HeartRateMeasurement(
            heart_rate_bpm=bpm,
            wide=c.wide_format or bpm > 0xFF,
            contact_supported=c.contact_supported,
            contact_detected=c.contact_supported and contact,
            energy_expended_kj=energy if c.report_energy_expended else None,
            rr_intervals=rr[-_MAX_RR_PER_NOTIFICATION:] if c.report_rr_intervals else None,
        )

    async def _send_measurements(self) -> None:
        period = 1.0 / self.config.notify_rate_hz
        while True:
            await self._clock.sleep(period)
            if not self._device.connections:
                continue
            measurement = self.next_measurement()
            if self.faults.silent:
                continue
            await self.notify_raw(encode_heart_rate_measurement(measurement))

    async def notify_raw(self, value: bytes) -> None:
        """Notify `value` on Heart Rate Measurement as is (tests send malformed bytes this way)."""
        if not self._device.connections:
            return
        try:
            await self._device.notify_subscribers(self.measurement, value)
        except (TimeoutError, att.ATT_Error) as error:
            _log.warning("sim_strap_notification_lost", strap=self.name, error=str(error))
        else:
            self.notifications_sent += 1
