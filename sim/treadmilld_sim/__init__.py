"""Simulated FTMS treadmills served over a real BLE host stack (Bumble).

`SimulatedFleet` owns one in-process link; `fleet.add(config)` switches on a treadmill,
`fleet.add_strap(config, treadmill=...)` a heart-rate strap worn by its rider; the real
`bleak.BleakScanner`/`bleak.BleakClient` reach it with `backend=fleet.scanner_backend` /
`backend=fleet.client_backend`. See docs/simulator.md.
"""

from treadmilld_sim.advertising import build_advertising_data, parse_advertising_data
from treadmilld_sim.backend import make_backends
from treadmilld_sim.config import SimulatedTreadmillConfig, TreadmillFaults
from treadmilld_sim.fleet import SimulatedFleet, SimulatedTreadmill
from treadmilld_sim.link import SimulatedRadio
from treadmilld_sim.model import RunningState, TreadmillModel
from treadmilld_sim.physiology import HeartRateModel, Work
from treadmilld_sim.strap import SimulatedStrap
from treadmilld_sim.strap_config import SimulatedStrapConfig, StrapFaults

__all__ = [
    "HeartRateModel",
    "RunningState",
    "SimulatedFleet",
    "SimulatedRadio",
    "SimulatedStrap",
    "SimulatedStrapConfig",
    "SimulatedTreadmill",
    "SimulatedTreadmillConfig",
    "StrapFaults",
    "TreadmillFaults",
    "TreadmillModel",
    "Work",
    "build_advertising_data",
    "make_backends",
    "parse_advertising_data",
]
