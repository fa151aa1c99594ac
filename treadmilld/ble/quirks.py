"""How real treadmills deviate from FTMS, as a table keyed by the advertised name.

Each entry cites where the behaviour was reported (see docs/ble-client.md). A deployment can
also pick a quirk set by name, or spell the fields out, in `LinkSettings.quirks`.
"""

from __future__ import annotations

import math
import uuid as uuid_module
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from treadmilld.ftms.vendor import (
    ILLUSTRATIVE_INCLINE_TABLE,
    KINGSMITH_UNLOCK_CHARACTERISTIC_UUID,
    KINGSMITH_UNLOCK_PAYLOAD,
    check_incline_table,
)

# One statute mile is exactly 1.609344 km (international yard and pound agreement, 1959).
KM_PER_MILE = 1.609344


class SpeedUnit(StrEnum):
    KMH = "km/h"
    MPH = "mph"


class VendorWrite(BaseModel):
    """One write to a vendor characteristic, sent once per connection before the first Control
    Point request (the KingSmith MC21 unlock: mcdax/walkingpad-controller,
    docs/ftms-protocol-reference.md §1.2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    characteristic_uuid: str = Field(
        description="The characteristic written: a full UUID, or a 16-bit one like 'fff2'."
    )
    payload_hex: str = Field(description="The bytes written, as hex ('01', 'f7 a2 01 ...').")

    @field_validator("characteristic_uuid")
    @classmethod
    def _full_uuid(cls, value: str) -> str:
        text = value.strip().lower()
        if len(text) == 4:  # a SIG short UUID, in the Bluetooth base UUID
            text = f"0000{text}-0000-1000-8000-00805f9b34fb"
        try:
            return str(uuid_module.UUID(text))
        except ValueError:
            raise ValueError(
                f"vendor_unlock characteristic_uuid {value!r} is not a UUID; give the full "
                "form (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) or a 16-bit one (fff2)"
            ) from None

    @field_validator("payload_hex")
    @classmethod
    def _hex_bytes(cls, value: str) -> str:
        try:
            payload = bytes.fromhex(value)
        except ValueError:
            raise ValueError(
                f"vendor_unlock payload_hex {value!r} is not hex bytes, e.g. '01' or 'f7 a2'"
            ) from None
        if not payload:
            raise ValueError("vendor_unlock payload_hex is empty; give at least one byte")
        return payload.hex(" ")

    @property
    def payload(self) -> bytes:
        return bytes.fromhex(self.payload_hex)


# Set Target Inclination carries a sint16 (FTMS v1.0.1 Table 4.15); with an incline table that
# number is the index, so a table longer than this cannot be addressed.
_MAX_TABLE_ENTRIES = 32768


def _valid_incline_table(table: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if table is None:
        return None
    if len(table) > _MAX_TABLE_ENTRIES:
        raise ValueError(f"incline_table has {len(table)} entries; at most 32768 fit the wire")
    if not all(math.isfinite(entry) for entry in table):
        raise ValueError(f"incline_table {list(table)} holds a value that is not a number")
    check_incline_table(table)  # a CodecError is a ValueError: pydantic reports it as such
    return table


class Quirks(BaseModel):
    """What this treadmill needs beyond (or instead of) plain FTMS behaviour.

    The defaults are the standard behaviour; every field names one deviation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="standard", description="Label of the quirk set, for logs.")
    request_control_first: bool = Field(
        default=True,
        description=(
            "Send Request Control before the first command of a connection. False for decks "
            "that break on the Request Control/Start preamble (FitShow FS-, Sunny SF-T); they "
            "still get Request Control if they answer a command with Control Not Permitted."
        ),
    )
    start_toggles_belt: bool = Field(
        default=False,
        description=(
            "Start while running stops the belt (TM11GY): once Start succeeded it is never "
            "sent again until the belt is seen stopped, however long the belt takes to move."
        ),
    )
    start_gate: bool = Field(
        default=False,
        description=(
            "Write a target speed only once the belt reports a speed above 0, plus a settle "
            "time (KingSmith KS-: a speed written too soon after Start crashes the link)."
        ),
    )
    # Units are kept apart per direction: on the TM11GY only the command is mph while telemetry
    # stays km/h (qdomyos-zwift #5100), so there is no single "mph mode".
    target_speed_unit: SpeedUnit = Field(
        default=SpeedUnit.KMH,
        description="Unit the deck reads Set Target Speed in.",
    )
    speed_range_unit: SpeedUnit = Field(
        default=SpeedUnit.KMH,
        description="Unit of the deck's Supported Speed Range (0x2AD4).",
    )
    reported_speed_unit: SpeedUnit = Field(
        default=SpeedUnit.KMH,
        description="Unit the deck reports Treadmill Data speeds in.",
    )
    status_speed_unit: SpeedUnit | None = Field(
        default=None,
        description=(
            "Unit of the speed in Machine Status 'Target Speed Changed' (0x05). None: the unit "
            "of target_speed_unit, because FTMS gives that status the Set Target Speed "
            "parameter (v1.0.1 Table 4.26), so a deck that reads targets in mph reports them in "
            "mph. Unverified on real mph decks; if it is wrong the engine sees a console speed "
            "1.6 times too high, the side on which it slows the belt rather than ignoring a "
            "console change above its caps."
        ),
    )

    control_point_without_response: bool = Field(
        default=False,
        description=(
            "Write the Control Point with Write Without Response (ATT Write Command) even when "
            "it also offers Write. Without this the link follows the characteristic: Write when "
            "it has it, Write Without Response when that is all it has (Urevo E1L)."
        ),
    )
    vendor_unlock: VendorWrite | None = Field(
        default=None,
        description=(
            "A vendor write sent once per connection before the first Control Point request "
            "(KingSmith MC21: without it control requests time out). A deck without that "
            "characteristic is driven anyway, with a warning."
        ),
    )
    incline_table: Annotated[tuple[float, ...] | None, AfterValidator(_valid_incline_table)] = (
        Field(
            default=None,
            description=(
                "Percent per index, strictly increasing, for decks that take Set Target "
                "Inclination as a table index (Kettler, iConcept: qdomyos-zwift device classes). "
                "The link writes the index of the highest entry at or below the asked percent; "
                "Treadmill Data inclination stays real percent."
            ),
        )
    )

    @property
    def effective_status_speed_unit(self) -> SpeedUnit:
        """The unit Target Speed Changed is read in (`status_speed_unit`, else the target's)."""
        return self.status_speed_unit or self.target_speed_unit


