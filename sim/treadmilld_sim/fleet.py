"""Simulated treadmills and heart-rate straps on one in-process radio, and the bleak backends
that reach them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog
from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner
from bumble.core import BaseBumbleError
from bumble.hci import HCI_Error, HCI_ErrorCode

from treadmilld.runtime.clock import Clock, LoopClock
from treadmilld_sim.advertising import build_advertising_payloads
from treadmilld_sim.backend import make_backends
from treadmilld_sim.config import SimulatedTreadmillConfig, TreadmillFaults
from treadmilld_sim.link import SimulatedRadio
from treadmilld_sim.model import TreadmillModel
from treadmilld_sim.server import ControlListener, FtmsGattServer, lose_link
from treadmilld_sim.strap import SimulatedStrap
from treadmilld_sim.strap_config import SimulatedStrapConfig

_log = structlog.get_logger(__name__)


class SimulatedTreadmill:
    """One treadmill: a model, its FTMS GATT server, and a Bumble device on the fleet's radio."""

    def __init__(
        self,
        device: Any,
        config: SimulatedTreadmillConfig,
        address: str,
        clock: Clock,
        on_closed: Callable[[], None] = lambda: None,
    ) -> None:
        """Serve `config` on `device`, a powered-off Bumble `Device` (any HCI transport).

        `SimulatedFleet.add` builds one on the in-process link; `serve_over_transport` in
        `treadmilld_sim.runner` on a real controller. `on_closed` runs after power-off.
        """
        self.config = config
        self.address = address
        self.name = config.name
        self.faults = TreadmillFaults.from_config(config)
        self.model = TreadmillModel(config, clock, self.faults)
        self._device = device
        self._on_closed = on_closed
        self._server = FtmsGattServer(self._device, self.model, clock, address)
        self._device.on(self._device.EVENT_CONNECTION, self._on_connection)
        self._advertising = False

    async def power_on(self) -> None:
        """Power the device on, start notifications and advertise."""
        await self._device.power_on()
        self._server.start()
        await self.start_advertising()

    @property
    def connections(self) -> list[Any]:
        """Bumble connections currently open to this treadmill (at most one in practice)."""
        return list(self._device.connections.values())

    @property
    def is_connected(self) -> bool:
        return bool(self._device.connections)

    @property
    def is_advertising(self) -> bool:
        return self._advertising

    def add_control_listener(self, listener: ControlListener) -> Callable[[], None]:
        """Call `listener(request, at)` for every Control Point request received.

        `at` is the treadmill clock's time when the write arrived, before any response delay.
        Returns a function that removes the listener.
        """
        return self._server.add_control_listener(listener)

    def _on_connection(self, connection: Any) -> None:
        _log.info("sim_treadmill_connected", treadmill=self.name, peer=str(connection.peer_address))
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self.model.client_connected()

    def _on_disconnection(self, reason: int) -> None:
        _log.info("sim_treadmill_disconnected", treadmill=self.name, reason=reason)
        self._server.on_disconnection()

    async def drop_link(self) -> None:
        """Lose the radio link as if the client walked out of range (HCI 0x08, timeout)."""
        for connection in self.connections:
            await lose_link(connection)
        # Let the disconnection settle before anything else touches advertising (Bumble
        # answers a same-tick advertising change twice and fails: InvalidStateError in
        # bumble 0.0.236 `Host.on_command_processed`).
        await asyncio.sleep(0)

    async def stop_advertising(self) -> None:
        """Go silent: no scanner finds it and no new connection is possible."""
        self._advertising = False
        await self._device.stop_advertising()

    async def start_advertising(self) -> None:
        """Advertise again (with the current `faults`), restarting after every disconnect."""
        advertising_data, scan_response_data = build_advertising_payloads(
            self.name,
            with_service_data=self.faults.advertise_service_data,
            service_data_swapped=self.config.service_data_type_swapped,
            name_and_service_data_in_scan_response=self.config.scan_response_name_and_service_data,
        )
        interval = self.config.advertising_interval_ms
        await self._device.start_advertising(
            advertising_data=advertising_data,
            scan_response_data=scan_response_data,
            auto_restart=True,
            advertising_interval_min=interval,
            advertising_interval_max=interval,
        )
        self._advertising = True

    async def close(self) -> None:
        """Disconnect any client, stop advertising and take the device off the air."""
        for connection in self.connections:
            with contextlib.suppress(HCI_Error, BaseBumbleError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await connection.disconnect(
                        reason=HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
                    )
        await asyncio.sleep(0)
        await self._server.stop()
        with contextlib.suppress(HCI_Error, BaseBumbleError):
            await self._device.stop_advertising()
        self._advertising = False
        await self._device.power_off()
        self._on_closed()


class SimulatedFleet:
    """Simulated treadmills sharing one in-process link, and bleak backends bound to it.

    ```
    async with SimulatedFleet() as fleet:
        treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01"))
        device = await BleakScanner.find_device_by_address(
            treadmill.address, backend=fleet.scanner_backend
        )
        async with BleakClient(device, backend=fleet.client_backend) as client: ...
    ```
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.radio = SimulatedRadio()
        backends = make_backends(self.radio)
        self.scanner_backend: type[BaseBleakScanner] = backends[0]
        self.client_backend: type[BaseBleakClient] = backends[1]
        self._treadmills: list[SimulatedTreadmill] = []
        self._straps: list[SimulatedStrap] = []

    async def __aenter__(self) -> SimulatedFleet:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def treadmills(self) -> tuple[SimulatedTreadmill, ...]:
        return tuple(self._treadmills)

    @property
    def straps(self) -> tuple[SimulatedStrap, ...]:
        return tuple(self._straps)

    def treadmill(self, name_or_address: str) -> SimulatedTreadmill:
        """Look a treadmill up by its name or address."""
        for treadmill in self._treadmills:
            if name_or_address in (treadmill.name, treadmill.address):
                return treadmill
        raise KeyError(f"no simulated treadmill named or addressed {name_or_address!r}")

    async def add(self, config: SimulatedTreadmillConfig | None = None) -> SimulatedTreadmill:
        """Switch on one more treadmill; it is advertising when this returns."""
        config = config if config is not None else SimulatedTreadmillConfig()
        address = self._free_address(config.address)
        device, controller = self.radio.new_device(config.name, address)
        treadmill = SimulatedTreadmill(
            device,
            config,
            address,
            self.clock,
            on_closed=lambda: self.radio.remove_controller(controller),
        )
        await treadmill.power_on()
        self._treadmills.append(treadmill)
        _log.info("sim_treadmill_added", treadmill=treadmill.name, address=address)
        return treadmill

    def _free_address(self, wanted: str | None) -> str:
        taken = {t.address for t in self._treadmills} | {s.address for s in self._straps}
        if wanted is not None and wanted in taken:
            raise ValueError(
                f"address {wanted} is already used by another simulated device;"
                " leave address unset to get a unique one"
            )
        address = wanted
        while address is None or address in taken:
            address = self.radio.next_peripheral_address()
        return address

    async def add_strap(
        self,
        config: SimulatedStrapConfig | None = None,
        *,
        treadmill: SimulatedTreadmill | None = None,
    ) -> SimulatedStrap:
        """Switch on a heart-rate strap; it is advertising when this returns.

        Its wearer walks on `treadmill`, or else on the one `config.treadmill` names (a
        `KeyError` if the fleet has none of that name), or else stands still.
        """
        config = config if config is not None else SimulatedStrapConfig()
        if treadmill is None and config.treadmill is not None:
            treadmill = self.treadmill(config.treadmill)
        address = self._free_address(config.address)
        device, controller = self.radio.new_device(config.name, address)
        strap = SimulatedStrap(
            device,
            config,
            address,
            self.clock,
            on_closed=lambda: self.radio.remove_controller(controller),
        )
        if treadmill is not None:
            model = treadmill.model
            strap.walk_on(lambda: (model.belt_speed_kmh, model.incline_pct))
        await strap.power_on()
        self._straps.append(strap)
        _log.info(
            "sim_strap_added",
            strap=strap.name,
            address=address,
            treadmill=treadmill.name if treadmill is not None else None,
        )
        return strap

    async def close(self) -> None:
        while self._straps:
            await self._straps.pop().close()
        while self._treadmills:
            await self._treadmills.pop().close()
