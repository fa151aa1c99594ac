"""A rider's personal limits against the configured ones, and what a start adds to them.

Personal limits only tighten: `looser_than_configured` finds one that would loosen a
configured limit (refused when a rider is written), and a start adds the program's incline cap
and the rider's maximum heart rate (`with_incline_cap`, `with_heart_rate_max`).
"""

from __future__ import annotations

from treadmilld.engine.limits import LimitSet, ProfileLimits, SafetyLimits


def _configured(limits: SafetyLimits, clinical: bool) -> list[tuple[str, LimitSet]]:
    sets = [("limits.general", limits.general)]
    if clinical:
        sets.append(("limits.clinical", limits.clinical))
    return sets


def _backward_speed(limit_set: LimitSet) -> float:
    if limit_set.backward_jog_unlocked:
        return limit_set.max_backward_jog_speed_kmh
    return limit_set.max_backward_speed_kmh


def looser_than_configured(
    personal: ProfileLimits, limits: SafetyLimits, *, clinical: bool
) -> str | None:
    """The first personal limit looser than a configured one that applies to this rider (the
    general set, and the clinical set for a clinical rider), worded for the reply; None when
    every personal limit is as strict or stricter. The engine would take the stricter anyway
    (`effective_limits`), so a looser value could only mislead whoever set it: refused."""
    for where, limit_set in _configured(limits, clinical=clinical):
        caps: dict[str, float] = {
            "max_forward_speed_kmh": limit_set.max_forward_speed_kmh,
            "max_backward_speed_kmh": _backward_speed(limit_set),
            "max_forward_incline_pct": limit_set.max_forward_incline_pct,
            "max_backward_incline_pct": limit_set.max_backward_incline_pct,
            "ramp_rate_kmh_per_s": limit_set.ramp_rate_kmh_per_s,
            "max_backward_s": limit_set.max_backward_s,
        }
        for name, cap in caps.items():
            value = getattr(personal, name)
            if value is not None and value > cap:
                return (
                    f"limits.{name} {value:g} is looser than the configured {where}.{name} "
                    f"{cap:g}; give {cap:g} or less (personal limits only tighten)"
                )
        # The turn pause is a floor: a shorter one is looser.
        if personal.turn_pause_s is not None and personal.turn_pause_s < limit_set.turn_pause_s:
            return (
                f"limits.turn_pause_s {personal.turn_pause_s:g} is shorter than the configured "
                f"{where}.turn_pause_s {limit_set.turn_pause_s:g}; give "
                f"{limit_set.turn_pause_s:g} or more (personal limits only tighten)"
            )
        if personal.confirm_turns is False and limit_set.confirm_turns:
            return (
                f"limits.confirm_turns false is looser than the configured "
                f"{where}.confirm_turns true; leave it out or set it true"
            )
    return None


def with_incline_cap(limits: ProfileLimits | None, cap: float | None) -> ProfileLimits | None:
    """The personal limits with a program's incline cap for this session (0 in a clinical
    program's first sessions) on both ways; the stricter value wins."""
    if cap is None:
        return limits
    base = limits or ProfileLimits()

    def stricter(value: float | None) -> float:
        return cap if value is None else min(value, cap)

    return base.model_copy(
        update={
            "max_forward_incline_pct": stricter(base.max_forward_incline_pct),
            "max_backward_incline_pct": stricter(base.max_backward_incline_pct),
        }
    )


def with_heart_rate_max(
    limits: ProfileLimits | None, hr_max_bpm: int | None
) -> ProfileLimits | None:
    """The personal limits with the rider's maximum heart rate: every % heart-rate ceiling and
    zone of the workout is a share of it (the governor's heart-rate limits)."""
    if hr_max_bpm is None:
        return limits
    return (limits or ProfileLimits()).model_copy(update={"hr_max_bpm": hr_max_bpm})
