"""What a simulated treadmill is: identity, ranges, motor rates, and real machines' quirks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from treadmilld.ftms import ControlOpcode, ResultCode
from treadmilld.ftms.vendor import check_incline_table
from treadmilld_sim.presets import PRESETS, preset_defaults

_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")

# Deceleration of real decks: about 1 km/h per second on walking pads, down to 0.25 km/h per
# second on heavy gym decks (field reports for issue 11). The bounds leave room on both sides.
MIN_DECELERATION_KMH_PER_S = 0.1
MAX_DECELERATION_KMH_PER_S = 10.0


class SimulatedTreadmillConfig(BaseModel):
    """One simulated treadmill. Defaults describe a plain, well-behaved FTMS deck.

    The quirk switches reproduce machines seen in the wild (docs/simulator.md lists them with
    their sources); each becomes the initial value of `SimulatedTreadmill.faults`, which a
    test may change while the treadmill runs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A deck family whose values every field left out takes (treadmilld_sim.presets; the names
    # are listed in docs/simulator.md). Fields given explicitly override the preset.
    preset: str | None = None

    name: str = Field(default="SIM-TM01", min_length=1, max_length=29)
    # None: the fleet assigns a unique static random address.
    address: str | None = None
    manufacturer: str = "treadmilld"
    model_number: str = "SIM-TM"
    serial_number: str = "0001"
    firmware_revision: str = "1.0.0"
    # Device Information strings served only when set (the Urevo E1L serves both).
    hardware_revision: str | None = None
    software_revision: str | None = None
    # Serve System ID (0x2A23) as the deck's address in text ("5C:CE:21:8F:A4:47") instead of
    # the spec's 8-byte binary, as the Urevo E1L does (blak3r/treadspan urevo-E1L captures).
    # False: no System ID characteristic.
    system_id_as_text: bool = False
    # Empty vendor services (16-bit UUIDs), each with one Write Without Response + Notify
    # characteristic at UUID+1, as on the Urevo E1L (0xFFF0/0xFFF1, 0xFEE0/0xFEE1).
    vendor_services: tuple[int, ...] = ()

    # Supported Speed Range (0x2AD4) and Inclination Range (0x2AD5).
    min_speed_kmh: float = Field(default=0.5, ge=0, le=655.35)
    max_speed_kmh: float = Field(default=16.0, gt=0, le=655.35)
    speed_increment_kmh: float = Field(default=0.1, gt=0)
    # All three 0: a deck without incline (the Urevo E1L sends `00 00 00 00 00 00`). Set Target
    # Inclination is then answered Success and changes nothing (the E1L answers Kinomap's
    # `03 3c 00` with `80 03 01`), and Treadmill Data carries no incline.
    min_incline_pct: float = Field(default=0.0, ge=-3276.8, le=3276.7)
    max_incline_pct: float = Field(default=15.0, ge=-3276.8, le=3276.7)
    incline_increment_pct: float = Field(default=0.5, ge=0)
    # Incline set by table index (Kettler, iConcept, some 3G Cardio: qdomyos-zwift device
    # classes): Set Target Inclination's raw sint16 is an index into these percents, not 0.1 %.
    # The Supported Inclination Range then covers the valid indices (0.0 .. (n-1)/10 in 0.1
    # steps), and min/max/increment_incline_pct are ignored.
    incline_table: tuple[float, ...] | None = None
    # Fitness Machine Feature (0x2ACC) words as sent, instead of the ones derived from what the
    # deck does (the Urevo E1L claims `45 56 00 00` / `05 00 00 00`).
    machine_features: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    target_setting_features: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)

    # A real deck takes seconds to reach a new speed; the daemon must not assume otherwise.
    acceleration_kmh_per_s: float = Field(default=1.0, gt=0)
    incline_rate_pct_per_s: float = Field(default=0.5, gt=0)
    # FTMS §4.4.1: Treadmill Data is "typically" sent once per second.
    data_rate_hz: float = Field(default=1.0, gt=0, le=50)
    # For the energy estimate only.
    user_weight_kg: float = Field(default=70.0, gt=0)
    advertising_interval_ms: float = Field(default=20.0, ge=20, le=10240)

    # -- GATT and advertising shape (fixed while the deck runs) --
    # Control Point properties. FTMS §4.16 says Write + Indicate; the Urevo E1L is written with
    # Write Without Response and answers with notifications (blak3r/treadspan captures).
    control_point_writes: Literal["write", "write_without_response", "both"] = "write"
    control_point_answers: Literal["indicate", "notify"] = "indicate"
    # KingSmith MC21: a Write characteristic (treadmilld.ftms.vendor) inside the FTMS service
    # must be written on each connection before Control Point requests are answered at all.
    vendor_unlock: bool = False
    # Name and FTMS service data only in the scan response (the advertisement keeps Flags and
    # the 0x1826 UUID list), as the Urevo E1L sends them.
    scan_response_name_and_service_data: bool = False
    # FTMS service data `01 00 01`: the machine-type bytes swapped (a FitShow FS-BC11B7 report).
    service_data_type_swapped: bool = False
    # Treadmill Data fields a deck fills with zeros although it announces them (the FitShow
    # FS-BC11B7 frame `8c 04 58 02 32 00 00 1e 00 00 00 03 00 00 00 00 ee 00`: ramp angle 0 at
    # 3.0 %, energy per hour and per minute 0 at 6 km/h).
    reports_ramp_angle: bool = True
    reports_energy_rates: bool = True
    # Training Status with the Urevo E1L's reserved values: 0x10 while the belt slows after a
    # Stop or Pause, 0x11 once it stands, 0x0E idle, 0x0D running (the order in the Kinomap
    # capture of blak3r/treadspan; the meanings are inferred from it).
    vendor_training_status: bool = False
    # Machine Status 0x04 (started by the user) with two trailing bytes, `04 00 00` (Urevo E1L).
    started_status_trailing_bytes: bool = False

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

    # -- deck behaviours of real machines (TreadmillFaults says what each does and its source;
    # docs/simulator.md "Deck behaviours" lists them) --
    report_console_status: bool = True
    deceleration_kmh_per_s: float = Field(
        default=1.0, ge=MIN_DECELERATION_KMH_PER_S, le=MAX_DECELERATION_KMH_PER_S
    )
    resume_at_last_target: bool = False
    # Where the previous user left the incline; the motor then moves at incline_rate_pct_per_s.
    # Only the starting state: `TreadmillModel.leave_inclined_at` does the same on a running deck.
    initial_incline_pct: float = 0.0
    ignores_speed_commands: bool = False
    starts_on_connect: bool = False
    starts_on_connect_kmh: float | None = None
    refuses_stop: ResultCode | None = None
    refuses_pause: ResultCode | None = None
    drops_link_on_stop: bool = False
    echo_target_while_decelerating: bool = False

    # -- deck families of issue 12 (TreadmillFaults says what each does and its source) --
    requires_request_control: bool = True
    cumulative_sessions: bool = False
    total_distance_reporting: Literal["metres", "stuck", "10m_steps"] = "metres"
    self_stop_after_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Fill what the caller left out from the named preset; explicit fields win."""
        if isinstance(data, dict) and data.get("preset") is not None:
            name = data["preset"]
            if not isinstance(name, str) or name not in PRESETS:
                known = ", ".join(sorted(PRESETS))
                raise ValueError(f"unknown preset {name!r}; known presets: {known}")
            return {**preset_defaults(name), **data}
        return data

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

    @field_validator("refuses_stop", "refuses_pause", mode="before")
    @classmethod
    def _result_code_by_name(cls, value: Any) -> Any:
        """Accept a result code by name too ("operation_failed", "control-not-permitted")."""
        if isinstance(value, str) and not value.isdigit():
            name = value.strip().upper().replace("-", "_").replace(" ", "_")
            if name not in ResultCode.__members__:
                choices = ", ".join(code.name.lower() for code in ResultCode)
                raise ValueError(f"unknown result code {value!r}; use one of {choices} or 1..5")
            return ResultCode[name]
        return value

    @model_validator(mode="after")
    def _ranges_make_sense(self) -> SimulatedTreadmillConfig:
        if self.min_speed_kmh >= self.max_speed_kmh:
            raise ValueError("min_speed_kmh must be below max_speed_kmh")
        table = self.incline_table
        if table is not None:
            check_incline_table(table)  # the link's rule: non-empty, strictly increasing
            low, high = table[0], table[-1]
        else:
            if self.has_incline and (
                self.min_incline_pct >= self.max_incline_pct or self.incline_increment_pct <= 0
            ):
                raise ValueError(
                    "min_incline_pct must be below max_incline_pct with a positive"
                    " incline_increment_pct (or all three 0: a deck without incline)"
                )
            low, high = self.min_incline_pct, self.max_incline_pct
        if not low <= self.initial_incline_pct <= high:
            raise ValueError(
                f"initial_incline_pct {self.initial_incline_pct} must lie in the inclination"
                f" range {low}..{high}"
            )
        speed = self.starts_on_connect_kmh
        if speed is not None and not self.min_speed_kmh <= speed <= self.max_speed_kmh:
            raise ValueError(
                f"starts_on_connect_kmh {speed} must lie in the speed range"
                f" {self.min_speed_kmh}..{self.max_speed_kmh}"
            )
        return self

    @property
    def has_incline(self) -> bool:
        """False for a deck whose inclination range is all zeros (no incline motor)."""
        if self.incline_table is not None:
            return True
        values = (self.min_incline_pct, self.max_incline_pct, self.incline_increment_pct)
        return any(value != 0 for value in values)

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
    # be started first (3G Cardio: qdomyos-zwift#3382; KingSmith: walkingpad-controller docs §2.6).
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
    # Wait this long (treadmill clock) before executing and answering a request; writes in the
    # meantime get ATT 0xFE (FTMS §4.16.3: one procedure at a time). The daemon must not take a
    # late answer for a lost one. Applies to every answered request, including refused ones
    # (refuses_stop, forced_results); drops_link_on_stop does not wait for it. The Urevo E1L
    # answers in about 45 ms (blak3r/treadspan urevo-E1L captures); this holds an answer back past
    # a client's timeout.
    response_delay_s: float = 0.0
    # Answer these opcodes with this result code and change nothing.
    forced_results: dict[ControlOpcode, ResultCode] = field(default_factory=dict)

    # -- deck behaviours of real machines (docs/simulator.md "Deck behaviours") --
    # False: console Start/Pause/Stop and the safety key raise no Machine Status (0x04, 0x02,
    # 0x03), no Training Status notification, and do not take control from the client; the only
    # sign is Treadmill Data showing the belt slowing to 0. Console speed/incline changes still
    # report 0x05/0x06 and take control (0xFF). "Many decks do not send Machine Status for
    # console buttons or the safety key at all" (field reports for issue 11); the Horizon T318_'s
    # console Stop is seen only in Treadmill Data (qdomyos-zwift#4024).
    report_console_status: bool = True
    # How fast the belt slows (Stop, Pause, a lower target); acceleration_kmh_per_s is how fast it
    # speeds up. About 1 km/h/s on walking pads, 0.25 km/h/s on heavy gym decks, so a stopped
    # belt may move for 10 s or more (field reports for issue 11; no public capture measures it).
    # The safety key still stops it at once.
    # A change applies from the model's next update (any read of its state).
    deceleration_kmh_per_s: float = 1.0
    # Start/Resume after a Stop runs the belt at the last target it ran at, unless a target was
    # written while stopped: "many decks resume at their last target speed" (field reports for
    # issue 11: 1.5 to 2.1 km/h jumps when Start came before the new, lower target).
    # False (the clean default): a Stop, console stop or safety key clears the target, so the
    # next Start begins at the minimum speed; a Pause keeps it either way.
    resume_at_last_target: bool = False
    # Set Target Speed is answered Success and changes nothing: "speed control (slider ...) has no
    # effect on treadmill speed" on an Xterra T85 / FitShow FS-BT-02 and a Sperax RM-01
    # (hassio-ftms#26). Only measured speed against the target shows it.
    ignores_speed_commands: bool = False
    # The belt starts by itself when a client connects, with no Machine Status: the Horizon 7.4
    # "starts on its own after app launch" (qdomyos-zwift#923). It runs at
    # starts_on_connect_kmh, or None: where Start would (its kept target, else the minimum).
    # Never with the safety key out.
    starts_on_connect: bool = False
    starts_on_connect_kmh: float | None = None
    # Stop (kind 1) / Pause (kind 2) answered with this result code and the belt keeps running
    # (None: obeyed). On the same Horizon 7.4, "pressing stop in the app does not change anything
    # on the treadmill - it keeps running at the last speed" (qdomyos-zwift#923); FTMS §4.16.2
    # gives Operation Failed and Control Not Permitted as the refusals. SUCCESS means
    # acknowledged and ignored. Unlike forced_results (per opcode), these tell Stop from Pause.
    refuses_stop: ResultCode | None = None
    refuses_pause: ResultCode | None = None
    # A Stop or Pause write makes the deck drop the link (HCI 0x08, as drop_link) before its ATT
    # Write Response: the client's write fails, its disconnected callback fires, no Control Point
    # answer comes, and the belt keeps running at its target. Every Stop/Pause while set (a test
    # can clear it from a control listener, which still hears the request first). No single deck
    # is behind this one: a link can be lost at any moment (supervision timeout, Core Vol 6,
    # Part B, 4.5.2); this pins the loss to the worst one, the emergency stop.
    drops_link_on_stop: bool = False
    # While the belt decelerates (Stop, Pause, a lower target), send Machine Status 0x05 Target
    # Speed Changed carrying the measured belt speed every 0.3 s until the belt reaches its goal
    # (0 after a stop): `05 d1 00`, `05 c1 00`, ... `05 00 00` in the Urevo E1L nRF Sniffer
    # captures (blak3r/treadspan protocol-analysis/urevo-E1L). Not a console action. Takes effect
    # from the next deceleration.
    echo_target_while_decelerating: bool = False

    # -- deck families of issue 12 (docs/simulator.md "Deck presets") --
    # False: every request but Request Control is answered 05 Control Not Permitted until a
    # client takes control (FTMS §4.16.2.1). The Urevo E1L obeys without it: Kinomap writes
    # `03 3c 00` before any Request Control and gets `80 03 01` (blak3r/treadspan captures).
    requires_request_control: bool = True
    # True: a Stop is a pause for the counters: elapsed time, distance, energy and steps go on
    # from where they were on the next Start ("Sessions are cumulative... it's a true pause",
    # blak3r/treadspan urevo-E1L README; its Kinomap capture counts on after a stop). False (the
    # default deck): a Start after a Stop begins a new session from zero, as LifeSpan decks do
    # (same README). A Pause never ends the session.
    cumulative_sessions: bool = False
    # What Treadmill Data says the total distance is: "metres" (the belt's distance),
    # "stuck" (stays at its power-on value, 0, however far the belt runs) or "10m_steps"
    # (truncated to 10 m). A FitShow FS-BC11B7 report shows both of the last two.
    total_distance_reporting: Literal["metres", "stuck", "10m_steps"] = "metres"
    # The deck stops itself after this much belt running (seconds of Running since the last
    # Start from rest; a Pause keeps the count), like a console Stop: Horizon decks stop on their
    # own after 30 minutes (qdomyos-zwift#1128). None: never.
    self_stop_after_s: float | None = None

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
            report_console_status=config.report_console_status,
            deceleration_kmh_per_s=config.deceleration_kmh_per_s,
            resume_at_last_target=config.resume_at_last_target,
            ignores_speed_commands=config.ignores_speed_commands,
            starts_on_connect=config.starts_on_connect,
            starts_on_connect_kmh=config.starts_on_connect_kmh,
            refuses_stop=config.refuses_stop,
            refuses_pause=config.refuses_pause,
            drops_link_on_stop=config.drops_link_on_stop,
            echo_target_while_decelerating=config.echo_target_while_decelerating,
            requires_request_control=config.requires_request_control,
            cumulative_sessions=config.cumulative_sessions,
            total_distance_reporting=config.total_distance_reporting,
            self_stop_after_s=config.self_stop_after_s,
        )
