"""Command payload validation (no broker needed: pure parsing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import pytest

from treadmilld.mqtt.commands import (
    Command,
    EmergencyStop,
    SelectProfile,
    SetBodyWeight,
    SetIncline,
    SetSpeed,
    Start,
)
from treadmilld.mqtt.payloads import (
    TREADMILL_REQUESTS,
    PayloadError,
    command_age_s,
    parse_plain_set,
    parse_request,
    parse_set,
    request_command,
    transaction_of,
)


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        (b'{"command": "start", "profile": "hill_30"}', Start(profile="hill_30")),
        (
            b'{"command": "start", "body_weight_kg": 60, "clinical": true}',
            Start(body_weight_kg=60.0, clinical=True),
        ),
        (b'{"command": "emergency_stop"}', EmergencyStop()),
        (b'{"speed_kmh": 8.5}', SetSpeed(speed_kmh=8.5)),
        (b'{"incline_pct": -2}', SetIncline(incline_pct=-2.0)),
        (b'{"profile": "hill_30"}', SelectProfile(profile="hill_30")),
        (b'{"body_weight_kg": 80}', SetBodyWeight(body_weight_kg=80.0)),
    ],
)
def test_set_payload_maps_to_one_command(raw: bytes, command: Command) -> None:
    assert parse_set(raw).to_command() == command


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"speed_kmh": 41}', "speed_kmh"),
        (b'{"speed_kmh": -1}', "speed_kmh"),
        (b'{"speed_kmh": "Infinity"}', "speed_kmh"),
        (b'{"body_weight_kg": 5, "command": "start"}', "body_weight_kg"),
        (b'{"command": "start", "clinical": 1}', "clinical"),
        (b'{"command": "stop", "incline_pct": 1}', "incline_pct"),
        (b'{"speed_kmh": 3, "profile": "x"}', "speed_kmh"),
        (b'{"ts": "2026-01-01T00:00:00", "command": "stop"}', "ts"),
        (b'{"command": "stop", "extra": 1}', "extra"),
        (b"{}", "nothing to do"),
        (b'{"body_weight_kg": 300.5}', "body_weight_kg"),
        (b'{"body_weight_kg": "80"}', "body_weight_kg"),
        (b'{"body_weight_kg": 80, "clinical": true}', "clinical"),
        (b'{"body_weight_kg": 80, "command": "pause"}', "body_weight_kg"),
        (b'{"body_weight_kg": 80, "speed_kmh": 3}', "speed_kmh"),
    ],
)
def test_invalid_set_payload_names_the_problem(raw: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_set(raw)
    assert caught.value.code == "invalid_payload"
    assert fragment in caught.value.message


def test_plain_set_parses_bare_values() -> None:
    assert parse_plain_set("speed_kmh", b" 4.5\n").to_command() == SetSpeed(speed_kmh=4.5)
    assert parse_plain_set("profile", b"hill_30").to_command() == SelectProfile(profile="hill_30")
    with pytest.raises(PayloadError, match="needs a number"):
        parse_plain_set("incline_pct", b"steep")
    with pytest.raises(PayloadError) as caught:
        parse_plain_set("ts", b"1")
    assert caught.value.code == "unknown_field"


def test_request_models_by_action() -> None:
    request = parse_request("set_speed", b'{"speed_kmh": 3, "transaction": 9}', TREADMILL_REQUESTS)
    assert request.transaction == 9
    assert parse_request("pause", b"{}", TREADMILL_REQUESTS).transaction is None
    with pytest.raises(PayloadError) as caught:
        parse_request("warp", b"{}", TREADMILL_REQUESTS)
    assert caught.value.code == "unknown_action"
    with pytest.raises(PayloadError, match="speed_kmh"):
        parse_request("set_speed", b"{}", TREADMILL_REQUESTS)


def test_transaction_is_recovered_even_from_invalid_payloads() -> None:
    assert transaction_of(b'{"speed_kmh": 99, "transaction": "t-1"}') == "t-1"
    assert transaction_of(b'{"transaction": true}') is None
    assert transaction_of(b"not json") is None


def test_command_age_accepts_epoch_and_iso_timestamps() -> None:
    epoch = parse_set(b'{"command": "stop", "ts": 1800000000}').ts
    iso = parse_set(b'{"command": "stop", "ts": "2027-01-15T08:00:00Z"}').ts
    assert command_age_s(epoch, 1_800_000_004.0) == pytest.approx(4.0)
    assert iso == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert command_age_s(None, 0.0) is None


@pytest.mark.parametrize("raw", [b"", b" ", b"\n\t "])
def test_an_empty_payload_is_never_a_command(raw: bytes) -> None:
    # An empty retained publish is how a retained message is cleared: it must not run as
    # "start with no arguments" (or anything else).
    attempts: list[Callable[[], object]] = [
        lambda: parse_set(raw),
        lambda: parse_plain_set("command", raw),
        lambda: parse_plain_set("speed_kmh", raw),
        *(partial(parse_request, action, raw, TREADMILL_REQUESTS) for action in TREADMILL_REQUESTS),
    ]
    for attempt in attempts:
        with pytest.raises(PayloadError) as caught:
            attempt()
        assert caught.value.code == "empty_payload"
        assert "{}" in caught.value.message


@pytest.mark.parametrize("raw", [b"start", b"{", b"\xff\xfe", b"'profile': 'p1'"])
def test_a_payload_that_is_not_json_is_refused_as_such(raw: bytes) -> None:
    attempts: list[Callable[[], object]] = [
        lambda: parse_set(raw),
        lambda: parse_request("start", raw, TREADMILL_REQUESTS),
        lambda: parse_request("pause", raw, TREADMILL_REQUESTS),
    ]
    for attempt in attempts:
        with pytest.raises(PayloadError) as caught:
            attempt()
        assert caught.value.code == "invalid_json"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"command": "start", "body_weight_kg": "80"}',
        b'{"command": "start", "body_weight_kg": true}',
        b'{"speed_kmh": "3.5"}',
        b'{"incline_pct": "2"}',
        b'{"command": "start", "clinical": "yes"}',
    ],
)
def test_numbers_and_booleans_are_strict_json_types(raw: bytes) -> None:
    # One rule for every field: the JSON type it names. "80" is a string, as "yes" is.
    with pytest.raises(PayloadError) as caught:
        parse_set(raw)
    assert caught.value.code == "invalid_payload"


@pytest.mark.parametrize(
    ("action", "raw"),
    [
        ("start", b'{"profile": "p1", "body_weight_kg": "80"}'),
        ("set_speed", b'{"speed_kmh": "3.5"}'),
        ("set_incline", b'{"incline_pct": "1"}'),
    ],
)
def test_request_numbers_are_strict_too(action: str, raw: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_request(action, raw, TREADMILL_REQUESTS)
    assert caught.value.code == "invalid_payload"
    assert "valid number" in caught.value.message


def test_integers_are_numbers_and_plain_set_text_is_still_converted() -> None:
    start = parse_request("start", b'{"body_weight_kg": 80}', TREADMILL_REQUESTS)
    assert request_command("start", start) == Start(body_weight_kg=80.0)
    assert parse_plain_set("speed_kmh", b"3").to_command() == SetSpeed(speed_kmh=3.0)
    assert parse_plain_set("incline_pct", b" 1.5\n").to_command() == SetIncline(incline_pct=1.5)


@pytest.mark.parametrize("weight", [b"20", b"300"])
def test_body_weight_bounds_are_the_engines(weight: bytes) -> None:
    payload = parse_set(b'{"command": "start", "body_weight_kg": ' + weight + b"}")
    assert payload.body_weight_kg == float(weight)
    with pytest.raises(PayloadError):
        parse_set(b'{"command": "start", "body_weight_kg": 300.5}')
