"""The demo's live line shows what the person on the belt needs, heart rate included."""

from __future__ import annotations

import dataclasses

from tests.support.snapshots import idle_snapshot
from treadmilld.app.demo_driver import render_line
from treadmilld.engine.api import Direction, Phase, SessionSnapshot
from treadmilld.engine.snapshot import ZonePosition


def walking() -> SessionSnapshot:
    return dataclasses.replace(
        idle_snapshot("sim01", phase=Phase.RUNNING),
        direction=Direction.BACKWARD,
        speed_kmh=2.0,
        distance_backward_m=120.0,
    )


def test_the_live_line_shows_the_heart_rate_and_its_zone_when_there_is_one() -> None:
    snapshot = walking()
    assert "HR" not in render_line(snapshot)
    line = render_line(
        dataclasses.replace(snapshot, heart_rate_bpm=128, heart_rate_zone=ZonePosition.ABOVE)
    )
    assert "HR 128 above zone" in line
    assert "back  120 m" in line
    assert "HR 97" in render_line(dataclasses.replace(snapshot, heart_rate_bpm=97))
