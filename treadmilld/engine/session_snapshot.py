"""What a session shows: its `SessionSnapshot` and the treadmill's `DeviceInfo`, built from the
session's state, the link, the governor and the measured belt. Reads only; changes nothing."""

from __future__ import annotations

from treadmilld.ble.api import TreadmillCapabilities, TreadmillLink
from treadmilld.engine.api import DeviceInfo, Direction, Phase, Range, SessionSnapshot
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.heart_rate_control import zone_of
from treadmilld.engine.session_state import ACTIVE_PHASES, SessionState


def speed_range_of(caps: TreadmillCapabilities | None) -> Range | None:
    """The deck's Supported Speed Range, as it reported it."""
    if caps is None or caps.speed_range is None:
        return None
    speed = caps.speed_range
    return Range(
        minimum=speed.minimum_kmh, maximum=speed.maximum_kmh, increment=speed.increment_kmh
    )


def incline_range_of(caps: TreadmillCapabilities | None) -> Range | None:
    """The deck's Supported Inclination Range, as it reported it."""
    if caps is None or caps.inclination_range is None:
        return None
    incline = caps.inclination_range
    return Range(
        minimum=incline.minimum_pct, maximum=incline.maximum_pct, increment=incline.increment_pct
    )


def build_snapshot(
    state: SessionState,
    *,
    link: TreadmillLink,
    governor: SafetyGovernor,
    observer: BeltObserver,
) -> SessionSnapshot:
    phase = state.current_phase
    caps = link.capabilities
    data = link.telemetry.data
    executor = state.executor
    plan = state.plan
    active = phase in ACTIVE_PHASES and executor is not None
    segment = executor.segment if active and executor is not None else None
    direction: Direction | None = None
    if segment is not None:
        direction = Direction.REST if phase is not Phase.RUNNING else segment.direction
    # Targets are live only while the workout drives the belt: in a turn, a rest, a pause,
    # after any ending (and before the first Start) nothing does, even while the belt
    # still coasts down; a dashboard showing the last target then would be a lie.
    driving = phase is Phase.RUNNING and governor.belt_moving
    totals = state.totals
    heart = state.heart_rate_now()
    bpm = heart.bpm if heart is not None else None
    zone = executor.zone_bounds() if active and executor is not None else None
    limits = governor.limits
    return SessionSnapshot(
        treadmill_id=link.treadmill_id,
        connection=link.connection_state.value,
        phase=phase,
        direction=direction,
        profile=plan.profile if plan else None,
        profile_title=plan.title if plan else None,
        segment_index=executor.segment_index if active and executor else None,
        segment_count=len(plan.segments) if plan else None,
        segment_cue=segment.cue if segment else None,
        segment_remaining_s=executor.segment_remaining_s() if active and executor else None,
        speed_kmh=data.instantaneous_speed_kmh,
        target_speed_kmh=governor.target_speed_kmh if driving else None,
        incline_pct=data.inclination_pct,
        target_incline_pct=governor.target_incline_pct if driving else None,
        distance_m=totals.distance_m,
        distance_forward_m=totals.distance_forward_m,
        distance_backward_m=totals.distance_backward_m,
        elapsed_s=state.elapsed_s(),
        remaining_s=executor.remaining_s() if active and executor else None,
        backward_s=governor.backward_used_s() if plan else 0.0,
        calories_kcal=totals.calories_kcal,
        heart_rate_bpm=bpm,
        turn_countdown_s=executor.turn_countdown_s if active and executor else None,
        abort_reason=state.abort_reason if phase is Phase.ABORTED else None,
        # The weight in use: the workout's while one runs, else what the next start
        # that names none will use (a dashboard's body weight control shows this).
        body_weight_kg=(
            totals.body_weight_kg if phase in ACTIVE_PHASES else state.default_body_weight_kg
        ),
        clinical=state.clinical,
        belt=observer.state(),
        speed_range=speed_range_of(caps),
        incline_range=incline_range_of(caps),
        progress_pct=state.progress_pct(active=active),
        outcome=state.outcome,
        heart_rate_raw_bpm=state.heart_rate_raw_bpm(),
        heart_rate_source=heart.source.value if heart is not None else None,
        heart_rate_ceiling_bpm=limits.heart_rate_ceiling_bpm if limits is not None else None,
        heart_rate_zone=zone_of(bpm, zone.low_bpm, zone.high_bpm) if zone is not None else None,
        heart_rate_zone_low_bpm=zone.low_bpm if zone is not None else None,
        heart_rate_zone_high_bpm=zone.high_bpm if zone is not None else None,
    )


def device_info(link: TreadmillLink) -> DeviceInfo | None:
    caps = link.capabilities
    if caps is None:
        return None
    dis = caps.device_information
    return DeviceInfo(
        address=caps.address,
        name=caps.name,
        manufacturer=dis.manufacturer,
        model=dis.model,
        serial_number=dis.serial_number,
        hardware_revision=dis.hardware_revision,
        firmware_revision=dis.firmware_revision,
        software_revision=dis.software_revision,
    )
