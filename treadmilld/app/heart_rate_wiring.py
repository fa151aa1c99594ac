"""Heart-rate straps wired to the workout sessions: one strap link per treadmill that has a
`heart_rate_strap`, its readings handed to that treadmill's session.

The session takes them through `HeartRateSink` (`WorkoutSession.heart_rate_received`): a
reading as `(bpm, contact, at)`, and a lost strap as `(None, None, at)`, so the engine knows
the heart rate is gone rather than merely steady. A session without that method yet gets
nothing; the strap still runs and its readings are logged at debug, and a warning says so once.

Simulated straps (`heart_rate_strap = { simulated = {...} }`) are switched on here, on the same
fleet as the simulated treadmills, worn by the rider of the treadmill they belong to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import structlog

from treadmilld.app.settings import ConfigError, Settings
from treadmilld.app.simulation import simulated_strap_config
from treadmilld.ble.config import StrapLinkSettings, TargetSelector
from treadmilld.ble.strap import BleHeartRateStrap
from treadmilld.ble.strap_api import HeartRateReceived, HeartRateStrap, StrapLost
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

Service = tuple[str, Callable[[], Awaitable[None]]]


@runtime_checkable
class HeartRateSink(Protocol):
    """What takes a treadmill's heart rate: the engine's `WorkoutSession`."""

    def heart_rate_received(self, bpm: int | None, contact: bool | None, at: float) -> None: ...


def strap_link_settings(settings: Settings) -> StrapLinkSettings:
    """The strap links' settings, with time-outs kept in wall time under a sped-up clock (as
    `assembly.real_time_tolerances` does for the treadmills)."""
    speedup = settings.clock_speedup
    shared = settings.strap_link
    if speedup == 1.0:
        return shared
    return shared.model_copy(
        update={
            "scan_timeout_s": shared.scan_timeout_s * speedup,
            "connect_timeout_s": shared.connect_timeout_s * speedup,
            "liveness_timeout_s": shared.liveness_timeout_s * speedup,
        }
    )


async def heart_rate_services(
    settings: Settings,
    *,
    clock: Clock,
    sessions: Mapping[str, object],
    fleet: Any = None,
    decks: Mapping[str, Any] | None = None,
) -> list[Service]:
    """One supervisor service per treadmill with a strap: the strap link running, its readings
    handed to `sessions[treadmill id]`. Simulated straps are added to `fleet` (closed with it)."""
    decks = decks or {}
    link_settings = strap_link_settings(settings)
    services: list[Service] = []
    for index, treadmill in enumerate(settings.treadmills):
        strap_settings = treadmill.heart_rate_strap
        if strap_settings is None:
            continue
        backends: dict[str, Any] = {}
        target = strap_settings.target() if strap_settings.simulated is None else None
        if strap_settings.simulated is not None:
            if fleet is None:
                raise ConfigError(
                    f"treadmill {treadmill.id!r}: a simulated heart_rate_strap needs the "
                    "treadmill simulated too"
                )
            deck: Any = decks.get(treadmill.id)
            # A replayed deck has no model, so no rider for the strap to follow.
            deck_name = deck.name if getattr(deck, "model", None) is not None else None
            config = simulated_strap_config(index, treadmill, deck_name)
            strap = await fleet.add_strap(config)
            target = TargetSelector(address=strap.address)
            backends = {
                "scanner_backend": fleet.scanner_backend,
                "client_backend": fleet.client_backend,
            }
        assert target is not None
        link = BleHeartRateStrap(
            f"{treadmill.id}-hr", target, link_settings, clock=clock, **backends
        )
        sink = sessions.get(treadmill.id)
        services.append((f"strap:{treadmill.id}", strap_service(link, sink)))
        _log.info("strap_assembled", treadmill_id=treadmill.id, target=target.describe())
    return services


def strap_service(strap: HeartRateStrap, sink: object) -> Callable[[], Awaitable[None]]:
    """Run `strap` and hand its readings to `sink` until cancelled."""

    async def run() -> None:
        events = strap.events()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(strap.run(), name=f"{strap.strap_id}-run")
                group.create_task(forward(strap.strap_id, events, sink))
        finally:
            await strap.close()

    return run


async def forward(strap_id: str, events: AsyncIterator[object], sink: object) -> None:
    """Each reading to `sink.heart_rate_received(bpm, contact, at)`; a lost strap as
    `(None, None, at)`. A sink that raises is logged and kept: a strap never stops a belt."""
    receiver = sink if isinstance(sink, HeartRateSink) else None
    if receiver is None:
        _log.warning(
            "heart_rate_unused",
            strap_id=strap_id,
            hint="this build's workout session takes no heart rate yet; readings are only "
            "logged (at debug)",
        )
    async for event in events:
        match event:
            case HeartRateReceived(bpm=bpm, contact=contact, at=at):
                reading: tuple[int | None, bool | None, float] = (bpm, contact, at)
            case StrapLost(at=at):
                reading = (None, None, at)
            case _:
                continue
        if receiver is None:
            _log.debug("heart_rate", strap_id=strap_id, bpm=reading[0], contact=reading[1])
            continue
        try:
            receiver.heart_rate_received(*reading)
        except Exception:  # noqa: BLE001 - a reading refused must not end the strap's service
            _log.exception("heart_rate_not_taken", strap_id=strap_id)