STANDARD = Quirks()


# Named quirk sets, selectable in config by their key.
QUIRK_SETS: dict[str, Quirks] = {
    "standard": STANDARD,
    # FitShow modules break when Request Control + Start precede a speed write
    # (cagnulein/qdomyos-zwift PR#4703).
    "fitshow": Quirks(name="fitshow", request_control_first=False),
    # Sunny Health & Fitness SF-T decks: same preamble problem (qdomyos-zwift PR#4944).
    "sunny": Quirks(name="sunny", request_control_first=False),
    # TM11GY walking pad: Start while running ramps the belt to 0, and the target speed is read
    # as mph while its Treadmill Data stays in km/h (qdomyos-zwift #5100: `02 64 00` = 1 mph).
    "tm11gy": Quirks(name="tm11gy", start_toggles_belt=True, target_speed_unit=SpeedUnit.MPH),
    # Horizon decks with the Johnson "JFTM" module read Set Target Speed as mph even in km/h
    # mode, but report Treadmill Data in km/h: asked 1.0, the deck reported about 1.6
    # (qdomyos-zwift PR#4904 for the T202, PR#4721 for the 7.0AT). Range unit unverified.
    "jftm": Quirks(name="jftm", target_speed_unit=SpeedUnit.MPH),
    # Bowflex T9 expects mph (qdomyos-zwift's Bowflex T9 driver); assumed mph in every direction
    # (unverified).
    "mph": Quirks(
        name="mph",
        target_speed_unit=SpeedUnit.MPH,
        speed_range_unit=SpeedUnit.MPH,
        reported_speed_unit=SpeedUnit.MPH,
    ),
    # KingSmith WalkingPad (FTMS firmware): Set Speed too soon after Start crashes the link; wait
    # for a reported speed above 0 and a settle time (mcdax/walkingpad-controller README).
    "kingsmith": Quirks(name="kingsmith", start_gate=True),
    # KingSmith MC21 family: the KingSmith start gate, plus the vendor unlock write without
    # which Control Point requests go unanswered (mcdax/walkingpad-controller,
    # docs/ftms-protocol-reference.md §1.2). The payload is a stand-in (treadmilld.ftms.vendor);
    # a deployment that knows the real bytes spells the quirk out with its own payload_hex.
    "kingsmith-mc21": Quirks(
        name="kingsmith-mc21",
        start_gate=True,
        vendor_unlock=VendorWrite(
            characteristic_uuid=KINGSMITH_UNLOCK_CHARACTERISTIC_UUID,
            payload_hex=KINGSMITH_UNLOCK_PAYLOAD.hex(),
        ),
    ),
    # Urevo E1L (URTM041): every app writes its Control Point with Write Without Response and
    # the deck answers by notification (blak3r/treadspan, protocol-analysis/urevo-E1L captures).
    # Following the characteristic's properties already does that; the quirk keeps doing it
    # should a firmware also declare Write.
    "urevo-e1l": Quirks(name="urevo-e1l", control_point_without_response=True),
    # FitShow FS-BC11B7: a FitShow module (as `fitshow`); its swapped service data `01 00 01`
    # is discovery's business (a FitShow probe report, see docs/ble-client.md). "BC11B7" is
    # the module's address suffix, not a model, so no prefix of its own: `FS-` picks `fitshow`,
    # which behaves the same.
    "fitshow-bc11b7": Quirks(name="fitshow-bc11b7", request_control_first=False),
    # Horizon: plain FTMS on the link. It stops itself after 30 minutes (qdomyos-zwift#1128),
    # which the engine sees in the data as a console stop; one started its belt on connect
    # (qdomyos-zwift#923), and the link writes nothing on connect.
    "horizon": Quirks(name="horizon"),
    # Incline by table index (Kettler, iConcept: qdomyos-zwift device classes), with the
    # illustrative table above: set your deck's own table in config.
    "incline-table": Quirks(name="incline-table", incline_table=ILLUSTRATIVE_INCLINE_TABLE),
    # 3G Cardio: the belt must run before a speed is taken (qdomyos-zwift#3382). The start gate
    # makes the link wait for a moving belt, and tells the engine (speed_needs_running_belt) to
    # write Start before the speed.
    "belt-first": Quirks(name="belt-first", start_gate=True),
}

