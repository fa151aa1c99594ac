"""Treadmill Data decode throughput: a realistic mix of notifications through the assembler.

The mix is what the BLE client sees from a room of treadmills: plain 1 Hz records (speed,
distance, energy, time), KingSmith/Urevo records with the bit-13 step count, full records with
every field, and full records split into fragments at the default MTU of 23 and reassembled.
Each run feeds every notification through one `TreadmillDataAssembler`, as the link does.

The floor, measured in the same run over the same bytes, is the least any decoder must do:
read the flags with struct and turn the rest of the notification into one int.

    uv run python bench/codec.py [--runs N] [--records N] [--quick] [--json]
"""

from __future__ import annotations

import random
import struct
import sys
import time

from _stats import Figure, Summary, argument_parser, emit

from treadmilld.ftms import (
    TreadmillData,
    TreadmillDataAssembler,
    encode_treadmill_data,
    encode_treadmill_data_fragments,
)

# Shares of the mix (records, not notifications).
PLAIN_SHARE, STEPS_SHARE, FULL_SHARE = 0.5, 0.2, 0.15  # the rest is fragmented full records
DEFAULT_MTU = 23  # BLE default ATT MTU: 20-byte notifications


def plain_record(rng: random.Random, second: int) -> TreadmillData:
    return TreadmillData(
        instantaneous_speed_kmh=round(rng.uniform(0.5, 6.0), 2),
        total_distance_m=second,
        total_energy_kcal=second // 20,
        energy_per_hour_kcal=None,
        energy_per_minute_kcal=None,
        elapsed_time_s=second,
    )


def steps_record(rng: random.Random, second: int) -> TreadmillData:
    plain = plain_record(rng, second)
    return TreadmillData(
        instantaneous_speed_kmh=plain.instantaneous_speed_kmh,
        total_distance_m=plain.total_distance_m,
        total_energy_kcal=plain.total_energy_kcal,
        elapsed_time_s=plain.elapsed_time_s,
        step_count=second * 2,
    )


def full_record(rng: random.Random, second: int) -> TreadmillData:
    return TreadmillData(
        instantaneous_speed_kmh=round(rng.uniform(0.5, 6.0), 2),
        average_speed_kmh=round(rng.uniform(0.5, 6.0), 2),
        total_distance_m=second,
        inclination_pct=round(rng.uniform(-3.0, 15.0), 1),
        ramp_angle_deg=None,
        positive_elevation_gain_m=round(second / 50, 1),
        negative_elevation_gain_m=0.0,
        instantaneous_pace_km_per_min=round(rng.uniform(0.1, 1.0), 1),
        average_pace_km_per_min=round(rng.uniform(0.1, 1.0), 1),
        total_energy_kcal=second // 20,
        energy_per_hour_kcal=rng.randint(100, 600),
        energy_per_minute_kcal=rng.randint(1, 10),
        heart_rate_bpm=rng.randint(60, 170),
        metabolic_equivalent=round(rng.uniform(1.0, 9.0), 1),
        elapsed_time_s=second,
        remaining_time_s=3600 - second % 3600,
        force_on_belt_n=None,
        power_output_w=rng.randint(0, 300),
        step_count=second * 2,
    )


def build_mix(records: int, seed: int = 2) -> tuple[list[bytes], int]:
    """Notifications for `records` records, and how many whole records they make."""
    rng = random.Random(seed)
    notifications: list[bytes] = []
    for second in range(records):
        draw = rng.random()
        if draw < PLAIN_SHARE:
            notifications.append(encode_treadmill_data(plain_record(rng, second)))
        elif draw < PLAIN_SHARE + STEPS_SHARE:
            notifications.append(encode_treadmill_data(steps_record(rng, second)))
        elif draw < PLAIN_SHARE + STEPS_SHARE + FULL_SHARE:
            notifications.append(encode_treadmill_data(full_record(rng, second)))
        else:
            notifications.extend(
                encode_treadmill_data_fragments(full_record(rng, second), DEFAULT_MTU)
            )
    return notifications, records


def decode_run(notifications: list[bytes]) -> tuple[float, int]:
    """Seconds to feed every notification through one assembler, and records completed."""
    assembler = TreadmillDataAssembler()
    feed = assembler.feed
    completed = 0
    start = time.perf_counter()
    for data in notifications:
        if feed(data) is not None:
            completed += 1
    return time.perf_counter() - start, completed


def floor_run(notifications: list[bytes]) -> float:
    """Seconds for the bare minimum over the same bytes: flags via struct, body as one int."""
    flags_struct = struct.Struct("<H")
    unpack_flags = flags_struct.unpack_from
    from_bytes = int.from_bytes
    sink = 0
    start = time.perf_counter()
    for data in notifications:
        (flags,) = unpack_flags(data)
        sink ^= flags ^ from_bytes(data[2:], "little")
    elapsed = time.perf_counter() - start
    if sink == -1:  # keeps the loop's result alive; never true
        print(sink)
    return elapsed


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--runs", type=int, default=15, help="timed runs (after one warm-up)")
    parser.add_argument("--records", type=int, default=40_000, help="records per run")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    records = 5_000 if args.quick else args.records

    notifications, expected = build_mix(records)
    decode_run(notifications)  # warm-up: fills the per-flags layout cache
    floor_run(notifications)

    record_rates: list[float] = []
    notification_rates: list[float] = []
    us_per_record: list[float] = []
    floor_us_per_record: list[float] = []
    for _ in range(runs):
        seconds, completed = decode_run(notifications)
        if completed != expected:
            print(f"decoded {completed} records, expected {expected}", file=sys.stderr)
            return 1
        floor_seconds = floor_run(notifications)
        record_rates.append(completed / seconds)
        notification_rates.append(len(notifications) / seconds)
        us_per_record.append(seconds / completed * 1e6)
        floor_us_per_record.append(floor_seconds / completed * 1e6)

    floor = Summary.of(floor_us_per_record)
    mix = (
        f"{records} records / {len(notifications)} notifications per run: "
        f"{PLAIN_SHARE:.0%} plain, {STEPS_SHARE:.0%} bit-13 steps, {FULL_SHARE:.0%} full, "
        f"rest fragmented at MTU {DEFAULT_MTU}"
    )
    figures = [
        Figure(
            "codec",
            "Treadmill Data decode + reassembly",
            "records/s",
            Summary.of(record_rates),
            note=f"min is the slowest run; {mix}",
        ),
        Figure(
            "codec",
            "Treadmill Data decode + reassembly",
            "notifications/s",
            Summary.of(notification_rates),
        ),
        Figure(
            "codec",
            "Treadmill Data decode + reassembly, time per record",
            "us",
            Summary.of(us_per_record),
            floor_name="struct flags + int.from_bytes of the same bytes",
            floor_median=floor.median,
        ),
    ]
    emit(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
