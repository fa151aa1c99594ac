"""Whether a workout may start: every check a `start_profile` passes before anything changes.

A start is refused (`CommandRejectedError`, saying what to do) while the treadmill is not
connected, a workout runs, the profile is unknown, the body weight is out of range, the deck has
no speed range, the belt still moves, or an earlier stop is unconfirmed on a silent deck; and
when the safety limits conflict or leave nothing to walk. An admitted start carries the plan
and the limits it runs under.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from treadmilld.ble.api import ConnectionState, TreadmillLink
from treadmilld.engine.api import MAX_BODY_WEIGHT_KG, MIN_BODY_WEIGHT_KG, CommandRejectedError
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.library import ProfileLibrary, UnknownProfileError
from treadmilld.engine.limits import (
    EffectiveLimits,
    LimitConflictError,
    ProfileLimits,
    SafetyLimits,
    TreadmillRanges,
    effective_limits,
)
from treadmilld.engine.planner import WorkoutPlan, plan_workout
from treadmilld.engine.session_snapshot import incline_range_of, speed_range_of


def check_body_weight(weight: float) -> None:
    """Refuse a body weight the calorie model cannot use."""
    if not (math.isfinite(weight) and MIN_BODY_WEIGHT_KG <= weight <= MAX_BODY_WEIGHT_KG):
        raise CommandRejectedError(
            "invalid_argument",
            f"body weight must be {MIN_BODY_WEIGHT_KG:g}-{MAX_BODY_WEIGHT_KG:g} kg, got {weight}",
        )


@dataclass(frozen=True, slots=True)
class AdmittedStart:
    plan: WorkoutPlan
    limits: EffectiveLimits
    body_weight_kg: float
    clinical: bool


def admit_start(
    profile: str,
    *,
    body_weight_kg: float | None,
    clinical: bool,
    link: TreadmillLink,
    library: ProfileLibrary,
    limits: SafetyLimits,
    workout_running: bool,
    default_body_weight_kg: float,
    governor: SafetyGovernor,
    observer: BeltObserver,
    stop_pending: bool,
    rider_limits: ProfileLimits | None = None,
) -> AdmittedStart:
    """The start as it would run, or `CommandRejectedError` saying why not. Changes nothing."""
    caps = link.capabilities
    if link.connection_state is not ConnectionState.CONNECTED or caps is None:
        raise CommandRejectedError(
            "not_connected", "the treadmill is not connected; wait for it to connect"
        )
    if workout_running:
        raise CommandRejectedError(
            "workout_running", "a workout is running; stop it before starting another"
        )
    try:
        chosen = library.get(profile)
    except UnknownProfileError as error:
        raise CommandRejectedError("unknown_profile", str(error)) from None
    weight = default_body_weight_kg if body_weight_kg is None else body_weight_kg
    check_body_weight(weight)
    speed = speed_range_of(caps)
    if speed is None:
        raise CommandRejectedError(
            "not_supported",
            "this treadmill reports no supported speed range, so its speed cannot be "
            "controlled; profiles cannot run on it",
        )
    if governor.belt_moving or observer.shows_motion():
        # A belt still coasting (or started at the console) is not ours to take over; a
        # belt whose state is not known yet is fine: nothing moves before the governor has
        # measured it standing.
        raise CommandRejectedError(
            "belt_moving",
            "the belt is still moving; wait until it stands (stop it first if it was "
            "started at the console)",
        )
    if stop_pending and not observer.fresh():
        # A stop from before is not confirmed and the deck sends no data (gone silent, or
        # just reconnected): the belt was last told to stop and nothing shows it standing.
        # Accepting would silence that stop's retries (a new workout's generation) on a
        # deck that can only abort it again for no_data; refuse as for a moving belt, and
        # let the stop go on until the deck reports the belt standing (soak seed 300).
        raise CommandRejectedError(
            "belt_moving",
            "the last stop is not confirmed: the treadmill sends no data, so the belt may "
            "still be moving; pull the safety key if someone is on it, and start again "
            "once the treadmill reports the belt standing",
        )
    use_clinical = clinical or chosen.clinical
    incline = incline_range_of(caps)
    ranges = TreadmillRanges(
        speed=speed,
        # An all-zero range is how a deck without incline says so (Urevo E1L,
        # real-decks.md §1): nothing to control, so nothing is written.
        incline=incline if incline is not None and incline.maximum > incline.minimum else None,
    )
    try:
        effective = effective_limits(
            limits,
            clinical=use_clinical,
            profile=chosen.limits,
            treadmill=ranges,
            rider=rider_limits,
        )
    except LimitConflictError as error:
        raise CommandRejectedError("limit_exceeded", str(error)) from None
    plan = plan_workout(chosen, effective)
    if not plan.segments:
        # The limits cut every segment (e.g. a backward budget no longer than the shortest
        # backward bout, once ramps are fitted): there is nothing to walk.
        cuts = "; ".join(
            f"{a.origin}: {a.limit} {a.requested:g} -> {a.applied:g}" for a in plan.adjustments
        )
        raise CommandRejectedError(
            "limit_exceeded",
            f"under the safety limits profile {chosen.name!r} has nothing left to walk "
            f"({cuts}); raise max_backward_s or shorten min_backward_segment_s, or pick "
            "another profile",
        )
    if effective.hr_max_bpm is None and any(s.heart_rate_zone for s in plan.segments):
        # A zone in % of nobody's maximum heart rate cannot be held.
        raise CommandRejectedError(
            "invalid_argument",
            f"profile {chosen.name!r} holds heart-rate zones in % of the rider's maximum heart "
            "rate, and none is known; start it for a rider whose max heart rate is set",
        )
    return AdmittedStart(plan=plan, limits=effective, body_weight_kg=weight, clinical=use_clinical)
