"""Safety limits as configured: the hard caps, the general and clinical sets, a profile's (or a
rider's) own limits.

Default values are design choices, informed by backward-walking studies where there are any
(docs/safety.md lists each with its source). They are engineering proposals pending clinician
review. `treadmilld.engine.limits` combines these sets with the treadmill's ranges into the
effective set one workout runs under, and re-exports the names other modules import.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Hard caps no configuration may exceed (design choices; docs/safety.md gives their sources).
HARD_CAP_BACKWARD_WALK_KMH = 6.0  # at the walk-run transition, 5.9 km/h (Hreljac et al. 2005)
HARD_CAP_BACKWARD_JOG_KMH = 8.0  # no trial-based backward jogging programme was found
HARD_CAP_BACKWARD_INCLINE_PCT = 15.0  # studies used 5 to 10 % (Hooper et al. 2004)
HARD_CAP_BACKWARD_S = 30 * 60.0  # the longest dose in the trials (Michaelsen et al. 2014)
# The belt restarts at no more than 1.0 km/h after any pause (design choice: about the slowest
# speed decks hold, the Urevo E1L's 0.96 km/h minimum in the blak3r/treadspan captures).
HARD_CAP_RESTART_KMH = 1.0
# A turn pause under 10 s is never allowed (design choice: no study measures turning time).
MIN_TURN_PAUSE_S = 10.0
# Perturbation training provokes falls with 10.8 km/h per s (BMC Geriatrics 2020); routine
# ramps must be more than 20x gentler, so anything above 0.5 km/h per s is refused.
HARD_CAP_RAMP_KMH_PER_S = 0.5
# Heart-rate ceilings as a share of the person's maximum heart rate (HRmax). ACSM's position
# stand (Garber et al. 2011, Med Sci Sports Exerc 43:1334, Table 4) grades intensity by %HRmax:
# moderate 64-76 %, vigorous 77-95 %, near-maximal from 96 %. The general ceiling, 90 %, lies in
# the vigorous band, short of near-maximal [D]; the clinical one, 76 %, is the top of the
# moderate band [D]. A ceiling above 95 % (near-maximal) is refused.
HARD_CAP_HEART_RATE_PCT = 95.0


# The bounds of a person's maximum heart rate (HRmax) anywhere treadmilld takes one (a rider's,
# the limits'): the one place they are written. [D] design choice: 100 bpm is below any adult's
# age-predicted HRmax (Tanaka et al. 2001: 208 - 0.7 x age, 145 at 90 years) and leaves room for
# beta-blocked patients; 230 is above any measured adult HRmax.
MIN_HR_MAX_BPM = 100
MAX_HR_MAX_BPM = 230


class LimitSet(BaseModel):
    """One set of limits. Values may be made stricter than the defaults, never looser than the
    hard caps above."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # [D] design choice: 8 km/h keeps forward walking at walking pace.
    max_forward_speed_kmh: float = Field(default=8.0, gt=0, le=20.0)
    max_backward_speed_kmh: float = Field(default=5.0, gt=0, le=HARD_CAP_BACKWARD_WALK_KMH)
    backward_jog_unlocked: bool = False
    max_backward_jog_speed_kmh: float = Field(default=7.0, gt=0, le=HARD_CAP_BACKWARD_JOG_KMH)
    # [D] design choice: 15 % matches the backward incline's hard cap.
    max_forward_incline_pct: float = Field(default=15.0, ge=0, le=40.0)
    max_backward_incline_pct: float = Field(default=10.0, ge=0, le=HARD_CAP_BACKWARD_INCLINE_PCT)
    max_turn_incline_pct: float = Field(default=5.0, ge=0, le=5.0)
    ramp_rate_kmh_per_s: float = Field(default=0.5, gt=0, le=HARD_CAP_RAMP_KMH_PER_S)
    turn_pause_s: float = Field(default=10.0, ge=MIN_TURN_PAUSE_S, le=600.0)
    confirm_turns: bool = False
    restart_speed_kmh: float = Field(default=HARD_CAP_RESTART_KMH, gt=0, le=HARD_CAP_RESTART_KMH)
    max_backward_s: float = Field(default=HARD_CAP_BACKWARD_S, gt=0, le=HARD_CAP_BACKWARD_S)
    min_backward_segment_s: float = Field(default=10.0, ge=10.0, le=600.0)
    # Incline changes only during steady walking this long after a speed change.
    steady_before_incline_s: float = Field(default=5.0, ge=0, le=60.0)
    # Three missed records at FTMS's typical 1 Hz (FTMS §4.4.1); the KingSmith app also gives
    # up after 3 s without data (walkingpad-controller docs §2.5).
    telemetry_timeout_s: float = Field(default=3.0, gt=0, le=30.0)
    # Heart-rate ceiling (the hard one: above it the workout pauses), as % of the person's
    # HRmax (when it is known: a rider's) and in bpm (for everyone, when set).
    max_heart_rate_pct: float = Field(default=90.0, gt=0, le=HARD_CAP_HEART_RATE_PCT)
    max_heart_rate_bpm: int | None = Field(default=None, ge=60, le=230)
    # [D] The soft ceiling lies this far below the hard one: above it the governor lowers the
    # incline, then the speed, so the heart rate can settle before the hard ceiling pauses.
    heart_rate_soft_margin_bpm: float = Field(default=10.0, ge=0, le=40.0)
    # Pause a workout when no valid heart rate arrived for `heart_rate_missing_s`.
    heart_rate_required: bool = False
    # [D] three times the 5 s a reading stays fresh: a strap re-seating itself is not a stop.
    heart_rate_missing_s: float = Field(default=15.0, ge=5.0, le=120.0)

    @model_validator(mode="after")
    def _jog_above_walk(self) -> LimitSet:
        if self.backward_jog_unlocked and self.max_backward_jog_speed_kmh < (
            self.max_backward_speed_kmh
        ):
            raise ValueError(
                "max_backward_jog_speed_kmh is below max_backward_speed_kmh; raise the jog "
                "limit or leave backward_jog_unlocked false"
            )
        return self


