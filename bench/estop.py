"""Emergency stop per deceleration class of the deck, timed from the MQTT publish.

The whole daemon (`run_daemon`) runs in this process in real time, with simulated treadmills in
three deceleration classes of the deck (`deceleration_kmh_per_s` 1.0, 0.5 and 0.25; see the deck
behaviours in docs/simulator.md), each walking a forward profile at 3.0 km/h. A bare MQTT
client publishes `<base>/<id>/request/emergency_stop` (QoS 1) once the belt runs steadily at
3.0 km/h, and times, from that publish:

1. the Stop request arriving at the deck's Control Point (the simulator's control listener);
2. the reply on `<base>/<id>/response/emergency_stop` (its `belt` values are counted);
3. measured standstill: the first Treadmill Data record with speed 0 that the deck sends after
   the Stop arrived. It is read on the simulator side: the model's `treadmill_data()`, which the
   GATT server calls for each Treadmill Data notification it sends, is wrapped per treadmill;
4. the daemon's `stop_confirmed` event on `<base>/<id>/event`.

Floors, measured in the same run: a bare MQTT publish -> receive hop and a bare MQTT round trip
(request -> echo client -> reply) through the same broker, a bare GATT Control Point write ->
arrival / -> indication on the same simulator; and for standstill the physical floor, the belt
speed at the publish divided by the deck's deceleration, which no daemon can beat.

One emergency stop is in flight at a time (its publish -> reply window holds a lock that start
commands also take), so the millisecond figures do not queue behind each other; other
treadmills keep sending Treadmill Data and starting meanwhile. A stop cycle (start, ramp to
3.0 km/h, stop, standstill confirmed) takes about 11 s at 1.0 km/h/s and 20 s at 0.25, so the
slower classes get more treadmills, and each treadmill starts a new cycle only while it fits in
`--seconds`: about 20 stops per class in the default 65 s (5 per treadmill at 1.0 km/h/s, 3
at 0.25; n < 100, so p99 is the maximum).

    uv run python bench/estop.py [--seconds S] [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
from _broker import NODELAY, BrokerUnavailableError, mosquitto
from _floors import gatt_write_ms, mqtt_hop_ms, mqtt_round_trip_ms
from _mqtt_contract import BASE_TOPIC, emergency_stop_command, start_command
from _stats import (
    Figure,
    PartMissingError,
    Summary,
    argument_parser,
    emit,
    fmt,
    not_available,
    quiet_logs,
)

if TYPE_CHECKING:
    from treadmilld_sim import SimulatedTreadmill

REQUIRED = (
    "treadmilld_sim",
    "treadmilld.app.run",
    "treadmilld.engine.session",
    "treadmilld.mqtt.bridge",
)

# Modest belt speed, so the slowest class stops in 12 s of real time.
BELT_KMH = 3.0
# (deceleration km/h/s, treadmills): slower decks take longer per stop, so they get more
# treadmills to collect a similar number of stops in the same wall time.
DECK_CLASSES: tuple[tuple[float, int], ...] = ((1.0, 4), (0.5, 5), (0.25, 7))
# A stop cycle besides the deceleration itself: the start (restart speed 1.0 km/h first, then
# the governor's 0.5 km/h/s ramp to 3.0 km/h: about 6 s), the random wait, the confirmation of
# standstill. Only used to decide whether another cycle fits in the window; the measured
# duration of a treadmill's own cycles replaces it when longer.
CYCLE_OVERHEAD_S = 8.0
PROFILE = "bench-estop"
PROFILE_TOML = f"""
name = "{PROFILE}"
title = "Bench: forward walk at {BELT_KMH} km/h"
description = "Benchmark profile: one steady forward segment, stopped by emergency stops."
suits = "benchmarks only"
sources = ["bench/estop.py"]
clinical = false

