"""Fitness Machine Control Point (0x2AD9): requests a treadmill uses, and response indications.

FTMS v1.0.1 §4.16. Requests are written by the client (the daemon encodes, the simulator
decodes); the machine answers each with an indication `80 <request opcode> <result>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from treadmilld.ftms._layout import Field, Layout
from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes, require_type

_CHARACTERISTIC = "Control Point (0x2AD9)"


class ControlOpcode(IntEnum):
    """Every Control Point opcode of FTMS v1.0.1 Table 4.15."""

    REQUEST_CONTROL = 0x00
    RESET = 0x01
    SET_TARGET_SPEED = 0x02
    SET_TARGET_INCLINATION = 0x03
    SET_TARGET_RESISTANCE_LEVEL = 0x04
    SET_TARGET_POWER = 0x05
    SET_TARGET_HEART_RATE = 0x06
    START_OR_RESUME = 0x07
    STOP_OR_PAUSE = 0x08
    SET_TARGETED_EXPENDED_ENERGY = 0x09
    SET_TARGETED_NUMBER_OF_STEPS = 0x0A
    SET_TARGETED_NUMBER_OF_STRIDES = 0x0B
    SET_TARGETED_DISTANCE = 0x0C
    SET_TARGETED_TRAINING_TIME = 0x0D
    SET_TARGETED_TIME_IN_TWO_HEART_RATE_ZONES = 0x0E
    SET_TARGETED_TIME_IN_THREE_HEART_RATE_ZONES = 0x0F
    SET_TARGETED_TIME_IN_FIVE_HEART_RATE_ZONES = 0x10
    SET_INDOOR_BIKE_SIMULATION_PARAMETERS = 0x11
    SET_WHEEL_CIRCUMFERENCE = 0x12
    SPIN_DOWN_CONTROL = 0x13
    SET_TARGETED_CADENCE = 0x14
    RESPONSE_CODE = 0x80


class ResultCode(IntEnum):
    """Result of a Control Point procedure (FTMS v1.0.1 Table 4.24)."""

    SUCCESS = 0x01
    NOT_SUPPORTED = 0x02
    INVALID_PARAMETER = 0x03
    OPERATION_FAILED = 0x04
    CONTROL_NOT_PERMITTED = 0x05


class StopKind(IntEnum):
    """Parameter of Stop or Pause (FTMS v1.0.1 Table 4.16)."""

    STOP = 0x01
    PAUSE = 0x02


@dataclass(frozen=True, slots=True)
class RequestControl:
    """Ask for control permission; every other request needs it first."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Targets and time go to 0, status to Idle; control permission is lost."""


@dataclass(frozen=True, slots=True)
class SetTargetSpeed:
    speed_kmh: float


@dataclass(frozen=True, slots=True)
class SetTargetInclination:
    inclination_pct: float


@dataclass(frozen=True, slots=True)
class StartOrResume:
    pass


@dataclass(frozen=True, slots=True)
class StopOrPause:
    kind: StopKind


@dataclass(frozen=True, slots=True)
class SetTargetedDistance:
    distance_m: int


@dataclass(frozen=True, slots=True)
class SetTargetedTrainingTime:
    time_s: int


ControlRequest = (
    RequestControl
    | Reset
    | SetTargetSpeed
    | SetTargetInclination
    | StartOrResume
    | StopOrPause
    | SetTargetedDistance
    | SetTargetedTrainingTime
)

# Parameter layouts (FTMS v1.0.1 Table 4.15): request type -> (opcode, layout of its fields).
_REQUESTS: dict[type[ControlRequest], tuple[ControlOpcode, Layout]] = {
    RequestControl: (ControlOpcode.REQUEST_CONTROL, Layout([])),
    Reset: (ControlOpcode.RESET, Layout([])),
    SetTargetSpeed: (ControlOpcode.SET_TARGET_SPEED, Layout([Field("speed_kmh", "u16", 100, 2)])),
    SetTargetInclination: (
        ControlOpcode.SET_TARGET_INCLINATION,
        Layout([Field("inclination_pct", "s16", 10, 1)]),
    ),
    StartOrResume: (ControlOpcode.START_OR_RESUME, Layout([])),
    StopOrPause: (ControlOpcode.STOP_OR_PAUSE, Layout([Field("kind", "u8")])),
    SetTargetedDistance: (
        ControlOpcode.SET_TARGETED_DISTANCE,
        Layout([Field("distance_m", "u24")]),
    ),
    SetTargetedTrainingTime: (
        ControlOpcode.SET_TARGETED_TRAINING_TIME,
        Layout([Field("time_s", "u16")]),
    ),
}
_REQUEST_BY_OPCODE: dict[int, tuple[type[ControlRequest], Layout]] = {
    opcode: (kind, layout) for kind, (opcode, layout) in _REQUESTS.items()
}


