"""A bleak backend on Bumble: the real `BleakScanner`/`BleakClient` reach simulated treadmills.

`make_backends(radio)` returns a scanner class and a client class bound to one
`SimulatedRadio`; pass them as `BleakScanner(backend=...)` / `BleakClient(..., backend=...)`.
bleak reads `backend.__name__`, so the binding is a class factory, not a `functools.partial`.

Every scan and every connection gets a fresh central Bumble `Device` with its own emulated
controller; stopping the scan, disconnecting or losing the link powers it off and takes its
controller off the link, so no controller outlives its use.

bleak's backend API is not stable between minor releases (bleak docs, "Shared Backend API");
`tests/sim/test_bleak_contract.py` pins the abstract members and signatures the backend
implements (`scanner_backend.py`, `client_backend.py`), so a bleak upgrade that changes them
fails there first.
"""

from __future__ import annotations

from typing import ClassVar

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from treadmilld_sim.client_backend import BumbleClientBackend
from treadmilld_sim.link import SimulatedRadio
from treadmilld_sim.scanner_backend import BumbleScannerBackend


def make_backends(
    radio: SimulatedRadio,
) -> tuple[type[BaseBleakScanner], type[BaseBleakClient]]:
    """Scanner and client backend classes bound to `radio`."""

    class BumbleScanner(BumbleScannerBackend):
        _radio: ClassVar[SimulatedRadio] = radio

    class BumbleClient(BumbleClientBackend):
        _radio: ClassVar[SimulatedRadio] = radio

    return BumbleScanner, BumbleClient
