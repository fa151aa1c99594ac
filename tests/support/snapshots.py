"""Snapshots for test doubles of `TreadmillController` (tests/app and tests/mqtt)."""

from __future__ import annotations

from treadmilld.engine.api import BeltState, Phase, SessionSnapshot


def idle_snapshot(
    treadmill_id: str, *, connection: str = "connected", phase: Phase = Phase.IDLE
) -> SessionSnapshot:
    """A connected treadmill with no workout: belt standing, nothing walked yet."""
    return SessionSnapshot(
        treadmill_id=treadmill_id,
        connection=connection,
        phase=phase,
        direction=None,
        profile=None,
        profile_title=None,
        segment_index=None,
        segment_count=None,
        segment_cue=None,
        segment_remaining_s=None,
        speed_kmh=0.0,
        target_speed_kmh=None,
        incline_pct=0.0,
        target_incline_pct=None,
        distance_m=0.0,
        distance_forward_m=0.0,
        distance_backward_m=0.0,
        elapsed_s=0.0,
        remaining_s=None,
        backward_s=0.0,
        calories_kcal=0.0,
        heart_rate_bpm=None,
        turn_countdown_s=None,
        abort_reason=None,
        body_weight_kg=70.0,
        clinical=False,
        belt=BeltState.STANDING,
        speed_range=None,
        incline_range=None,
    )
