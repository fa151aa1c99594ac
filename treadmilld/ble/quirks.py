"""How real treadmills deviate from FTMS, as a table keyed by the advertised name.

Each entry cites where the behaviour was reported (see docs/ble-client.md). A deployment can
also pick a quirk set by name, or spell the fields out, in `LinkSettings.quirks`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# One statute mile is exactly 1.609344 km (international yard and pound agreement, 1959).
KM_PER_MILE = 1.609344


class SpeedUnit(StrEnum):
    KMH = "km/h"
    MPH = "mph"


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
}

# Advertised-name prefixes, matched case-insensitively; the first match wins, so longer,
# more specific prefixes come first.
NAME_PREFIXES: tuple[tuple[str, str], ...] = (
    ("FS-", "fitshow"),
    ("SF-T", "sunny"),
    ("TM11GY", "tm11gy"),
    # "JFTM T202-5_4DEE" was seen advertised (qdomyos-zwift PR#4904); the Bowflex name is a
    # best guess, and `LinkSettings.quirks = "mph"` covers a deck these miss.
    ("BOWFLEX T9", "mph"),
    ("JFTM", "jftm"),
    ("KS-", "kingsmith"),
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
    upper = name.strip().upper()
    for prefix, set_name in NAME_PREFIXES:
        if upper.startswith(prefix):
            return QUIRK_SETS[set_name]
    return STANDARD


def speed_to_deck(speed_kmh: float, unit: SpeedUnit) -> float:
    """A speed in km/h expressed in the deck's unit."""
    return speed_kmh / KM_PER_MILE if unit is SpeedUnit.MPH else speed_kmh


def speed_from_deck(value: float, unit: SpeedUnit) -> float:
    """A speed in the deck's unit expressed in km/h."""
    return value * KM_PER_MILE if unit is SpeedUnit.MPH else value