def encode_control_request(request: ControlRequest) -> bytes:
    """The bytes to write to the Control Point for `request`."""
    entry = _REQUESTS.get(type(request))
    if entry is None:
        raise CodecError(_CHARACTERISTIC, f"cannot encode {request!r}: not a Control Point request")
    opcode, layout = entry
    values = [getattr(request, name) for name in layout.names]
    if isinstance(request, StopOrPause) and request.kind not in StopKind.__members__.values():
        raise CodecError(_CHARACTERISTIC, f"StopOrPause kind {request.kind!r} is not 1 or 2")
    return bytes((opcode,)) + layout.pack(values, _CHARACTERISTIC)


def decode_control_request(data: BytesLike) -> ControlRequest:
    """Decode a written request (what a simulated treadmill receives).

    Opcodes outside the treadmill subset above, and wrong parameter lengths, raise CodecError;
    a server answers the first with Not Supported and the second with Invalid Parameter.
    """
    data = as_bytes(data, _CHARACTERISTIC)
    if not data:
        raise CodecError(_CHARACTERISTIC, "empty write, expected an opcode", data)
    entry = _REQUEST_BY_OPCODE.get(data[0])
    if entry is None:
        raise CodecError(
            _CHARACTERISTIC, f"opcode 0x{data[0]:02x} is not a request treadmilld handles", data
        )
    kind, layout = entry
    if len(data) != 1 + layout.size:
        raise CodecError(
            _CHARACTERISTIC,
            f"{kind.__name__} takes {layout.size} parameter bytes, got {len(data) - 1}",
            data,
        )
    values = layout.unpack(data, 1)
    if kind is StopOrPause:
        if values[0] not in StopKind.__members__.values():
            raise CodecError(
                _CHARACTERISTIC,
                f"Stop or Pause parameter {values[0]} is not 1 (stop) or 2 (pause)",
                data,
            )
        return StopOrPause(StopKind(values[0]))
    return kind(*values)


@dataclass(frozen=True, slots=True)
class ControlResponse:
    """The indication answering a request: which opcode it answers, and how it went."""

    request_opcode: int
    result: ResultCode


def encode_control_response(response: ControlResponse) -> bytes:
    """`80 <request opcode> <result>` (no optional response parameter)."""
    require_type(response, ControlResponse, _CHARACTERISTIC)
    opcode = response.request_opcode
    if isinstance(opcode, bool) or not isinstance(opcode, int) or not 0 <= opcode <= 0xFF:
        raise CodecError(
            _CHARACTERISTIC, f"request_opcode {response.request_opcode!r} does not fit one byte"
        )
    if response.result not in ResultCode.__members__.values():
        raise CodecError(_CHARACTERISTIC, f"result {response.result!r} is not a ResultCode")
    return bytes((ControlOpcode.RESPONSE_CODE, response.request_opcode, response.result))


def decode_control_response(data: BytesLike) -> ControlResponse:
    """Decode an indication; response parameters after the third byte are ignored."""
    data = as_bytes(data, _CHARACTERISTIC)
    if len(data) < 3:
        raise CodecError(_CHARACTERISTIC, "a response needs 3 bytes: 80 <opcode> <result>", data)
    if data[0] != ControlOpcode.RESPONSE_CODE:
        raise CodecError(
            _CHARACTERISTIC, f"first byte 0x{data[0]:02x} is not the response code 0x80", data
        )
    try:
        result = ResultCode(data[2])
    except ValueError:
        raise CodecError(
            _CHARACTERISTIC, f"result code 0x{data[2]:02x} is not defined by FTMS (1..5)", data
        ) from None
    return ControlResponse(request_opcode=data[1], result=result)