[[segments]]
direction = "forward"
duration_s = 3600
speed_kmh = {BELT_KMH}
"""


@dataclass(frozen=True, slots=True)
class StopTiming:
    """One emergency stop, every time from the publish (perf_counter), and the physics."""

    to_arrival_ms: float
    to_reply_ms: float
    reply_belt: str
    to_zero_record_s: float
    to_confirmed_s: float | None  # None: no stop_confirmed (a stop_unconfirmed or nothing)
    physical_s: float  # belt speed at the publish / deceleration
    zero_lag_s: float  # first zero record - physical standstill (arrival + speed / decel)
    event_after_s: float | None  # the event's own after_s (first Stop write -> standing)


@dataclass
class Inbox:
    """What the operator received for one treadmill: replies as `response/<action>`, events as
    `event/<type>`, each with its arrival time; nothing is dropped while waiting for another."""

    messages: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, received: float, kind: str, payload: dict[str, Any]) -> None:
        self.messages.append((received, kind, payload))
        self._arrived.set()

    def clear(self) -> None:
        self.messages.clear()

    async def take(self, kinds: set[str], timeout_s: float) -> tuple[float, str, dict[str, Any]]:
        """The oldest message of one of `kinds` (removed); waits up to `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while True:
                for index, (received, kind, payload) in enumerate(self.messages):
                    if kind in kinds:
                        del self.messages[index]
                        return received, kind, payload
                self._arrived.clear()
                await self._arrived.wait()


@dataclass
class Deck:
    """One simulated treadmill in the benchmark and what its listeners saw."""

    treadmill_id: str
    deceleration: float
    sim: SimulatedTreadmill
    inbox: Inbox = field(default_factory=Inbox)
    # Armed for one emergency stop: the Stop's arrival, then the first zero record after it.
    armed: bool = False
    stop_arrival: asyncio.Future[tuple[float, float]] | None = None
    zero_record: asyncio.Future[float] | None = None
    timings: list[StopTiming] = field(default_factory=list)
    missed: Counter[str] = field(default_factory=Counter)

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.stop_arrival = loop.create_future()
        self.zero_record = loop.create_future()
        self.armed = True

    def on_request(self, request: object, _at: float) -> None:
        from treadmilld.ftms import StopOrPause

        arrival = self.stop_arrival
        if self.armed and isinstance(request, StopOrPause) and arrival and not arrival.done():
            # Called before the deck applies the request: the belt's speed at the Stop.
            arrival.set_result((time.perf_counter(), self.sim.model.belt_speed_kmh))

    def on_record(self, speed_kmh: float | None) -> None:
        arrival, zero = self.stop_arrival, self.zero_record
        if (
            self.armed
            and arrival is not None
            and arrival.done()
            and zero is not None
            and not zero.done()
            and speed_kmh == 0.0
        ):
            zero.set_result(time.perf_counter())


def watch_treadmill_data(deck: Deck) -> None:
    """Hear every Treadmill Data record the deck sends: the GATT server builds each one with
    `model.treadmill_data()` right before notifying it (the simulator has no public listener
    for Treadmill Data, so the model's method is wrapped on this one instance)."""
    model = deck.sim.model
    build = model.treadmill_data

    def built_and_heard() -> Any:
        record = build()
        deck.on_record(record.instantaneous_speed_kmh)
        return record

    setattr(model, "treadmill_data", built_and_heard)  # noqa: B010 - an instance attribute


async def measure(seconds: float, floor_n: int, seed: int) -> tuple[list[Figure], str | None]:
    figures: list[Figure] = []
    with mosquitto() as broker:
        hop = Summary.of(await mqtt_hop_ms(broker.host, broker.port, floor_n))
        figures.append(
            Figure("estop", "floor: bare MQTT publish -> receive (QoS 1, mosquitto)", "ms", hop)
        )
        round_trip = Summary.of(await mqtt_round_trip_ms(broker.host, broker.port, floor_n))
        figures.append(
            Figure(
                "estop",
                "floor: bare MQTT round trip, request -> echo client's reply (QoS 1, mosquitto)",
                "ms",
                round_trip,
            )
        )
        try:
            figures.extend(await _gatt_floor(floor_n))
            decks = await _estop(broker.host, broker.port, seconds, random.Random(seed))
        except PartMissingError as exc:
            return figures, str(exc)
        figures.extend(_figures(decks, figures))
    return figures, None


async def _gatt_floor(n: int) -> list[Figure]:
    if importlib.util.find_spec("treadmilld_sim") is None:
        raise PartMissingError("treadmilld_sim is not importable: no GATT floor")
    floor = await gatt_write_ms(n)
    return [
        Figure(
            "estop",
            "floor: bare GATT Control Point write -> arrival at the simulator",
            "ms",
            Summary.of(floor.write_to_arrival_ms),
        ),
        Figure(
            "estop",
            "floor: bare GATT Control Point write -> indication back",
            "ms",
            Summary.of(floor.write_to_indication_ms),
        ),
    ]


async def _estop(host: str, port: int, seconds: float, rng: random.Random) -> list[Deck]:
    """The whole daemon in this process, the simulated treadmills of every class, a bare
    client; returns each treadmill with its timed stops."""
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            raise PartMissingError(f"{module} is not importable: no emergency-stop figure")
    from treadmilld.app.assembly import Assembly
    from treadmilld.app.run import run_daemon
    from treadmilld.app.settings import Settings, TreadmillSettings
    from treadmilld.app.supervisor import Supervisor
    from treadmilld.mqtt.config import MqttSettings

    decelerations = [d for d, count in DECK_CLASSES for _ in range(count)]
    ids = [(f"bench{i:02d}", d) for i, d in enumerate(decelerations, start=1)]
    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-estop-") as tmp:
        profiles_dir = Path(tmp)
        (profiles_dir / f"{PROFILE}.toml").write_text(PROFILE_TOML, encoding="utf-8")
        settings = Settings(
            treadmills=[
                TreadmillSettings(
                    id=tid,
                    simulated={
                        "name": f"SIM-ESTOP-{tid[-2:]}",
                        "deceleration_kmh_per_s": deceleration,
                    },
                )
                for tid, deceleration in ids
            ],
            mqtt=MqttSettings(
                host=host,
                port=port,
                instance="bench-estop",
                client_id="treadmilld-bench-estop",
                ha_discovery=False,
            ),
            profiles_dir=profiles_dir,
        )
        assembled: asyncio.Future[tuple[Assembly, Supervisor]] = (
            asyncio.get_running_loop().create_future()
        )

        def on_assembled(assembly: Assembly, supervisor: Supervisor) -> None:
            assembled.set_result((assembly, supervisor))

        daemon = asyncio.create_task(run_daemon(settings, on_assembled=on_assembled))
        try:
            assembly, supervisor = await asyncio.wait_for(asyncio.shield(assembled), timeout=30)
            decks: list[Deck] = []
            for tid, deceleration in ids:
                sim = assembly.simulated(tid)
                if sim is None:
                    raise RuntimeError(f"the daemon did not build the simulated treadmill {tid}")
                deck = Deck(tid, deceleration, sim)
                sim.add_control_listener(deck.on_request)
                watch_treadmill_data(deck)
                decks.append(deck)
            await _operate(host, port, decks, seconds, rng)
            supervisor.request_stop("benchmark done")
            await asyncio.wait_for(daemon, timeout=30)
        finally:
            if not daemon.done():
                daemon.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await daemon
    return decks


async def _operate(
    host: str, port: int, decks: list[Deck], seconds: float, rng: random.Random
) -> None:
    by_id = {deck.treadmill_id: deck for deck in decks}
    async with aiomqtt.Client(
        host, port, identifier="bench-estop-operator", socket_options=NODELAY
    ) as operator:
        await operator.subscribe(f"{BASE_TOPIC}/bridge/bench-estop/state", qos=1)
        await operator.subscribe(f"{BASE_TOPIC}/+/response/#", qos=1)
        await operator.subscribe(f"{BASE_TOPIC}/+/event", qos=1)
        online = asyncio.get_running_loop().create_future()

        async def dispatch() -> None:
            async for message in operator.messages:
                received = time.perf_counter()
                levels = str(message.topic).split("/")
                if levels[1:] == ["bridge", "bench-estop", "state"]:
                    if _text(message) == "online" and not online.done():
                        online.set_result(None)
                    continue
                deck = by_id.get(levels[1])
                if deck is None:
                    continue
                payload = json.loads(_text(message))
                if levels[2] == "response":
                    deck.inbox.put(received, f"response/{levels[3]}", payload)
                elif levels[2] == "event":
                    deck.inbox.put(received, f"event/{payload.get('type')}", payload)

        dispatcher = asyncio.create_task(dispatch())
        try:
            # The bridge's retained `online` means its command subscriptions are in place.
            await asyncio.wait_for(online, timeout=30)
            lock = asyncio.Lock()
            deadline = time.perf_counter() + seconds
            async with asyncio.TaskGroup() as group:
                for deck in decks:
                    seed = rng.random()
                    group.create_task(_cycles(operator, deck, lock, deadline, random.Random(seed)))
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher


async def _cycles(
    operator: aiomqtt.Client,
    deck: Deck,
    lock: asyncio.Lock,
    deadline: float,
    rng: random.Random,
) -> None:
    """Start, walk at BELT_KMH, emergency stop, wait for standstill; while cycles fit."""
    expected_s = CYCLE_OVERHEAD_S + BELT_KMH / deck.deceleration
    transaction = 0
    while True:
        began = time.perf_counter()
        await _start(operator, deck, lock)
        await _steady(deck)
        # The belt reaches its speed in step with the deck's data (the start gate waits for a
        # record showing motion): a random wait of up to one data period decorrelates the stop
        # from the 1 Hz records, as a real stop would be.
        await asyncio.sleep(rng.uniform(0.0, 1.0 / deck.sim.config.data_rate_hz))
        transaction += 1
        await _stop_once(operator, deck, lock, transaction)
        expected_s = max(expected_s, time.perf_counter() - began)
        if time.perf_counter() + expected_s > deadline:
            return


async def _start(operator: aiomqtt.Client, deck: Deck, lock: asyncio.Lock) -> None:
    """Start the profile; retried while the daemon refuses (not connected yet, belt moving)."""
    topic, body = start_command(deck.treadmill_id, PROFILE)
    async with asyncio.timeout(60):
        while True:
            deck.inbox.clear()
            async with lock:
                await operator.publish(topic, body, qos=1)
                _at, _kind, reply = await deck.inbox.take({"response/start"}, timeout_s=10)
            if reply.get("status") == "ok":
                return
            await asyncio.sleep(0.3)


async def _steady(deck: Deck) -> None:
    """Until the deck's belt runs at BELT_KMH (the simulator's own model)."""
    model = deck.sim.model
    async with asyncio.timeout(30):
        # The model is lazy (closed-form physics, read on demand): nothing signals, so poll it.
        while abs(model.belt_speed_kmh - BELT_KMH) > 1e-6 or model.target_speed_kmh != BELT_KMH:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _stop_once(
    operator: aiomqtt.Client, deck: Deck, lock: asyncio.Lock, transaction: int
) -> None:
    topic, body = emergency_stop_command(deck.treadmill_id, transaction)
    async with lock:
        deck.inbox.clear()
        deck.arm()
        assert deck.stop_arrival is not None
        assert deck.zero_record is not None
        speed = deck.sim.model.belt_speed_kmh
        started = time.perf_counter()
        await operator.publish(topic, body, qos=1)
        try:
            arrived_at, arrival_speed = await asyncio.wait_for(deck.stop_arrival, timeout=10)
            replied_at, _kind, reply = await deck.inbox.take(
                {"response/emergency_stop"}, timeout_s=10
            )
        except TimeoutError:
            raise RuntimeError(
                f"{deck.treadmill_id}: no Stop at the deck or no reply within 10 s of an"
                " emergency stop; the daemon's emergency stop is broken"
            ) from None
    physical_s = speed / deck.deceleration
    try:
        zero_at = await asyncio.wait_for(deck.zero_record, timeout=physical_s + 10)
    except TimeoutError:
        deck.missed["no zero record"] += 1
        deck.armed = False
        return
    deck.armed = False
    try:
        confirmed_at, kind, event = await deck.inbox.take(
            {"event/stop_confirmed", "event/stop_unconfirmed"}, timeout_s=physical_s + 15
        )
    except TimeoutError:
        confirmed_at, kind, event = None, "no stop event", {}
    confirmed = kind == "event/stop_confirmed"
    if not confirmed:
        deck.missed[kind] += 1
    deck.timings.append(
        StopTiming(
            to_arrival_ms=(arrived_at - started) * 1000.0,
            to_reply_ms=(replied_at - started) * 1000.0,
            reply_belt=str(reply.get("belt")),
            to_zero_record_s=zero_at - started,
            to_confirmed_s=(confirmed_at - started) if confirmed and confirmed_at else None,
            physical_s=physical_s,
            zero_lag_s=zero_at - (arrived_at + arrival_speed / deck.deceleration),
            event_after_s=float(event["after_s"]) if confirmed else None,
        )
    )
    if not confirmed:
        # Let an unconfirmed stop settle before the next start.
        await asyncio.sleep(2.0)


def _text(message: aiomqtt.Message) -> str:
    payload = message.payload
    return payload.decode() if isinstance(payload, bytes | bytearray) else str(payload)


def _figures(decks: list[Deck], floors: list[Figure]) -> list[Figure]:
    def floor_median(word: str) -> float:
        return next(f for f in floors if word in f.name).summary.median

    to_deck_floor = floor_median("publish -> receive") + floor_median("arrival")
    reply_floor = floor_median("round trip") + floor_median("indication")
    figures: list[Figure] = []
    for deceleration, count in DECK_CLASSES:
        ours = [d for d in decks if d.deceleration == deceleration]
        timings = [t for d in ours for t in d.timings]
        missed = sum((d.missed for d in ours), Counter[str]())
        if not timings:
            raise RuntimeError(f"no emergency stop timed on the {deceleration} km/h/s decks")
        deck_class = f"deck {deceleration:g} km/h/s"
        per_run = f"{count} treadmills in this class; n < 100, so p99 is the maximum"
        belts = Counter(t.reply_belt for t in timings)
        physical = statistics.median(t.physical_s for t in timings)
        confirmed = [t for t in timings if t.to_confirmed_s is not None]
        figures.append(
            Figure(
                "estop",
                f"MQTT emergency stop -> Stop at the deck's Control Point, {deck_class}",
                "ms",
                Summary.of([t.to_arrival_ms for t in timings]),
                floor_name="MQTT hop + GATT write->arrival",
                floor_median=to_deck_floor,
                note=f"belt steady at {BELT_KMH:g} km/h; {per_run}",
            )
        )
        figures.append(
            Figure(
                "estop",
                f"MQTT emergency stop -> MQTT reply, {deck_class}",
                "ms",
                Summary.of([t.to_reply_ms for t in timings]),
                floor_name="MQTT round trip + GATT write->indication",
                floor_median=reply_floor,
                note="reply belt: " + ", ".join(f"{belt} {n}" for belt, n in sorted(belts.items())),
                extra={f"belt_{belt}": float(n) for belt, n in belts.items()},
            )
        )
        lags = [t.zero_lag_s for t in timings]
        data_hz = ours[0].sim.config.data_rate_hz
        figures.append(
            Figure(
                "estop",
                f"MQTT emergency stop -> measured standstill (first Treadmill Data at 0), "
                f"{deck_class}",
                "s",
                Summary.of([t.to_zero_record_s for t in timings]),
                floor_name=f"physical: {BELT_KMH:g} km/h / {deceleration:g} km/h/s",
                floor_median=physical,
                note=(
                    f"record read on the simulator as it is sent; data at {data_hz:g} Hz, so it"
                    f" comes after the belt stops by median {fmt(statistics.median(lags))} s,"
                    f" max {fmt(max(lags))} s" + (f"; missed: {dict(missed)}" if missed else "")
                ),
            )
        )
        if confirmed:
            after = [t.event_after_s for t in confirmed if t.event_after_s is not None]
            figures.append(
                Figure(
                    "estop",
                    f"MQTT emergency stop -> `stop_confirmed` on `<id>/event`, {deck_class}",
                    "s",
                    Summary.of([t.to_confirmed_s for t in confirmed if t.to_confirmed_s]),
                    floor_name=f"physical: {BELT_KMH:g} km/h / {deceleration:g} km/h/s",
                    floor_median=physical,
                    note=(
                        "standing = records at or below 0.05 km/h for 1 s, at least two"
                        " (engine/belt.py);"
                        f" the event's own after_s median {fmt(statistics.median(after))} s"
                        + (
                            f"; {len(timings) - len(confirmed)} stops without it"
                            if len(confirmed) < len(timings)
                            else ""
                        )
                    ),
                )
            )
    return figures


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument(
        "--seconds",
        type=float,
        default=65.0,
        help="wall time of the stop cycles; a treadmill starts no cycle that would not fit",
    )
    parser.add_argument("--seed", type=int, default=11, help="seed of the random stop phases")
    args = parser.parse_args()
    quiet_logs()
    seconds = 10.0 if args.quick else args.seconds
    floor_n = 100 if args.quick else 500
    try:
        figures, missing = asyncio.run(measure(seconds, floor_n, args.seed))
    except BrokerUnavailableError as exc:
        return not_available(str(exc))
    emit(figures, as_json=args.json)
    if missing is not None:
        return not_available(missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
