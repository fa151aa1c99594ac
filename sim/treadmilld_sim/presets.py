"""Deck presets: field values of `SimulatedTreadmillConfig` that copy one real deck family.

`SimulatedTreadmillConfig(preset="urevo-e1l")` (TOML: `simulated = {preset = "urevo-e1l"}`,
runner: `treadmilld-sim --preset urevo-e1l`) takes every field it is not given from here, so a
preset composes with the quirk switches and deck behaviours: `preset="horizon",
deceleration_kmh_per_s=0.25` is a Horizon that also coasts for long.

Each preset cites where its behaviour was seen (public captures, issue threads, device classes
of other FTMS projects; `../shared/reference/real-decks.md` gathers them). Values no source gives
(speed ranges of most families, the incline table) are illustrative and say so. The advertised
name identifies the family, because the daemon picks quirk sets by name prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from treadmilld.ftms.vendor import ILLUSTRATIVE_INCLINE_TABLE

PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # Urevo E1L (URTM041, firmware 1.4.7): nRF Sniffer captures (Kinomap, the Urevo app,
        # treadspan) and the README in blak3r/treadspan protocol-analysis/urevo-E1L. Every value
        # below was read from those captures except where a comment says otherwise.
        "urevo-e1l": {
            # Scan response `08 09 55 52 54 4d 30 34 31` + `06 16 26 18 01 01 00`; the
            # advertisement itself has Flags, manufacturer data and the 0x1826 UUID list only.
            "name": "URTM041",
            "scan_response_name_and_service_data": True,
            # Device Information as read by the Urevo app (System ID is the address as text).
            "manufacturer": "0x01",
            "model_number": "URTM041",
            "serial_number": "01021B010401040104",
            "hardware_revision": "1.0.1",
            "firmware_revision": "1.4.7",
            "software_revision": "4.0.4",
            "system_id_as_text": True,
            "vendor_services": (0xFFF0, 0xFEE0),
            # Feature `45 56 00 00 05 00 00 00`; Speed Range `60 00 83 02 20 00` (0.96..6.43 in
            # 0.32 steps: 6.43 is off the grid); Inclination Range all zeros (no incline).
            "machine_features": 0x00005645,
            "target_setting_features": 0x00000005,
            "min_speed_kmh": 0.96,
            "max_speed_kmh": 6.43,
            "speed_increment_kmh": 0.32,
            "min_incline_pct": 0.0,
            "max_incline_pct": 0.0,
            "incline_increment_pct": 0.0,
            # Control Point written with WRITE_CMD by every app, answered by notifications
            # (`80 03 01`, `80 00 01`, `80 07 01`), commands obeyed without Request Control, in
            # about 45 ms.
            "control_point_writes": "write_without_response",
            "control_point_answers": "notify",
            "requires_request_control": False,
            "response_delay_s": 0.045,
            # Target Speed Changed following the slowing belt; `04 00 00`; Training Status
            # 0x10/0x11 besides 0x0d/0x0e/0x0f.
            "echo_target_while_decelerating": True,
            "started_status_trailing_bytes": True,
            "vendor_training_status": True,
            # Treadmill Data about every 0.5 s with steps at flag bit 13.
            "data_rate_hz": 2.0,
            "report_step_count": True,
            # "Sessions are cummulative... it's a true pause" (README); in the Kinomap capture
            # elapsed time and steps count on after a stop, and the next Start is preceded by
            # `05 e1 00`: the belt went back to its old 2.25 km/h target.
            "cumulative_sessions": True,
            "resume_at_last_target": True,
        },
        # FitShow FS-BC11B7: a probe report (real-decks.md §2). It sent service data `01 00 01`
        # (type bytes swapped) and `8c 04 58 02 32 00 00 1e 00 00 00 03 00 00 00 00 ee 00` at
        # 6.0 km/h and 3.0 % (ramp angle and energy rates zero), with total distance stuck or
        # moving in 10 m steps. The ranges are illustrative (the report has none).
        "fitshow-bc11b7": {
            "name": "FS-BC11B7",
            "manufacturer": "FitShow",
            "model_number": "FS-BC11B7",
            "service_data_type_swapped": True,
            "reports_ramp_angle": False,
            "reports_energy_rates": False,
            # The preset takes the 10 m steps (the frame's 50 m is one); "stuck" is the other
            # mode the report shows.
            "total_distance_reporting": "10m_steps",
            "min_speed_kmh": 1.0,
            "max_speed_kmh": 12.0,
            "speed_increment_kmh": 0.1,
            "min_incline_pct": 0.0,
            "max_incline_pct": 12.0,
            "incline_increment_pct": 1.0,
        },
        # Horizon: stops on its own after 30 minutes of running (qdomyos-zwift#1128), and like
        # the Horizon T318_ says nothing about console stops, which qdomyos-zwift can only infer
        # from Treadmill Data (qdomyos-zwift#4024): so the self-stop raises no Machine Status
        # either. Ranges illustrative.
        "horizon": {
            "name": "HORIZON-SIM01",
            "manufacturer": "Horizon Fitness",
            "model_number": "HORIZON-SIM",
            "self_stop_after_s": 30 * 60.0,
            "report_console_status": False,
            "min_speed_kmh": 0.8,
            "max_speed_kmh": 16.0,
            "speed_increment_kmh": 0.1,
            "min_incline_pct": 0.0,
            "max_incline_pct": 12.0,
            "incline_increment_pct": 0.5,
        },
        # KingSmith MC21: the vendor unlock characteristic before FTMS control works
        # (mcdax/walkingpad-controller docs/ftms-protocol-reference.md §1.2, cited in
        # treadmilld.ftms.vendor), about 10 Hz Treadmill Data while moving and the step count at
        # bit 13 (the traits of SimulatedTreadmillConfig.kingsmith()). A walking pad: no incline.
        "kingsmith-mc21": {
            "name": "KS-MC21-SIM01",
            "manufacturer": "KingSmith",
            "model_number": "MC21",
            "vendor_unlock": True,
            "moving_data_rate_hz": 10.0,
            "report_step_count": True,
            "min_speed_kmh": 0.5,
            "max_speed_kmh": 6.0,
            "speed_increment_kmh": 0.1,
            "min_incline_pct": 0.0,
            "max_incline_pct": 0.0,
            "incline_increment_pct": 0.0,
        },
        # Incline by table index, the pattern of qdomyos-zwift's Kettler and iConcept device
        # classes. The percents are illustrative (finer at the bottom, coarser at the top, like
        # the tables there), not any one deck's.
        "incline-table": {
            "name": "KETTLER-SIM",
            "manufacturer": "Kettler",
            "model_number": "KETTLER-SIM",
            "incline_table": ILLUSTRATIVE_INCLINE_TABLE,
            "min_speed_kmh": 0.8,
            "max_speed_kmh": 16.0,
            "speed_increment_kmh": 0.1,
        },
        # 3G Cardio: Set Target Speed is refused until the belt runs (qdomyos-zwift#3382).
        # Ranges illustrative.
        "belt-first": {
            "name": "3G-CARDIO-SIM",
            "manufacturer": "3G Cardio",
            "model_number": "3G-CARDIO-SIM",
            "require_start_before_speed": True,
            "min_speed_kmh": 0.8,
            "max_speed_kmh": 19.0,
            "speed_increment_kmh": 0.1,
            "min_incline_pct": 0.0,
            "max_incline_pct": 15.0,
            "incline_increment_pct": 0.5,
        },
    }
)


def preset_defaults(name: str) -> dict[str, Any]:
    """A fresh copy of one preset's field values (KeyError for an unknown name)."""
    return dict(PRESETS[name])
