"""`treadmilld diagnose --treadmill/--address/--name` and `treadmilld run --trace` (app/diagnose.py,
app/assembly.py): what a deck does, recorded, and never a belt started."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr
from treadmilld_broker import EmbeddedBroker
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.app.process import run_to_end
from tests.support.broker import secured_mosquitto
from treadmilld import __version__
from treadmilld.app.assembly import TraceOptions, assemble
from treadmilld.app.diagnose import format_report, probe_deck
from treadmilld.app.settings import load_settings
from treadmilld.ble.api import LinkConnected
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.config import TargetSelector
from treadmilld.ble.trace import (
    NotificationEvent,
    SubscribeEvent,
    WriteEvent,
    load_trace,
)
from treadmilld.ble.trace_recorder import TraceWriter, TracingGattBackend
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlRequest,
    RequestControl,
)
from treadmilld.mqtt.broker_check import check_broker
from treadmilld.mqtt.config import MqttSettings
from treadmilld.runtime.clock import LoopClock, VirtualTimeEventLoop

T = TypeVar("T")


def in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


def diagnose_sim_deck(
    tmp_path: Path, *, control: bool, config: SimulatedTreadmillConfig | None = None
) -> tuple[list[ControlRequest], str, Path]:
    """Diagnose one simulated deck in virtual time: what it was sent, the summary, the trace."""
    trace = tmp_path / "diagnose.jsonl"

    async def main() -> tuple[list[ControlRequest], str, Path]:
        async with SimulatedFleet(LoopClock()) as fleet:
            deck = await fleet.add(
                config or SimulatedTreadmillConfig(name="SIM-DIAG", data_rate_hz=2.0)
            )
            received: list[ControlRequest] = []
            deck.add_control_listener(lambda request, _at: received.append(request))
            writer = TraceWriter(trace, clock=fleet.clock, version=__version__)
            backend = TracingGattBackend(
                BleakGattBackend(
                    fleet.clock,
                    scanner_backend=fleet.scanner_backend,
                    client_backend=fleet.client_backend,
                ),
                writer,
            )
            report = await probe_deck(
                backend,
                TargetSelector(address=deck.address),
                clock=fleet.clock,
                seconds=5.0,
                request_control=control,
            )
            writer.close()
            return received, format_report(report, trace), trace

    return in_virtual_time(main)


def test_diagnose_writes_nothing_and_never_starts_the_belt(tmp_path: Path) -> None:
    received, summary, trace = diagnose_sim_deck(tmp_path, control=False)
    assert received == []
    session = load_trace(trace).sessions()[0]
    assert not [e for e in session.events if isinstance(e, WriteEvent)]
    subscribed = {e.uuid for e in session.events if isinstance(e, SubscribeEvent)}
    assert subscribed == {
        TREADMILL_DATA_UUID,
        MACHINE_STATUS_UUID,
        CONTROL_POINT_UUID,
        TRAINING_STATUS_UUID,
    }
    assert "name                 SIM-DIAG" in summary
    assert "Manufacturer Name" in summary
    assert "Supported Speed Range (2ad4): read" in summary
    assert "SpeedRange {'minimum_kmh': " in summary
    assert "properties           indicate, write" in summary
    assert "Request Control      not sent (add --control)" in summary
    assert "Treadmill Data (2acd): 1" in summary  # 2 Hz for 5 s, give or take one


def test_diagnose_with_control_sends_only_request_control(tmp_path: Path) -> None:
    received, summary, trace = diagnose_sim_deck(tmp_path, control=True)
    assert received == [RequestControl()]
    assert "Request Control      written with response; answered 80 00 01: success" in summary
    events = load_trace(trace).sessions()[0].events
    writes = [e for e in events if isinstance(e, WriteEvent)]
    assert [(w.uuid, w.data) for w in writes] == [(CONTROL_POINT_UUID, b"\x00")]
    answers = [e.data for e in events if isinstance(e, NotificationEvent)]
    assert bytes.fromhex("800001") in answers


def test_diagnose_of_a_deck_that_starts_on_connect_still_writes_nothing(tmp_path: Path) -> None:
    # A deck that starts by itself (qdomyos-zwift#923) is reported, not stopped or driven.
    config = SimulatedTreadmillConfig(name="SIM-SELF", data_rate_hz=2.0, starts_on_connect=True)
    received, summary, _trace = diagnose_sim_deck(tmp_path, control=False, config=config)
    assert received == []
    assert "instantaneous_speed_kmh" in summary


async def test_the_command_line_diagnoses_a_configured_treadmill(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "tm1"\nsimulated = { data_rate_hz = 5.0 }\n', encoding="utf-8"
    )
    trace = tmp_path / "deck.jsonl"
    code, process = await run_to_end(
        "diagnose",
        "--config",
        str(config),
        "--treadmill",
        "tm1",
        "--seconds",
        "1",
        "--trace",
        str(trace),
        "--control",
    )
    output = process.output()
    assert code == 0, output
    assert "Versions" in output  # the environment report comes first
    assert "name                 SIM-TM1" in output
    assert "answered 80 00 01: success" in output
    assert f"Trace written to {trace}" in output
    assert load_trace(trace).header.deck.name == "SIM-TM1"
    assert "Broker (" not in output  # a deck's diagnosis does not wait on the broker


async def test_an_unknown_treadmill_id_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[treadmills]]\nid = "tm1"\nsimulated = {}\n', encoding="utf-8")
    code, process = await run_to_end(
        "diagnose", "--config", str(config), "--treadmill", "tm9", "--trace", str(tmp_path / "x")
    )
    assert code == 2
    assert "no treadmill 'tm9' in the configuration (configured: tm1)" in process.output()


def test_run_with_trace_records_each_links_sessions(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "tm1"\nsimulated = { data_rate_hz = 5.0 }\n'
        '[[treadmills]]\nid = "tm2"\nsimulated = { data_rate_hz = 5.0 }\n',
        encoding="utf-8",
    )
    settings, _path = load_settings(config)
    trace = tmp_path / "run.jsonl"

    async def main() -> None:
        clock = LoopClock()
        async with assemble(
            settings, clock=clock, version=__version__, trace=TraceOptions(trace)
        ) as assembly:
            for unit in assembly.units:
                link: Any = unit.link
                events = link.events()
                runner = asyncio.create_task(link.run())
                async with asyncio.timeout(60):
                    async for event in events:
                        if isinstance(event, LinkConnected):
                            break
                await link.close()
                await runner

    in_virtual_time(main)
    for treadmill_id in ("tm1", "tm2"):
        recorded = load_trace(tmp_path / f"run.{treadmill_id}.jsonl")
        assert recorded.header.deck.name == f"SIM-{treadmill_id.upper()}"
        assert len(recorded.sessions()) == 1
    assert not trace.exists()


# -- the broker check (`treadmilld diagnose` without a deck) ------------------------------


def broker_config(tmp_path: Path, host: str, port: int, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[mqtt]\nhost = "{host}"\nport = {port}\ninstance = "front-pi"\n{extra}',
        encoding="utf-8",
    )
    return config


async def test_diagnose_round_trips_a_message_through_the_broker(
    tmp_path: Path, mqtt_broker: EmbeddedBroker
) -> None:
    config = broker_config(tmp_path, mqtt_broker.host, mqtt_broker.port)
    code, process = await run_to_end("diagnose", "--config", str(config))
    output = process.output()
    assert code == 0, output
    assert f"Broker ({mqtt_broker.url}, login none)" in output
    for step in ("connect", "subscribe", "round trip"):
        assert re.search(rf"^  {step} +ok in [0-9.]+ ms$", output, flags=re.MULTILINE), output
    assert re.search(r"test topic +treadmilld/bridge/front-pi/diagnose/[0-9a-f]{8}$", output, re.M)
    assert "mqtt instance        front-pi, client id treadmilld-front-pi" in output


async def test_diagnose_says_what_to_fix_when_no_broker_listens(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = broker_config(tmp_path, "127.0.0.1", closed_port)
    code, process = await run_to_end("diagnose", "--config", str(config))
    output = process.output()
    assert code == 1, output
    assert "connect              FAILED: [Errno 111] Connection refused" in output
    assert f"no broker listens on 127.0.0.1:{closed_port}" in output
    assert "mqtt.host / mqtt.port" in output
    assert "Traceback" not in output


async def test_broker_check_names_a_refused_login_and_an_acl_that_swallows_the_message(
    tmp_path: Path,
) -> None:
    users = {"treadmilld": "right"}
    # The login may connect but its ACL gives it nothing under the base topic.
    async with secured_mosquitto(
        tmp_path, users=users, acl="user treadmilld\ntopic readwrite elsewhere/#\n"
    ) as broker:
        wrong = MqttSettings.from_url(
            broker.url, instance="front-pi", username="treadmilld", password="wrong"
        )
        refused = await check_broker(wrong, timeout_s=2.0)
        denied = await check_broker(
            wrong.model_copy(update={"password": SecretStr("right")}), timeout_s=0.5
        )
    assert refused.failed_step == "connect"
    assert refused.hint is not None
    assert "mqtt.username" in refused.hint
    assert denied.connect_ms is not None
    assert denied.failed_step == "round trip"
    assert denied.hint is not None
    assert "ACL" in denied.hint
    assert "treadmilld/bridge/front-pi/#" in denied.hint
