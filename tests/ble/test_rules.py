"""Pure rules of the link: targets, quirks, settings, backoff, clock waits, classification."""

from __future__ import annotations

import asyncio
import random

import pytest
from pydantic import ValidationError

from treadmilld.ble.api import ControlNotPermittedError, ControlRejectedError, LinkError
from treadmilld.ble.config import BackoffSettings, LinkSettings, ReconnectBackoff, TargetSelector
from treadmilld.ble.control import clamp_to_range, rejection_error, speed_to_write
from treadmilld.ble.discovery import classify, is_target, nearby_heard
from treadmilld.ble.gatt import Advertisement
from treadmilld.ble.quirks import KM_PER_MILE, STANDARD, Quirks, SpeedUnit, quirks_for_name
from treadmilld.ftms import (
    FTMS_SERVICE_UUID,
    HEART_RATE_SERVICE_UUID,
    FtmsServiceData,
    MachineType,
    ResultCode,
    SpeedRange,
    encode_ftms_service_data,
)
from treadmilld.runtime.clock import LoopClock
from treadmilld.runtime.waiting import wait_for_on_clock

# -- targets


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4.03, 4.0), (4.06, 4.0), (4.1, 4.1), (0.0, 0.5), (99.0, 16.0), (15.96, 15.9), (0.54, 0.5)],
)
def test_speed_is_clamped_and_rounded_toward_zero_on_the_deck_grid(
    value: float, expected: float
) -> None:
    assert clamp_to_range(value, 0.5, 16.0, 0.1, decimals=2, what="speed") == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(2.4, 2.0), (-2.3, -2.0), (-0.4, 0.0), (-9.0, -3.0), (0.3, 0.0)]
)
def test_incline_rounds_toward_zero_so_a_decline_is_never_steeper_than_asked(
    value: float, expected: float
) -> None:
    assert clamp_to_range(value, -3.0, 15.0, 0.5, decimals=1, what="incline") == expected


def test_rounding_up_never_leaves_the_range() -> None:
    # Grid 0, 0.3, 0.6, 0.9 with a maximum of 1.0: 0.99 rounds to the last step, not to 1.2.
    assert clamp_to_range(0.99, 0.0, 1.0, 0.3, decimals=2, what="x") == 0.9


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_number_target_is_an_error_not_a_write(value: float) -> None:
    with pytest.raises(LinkError, match="not a finite number"):
        clamp_to_range(value, 0.0, 10.0, 0.5, decimals=1, what="incline")


def test_mph_target_written_at_the_top_of_a_kmh_range_stays_inside_it() -> None:
    # 6.0 km/h is 3.728 mph: rounding to 3.73 would be 6.003 km/h, outside the range.
    value, written_kmh = speed_to_write(
        6.0, SpeedRange(0.5, 6.0, 0.1), range_unit=SpeedUnit.KMH, target_unit=SpeedUnit.MPH
    )
    assert value == 3.72
    assert written_kmh <= 6.0


def test_mph_everywhere_rounds_down_on_the_mph_grid() -> None:
    value, written_kmh = speed_to_write(
        8.0, SpeedRange(0.5, 10.0, 0.1), range_unit=SpeedUnit.MPH, target_unit=SpeedUnit.MPH
    )
    assert value == 4.9  # 8 km/h = 4.97 mph -> 4.9 on the 0.1 mph grid (5.0 would be 8.05 km/h)
    assert written_kmh == 4.9 * KM_PER_MILE


@pytest.mark.parametrize(
    ("result", "code", "kind"),
    [
        (ResultCode.NOT_SUPPORTED, ResultCode.NOT_SUPPORTED, ControlRejectedError),
        (ResultCode.INVALID_PARAMETER, ResultCode.INVALID_PARAMETER, ControlRejectedError),
        (ResultCode.OPERATION_FAILED, ResultCode.OPERATION_FAILED, ControlRejectedError),
        (
            ResultCode.CONTROL_NOT_PERMITTED,
            ResultCode.CONTROL_NOT_PERMITTED,
            ControlNotPermittedError,
        ),
    ],
)
def test_result_codes_become_typed_errors(
    result: ResultCode, code: ResultCode, kind: type[ControlRejectedError]
) -> None:
    error = rejection_error("tm1", "Start", result)
    assert type(error) is kind
    assert error.result == code
    assert error.request == "Start"
    assert str(error).startswith("tm1: ")


