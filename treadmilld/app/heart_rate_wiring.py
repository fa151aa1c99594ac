"""Heart-rate straps wired to the workout sessions: one `StrapSwitch` per treadmill, running
the link of the strap its workouts hear (the configured `heart_rate_strap`, or for one workout
the strap a start names: the rider's own), its readings handed to that treadmill's session.

The session takes them through `HeartRateSink` (`WorkoutSession.heart_rate_received`): a
reading as `(bpm, contact, at)`, and a lost strap as `(None, None, at)`, so the engine knows
the heart rate is gone rather than merely steady.

Simulated straps (`heart_rate_strap = { simulated = {...} }`) are switched on here, on the same
fleet as the simulated treadmills, worn by the rider of the treadmill they belong to. A rider's
strap on a simulated treadmill is looked for in the simulated world too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from treadmilld.app.settings import ConfigError, Settings, TreadmillSettings
from treadmilld.app.simulation import simulated_strap_config
from treadmilld.app.strap_switch import HeartRateSink, StrapSwitch
from treadmilld.ble.config import StrapLinkSettings, TargetSelector
from treadmilld.ble.strap import BleHeartRateStrap
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

Service = tuple[str, Callable[[], Awaitable[None]]]


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


@dataclass(frozen=True, slots=True)
class HeartRateWiring:
    """Each treadmill's strap switch (MQTT starts name a rider's strap through it) and the
    supervisor services that run them."""

    switches: dict[str, StrapSwitch]
    services: list[Service]


async def heart_rate_wiring(
    settings: Settings,
    *,
    clock: Clock,
    sessions: Mapping[str, object],
    fleet: Any = None,
    decks: Mapping[str, Any] | None = None,
) -> HeartRateWiring:
    """A strap switch for every treadmill in `sessions`, its readings handed to
    `sessions[treadmill id]`. Simulated straps are added to `fleet` (closed with it)."""
    decks = decks or {}
    link_settings = strap_link_settings(settings)
    switches: dict[str, StrapSwitch] = {}
    for index, treadmill in enumerate(settings.treadmills):
        if treadmill.id not in sessions:
            continue
        # The radio a rider's strap is looked for on: the simulated world's for a simulated
        # treadmill, the platform's (no backends given) for a real one.
        simulated_world = _fleet_radio(fleet) if treadmill.simulated is not None else {}
        configured, configured_world = await _configured_strap(index, treadmill, fleet, decks)

        def open_link(
            target: TargetSelector,
            worn_by_rider: bool,
            *,
            treadmill_id: str = treadmill.id,
            configured_world: dict[str, Any] = configured_world,
            simulated_world: dict[str, Any] = simulated_world,
        ) -> BleHeartRateStrap:
            backends = simulated_world if worn_by_rider else configured_world
            return BleHeartRateStrap(
                f"{treadmill_id}-hr", target, link_settings, clock=clock, **backends
            )

        switches[treadmill.id] = StrapSwitch(
            treadmill.id,
            configured=configured,
            open_link=open_link,
            session=sessions[treadmill.id],
        )
        if configured is not None:
            _log.info("strap_assembled", treadmill_id=treadmill.id, target=configured.describe())
    return HeartRateWiring(
        switches=switches,
        services=[(f"strap:{tid}", switch.run) for tid, switch in switches.items()],
    )


async def _configured_strap(
    index: int,
    treadmill: TreadmillSettings,
    fleet: Any,
    decks: Mapping[str, Any],
) -> tuple[TargetSelector | None, dict[str, Any]]:
    """The treadmill's configured strap (a simulated one added to `fleet` now) and the bleak
    backends its link uses (none: the platform's radio)."""
    strap_settings = treadmill.heart_rate_strap
    if strap_settings is None:
        return None, {}
    if strap_settings.simulated is None:
        return strap_settings.target(), {}
    if fleet is None:
        raise ConfigError(
            f"treadmill {treadmill.id!r}: a simulated heart_rate_strap needs the treadmill "
            "simulated too"
        )
    deck: Any = decks.get(treadmill.id)
    # A replayed deck has no model, so no rider for the strap to follow.
    deck_name = deck.name if getattr(deck, "model", None) is not None else None
    strap = await fleet.add_strap(simulated_strap_config(index, treadmill, deck_name))
    return TargetSelector(address=strap.address), _fleet_radio(fleet)


def _fleet_radio(fleet: Any) -> dict[str, Any]:
    """The bleak backends that reach the simulated fleet's devices (none without a fleet)."""
    if fleet is None:
        return {}
    return {"scanner_backend": fleet.scanner_backend, "client_backend": fleet.client_backend}


__all__ = [
    "HeartRateSink",
    "HeartRateWiring",
    "heart_rate_wiring",
    "simulated_strap_config",
    "strap_link_settings",
]
