"""Faults of the simulated treadmill, met by the link (through real bleak, in virtual time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
import structlog.testing
from treadmilld_sim import (
    RunningState,
    SimulatedFleet,
    SimulatedTreadmill,
    SimulatedTreadmillConfig,
)

from tests.ble.harness import record_requests, running_link
from treadmilld.ble.api import (
    ConnectionState,
    ControlRejectedError,
    ControlTimeoutError,
    LinkConnected,
    LinkLost,
    LinkLostCause,
    TelemetryReceived,
)
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.client import SUBSCRIBER_QUEUE_SIZE, BleTreadmillLink
from treadmilld.ble.config import BackoffSettings, LinkSettings, TargetSelector
from treadmilld.ble.discovery import scan
from treadmilld.ble.gatt import Advertisement, FoundDevice, GattConnection
from treadmilld.ftms import (
    ControlOpcode,
    ControlRequest,
    ResultCode,
    SetTargetSpeed,
    StopKind,
    StopOrPause,
)
from treadmilld.runtime.fanout import Subscription


async def test_link_dropped_mid_run_reconnects_without_touching_the_belt(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-DROP"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.link.set_target_speed(4.0)
        await lut.belt_at(4.0)
        sent_before_drop = len(requests)

        await treadmill.drop_link()
        lost = await lut.lost()
        assert "dropped" in lost.reason
        assert lut.link.telemetry.data.instantaneous_speed_kmh == 4.0  # last known, kept
        reconnected = await lut.connected()
        assert reconnected.at > lost.at
        # The deck kept its belt running on its own; the link re-applied nothing.
        await lut.belt_at(4.0)
        assert len(requests) == sent_before_drop
        # Commands work again after the reconnect (control asked for anew).
        await lut.link.set_target_speed(3.0)
    assert requests[sent_before_drop:][-1] == SetTargetSpeed(3.0)


async def test_a_control_point_that_never_answers_times_out(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(name="SIM-MUTE", silent_control_point=True)
    )
    settings = LinkSettings(control_response_timeout_s=2.0)
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        with pytest.raises(ControlTimeoutError, match="no answer to Request Control within 2 s"):
            await lut.link.start_belt()
        # The link itself stays up: data still flows.
        assert lut.link.connection_state is ConnectionState.CONNECTED


async def test_slow_answers_within_the_timeout_succeed_and_later_ones_time_out(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-SLOW", response_delay_s=1.5))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        treadmill.faults.response_delay_s = 2.5
        with pytest.raises(ControlTimeoutError):
            await lut.link.set_target_speed(3.0)


@pytest.mark.parametrize(
    ("result", "code", "advice"),
    [
        (ResultCode.INVALID_PARAMETER, ResultCode.INVALID_PARAMETER, "supported range"),
        (ResultCode.NOT_SUPPORTED, ResultCode.NOT_SUPPORTED, "does not support"),
        (ResultCode.OPERATION_FAILED, ResultCode.OPERATION_FAILED, "check the console"),
    ],
)
async def test_a_rejected_opcode_raises_a_typed_error_that_says_what_to_do(
    fleet: SimulatedFleet, result: ResultCode, code: ResultCode, advice: str
) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(
            name="SIM-REJECT", forced_results={ControlOpcode.SET_TARGET_SPEED: result}
        )
    )
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        with pytest.raises(ControlRejectedError, match=advice) as rejected:
            await lut.link.set_target_speed(3.0)
    assert rejected.value.result == code
    assert rejected.value.request == "Set Target Speed"
    assert treadmill.model.target_speed_kmh == 0.0


async def test_silence_means_a_dead_link_and_it_reconnects(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-QUIET"))
    settings = LinkSettings(liveness_timeout_s=3.0)
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.telemetry_where(lambda t: t.belt_moving)
        # While moving, the deck now sends one record a minute: 3 s of silence kills the link.
        treadmill.faults.moving_data_rate_hz = 1 / 60
        lost = await lut.lost()
        assert lost.reason == "no treadmill data for 3 s"
        treadmill.faults.moving_data_rate_hz = None
        await lut.connected()
        await lut.telemetry_where(lambda t: t.belt_moving)
    assert treadmill.model.running_state is RunningState.RUNNING


async def test_a_missing_treadmill_fails_each_attempt_within_the_scan_timeout(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-GONE"))
    await treadmill.stop_advertising()
    settings = LinkSettings(
        scan_timeout_s=2.0, backoff=BackoffSettings(initial_s=1.0, maximum_s=4.0, jitter=0.0)
    )
    with structlog.testing.capture_logs() as logs:
        async with running_link(fleet, treadmill, settings=settings) as lut:
            started = fleet.clock.now()
            connected = lut.next_event(LinkConnected)  # started below, events queue meanwhile
            # Let three attempts fail: 2 s scan + 1 s, 2 s scan + 2 s, 2 s scan.
            await fleet.clock.sleep(10.5)
            assert lut.link.connection_state is not ConnectionState.CONNECTED
            await treadmill.start_advertising()
            await connected
            connected_after = fleet.clock.now() - started
    failures = [entry for entry in logs if entry["event"] == "connect_failed"]
    assert len(failures) == 3
    assert all("is the treadmill on and in range" in entry["hint"] for entry in failures)
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]
    assert [entry["retry_in_s"] for entry in failures] == [1.0, 2.0, 4.0]  # capped at maximum_s
    assert connected_after < 10.5 + 4.0 + 2.0


async def test_backoff_resets_after_a_long_healthy_session(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-FLAP"))
    backoff = BackoffSettings(initial_s=1.0, maximum_s=30.0, jitter=0.0, reset_after_healthy_s=60)
    with structlog.testing.capture_logs() as logs:
        async with running_link(fleet, treadmill, settings=LinkSettings(backoff=backoff)) as lut:
            for _ in range(3):  # three short sessions: delays grow
                await lut.connected()
                await treadmill.drop_link()
                await lut.lost()
            await lut.connected()
            await fleet.clock.sleep(61.0)  # a long healthy session
            await treadmill.drop_link()
            await lut.lost()
            await lut.connected()
    delays = [entry["retry_in_s"] for entry in logs if entry["event"] == "reconnect_scheduled"]
    assert delays == [1.0, 2.0, 4.0, 1.0]


async def test_scan_ignores_what_is_not_a_treadmill_and_name_targets_need_a_match(
    fleet: SimulatedFleet,
) -> None:
    await fleet.add(SimulatedTreadmillConfig(name="SIM-ONE"))
    await fleet.add(SimulatedTreadmillConfig(name="SIM-TWO"))
    found = await scan(1.0, backend=fleet.scanner_backend, clock=fleet.clock)
    assert sorted(t.name or "" for t in found) == ["SIM-ONE", "SIM-TWO"]

    target = TargetSelector(name_regex=r"^SIM-TW")
    async with running_link(fleet, target=target) as lut:
        connected = await lut.connected()
    assert connected.capabilities.name == "SIM-TWO"


class VanishesAfterScan:
    """The real bleak backend, except the treadmill goes silent right after it was found."""

    def __init__(self, inner: BleakGattBackend, treadmill: SimulatedTreadmill) -> None:
        self._inner = inner
        self._treadmill = treadmill

    async def find(
        self, matches: Callable[[Advertisement], bool], timeout_s: float
    ) -> FoundDevice | None:
        found = await self._inner.find(matches, timeout_s)
        if self._treadmill.is_advertising:
            await self._treadmill.stop_advertising()
        return found

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        return await self._inner.scan(timeout_s)

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        return await self._inner.connect(device, attempts=attempts, on_disconnect=on_disconnect)


async def test_a_treadmill_gone_between_scan_and_connect_fails_within_the_connect_timeout(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-VANISH"))
    gatt = VanishesAfterScan(
        BleakGattBackend(
            fleet.clock,
            scanner_backend=fleet.scanner_backend,
            client_backend=fleet.client_backend,
        ),
        treadmill,
    )
    link = BleTreadmillLink(
        "tm1",
        TargetSelector(address=treadmill.address),
        LinkSettings(connect_timeout_s=5.0),
        clock=fleet.clock,
        gatt_backend=gatt,
    )
    with structlog.testing.capture_logs() as logs:
        runner = asyncio.create_task(link.run())
        async with asyncio.timeout(120):
            # Found at once, then 5 s of connecting and at most 1 s of cancel grace.
            await fleet.clock.sleep(6.5)
            await link.close()
            await runner
    failure = next(entry for entry in logs if entry["event"] == "connect_failed")
    assert "longer than 5 s" in failure["error"]
    # Bounded by our connect timeout (plus the cancel grace), not by bleak-retry-connector's
    # 20 s per attempt or its 36 s not-found loop.
    assert failure["took_s"] <= 5.0 + 1.0 + 0.1
    assert link.capabilities is None


async def test_a_stop_right_after_a_cancelled_speed_write_waits_for_that_procedure(
    fleet: SimulatedFleet,
) -> None:
    # An emergency stop cancels the engine mid speed write, then stops the belt. The deck is
    # still busy with the speed procedure (a slow deck indicates late); writing Stop then
    # would be refused with ATT 0xFE. The channel stays taken until that procedure answers.
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-SLOW", response_delay_s=0.5))
    requests = record_requests(treadmill)
    speed_arrived = asyncio.Event()

    def note_speed(request: ControlRequest, _at: float) -> None:
        if isinstance(request, SetTargetSpeed):
            speed_arrived.set()

    treadmill.add_control_listener(note_speed)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.telemetry_where(lambda t: t.belt_moving)
        speed_write = asyncio.ensure_future(lut.link.set_target_speed(3.0))
        await speed_arrived.wait()  # the deck is now busy until it indicates, 0.5 s later
        speed_write.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await speed_write

        await lut.link.stop_belt()  # must not raise

        assert requests[-1] == StopOrPause(kind=StopKind.STOP)
        await lut.belt_at(0.0)


async def test_link_lost_says_its_cause_silent_deck_or_dropped_link(fleet: SimulatedFleet) -> None:
    # The engine reports `no_data` or `link_lost` from this cause alone, never from the text.
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-CAUSE"))
    settings = LinkSettings(liveness_timeout_s=3.0)
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.telemetry_where(lambda t: t.belt_moving)
        treadmill.faults.moving_data_rate_hz = 1 / 60
        silent = await lut.lost()
        treadmill.faults.moving_data_rate_hz = None
        await lut.connected()
        await treadmill.drop_link()
        dropped = await lut.lost()
    assert (silent.cause, dropped.cause) == (LinkLostCause.NO_DATA, LinkLostCause.DROPPED)


async def test_a_lagging_subscriber_loses_old_telemetry_never_a_link_event(
    fleet: SimulatedFleet,
) -> None:
    # 50 records a second for 40 s: twice the queue's bound, while one subscriber reads nothing.
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-LAG", data_rate_hz=50.0))
    async with running_link(fleet, treadmill) as lut:
        lagging = lut.link.events()
        assert isinstance(lagging, Subscription)
        await lut.connected()
        await asyncio.sleep(40.0)
        dropped_at = fleet.clock.now()
        await treadmill.drop_link()
        await lut.lost()
        await lut.connected()
    received = [event async for event in lagging]
    links = [type(event) for event in received if not isinstance(event, TelemetryReceived)]
    # Both connects and both losses (the drop, then the close) came through, in order.
    assert links == [LinkConnected, LinkLost, LinkConnected, LinkLost]
    assert lagging.dropped > 0
    assert len(received) == SUBSCRIBER_QUEUE_SIZE
    # What was dropped is the oldest telemetry: the newest records are all still there.
    before_drop = [
        e.at for e in received if isinstance(e, TelemetryReceived) and e.at <= dropped_at
    ]
    assert before_drop[-1] >= dropped_at - 0.1