# -- quirks


@pytest.mark.parametrize(
    ("name", "quirk_set"),
    [
        ("FS-BT-D2", "fitshow"),
        ("fs-abc", "fitshow"),
        ("SF-T7515", "sunny"),
        ("TM11GY", "tm11gy"),
        ("KS-ST-A1P", "kingsmith"),
        ("BOWFLEX T9", "mph"),
        ("JFTM T202-5_4DEE", "jftm"),
        ("SIM-TM01", "standard"),
        ("", "standard"),
        (None, "standard"),
    ],
)
def test_quirks_are_picked_by_advertised_name_prefix(name: str | None, quirk_set: str) -> None:
    assert quirks_for_name(name).name == quirk_set


def test_jftm_decks_read_targets_in_mph_but_report_their_speed_in_km_h() -> None:
    # qdomyos-zwift PR#4904: asked 1.0 (read as mph), the deck reported about 1.6 (km/h).
    quirks = quirks_for_name("JFTM T202-5_4DEE")
    assert quirks.target_speed_unit is SpeedUnit.MPH
    assert quirks.reported_speed_unit is SpeedUnit.KMH


def test_target_speed_changed_is_read_in_the_target_unit_unless_configured() -> None:
    assert quirks_for_name("TM11GY").effective_status_speed_unit is SpeedUnit.MPH
    assert quirks_for_name("BOWFLEX T9").effective_status_speed_unit is SpeedUnit.MPH
    assert STANDARD.effective_status_speed_unit is SpeedUnit.KMH
    spelled_out = Quirks(target_speed_unit=SpeedUnit.MPH, status_speed_unit=SpeedUnit.KMH)
    assert spelled_out.effective_status_speed_unit is SpeedUnit.KMH


def test_config_can_name_a_quirk_set_or_spell_fields_out() -> None:
    assert LinkSettings(quirks="kingsmith").quirks_for("SIM-TM01").start_gate
    explicit = LinkSettings(quirks=Quirks(name="mine", start_toggles_belt=True))
    assert explicit.quirks_for("FS-BT-D2").start_toggles_belt
    assert LinkSettings().quirks_for("SIM-TM01") == STANDARD


def test_unknown_quirk_set_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValidationError, match="fitshow"):
        LinkSettings(quirks="fitshoww")


def test_settings_forbid_unknown_fields_and_are_frozen() -> None:
    with pytest.raises(ValidationError):
        LinkSettings.model_validate({"liveness_timeout": 3})
    settings = LinkSettings()
    with pytest.raises(ValidationError):
        settings.liveness_timeout_s = 5.0  # type: ignore[misc]


# -- target selector


def test_a_target_needs_something_to_match() -> None:
    with pytest.raises(ValidationError, match="treadmilld scan"):
        TargetSelector()


def test_a_bad_regex_is_refused_when_configured() -> None:
    with pytest.raises(ValidationError, match="not a valid regex"):
        TargetSelector(name_regex="(")


def test_target_matching_by_address_name_and_regex() -> None:
    assert TargetSelector(address="c0:00:00:00:00:01").matches("C0:00:00:00:00:01", None)
    assert TargetSelector(name_contains="walk").matches("X", "KS-WalkingPad")
    assert not TargetSelector(name_contains="walk").matches("X", None)
    assert TargetSelector(name_regex=r"^KS-\w+").matches("X", "KS-ST")
    assert not TargetSelector(name_regex=r"^KS-").matches("X", "FS-KS-")


# -- backoff and clock waits


