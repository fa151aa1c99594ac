"""`treadmilld scan` and `treadmilld diagnose`: the treadmills and heart-rate straps nearby (one
scan, both tables), this machine's report
with a round trip through the broker, and the CLI side of a deck's probe (`diagnose --treadmill`,
whose probe itself is `treadmilld/app/diagnose.py`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from treadmilld import __version__
from treadmilld.app.settings import ConfigError, load_settings
from treadmilld.ble.discovery import DiscoveredTreadmill, Nearby
from treadmilld.ftms import MachineType

if TYPE_CHECKING:
    from treadmilld.app.diagnose import DeckChoice
    from treadmilld.mqtt.config import MqttSettings

EXIT_OK = 0
EXIT_FAILURE = 1

# Each step of the broker check (connect, subscribe, round trip) gets this long: a broker on
# the LAN answers in milliseconds, and an operator waits for the report.
BROKER_CHECK_TIMEOUT_S = 5.0

# Packages whose versions matter when someone reports a problem.
REPORTED_PACKAGES = (
    "treadmilld",
    "treadmilld-sim",
    "bleak",
    "bleak-retry-connector",
    "bumble",
    "aiomqtt",
    "paho-mqtt",
    "amqtt",
    "pydantic",
    "pydantic-settings",
    "structlog",
)


# -- scan ---------------------------------------------------------------------------------


def scan_command(*, timeout_s: float, simulated: int | None, out: TextIO | None = None) -> int:
    stream = sys.stdout if out is None else out
    if simulated is not None and not 1 <= simulated <= 8:
        raise ConfigError("--sim takes between 1 and 8 simulated treadmills")
    try:
        found = asyncio.run(_scan(timeout_s, simulated))
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - report a radio problem, do not dump a trace
        stream.write(
            f"treadmilld scan: scanning failed: {error!r}\n"
            "Check that bluetoothd runs (systemctl status bluetooth), the adapter is up "
            "(bluetoothctl show) and this user may use it (group bluetooth).\n"
        )
        return EXIT_FAILURE
    stream.write(format_scan(found))
    return EXIT_OK


async def _scan(timeout_s: float, simulated: int | None) -> Nearby:
    from treadmilld.ble.discovery import scan_nearby  # noqa: PLC0415 - bleak only when scanning

    if simulated is None:
        return await scan_nearby(timeout_s)
    from treadmilld.app.simulation import import_simulator  # noqa: PLC0415

    simulator = import_simulator()
    async with simulator.SimulatedFleet() as fleet:
        for index in range(1, simulated + 1):
            deck = await fleet.add(simulator.SimulatedTreadmillConfig(name=f"SIM-TM{index:02d}"))
            # Each simulated rider wears a strap, so both tables show without hardware.
            await fleet.add_strap(
                simulator.SimulatedStrapConfig(name=f"SIM-HR{index:02d}"), treadmill=deck
            )
        result: Nearby = await scan_nearby(min(timeout_s, 2.0), backend=fleet.scanner_backend)
        return result


def _machine_type(found: DiscoveredTreadmill) -> str:
    if not found.has_service_data:
        return "unknown (no service data)"
    names = [flag.name.lower() for flag in MachineType if flag in found.machine_types and flag.name]
    return ",".join(names) or "none"


def _rssi(rssi: int | None) -> str:
    return f"{rssi} dBm" if rssi is not None else "-"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _treadmill_lines(found: Nearby) -> list[str]:
    if not found.treadmills:
        return [
            "No FTMS treadmills heard. Wake the treadmill (press a key or step on it), make sure "
            "no phone app holds its connection, and scan again with a longer --timeout."
        ]
    rows = [("ADDRESS", "NAME", "RSSI", "TYPE", "AVAILABLE")]
    rows += [
        (
            item.address,
            item.name or "-",
            _rssi(item.rssi),
            _machine_type(item),
            "yes" if item.available else "no (in use)",
        )
        for item in found.treadmills
    ]
    return [
        *_table(rows),
        "",
        'Put an address in /etc/treadmilld/config.toml: address = "..."',
    ]


def _strap_lines(found: Nearby) -> list[str]:
    if not found.straps:
        return [
            "No heart-rate straps heard. Wear the strap (most straps advertise only with skin "
            "contact; moisten its electrodes), make sure no watch or phone app is connected to "
            "it (a strap held by one may stop advertising), and scan again with a longer "
            "--timeout."
        ]
    rows = [("ADDRESS", "NAME", "RSSI")]
    rows += [(item.address, item.name or "-", _rssi(item.rssi)) for item in found.straps]
    return [
        *_table(rows),
        "",
        "Put a strap under its treadmill's [[treadmills]] table: "
        'heart_rate_strap = { address = "..." }',
    ]


def format_scan(found: Nearby) -> str:
    """Both tables of `treadmilld scan`: the treadmills, then the heart-rate straps."""
    lines = [
        "Treadmills (FTMS)",
        *_treadmill_lines(found),
        "",
        "Heart-rate straps (Heart Rate Service, 0x180D)",
        *_strap_lines(found),
    ]
    return "\n".join(lines) + "\n"


# -- diagnose -----------------------------------------------------------------------------


def anonymise_address(address: str) -> str:
    """Keep the manufacturer part (first three bytes), hide the rest behind a short hash, so
    two treadmills stay distinguishable in a pasted report without revealing them."""
    digest = hashlib.sha256(address.upper().encode()).hexdigest()[:4]
    parts = address.split(":")
    if len(parts) == 6:
        return ":".join(parts[:3]) + f":**:**:** (#{digest})"
    return f"(hidden #{digest})"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _adapters() -> list[str]:
    root = Path("/sys/class/bluetooth")
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if ":" not in entry.name)


def diagnose_report(config: Path | None) -> str:
    lines = ["treadmilld diagnose", "", "Versions"]
    lines.append(f"  python               {platform.python_version()} ({sys.executable})")
    lines.append(f"  platform             {platform.platform()}")
    lines.extend(f"  {name:<22} {_version(name)}" for name in REPORTED_PACKAGES)

    lines += ["", "Bluetooth"]
    adapters = _adapters()
    lines.append(f"  adapters             {', '.join(adapters) if adapters else 'none found'}")
    bluetoothd = shutil.which("bluetoothd") or next(
        (
            str(p)
            for p in (Path("/usr/libexec/bluetooth/bluetoothd"), Path("/usr/sbin/bluetoothd"))
            if p.exists()
        ),
        None,
    )
    lines.append(f"  bluetoothd (BlueZ)   {bluetoothd or 'not found: apt-get install bluez'}")
    bus = Path("/run/dbus/system_bus_socket")
    lines.append(f"  system D-Bus         {'present' if bus.exists() else 'missing'}")
    lines.append(f"  groups               {_groups()}")

    lines += ["", "MQTT"]
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    lines.append(
        f"  mosquitto            {mosquitto or 'not installed (demo falls back to amqtt)'}"
    )

    lines += ["", "Environment"]
    lines.append(f"  under systemd        {'yes' if os.environ.get('INVOCATION_ID') else 'no'}")
    lines.append(f"  journald stream      {'yes' if os.environ.get('JOURNAL_STREAM') else 'no'}")
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    lines.append(f"  credentials          {credentials or 'none'}")

    lines += ["", "Configuration"]
    try:
        settings, path = load_settings(config)
    except ConfigError as error:
        lines.append("  INVALID:")
        lines.extend("  " + line for line in str(error).splitlines())
        return "\n".join(lines) + "\n"
    lines.append(f"  file                 {path}{'' if path.exists() else ' (absent: defaults)'}")
    lines.append(f"  mqtt                 {settings.mqtt.url} base {settings.mqtt.base_topic}")
    lines.append(
        f"  mqtt instance        {settings.mqtt.instance}, client id {settings.mqtt.client_id}"
    )
    auth = "password set" if settings.mqtt.password or settings.mqtt.password_file else "none"
    lines.append(f"  mqtt auth            user {settings.mqtt.username or '-'}, {auth}")
    lines.append(f"  shutdown mode        {settings.shutdown_mode.value}")
    lines.append(f"  treadmills           {len(settings.treadmills)}")
    for treadmill in settings.treadmills:
        if treadmill.address is not None:
            target = anonymise_address(treadmill.address)
        elif treadmill.name_match is not None:
            target = f"name contains {treadmill.name_match!r}"
        else:
            target = "simulated"
        quirks = treadmill.quirks if isinstance(treadmill.quirks, str) else "from name"
        lines.append(f"    {treadmill.id:<18} {target}; quirks {quirks}")
    return "\n".join(lines) + "\n"


def _groups() -> str:
    try:
        import grp  # noqa: PLC0415 - POSIX only

        names = sorted({grp.getgrgid(gid).gr_name for gid in {os.getgid(), *os.getgroups()}})
    except (ImportError, KeyError, OSError):
        return "unknown"
    note = "" if "bluetooth" in names or os.geteuid() == 0 else " (not in group bluetooth)"
    return ", ".join(names) + note


def broker_report(
    mqtt: MqttSettings, *, timeout_s: float = BROKER_CHECK_TIMEOUT_S
) -> tuple[str, bool]:
    """Connect, subscribe and round-trip a message through the configured broker; the
    report section and whether every step worked."""
    from treadmilld.mqtt.broker_check import check_broker  # noqa: PLC0415 - aiomqtt only here

    result = asyncio.run(check_broker(mqtt, timeout_s=timeout_s))
    lines = [f"Broker ({mqtt.url}, login {mqtt.username or 'none'})"]
    for step, took in (
        ("connect", result.connect_ms),
        ("subscribe", result.subscribe_ms),
        ("round trip", result.round_trip_ms),
    ):
        if took is not None:
            lines.append(f"  {step:<20} ok in {took:g} ms")
        elif step == result.failed_step:
            lines.append(f"  {step:<20} FAILED: {result.error}")
            lines.append(f"  {'fix':<20} {result.hint}")
            break
    if result.ok:
        lines.append(f"  {'test topic':<20} {result.topic}")
    return "\n".join(lines) + "\n", result.ok


def diagnose_command(config: Path | None, out: TextIO | None = None) -> int:
    stream = sys.stdout if out is None else out
    stream.write(diagnose_report(config))
    stream.flush()
    code = EXIT_OK
    try:
        settings = load_settings(config)[0]
    except ConfigError:
        settings = None  # the report above says what is wrong with it
    if settings is not None:
        section, ok = broker_report(settings.mqtt)
        stream.write("\n" + section)
        code = EXIT_OK if ok else EXIT_FAILURE
    stream.write(f"\n(treadmilld {__version__}; paste this into a bug report as is)\n")
    return code


def diagnose_deck_command(
    choice: DeckChoice,
    *,
    config: Path | None,
    seconds: float,
    trace: Path | None,
    request_control: bool,
    out: TextIO | None = None,
) -> int:
    """The environment report, then what one deck does (app/diagnose.py), with a trace."""
    from treadmilld.app.diagnose import DiagnoseError, diagnose_deck  # noqa: PLC0415
    from treadmilld.runtime.clock import LoopClock  # noqa: PLC0415

    stream = sys.stdout if out is None else out
    if seconds <= 0:
        raise ConfigError("--seconds must be above 0")
    settings = load_settings(config)[0] if choice.treadmill is not None else None
    if trace is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        trace = Path(f"treadmilld-diagnose-{stamp}.jsonl")
    stream.write(diagnose_report(config) + "\n")
    stream.flush()
    try:
        summary = asyncio.run(
            diagnose_deck(
                choice,
                settings,
                clock=LoopClock(),
                seconds=seconds,
                trace=trace,
                request_control=request_control,
            )
        )
    except DiagnoseError as error:
        stream.write(f"treadmilld diagnose: {error}\n")
        return EXIT_FAILURE
    except OSError as error:
        raise ConfigError(
            f"cannot write the trace {trace}: {error.strerror or error}; give a writable "
            "--trace FILE"
        ) from None
    stream.write(summary)
    stream.write(f"\n(treadmilld {__version__}; paste this into a bug report with the trace)\n")
    return EXIT_OK
