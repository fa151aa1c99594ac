"""What a simulated heart-rate strap is: identity, the rider's physiology, and its faults."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")

Facing = Literal["forward", "backward"]
# What a strap sends while it has no skin contact: 0 (most straps) or the last value it had.
ContactLostValue = Literal["zero", "stale"]


class SimulatedStrapConfig(BaseModel):
    """One simulated chest strap (Heart Rate Service, 0x180D) and the rider wearing it.

    The rider's heart rate follows their work on the treadmill named `treadmill` (its belt
    speed and incline, and the way the rider faces) with a first-order lag and a slow drift
    (`treadmilld_sim.physiology`). Fault fields are the initial values of `SimulatedStrap.faults`,
    which a test may change while the strap runs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="SIM-HR01", min_length=1, max_length=29)
    # None: the fleet assigns a unique static random address.
    address: str | None = None
    # The simulated treadmill (its name) the wearer walks on; None: the wearer sits still.
    treadmill: str | None = None

    # -- the rider --
    resting_bpm: float = Field(default=65.0, ge=30, le=120)
    max_bpm: float = Field(default=180.0, ge=80, le=230)
    # Aerobic capacity: the work that takes the heart to max_bpm (%HRR = %VO2R, see physiology).
    vo2max_ml_kg_min: float = Field(default=32.0, gt=3.5, le=90)
    weight_kg: float = Field(default=70.0, gt=0, le=300)
    facing: Facing = "backward"
    # First-order time constant of the heart rate's response to a change of work: 57.6 ± 23.6 s
    # on a treadmill at moderate and vigorous intensity ("Identification of heart rate dynamics
    # during moderate-to-vigorous treadmill exercise", BioMedical Engineering OnLine 2015,
    # doi:10.1186/s12938-015-0112-7).
    time_constant_s: float = Field(default=55.0, gt=0, le=600)
    # Cardiovascular drift: heart rate creeping up over a long steady bout. The rate and its
    # recovery at rest are design choices (a few bpm over half an hour of moderate work).
    drift_bpm_per_min: float = Field(default=0.2, ge=0, le=5)
    drift_recovery_s: float = Field(default=300.0, gt=0)

    # -- what the strap sends --
    # Heart Rate Measurement is notified about once a second (HRS v1.0 §3.1: "typically").
    notify_rate_hz: float = Field(default=1.0, gt=0, le=50)
    contact_supported: bool = True
    report_rr_intervals: bool = True
    report_energy_expended: bool = True
    # The uint16 value format even for heart rates that fit a byte.
    wide_format: bool = False
    advertising_interval_ms: float = Field(default=100.0, ge=20, le=10240)

    # -- faults (initial values of StrapFaults) --
    contact_lost: bool = False
    contact_lost_value: ContactLostValue = "zero"
    silent: bool = False
    # A single wild value every so many seconds (None: never), of spike_bpm.
    spike_every_s: float | None = Field(default=None, gt=0)
    spike_bpm: int = Field(default=240, ge=0, le=0xFFFF)
    # Send this value instead of the heart rate (a strap gone mad: 0, 255, 300...).
    out_of_range_bpm: int | None = Field(default=None, ge=0, le=0xFFFF)

    @field_validator("address")
    @classmethod
    def _address_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if not _ADDRESS.match(upper) or int(upper[:2], 16) < 0xC0:
            raise ValueError(
                f"address {value!r} must be a static random address like 'F0:00:00:00:01:01'"
                " (first byte C0..FF)"
            )
        return upper

    @model_validator(mode="after")
    def _rates_make_sense(self) -> SimulatedStrapConfig:
        if self.resting_bpm >= self.max_bpm:
            raise ValueError(
                f"resting_bpm ({self.resting_bpm}) must be below max_bpm ({self.max_bpm})"
            )
        return self


@dataclass
class StrapFaults:
    """A strap's faults, changeable while it runs (`SimulatedStrap.faults`).

    `contact_lost`: the sensor-contact bit is cleared and the value is 0 or the last one
    (`contact_lost_value`). `silent`: no notifications at all while the connection stays up.
    `spikes_pending`: that many next notifications carry `spike_bpm` instead of the heart rate;
    `spike_every_s` adds one on that period. `out_of_range_bpm`: sent instead of the heart rate.
    """

    contact_lost: bool = False
    contact_lost_value: ContactLostValue = "zero"
    silent: bool = False
    spikes_pending: int = 0
    spike_every_s: float | None = None
    spike_bpm: int = 240
    out_of_range_bpm: int | None = None

    @classmethod
    def from_config(cls, config: SimulatedStrapConfig) -> StrapFaults:
        return cls(
            contact_lost=config.contact_lost,
            contact_lost_value=config.contact_lost_value,
            silent=config.silent,
            spike_every_s=config.spike_every_s,
            spike_bpm=config.spike_bpm,
            out_of_range_bpm=config.out_of_range_bpm,
        )