# Advertised-name prefixes, matched case-insensitively with space, '-' and '_' counted as one
# separator (decks of one family differ in that: "3G Cardio ..."); the first match wins, so
# longer, more specific prefixes come first.
NAME_PREFIXES: tuple[tuple[str, str], ...] = (
    ("FS-", "fitshow"),
    ("SF-T", "sunny"),
    ("TM11GY", "tm11gy"),
    # "JFTM T202-5_4DEE" was seen advertised (qdomyos-zwift PR#4904); the Bowflex name is a
    # best guess, and `LinkSettings.quirks = "mph"` covers a deck these miss.
    ("BOWFLEX T9", "mph"),
    ("JFTM", "jftm"),
    # MC21 names per mcdax/walkingpad-controller (KS-MC21-*, KS-SMC21C-*, ZP-ZEALR1-*); before
    # the general KS- entry.
    ("KS-MC21", "kingsmith-mc21"),
    ("KS-SMC21C", "kingsmith-mc21"),
    ("ZP-ZEALR1", "kingsmith-mc21"),
    ("KS-", "kingsmith"),
    # The E1L advertises its model number, URTM041 (blak3r/treadspan captures).
    ("URTM", "urevo-e1l"),
    ("HORIZON", "horizon"),
    # qdomyos-zwift matches "3G CARDIO " and "KETTLER " at the start of advertised names. A
    # Kettler deck gets the illustrative table: indices are bounded by the table, so a wrong
    # table inclines less than a percent read as an index would; the link warns to set the
    # real one.
    ("3G CARDIO", "belt-first"),
    ("KETTLER", "incline-table"),
)


class UnknownQuirkSetError(ValueError):
    """A configured quirk set name is not in the table."""


def quirks_by_name(set_name: str) -> Quirks:
    """The named quirk set (`fitshow`, `kingsmith`, ...)."""
    try:
        return QUIRK_SETS[set_name]
    except KeyError:
        known = ", ".join(sorted(QUIRK_SETS))
        raise UnknownQuirkSetError(
            f"unknown quirk set {set_name!r}; use one of: {known}, or spell the fields out"
        ) from None


def _known_quirk_choice(value: str | Quirks | None) -> str | Quirks | None:
    if isinstance(value, str):
        quirks_by_name(value)  # raises with the list of known names
    return value


# A config field choosing quirks: a named set (checked to exist), the fields spelled out, or
# None to pick the set from the advertised name. Shared by the link and the daemon settings.
QuirksChoice = Annotated[str | Quirks | None, AfterValidator(_known_quirk_choice)]


def quirks_for_name(name: str | None) -> Quirks:
    """The quirk set for a treadmill advertising `name` (standard when nothing matches)."""
    if not name:
        return STANDARD
    advertised = _comparable(name.strip())
    for prefix, set_name in NAME_PREFIXES:
        if advertised.startswith(_comparable(prefix)):
            return QUIRK_SETS[set_name]
    return STANDARD


def _comparable(name: str) -> str:
    """Upper case, with space and '_' written as '-'."""
    return name.upper().replace(" ", "-").replace("_", "-")


def speed_to_deck(speed_kmh: float, unit: SpeedUnit) -> float:
    """A speed in km/h expressed in the deck's unit."""
    return speed_kmh / KM_PER_MILE if unit is SpeedUnit.MPH else speed_kmh


def speed_from_deck(value: float, unit: SpeedUnit) -> float:
    """A speed in the deck's unit expressed in km/h."""
    return value * KM_PER_MILE if unit is SpeedUnit.MPH else value
