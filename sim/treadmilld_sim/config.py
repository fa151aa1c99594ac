"""What a simulated treadmill is: identity, ranges, motor rates, and real machines' quirks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from treadmilld.ftms import ControlOpcode, ResultCode

_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")


class SimulatedTreadmillConfig(BaseModel):
    """One simulated treadmill. Defaults describe a plain, well-behaved FTMS deck.

    The quirk switches reproduce machines seen in the wild (docs/simulator.md lists them with
    their sources); each becomes the initial value of `SimulatedTreadmill.faults`, which a
    test may change while the treadmill runs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="SIM-TM01", min_length=1, max_length=29)
    # None: the fleet assigns a unique static random address.
    address: str | None = None
    manufacturer: str = "treadmilld"
    model_number: str = "SIM-TM"
    serial_number: str = "0001"
    firmware_revision: str = "1.0.0"

    # Supported Speed Range (0x2AD4) and Inclination Range (0x2AD5).
    min_speed_kmh: float = Field(default=0.5, ge=0, le=655.35)
    max_speed_kmh: float = Field(default=16.0, gt=0, le=655.35)
    speed_increment_kmh: float = Field(default=0.1, gt=0)
    min_incline_pct: float = Field(default=0.0, ge=-3276.8, le=3276.7)
    max_incline_pct: float = Field(default=15.0, ge=-3276.8, le=3276.7)
    incline_increment_pct: float = Field(default=0.5, gt=0)

    # A real deck takes seconds to reach a new speed; the daemon must not assume otherwise.
    acceleration_kmh_per_s: float = Field(default=1.0, gt=0)
    incline_rate_pct_per_s: float = Field(default=0.5, gt=0)
    # FTMS §4.9: Treadmill Data is "typically" sent once per second.
    data_rate_hz: float = Field(default=1.0, gt=0, le=50)
    # For the energy estimate only.
    user_weight_kg: float = Field(default=70.0, gt=0)
    advertising_interval_ms: float = Field(default=20.0, ge=20, le=10240)

    # -- quirks (see TreadmillFaults for what each does) --
    require_start_before_speed: bool = False
    start_while_running_stops: bool = False
    speed_in_mph: bool = False
    advertise_service_data: bool = True
    fragment_treadmill_data: bool = False
    report_step_count: bool = False
    moving_data_rate_hz: float | None = Field(default=None, gt=0, le=50)
    silent_control_point: bool = False
    response_delay_s: float = Field(default=0.0, ge=0)
    forced_results: dict[ControlOpcode, ResultCode] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _address_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if not _ADDRESS.match(upper):
            raise ValueError(f"address {value!r} must look like 'F0:00:00:00:01:01'")
        if int(upper[:2], 16) < 0xC0:
            raise ValueError(
                f"address {value!r} must be a static random address: first byte C0..FF"
            )
        return upper

    @model_validator(mode="after")
    def _ranges_make_sense(self) -> SimulatedTreadmillConfig:
        if self.min_speed_kmh >= self.max_speed_kmh:
            raise ValueError("min_speed_kmh must be below max_speed_kmh")
        if self.min_incline_pct >= self.max_incline_pct:
            raise ValueError("min_incline_pct must be below max_incline_pct")
        return self

    @classmethod
    def kingsmith(cls, name: str = "KS-SIM01") -> SimulatedTreadmillConfig:
        """A KingSmith-style walking pad: 10 Hz data while moving, bit-13 step count."""
        return cls(
            name=name,
            manufacturer="KingSmith",
            max_speed_kmh=6.0,
            min_incline_pct=0.0,
            max_incline_pct=1.0,
            moving_data_rate_hz=10.0,
            report_step_count=True,
        )

    @classmethod
    def tm11gy(cls, name: str = "TM11GY-SIM") -> SimulatedTreadmillConfig:
        """The TM11GY walking pad: Start while running stops the belt, speed read as mph."""
        return cls(name=name, start_while_running_stops=True, speed_in_mph=True, max_speed_kmh=6.0)


@dataclass
class TreadmillFaults:
    """Quirks and faults of one simulated treadmill; mutable while it runs.

    Start from `from_config`; tests flip switches to make the treadmill misbehave.
    """

    # Set Target Speed is refused (Operation Failed) while the belt is stopped: the deck must
    # be started first (3G Cardio, KingSmith; ftms.md §2 "Start before speed").
    require_start_before_speed: bool = False
    # Start while running stops the belt instead of failing (TM11GY, QZ#5100).
    start_while_running_stops: bool = False
    # The target written is read as mph (Bowflex T9, JFTM T202, TM11GY).
    speed_in_mph: bool = False
    # False: no FTMS service data in the advertisement (Toorx TRL200, Domyos; hassio-ftms#59).
    advertise_service_data: bool = True
    # Split each Treadmill Data record over several notifications (FTMS §4.19).
    fragment_treadmill_data: bool = False
    # Append a 3-byte step count under reserved flag bit 13 (KingSmith, Urevo).
    report_step_count: bool = False
    # Treadmill Data rate while the belt moves (KingSmith MC21 sends ~10 Hz); None: normal rate.
    moving_data_rate_hz: float | None = None
    # Accept Control Point writes but never indicate a response (KingSmith MC21).
    silent_control_point: bool = False
    # Wait this long (treadmill clock) before executing and answering a request.
    response_delay_s: float = 0.0
    # Answer these opcodes with this result code and change nothing.
    forced_results: dict[ControlOpcode, ResultCode] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: SimulatedTreadmillConfig) -> TreadmillFaults:
        return cls(
            require_start_before_speed=config.require_start_before_speed,
            start_while_running_stops=config.start_while_running_stops,
            speed_in_mph=config.speed_in_mph,
            advertise_service_data=config.advertise_service_data,
            fragment_treadmill_data=config.fragment_treadmill_data,
            report_step_count=config.report_step_count,
            moving_data_rate_hz=config.moving_data_rate_hz,
            silent_control_point=config.silent_control_point,
            response_delay_s=config.response_delay_s,
            forced_results=dict(config.forced_results),
        )
