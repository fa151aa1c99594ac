"""How the link drives real deck families' Control Points (on our own GATT seam).

Each deck double copies one behaviour from docs/ble-client.md's "Real decks" section, with its
source. Every test checks what a person at the deck would notice: the command reached the deck
and took, or the link says clearly what to configure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import structlog.testing

from tests.ble.doubles import (
    IgnoresRequestControl,
    InsistsOnControl,
    LockedUntilUnlocked,
    ObedientDeck,
    RefusesControl,
    RequestControlNotSupported,
    WriteCommandsOnly,
)
from treadmilld.ble.api import (
    ControlNotPermittedError,
    ControlTimeoutError,
    LinkConnected,
    LinkEvent,
    LinkLost,
    TelemetryReceived,
)
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import BackoffSettings, LinkSettings, TargetSelector
from treadmilld.ble.control_channel import HINT_UNLOCK_MISSING
from treadmilld.ble.quirks import QUIRK_SETS, Quirks
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    TREADMILL_DATA_UUID,
    InclinationRange,
    RequestControl,
    SetTargetInclination,
    SetTargetSpeed,
    StartOrResume,
    StopKind,
    StopOrPause,
    TreadmillData,
    encode_control_request,
    encode_treadmill_data,
)
from treadmilld.ftms.vendor import KINGSMITH_UNLOCK_CHARACTERISTIC_UUID, KINGSMITH_UNLOCK_PAYLOAD
from treadmilld.runtime.clock import LoopClock

BOUND_S = 60.0


def settings(**changes: object) -> LinkSettings:
    # These decks only send what a test pushes: keep the liveness check out of the way.
    base: dict[str, object] = {
        "liveness_timeout_s": 1000.0,
        "backoff": BackoffSettings(initial_s=0.01, maximum_s=0.01, jitter=0.0),
    }
    return LinkSettings.model_validate(base | changes)


@contextlib.asynccontextmanager
async def driving(
    deck: ObedientDeck, link_settings: LinkSettings | None = None
) -> AsyncIterator[tuple[BleTreadmillLink, AsyncIterator[LinkEvent]]]:
    """A running link on `deck`, connected, with one standing-belt record received."""
    link = BleTreadmillLink(
        "deck",
        TargetSelector(name_contains=deck.name),
        link_settings or settings(),
        clock=deck.clock,
        gatt_backend=deck,
    )
    events = link.events()
    runner = asyncio.create_task(link.run())
    try:
        await next_of(events, LinkConnected)
        deck.push(TREADMILL_DATA_UUID, record(0.0))
        await next_of(events, TelemetryReceived)
        yield link, events
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


def record(speed_kmh: float, inclination_pct: float | None = None) -> bytes:
    return encode_treadmill_data(
        TreadmillData(instantaneous_speed_kmh=speed_kmh, inclination_pct=inclination_pct)
    )


def control_writes(deck: ObedientDeck) -> list[tuple[bytes, bool]]:
    """The Control Point writes the deck received: (bytes, written with response)."""
    return [(data, response) for uuid, data, response in deck.writes if uuid == CONTROL_POINT_UUID]


def wire(*requests: object) -> list[bytes]:
    return [encode_control_request(r) for r in requests]  # type: ignore[arg-type]


# -- Control Point write mode ------------------------------------------------------------------


async def test_a_control_point_with_only_write_without_response_is_driven_by_write_commands() -> (
    None
):
    # Urevo E1L: the Control Point takes Write Without Response and answers by notification
    # (blak3r/treadspan protocol-analysis/urevo-E1L). A Write Request would be refused.
    deck = WriteCommandsOnly(LoopClock(), name="URTM041")
    async with driving(deck) as (link, _events):
        await link.start_belt()
        assert await link.set_target_speed(3.0) == 3.0
    writes = control_writes(deck)
    assert [data for data, _ in writes] == wire(
        RequestControl(), StartOrResume(), SetTargetSpeed(3.0)
    )
    assert not any(response for _, response in writes)


async def test_a_control_point_with_write_is_written_with_response() -> None:
    deck = ObedientDeck(LoopClock(), name="PLAIN-TM")
    async with driving(deck) as (link, _events):
        await link.set_target_speed(2.0)
    assert control_writes(deck) == [(b, True) for b in wire(RequestControl(), SetTargetSpeed(2.0))]


async def test_the_e1l_quirk_writes_commands_even_where_write_is_offered_too() -> None:
    deck = ObedientDeck(LoopClock(), name="URTM041-B")
    deck.control_point_properties = frozenset({"write", "write-without-response", "notify"})
    async with driving(deck) as (link, _events):
        assert link.quirks == QUIRK_SETS["urevo-e1l"]
        await link.set_target_speed(2.0)
    assert [response for _, response in control_writes(deck)] == [False, False]


# -- Request Control where the deck has none to give -------------------------------------------


async def test_a_deck_answering_request_control_not_supported_is_driven_all_the_same() -> None:
    deck = RequestControlNotSupported(LoopClock(), name="NO-RC-TM")
    async with driving(deck) as (link, _events):
        await link.start_belt()
        await link.set_target_speed(3.0)
        await link.set_target_inclination(2.0)
    # Asked once; the commands then go straight to the deck.
    assert [data for data, _ in control_writes(deck)] == wire(
        RequestControl(), StartOrResume(), SetTargetSpeed(3.0), SetTargetInclination(2.0)
    )


async def test_a_stop_never_waits_behind_a_request_control_the_deck_leaves_unanswered() -> None:
    deck = IgnoresRequestControl(LoopClock(), name="MUTE-RC-TM")
    async with driving(deck, settings(control_response_timeout_s=2.0)) as (link, _events):
        with pytest.raises(ControlTimeoutError, match="Request Control"):
            await link.start_belt()
        asked_at = deck.clock.now()
        await link.stop_belt()
        stopped_in = deck.clock.now() - asked_at
    assert stopped_in < 0.1  # at once, not after another Request Control timeout
    assert [data for data, _ in control_writes(deck)] == wire(
        RequestControl(), StopOrPause(StopKind.STOP)
    )


async def test_a_stop_refused_for_lack_of_control_gets_control_and_is_sent_again() -> None:
    deck = InsistsOnControl(LoopClock(), name="STRICT-TM")
    async with driving(deck) as (link, _events):
        await link.stop_belt()
    stop = StopOrPause(StopKind.STOP)
    assert [data for data, _ in control_writes(deck)] == wire(stop, RequestControl(), stop)


async def test_a_deck_that_refuses_control_and_cannot_be_asked_for_it_says_so() -> None:
    deck = RefusesControl(LoopClock(), name="LOCKED-TM")
    async with driving(deck) as (link, _events):
        with pytest.raises(ControlNotPermittedError, match="close other apps"):
            await link.set_target_speed(2.0)
    # Asked once, refused with Not Supported; the command's own refusal is final.
    assert [data for data, _ in control_writes(deck)] == wire(RequestControl(), SetTargetSpeed(2.0))


# -- KingSmith MC21 unlock ------------------------------------------------------------------------


def mc21(name: str = "KS-MC21-UNIT") -> LockedUntilUnlocked:
    return LockedUntilUnlocked(
        LoopClock(), name=name, unlock_uuid=KINGSMITH_UNLOCK_CHARACTERISTIC_UUID
    )


async def test_the_mc21_is_unlocked_once_per_connection_before_its_first_control_request() -> None:
    deck = mc21()
    async with driving(deck) as (link, events):
        assert link.quirks is not None
        assert link.quirks.name == "kingsmith-mc21"
        assert not deck.unlocked  # nothing written on connect
        await link.start_belt()
        await link.stop_belt()
        first_session = list(deck.writes)
        await deck.disconnect()  # the deck drops the link; the unlock ends with it
        await next_of(events, LinkLost)
        await next_of(events, LinkConnected)
        deck.push(TREADMILL_DATA_UUID, record(0.0))
        await link.stop_belt()  # the first thing after a reconnect works: unlocked again
    unlock = (KINGSMITH_UNLOCK_CHARACTERISTIC_UUID, KINGSMITH_UNLOCK_PAYLOAD, True)
    assert first_session == [
        unlock,
        (CONTROL_POINT_UUID, encode_control_request(RequestControl()), True),
        (CONTROL_POINT_UUID, encode_control_request(StartOrResume()), True),
        (CONTROL_POINT_UUID, encode_control_request(StopOrPause(StopKind.STOP)), True),
    ]
    assert deck.writes[len(first_session) :] == [
        unlock,
        (CONTROL_POINT_UUID, encode_control_request(StopOrPause(StopKind.STOP)), True),
    ]


async def test_the_mc21_unlock_bytes_can_be_configured() -> None:
    deck = mc21(name="TREADMILL-X")
    quirks = Quirks(
        vendor_unlock={
            "characteristic_uuid": KINGSMITH_UNLOCK_CHARACTERISTIC_UUID.upper(),
            "payload_hex": "F7 A2 01",
        }
    )
    async with driving(deck, settings(quirks=quirks)) as (link, _events):
        await link.set_target_speed(2.0)
    assert deck.writes[0] == (KINGSMITH_UNLOCK_CHARACTERISTIC_UUID, b"\xf7\xa2\x01", True)


async def test_an_mc21_quirk_on_a_deck_without_the_unlock_says_what_to_configure() -> None:
    deck = ObedientDeck(LoopClock(), name="KS-MC21-NOUNLOCK")
    with structlog.testing.capture_logs() as logs:
        async with driving(deck) as (link, _events):
            await link.start_belt()  # driven anyway
            await link.stop_belt()
    warnings = [entry for entry in logs if entry["event"] == "vendor_unlock_missing"]
    assert len(warnings) == 1  # once per connection, not per command
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["hint"] == HINT_UNLOCK_MISSING
    assert "vendor_unlock" in HINT_UNLOCK_MISSING
    assert all(uuid == CONTROL_POINT_UUID for uuid, _, _ in deck.writes)


# -- Incline tables ---------------------------------------------------------------------------


async def test_an_incline_table_deck_gets_the_index_and_reports_the_percent_it_stands_for() -> None:
    # The illustrative table: 0, 0.5, 1, 1.5, 2, 3, 4, 5, 6.5, 8, 10, 12 %.
    deck = ObedientDeck(LoopClock(), name="KETTLER-UNIT")
    with structlog.testing.capture_logs() as logs:
        async with driving(deck) as (link, _events):
            capabilities = link.capabilities
            assert capabilities is not None
            # Every entry lies on a 0.5 % grid from 0 to 12.
            assert capabilities.inclination_range == InclinationRange(0.0, 12.0, 0.5)
            assert await link.set_target_inclination(3.8) == 3.0  # entry 5, never above
            assert await link.set_target_inclination(15.0) == 12.0  # the table's top
            assert await link.set_target_inclination(-2.0) == 0.0
            deck.push(TREADMILL_DATA_UUID, record(0.0, inclination_pct=3.0))
            await asyncio.sleep(0)
            measured = link.telemetry.data.inclination_pct
    assert measured == 3.0  # Treadmill Data is real percent on these decks
    # Set Target Inclination carries the index as its raw sint16.
    assert [data for data, _ in control_writes(deck)][1:] == [
        bytes([0x03, 5, 0]),
        bytes([0x03, 11, 0]),
        bytes([0x03, 0, 0]),
    ]
    assert any(entry["event"] == "incline_table_illustrative" for entry in logs)


async def test_a_configured_incline_table_is_used_as_given_without_a_warning() -> None:
    deck = ObedientDeck(LoopClock(), name="ICONCEPT-UNIT")
    table = (0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0)
    with structlog.testing.capture_logs() as logs:
        async with driving(deck, settings(quirks={"incline_table": table})) as (link, _events):
            capabilities = link.capabilities
            assert capabilities is not None
            # Evenly spaced: the range's increment is its spacing.
            assert capabilities.inclination_range == InclinationRange(0.0, 9.0, 1.5)
            assert await link.set_target_inclination(7.4) == 6.0
    assert [data for data, _ in control_writes(deck)][-1] == bytes([0x03, 4, 0])
    assert not any(entry["event"] == "incline_table_illustrative" for entry in logs)


def test_an_incline_table_must_rise_entry_by_entry() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Quirks(incline_table=(0.0, 2.0, 1.0))
    with pytest.raises(ValueError, match="at least one entry"):
        Quirks(incline_table=())