def test_backoff_grows_is_capped_jittered_and_resets() -> None:
    settings = BackoffSettings(initial_s=1.0, maximum_s=10.0, multiplier=2.0, jitter=0.2)
    backoff = ReconnectBackoff(settings, random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, base in zip(delays, [1, 2, 4, 8, 10, 10, 10, 10], strict=True):
        assert base * 0.8 <= delay <= min(10.0, base * 1.2)
    backoff.reset()
    assert backoff.next_delay() <= 1.2


def test_backoff_survives_a_week_of_failures() -> None:
    backoff = ReconnectBackoff(BackoffSettings(jitter=0.0))
    for _ in range(100_000):
        delay = backoff.next_delay()
    assert delay == 30.0


def test_backoff_cap_below_initial_is_refused() -> None:
    with pytest.raises(ValidationError, match="raise maximum_s"):
        BackoffSettings(initial_s=5.0, maximum_s=1.0)


async def test_wait_for_on_clock_returns_the_result_in_time() -> None:
    async def answer() -> int:
        await asyncio.sleep(1.0)
        return 42

    assert await wait_for_on_clock(answer(), 2.0, LoopClock()) == 42


async def test_wait_for_on_clock_times_out_and_cancels_the_waiter() -> None:
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await wait_for_on_clock(never, 2.0, LoopClock())
    assert never.cancelled()


# -- discovery


def advertisement(
    *,
    name: str | None = "X",
    service_data: bytes | None = None,
    listed: bool = False,
) -> Advertisement:
    return Advertisement(
        address="C0:00:00:00:00:09",
        name=name,
        rssi=-60,
        service_uuids=(FTMS_SERVICE_UUID,) if listed else (),
        service_data={} if service_data is None else {FTMS_SERVICE_UUID: service_data},
    )


def ftms_data(types: MachineType, *, available: bool = True) -> bytes:
    return encode_ftms_service_data(FtmsServiceData(available=available, machine_types=types))


def test_a_treadmill_is_recognised_by_its_service_data() -> None:
    found = classify(advertisement(service_data=ftms_data(MachineType.TREADMILL)))
    assert found is not None
    assert found.has_service_data
    assert found.available


def test_an_ftms_bike_is_not_a_treadmill() -> None:
    assert classify(advertisement(service_data=ftms_data(MachineType(1 << 5)))) is None


def test_one_scan_lists_treadmills_and_straps_and_a_treadmill_with_a_pulse_only_as_one() -> None:
    deck_with_pulse = Advertisement(
        address="C0:00:00:00:00:01",
        name="DECK",
        rssi=-70,
        service_uuids=(FTMS_SERVICE_UUID, HEART_RATE_SERVICE_UUID),
        service_data={FTMS_SERVICE_UUID: ftms_data(MachineType.TREADMILL)},
    )
    far = Advertisement("C0:00:00:00:00:02", "Polar H10", -90, (HEART_RATE_SERVICE_UUID,))
    near = Advertisement("C0:00:00:00:00:03", None, -40, (HEART_RATE_SERVICE_UUID,))
    other = Advertisement("C0:00:00:00:00:04", "Speaker", -30)
    found = nearby_heard([deck_with_pulse, far, near, other])
    assert [t.address for t in found.treadmills] == ["C0:00:00:00:00:01"]
    # Strongest first; the deck's own hand-grip pulse is no strap to configure.
    assert [s.address for s in found.straps] == ["C0:00:00:00:00:03", "C0:00:00:00:00:02"]


def test_a_deck_without_service_data_is_a_candidate_by_service_list_or_name() -> None:
    listed = classify(advertisement(listed=True))
    assert listed is not None
    assert not listed.has_service_data
    assert classify(advertisement(name="Domyos-TC")) is None
    named = classify(advertisement(name="Domyos-TC"), (TargetSelector(name_contains="domyos"),))
    assert named is not None


def test_garbage_service_data_falls_back_to_the_service_list() -> None:
    found = classify(advertisement(service_data=b"", listed=True))
    assert found is not None
    assert not found.has_service_data


def test_a_busy_treadmill_is_skipped_by_name_but_taken_by_address() -> None:
    busy = advertisement(
        name="SIM-1", service_data=ftms_data(MachineType.TREADMILL, available=False)
    )
    assert not is_target(busy, TargetSelector(name_contains="SIM"))
    assert is_target(busy, TargetSelector(address="C0:00:00:00:00:09"))


async def test_a_result_arriving_after_the_timeout_is_handed_over_not_leaked() -> None:
    released: list[str] = []

    async def connect_that_finishes_anyway() -> str:
        try:
            await asyncio.sleep(5.0)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # the stack completes the connect while unwinding
        return "connection"

    with pytest.raises(TimeoutError):
        await wait_for_on_clock(
            connect_that_finishes_anyway(), 2.0, LoopClock(), on_late_result=released.append
        )
    await asyncio.sleep(1.0)
    assert released == ["connection"]
