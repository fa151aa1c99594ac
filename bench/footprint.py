"""Footprint of the daemon: resident memory and CPU share, and cold start to READY=1.

`treadmilld run` runs as a real subprocess (what systemd would run) with 1 and with 8 simulated
treadmills, their Treadmill Data at 1 Hz and at 4 Hz, every treadmill walking a profile started
over MQTT. The simulated treadmills live inside the daemon's process (Bumble on an in-memory
link), so those figures include the simulator.

A daemon driving a real treadmill does not import the simulator: a further figure is its
resident memory with a real-treadmill config (one `[[treadmills]]` with an address, no
`simulated`), connected to the same mosquitto, after it has settled. On a machine without
Bluetooth the link keeps retrying its scan, the daemon's steady state while a deck is away.
Issue 13's target for it: at most 60 MiB.

    uv run python bench/footprint.py [--quick] [--json] [--real-only]

`--real-only` measures the real-treadmill figures alone (about 60 s): as this development
environment has it, and as installed from the wheel (without what only the dev group brings).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from _broker import BrokerUnavailableError, RunningBroker, mosquitto
from _mqtt_contract import BASE_TOPIC, PROFILE_FOR_BENCH, start_command
from _process import cpu_sample, cpu_share_pct, notify_socket, peak_rss_mib, rss_mib
from _stats import Figure, Summary, argument_parser, emit, not_available

ROOT = Path(__file__).resolve().parent.parent
# CPU time is counted in 10 ms ticks: 3-second samples resolve 0.33 % of a core.
SAMPLE_EVERY_S = 3.0
# What `treadmilld run` with simulated treadmills needs.
DAEMON_MODULES = ("treadmilld.app.run", "treadmilld.mqtt.bridge", "treadmilld_sim.fleet")
# The real-treadmill config's deck: an address nobody has, so the link only ever scans.
ABSENT_DECK_ADDRESS = "AA:BB:CC:DD:EE:01"
REAL_INSTANCE = "footprint-real"


class DaemonFailedError(RuntimeError):
    """The daemon exited or never became ready; its output is in the message."""


@dataclass(frozen=True, slots=True)
class Scenario:
    treadmills: int
    data_rate_hz: float

    @property
    def label(self) -> str:
        return f"{self.treadmills} treadmill{'s' if self.treadmills > 1 else ''} at " + (
            f"{self.data_rate_hz:g} Hz"
        )


@dataclass(frozen=True, slots=True)
class Measured:
    cold_start_ms: float
    rss_mib: list[float]
    cpu_pct_per_sample: list[float]
    cpu_pct_window: float


def write_config(directory: Path, scenario: Scenario, broker: RunningBroker) -> Path:
    lines = []
    for index in range(1, scenario.treadmills + 1):
        lines += [
            "[[treadmills]]",
            f'id = "sim{index:02d}"',
            f'simulated = {{ name = "SIM-TM{index:02d}", data_rate_hz = {scenario.data_rate_hz} }}',
            "",
        ]
    lines += [
        "[mqtt]",
        f'host = "{broker.host}"',
        f"port = {broker.port}",
        f'base_topic = "{BASE_TOPIC}"',
        'instance = "footprint"',
        f'client_id = "treadmilld-footprint-{os.getpid()}"',
        "ha_discovery = true",
        "",
        "[logging]",
        'format = "logfmt"',
        'level = "info"',
    ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_real_treadmill_config(directory: Path, broker: RunningBroker) -> Path:
    """One real treadmill, found by its address; no simulator anywhere in the config."""
    lines = [
        "[[treadmills]]",
        'id = "tm01"',
        f'address = "{ABSENT_DECK_ADDRESS}"',
        "",
        "[mqtt]",
        f'host = "{broker.host}"',
        f"port = {broker.port}",
        f'base_topic = "{BASE_TOPIC}"',
        f'instance = "{REAL_INSTANCE}"',
        f'client_id = "treadmilld-footprint-real-{os.getpid()}"',
        "ha_discovery = true",
        "",
        "[logging]",
        'format = "logfmt"',
        'level = "info"',
    ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _wait_bridge_online(broker: RunningBroker, instance: str, timeout_s: float) -> None:
    """Until the daemon says `online` on its bridge state: connected to the broker and
    subscribed, every task up."""
    async with aiomqtt.Client(
        broker.host, broker.port, identifier="bench-footprint-real"
    ) as client:
        await client.subscribe(f"{BASE_TOPIC}/bridge/{instance}/state")
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                if message.payload == b"online":
                    return


@dataclass(frozen=True, slots=True)
class MeasuredReal:
    rss_mib: list[float]
    peak_rss_mib: float


# Packages structlog imports when they happen to be installed (pretty tracebacks on a tty):
# here they come with the dev group and the demo-broker extra (amqtt), never with the daemon's
# own dependencies. Hidden, the daemon runs as installed from its wheel.
OPPORTUNISTIC = ("rich", "pygments", "better_exceptions")
_AS_INSTALLED = (
    "import sys, runpy\n"
    f"for name in {OPPORTUNISTIC!r}:\n"
    "    sys.modules[name] = None\n"
    "runpy.run_module('treadmilld', run_name='__main__', alter_sys=True)\n"
)


def measure_real_treadmill(
    broker: RunningBroker, settle_s: float, samples: int, *, as_installed: bool = False
) -> MeasuredReal:
    """The daemon with a real-treadmill config: VmRSS once a second after `settle_s` seconds
    online, and VmHWM at the end. `as_installed`: without the packages only this development
    environment has (`OPPORTUNISTIC`)."""
    with (
        tempfile.TemporaryDirectory(prefix="treadmilld-bench-footprint-real-") as tmp,
        notify_socket() as notify,
    ):
        config = write_real_treadmill_config(Path(tmp), broker)
        log_path = Path(tmp) / "daemon.log"
        env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), PYTHONUNBUFFERED="1")
        # History in the daemon's SQLite default, inside this run's folder (as systemd's
        # StateDirectory= would give it), not /var/lib/treadmilld.
        env["STATE_DIRECTORY"] = tmp
        env.pop("JOURNAL_STREAM", None)
        with log_path.open("wb") as log:
            start = ["-c", _AS_INSTALLED] if as_installed else ["-m", "treadmilld"]
            daemon = subprocess.Popen(
                [sys.executable, *start, "run", "--config", str(config)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if notify.wait_for("READY=1", timeout_s=30) is None or daemon.poll() is not None:
                    raise DaemonFailedError(_failure(daemon, log_path, "never sent READY=1"))
                asyncio.run(_wait_bridge_online(broker, REAL_INSTANCE, timeout_s=30))
                time.sleep(settle_s)
                rss: list[float] = []
                for _ in range(samples):
                    if daemon.poll() is not None:
                        raise DaemonFailedError(_failure(daemon, log_path, "died while measured"))
                    rss.append(rss_mib(daemon.pid))
                    time.sleep(1.0)
                peak = peak_rss_mib(daemon.pid)
            finally:
                _terminate(daemon)
    return MeasuredReal(rss, peak)


async def _wait_connected_and_start(
    broker: RunningBroker, scenario: Scenario, timeout_s: float
) -> None:
    ids = [f"sim{index:02d}" for index in range(1, scenario.treadmills + 1)]
    async with aiomqtt.Client(broker.host, broker.port, identifier="bench-footprint") as client:
        await client.subscribe(f"{BASE_TOPIC}/+/state")
        await client.subscribe(f"{BASE_TOPIC}/bridge/footprint/state")
        connected: set[str] = set()
        # The previous scenario's daemon left its states retained (saying "connected") and
        # `offline` on its bridge state: only this daemon's `online`, sent once it is subscribed,
        # says commands will be heard.
        bridge_online = False
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                treadmill_id = str(message.topic).split("/")[1]
                if treadmill_id == "bridge":
                    bridge_online = message.payload == b"online"
                    continue
                with contextlib.suppress(ValueError):
                    state = json.loads(message.payload)
                    if isinstance(state, dict) and state.get("connection") == "connected":
                        connected.add(treadmill_id)
                if bridge_online and connected >= set(ids):
                    break
        await client.subscribe(f"{BASE_TOPIC}/+/response/start")
        for treadmill_id in ids:
            topic, body = start_command(treadmill_id, PROFILE_FOR_BENCH)
            await client.publish(topic, body, qos=1)
        # Every treadmill must really be walking its profile, or the figures mean nothing.
        started: set[str] = set()
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                if not str(message.topic).endswith("/response/start"):
                    continue
                reply = json.loads(message.payload if isinstance(message.payload, bytes) else b"")
                treadmill_id = str(message.topic).split("/")[1]
                if reply.get("code") == "not_connected":
                    # The state topic can say connected a moment before the session has
                    # taken the treadmill on: ask again shortly.
                    await asyncio.sleep(0.3)
                    topic, body = start_command(treadmill_id, PROFILE_FOR_BENCH)
                    await client.publish(topic, body, qos=1)
                    continue
                if reply.get("status") != "ok":
                    raise DaemonFailedError(f"starting {PROFILE_FOR_BENCH} was refused: {reply}")
                started.add(treadmill_id)
                if started >= set(ids):
                    break


def measure(
    scenario: Scenario, broker: RunningBroker, warmup_s: float, window_s: float
) -> Measured:
    with (
        tempfile.TemporaryDirectory(prefix="treadmilld-bench-footprint-") as tmp,
        notify_socket() as notify,
    ):
        config = write_config(Path(tmp), scenario, broker)
        log_path = Path(tmp) / "daemon.log"
        env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), PYTHONUNBUFFERED="1")
        # History in the daemon's SQLite default, inside this run's folder (as systemd's
        # StateDirectory= would give it), not /var/lib/treadmilld.
        env["STATE_DIRECTORY"] = tmp
        env.pop("JOURNAL_STREAM", None)
        with log_path.open("wb") as log:
            spawned = time.monotonic()
            daemon = subprocess.Popen(
                [sys.executable, "-m", "treadmilld", "run", "--config", str(config)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                ready = notify.wait_for("READY=1", timeout_s=30)
                if ready is None or daemon.poll() is not None:
                    raise DaemonFailedError(_failure(daemon, log_path, "never sent READY=1"))
                cold_start_ms = (ready - spawned) * 1000.0
                asyncio.run(_wait_connected_and_start(broker, scenario, timeout_s=30))
                time.sleep(warmup_s)
                rss: list[float] = []
                per_sample: list[float] = []
                first = previous = cpu_sample(daemon.pid)
                deadline = time.monotonic() + window_s
                while time.monotonic() < deadline:
                    time.sleep(SAMPLE_EVERY_S)
                    if daemon.poll() is not None:
                        raise DaemonFailedError(_failure(daemon, log_path, "died while measured"))
                    current = cpu_sample(daemon.pid)
                    per_sample.append(cpu_share_pct(previous, current))
                    rss.append(rss_mib(daemon.pid))
                    previous = current
                window = cpu_share_pct(first, previous)
            finally:
                _terminate(daemon)
    return Measured(cold_start_ms, rss, per_sample, window)


def _failure(daemon: subprocess.Popen[bytes], log_path: Path, what: str) -> str:
    tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
    return f"the daemon {what} (exit {daemon.poll()}); last output:\n{tail}"


def _terminate(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument(
        "--real-only",
        action="store_true",
        help="only the daemon with a real-treadmill config (no simulator): about 30 s",
    )
    args = parser.parse_args()
    warmup_s, window_s = (2.0, 6.0) if args.quick else (3.0, 12.0)
    settle_s, real_samples = (3.0, 3) if args.quick else (8.0, 5)
    for module in DAEMON_MODULES:
        if importlib.util.find_spec(module) is None:
            return not_available(f"{module} is not importable yet: no daemon to measure")
    scenarios = [Scenario(1, 1.0), Scenario(1, 4.0), Scenario(8, 1.0), Scenario(8, 4.0)]
    figures: list[Figure] = []
    cold: list[float] = []
    try:
        with mosquitto() as broker:
            real = measure_real_treadmill(broker, settle_s, real_samples)
            figures.append(
                Figure(
                    "footprint",
                    "resident memory, 1 real treadmill (no simulator)",
                    "MiB",
                    Summary.of(real.rss_mib),
                    note=f"VmRSS each 1 s after {settle_s:g} s online, no Bluetooth here (the "
                    f"link keeps scanning); peak VmHWM {real.peak_rss_mib:.1f} MiB; this "
                    "development environment, where structlog also loads "
                    + ", ".join(OPPORTUNISTIC[:2]),
                )
            )
            installed = measure_real_treadmill(broker, settle_s, real_samples, as_installed=True)
            figures.append(
                Figure(
                    "footprint",
                    "resident memory, 1 real treadmill (no simulator), as installed",
                    "MiB",
                    Summary.of(installed.rss_mib),
                    note=f"the same daemon without {', '.join(OPPORTUNISTIC)} (not among its "
                    f"dependencies); peak VmHWM {installed.peak_rss_mib:.1f} MiB; target <= 60 "
                    "MiB (issue 13)",
                )
            )
            for scenario in [] if args.real_only else scenarios:
                measured = measure(scenario, broker, warmup_s, window_s)
                cold.append(measured.cold_start_ms)
                figures.append(
                    Figure(
                        "footprint",
                        f"resident memory, {scenario.label}",
                        "MiB",
                        Summary.of(measured.rss_mib),
                        note="VmRSS sampled every 3 s; simulator included",
                    )
                )
                figures.append(
                    Figure(
                        "footprint",
                        f"CPU share, {scenario.label}",
                        "%",
                        Summary.of(measured.cpu_pct_per_sample),
                        note=f"of one core, per 3 s; window mean {measured.cpu_pct_window:.1f} %",
                    )
                )
    except BrokerUnavailableError as exc:
        return not_available(str(exc))
    if cold:
        figures.insert(
            0,
            Figure(
                "footprint",
                "cold start: spawn -> READY=1",
                "ms",
                Summary.of(cold),
                note="python -m treadmilld run, 1-8 simulated treadmills",
            ),
        )
    emit(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