def _clinical_defaults() -> LimitSet:
    return LimitSet(
        max_forward_speed_kmh=4.0,  # [D] design choice: clinical users walk slowly
        max_backward_speed_kmh=2.5,
        backward_jog_unlocked=False,
        max_backward_incline_pct=5.0,
        ramp_rate_kmh_per_s=0.2,
        turn_pause_s=20.0,
        confirm_turns=True,
        min_backward_segment_s=30.0,
        max_heart_rate_pct=76.0,
    )


class SafetyLimits(BaseModel):
    """Global limits: `general` always applies; `clinical` applies on top in clinical mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    general: LimitSet = Field(default_factory=LimitSet)
    clinical: LimitSet = Field(default_factory=_clinical_defaults)

    @model_validator(mode="after")
    def _no_clinical_jog(self) -> SafetyLimits:
        if self.clinical.backward_jog_unlocked:
            raise ValueError(
                "clinical.backward_jog_unlocked must be false: backward jogging is not allowed "
                "in clinical mode (docs/safety.md, the limits table); set it to false"
            )
        return self


class ProfileLimits(BaseModel):
    """Limits a profile (or a rider: their personal limits) asks for; they can only tighten the
    global ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_forward_speed_kmh: float | None = Field(default=None, gt=0)
    max_backward_speed_kmh: float | None = Field(default=None, gt=0)
    max_forward_incline_pct: float | None = Field(default=None, ge=0)
    max_backward_incline_pct: float | None = Field(default=None, ge=0)
    ramp_rate_kmh_per_s: float | None = Field(default=None, gt=0)
    turn_pause_s: float | None = Field(default=None, gt=0)
    confirm_turns: bool | None = None
    max_backward_s: float | None = Field(default=None, gt=0)
    # The person's maximum heart rate (HRmax): a rider's, measured or estimated by their
    # clinician. Every % ceiling and heart-rate zone is a share of it.
    hr_max_bpm: int | None = Field(default=None, ge=MIN_HR_MAX_BPM, le=MAX_HR_MAX_BPM)
    max_heart_rate_pct: float | None = Field(default=None, gt=0, le=HARD_CAP_HEART_RATE_PCT)
    max_heart_rate_bpm: int | None = Field(default=None, ge=60, le=230)
    heart_rate_required: bool | None = None
