"""The rider requests' payloads, `<base>/bridge/<instance>/request/<action>` (docs/mqtt.md,
"Riders"): riders, feedback, a therapist's confirm or decline, progress and history. The fields
and their checks are the rider service's own (treadmilld.riders.api); the envelope and the
parsing are treadmilld.mqtt.payload_parsing's.
"""

from __future__ import annotations

from treadmilld.mqtt.payload_parsing import EmptyRequest, Envelope
from treadmilld.riders.api import (
    RiderChanges,
    RiderFields,
    RiderId,
    Score,
    TherapistName,
    WorkoutId,
)


class RiderCreateRequest(RiderFields, Envelope):
    """`rider_create`: a new rider."""


class RiderUpdateRequest(RiderChanges, Envelope):
    """`rider_update`: the rider's id and only the fields to change."""

    rider_id: RiderId


class RiderIdRequest(Envelope):
    """`rider_get`, `rider_delete`, `rider_export`, `rider_progress`."""

    rider_id: RiderId


class FeedbackRequest(Envelope):
    """`feedback`: what the rider reports after a workout, each 0 to 10."""

    workout_id: WorkoutId
    effort: Score
    pain: Score


class ProgramConfirmRequest(Envelope):
    """`program_confirm`: a therapist confirms the advance a clinical program waits for;
    `program_decline` (the same fields): a therapist declines it. No reason is taken: the
    store keeps no free-text notes about a rider (docs/database.md)."""

    rider_id: RiderId
    therapist: TherapistName


class HistoryGetRequest(Envelope):
    """`history_get`: one workout's summary."""

    workout_id: WorkoutId


RIDER_REQUEST_MODELS: dict[str, type[Envelope]] = {
    "rider_create": RiderCreateRequest,
    "rider_update": RiderUpdateRequest,
    "rider_get": RiderIdRequest,
    "rider_list": EmptyRequest,
    "rider_delete": RiderIdRequest,
    "rider_export": RiderIdRequest,
    "rider_progress": RiderIdRequest,
    "feedback": FeedbackRequest,
    "program_confirm": ProgramConfirmRequest,
    "program_decline": ProgramConfirmRequest,
    "history_get": HistoryGetRequest,
}
