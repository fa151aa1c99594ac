"""Narrow tests of the link on our own GATT seam: what the simulator cannot send or lack."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
from collections.abc import AsyncIterator

import pytest
import structlog.testing

from tests.ble.doubles import (
    AnswersWithAnotherOpcode,
    DropsDuringWrite,
    GuardsDeviceInformation,
    NotATreadmill,
    ObedientDeck,
    TrainingStatusCannotNotify,
    WatchOnly,
    WithoutRanges,
    WithTrainingStatus,
)
from treadmilld.ble.api import (
    ControlRejectedError,
    ControlTimeoutError,
    LinkConnected,
    LinkError,
    LinkEvent,
    LinkLost,
    NotConnectedError,
    TelemetryReceived,
    TrainingStatusReceived,
    TreadmillLink,
)
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.connection_setup import HINT_NOT_TREADMILL
from treadmilld.ble.gatt import GattBackend
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ResultCode,
    TrainingStatus,
    TreadmillData,
    encode_treadmill_data,
)
from treadmilld.runtime.clock import LoopClock

BOUND_S = 60.0
# These decks only send what a test pushes: keep the liveness check out of the way.
QUIET_DECK = LinkSettings(liveness_timeout_s=1000.0)


@contextlib.asynccontextmanager
async def link_on(
    deck: GattBackend, settings: LinkSettings | None = None
) -> AsyncIterator[BleTreadmillLink]:
    link = BleTreadmillLink(
        "unit",
        TargetSelector(name_contains="UNIT"),
        settings or QUIET_DECK,
        clock=LoopClock(),
        gatt_backend=deck,
    )
    runner = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        async with asyncio.timeout(BOUND_S):
            await link.close()
            await runner


async def next_of(events: AsyncIterator[LinkEvent], kind: type[LinkEvent]) -> LinkEvent:
    async with asyncio.timeout(BOUND_S):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


def record(speed_kmh: float, distance_m: int | None = None) -> bytes:
    return encode_treadmill_data(
        TreadmillData(instantaneous_speed_kmh=speed_kmh, total_distance_m=distance_m)
    )


async def test_malformed_notifications_are_logged_with_hex_and_dropped() -> None:
    deck = ObedientDeck(LoopClock())
    async with link_on(deck) as link:
        events = link.events()
        await next_of(events, LinkConnected)
        with structlog.testing.capture_logs() as logs:
            deck.push(TREADMILL_DATA_UUID, b"\x00")  # too short for the flags
            deck.push(TREADMILL_DATA_UUID, b"\x04\x00\x10")  # announces speed+distance, short
            deck.push(TREADMILL_DATA_UUID, record(2.5, 120))
            received = await next_of(events, TelemetryReceived)
    assert isinstance(received, TelemetryReceived)
    assert received.record.instantaneous_speed_kmh == 2.5
    dropped = [entry for entry in logs if entry["event"] == "notification_dropped"]
    assert [entry["data"] for entry in dropped] == ["00", "040010"]


async def test_telemetry_merges_fields_that_a_record_leaves_out() -> None:
    deck = ObedientDeck(LoopClock())
    async with link_on(deck) as link:
        events = link.events()
        await next_of(events, LinkConnected)
        deck.push(TREADMILL_DATA_UUID, record(2.0, 100))
        await next_of(events, TelemetryReceived)
        deck.push(TREADMILL_DATA_UUID, record(2.5))
        await next_of(events, TelemetryReceived)
        merged = link.telemetry
    assert merged.data.instantaneous_speed_kmh == 2.5
    assert merged.data.total_distance_m == 100
    assert merged.belt_moving


async def test_every_subscriber_gets_every_event() -> None:
    deck = ObedientDeck(LoopClock())
    async with link_on(deck) as link:
        first, second = link.events(), link.events()
        await next_of(first, LinkConnected)
        await next_of(second, LinkConnected)
        deck.push(TREADMILL_DATA_UUID, record(1.0))
        one = await next_of(first, TelemetryReceived)
        two = await next_of(second, TelemetryReceived)
    assert one == two


async def test_notifications_are_enabled_one_at_a_time_with_the_configured_gap() -> None:
    deck = ObedientDeck(LoopClock())
    async with link_on(deck, LinkSettings(cccd_gap_s=0.25, liveness_timeout_s=1000.0)) as link:
        await next_of(link.events(), LinkConnected)
    times = [at for _uuid, at in deck.subscribed_at]
    assert len(times) == 3
    assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(times))


async def test_a_device_without_treadmill_data_is_not_taken_for_a_treadmill() -> None:
    deck = NotATreadmill(LoopClock())
    with structlog.testing.capture_logs() as logs:
        async with link_on(deck) as link:
            await asyncio.sleep(5.0)
            assert link.capabilities is None
    failures = [entry for entry in logs if entry["event"] == "connect_failed"]
    assert failures
    assert failures[0]["hint"] == HINT_NOT_TREADMILL
    assert not deck.connected  # it was let go again


async def test_a_missing_range_makes_that_target_uncontrollable() -> None:
    deck = WithoutRanges(LoopClock())
    async with link_on(deck) as link:
        connected = await next_of(link.events(), LinkConnected)
        assert isinstance(connected, LinkConnected)
        assert connected.capabilities.speed_range is None
        assert connected.capabilities.inclination_range is None
        with pytest.raises(ControlRejectedError, match="no Supported Speed Range"):
            await link.set_target_speed(3.0)
        with pytest.raises(ControlRejectedError, match="no Supported Inclination Range"):
            await link.set_target_inclination(1.0)
    assert deck.written == []


async def test_an_answer_to_another_opcode_is_not_taken_as_the_answer() -> None:
    deck = AnswersWithAnotherOpcode(LoopClock())
    with structlog.testing.capture_logs() as logs:
        async with link_on(deck) as link:
            await next_of(link.events(), LinkConnected)
            with pytest.raises(ControlTimeoutError):
                await link.set_target_inclination(1.0)
    assert any(entry["event"] == "control_response_mismatch" for entry in logs)


async def test_a_deck_without_control_point_can_be_watched_but_not_driven() -> None:
    deck = WatchOnly(LoopClock())
    async with link_on(deck) as link:
        events = link.events()
        await next_of(events, LinkConnected)
        deck.push(TREADMILL_DATA_UUID, record(1.5))
        await next_of(events, TelemetryReceived)
        with pytest.raises(ControlRejectedError, match="no Control Point") as refused:
            await link.start_belt()
    assert refused.value.result == ResultCode.NOT_SUPPORTED
    assert deck.written == []
    assert [uuid for uuid, _at in deck.subscribed_at] == [TREADMILL_DATA_UUID, MACHINE_STATUS_UUID]


def test_the_bleak_link_implements_the_link_seam() -> None:
    link: TreadmillLink = BleTreadmillLink(  # mypy checks the protocol here
        "unit",
        TargetSelector(address="C0:00:00:00:00:01"),
        QUIET_DECK,
        clock=LoopClock(),
        gatt_backend=ObedientDeck(LoopClock()),
    )
    assert isinstance(link, TreadmillLink)
    assert link.treadmill_id == "unit"
    assert link.capabilities is None
    assert link.telemetry.received_at is None


async def test_unreadable_device_information_does_not_stop_the_connection() -> None:
    deck = GuardsDeviceInformation(LoopClock())
    async with link_on(deck) as link:
        connected = await next_of(link.events(), LinkConnected)
    assert isinstance(connected, LinkConnected)
    assert connected.capabilities.device_information.manufacturer is None
    assert connected.capabilities.speed_range is not None


async def test_training_status_is_subscribed_last_with_the_gap_when_the_deck_has_it() -> None:
    deck = WithTrainingStatus(LoopClock())
    async with link_on(deck, LinkSettings(cccd_gap_s=0.25, liveness_timeout_s=1000.0)) as link:
        events = link.events()
        await next_of(events, LinkConnected)
        deck.push(TRAINING_STATUS_UUID, bytes.fromhex("0010"))
        received = await next_of(events, TrainingStatusReceived)
    assert [uuid for uuid, _at in deck.subscribed_at] == [
        TREADMILL_DATA_UUID,
        MACHINE_STATUS_UUID,
        CONTROL_POINT_UUID,
        TRAINING_STATUS_UUID,
    ]
    times = [at for _uuid, at in deck.subscribed_at]
    assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(times))
    assert isinstance(received, TrainingStatusReceived)
    assert received.status == TrainingStatus(status=0x10)


async def test_a_deck_without_training_status_connects_without_subscribing_to_it() -> None:
    deck = ObedientDeck(LoopClock())
    async with link_on(deck) as link:
        await next_of(link.events(), LinkConnected)
    assert TRAINING_STATUS_UUID not in [uuid for uuid, _at in deck.subscribed_at]


async def test_a_training_status_that_cannot_notify_does_not_fail_the_connect() -> None:
    deck = TrainingStatusCannotNotify(LoopClock())
    with structlog.testing.capture_logs() as logs:
        async with link_on(deck) as link:
            events = link.events()
            await next_of(events, LinkConnected)
            deck.push(TREADMILL_DATA_UUID, record(1.0))
            await next_of(events, TelemetryReceived)
            await link.set_target_speed(2.0)  # the control channel is up too
    assert [uuid for uuid, _at in deck.subscribed_at] == [
        TREADMILL_DATA_UUID,
        MACHINE_STATUS_UUID,
        CONTROL_POINT_UUID,
    ]
    skipped = [entry for entry in logs if entry["event"] == "characteristic_not_subscribed"]
    assert [entry["characteristic"] for entry in skipped] == [TRAINING_STATUS_UUID]
    assert not any(entry["event"] == "connect_failed" for entry in logs)


async def test_a_link_dropped_mid_write_fails_the_write_and_leaves_no_unheard_error() -> None:
    """The caller gets the failure; the answer nobody waits for any more is not reported by
    asyncio as "Future exception was never retrieved" (an ERROR line in the daemon's log)."""
    unheard: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unheard.append(context))
    try:
        deck = DropsDuringWrite(LoopClock())
        async with link_on(deck) as link:
            events = link.events()
            await next_of(events, LinkConnected)
            failed = False
            try:
                await link.set_target_speed(3.0)
            except (LinkError, NotConnectedError):
                failed = True  # its traceback (and the frames it holds) dropped here
            assert failed
            await next_of(events, LinkLost)
        gc.collect()  # a future dropped with its exception unread is reported here
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [context.get("message") for context in unheard] == []
