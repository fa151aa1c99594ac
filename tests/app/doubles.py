"""Test doubles of our own seams (TreadmillLink, the managed session, the bridge), named by
how they behave. No bleak, no aiomqtt: those are exercised for real in the subprocess tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from tests.support.snapshots import idle_snapshot
from treadmilld.ble.api import (
    ConnectionState,
    DeviceInformation,
    LinkEvent,
    Telemetry,
    TelemetryReceived,
    TreadmillCapabilities,
)
from treadmilld.engine.api import DeviceInfo, SessionEvent, SessionSnapshot, StopOutcome
from treadmilld.engine.limits import ProfileLimits
from treadmilld.ftms import (
    FitnessMachineFeature,
    MachineFeatures,
    TargetSettingFeatures,
    TreadmillData,
)
from treadmilld.runtime.fanout import FanOut


class ObedientLink:
    """A treadmill that does what it is told at once and stays connected until closed; every
    change of its belt speed is reported as a Treadmill Data record, as a deck does."""

    def __init__(self, treadmill_id: str, *, moving_kmh: float = 0.0) -> None:
        self._id = treadmill_id
        self._events: FanOut[LinkEvent] = FanOut(f"link-{treadmill_id}", maxsize=100)
        self._speed_kmh = moving_kmh
        self.commands: list[str] = []
        self.closed = asyncio.Event()
        self.runs = 0

    @property
    def speed_kmh(self) -> float:
        return self._speed_kmh

    @speed_kmh.setter
    def speed_kmh(self, value: float) -> None:
        self._speed_kmh = value
        record = TreadmillData(instantaneous_speed_kmh=value)
        self._events.publish(TelemetryReceived(record, self.telemetry, at=0.0))

    @property
    def treadmill_id(self) -> str:
        return self._id

    @property
    def connection_state(self) -> ConnectionState:
        return ConnectionState.DISCONNECTED if self.closed.is_set() else ConnectionState.CONNECTED

    @property
    def capabilities(self) -> TreadmillCapabilities | None:
        return TreadmillCapabilities(
            address="F0:00:00:00:00:01",
            name=self._id,
            device_information=DeviceInformation(),
            features=FitnessMachineFeature(MachineFeatures(0), TargetSettingFeatures(0)),
            speed_range=None,
            inclination_range=None,
        )

    @property
    def telemetry(self) -> Telemetry:
        return Telemetry(TreadmillData(instantaneous_speed_kmh=self.speed_kmh), received_at=0.0)

    def events(self) -> AsyncIterator[LinkEvent]:
        return self._events.subscribe()  # ends with the link

    async def run(self) -> None:
        self.runs += 1
        await self.closed.wait()

    async def close(self) -> None:
        self.commands.append("close")
        self.closed.set()
        self._events.close()

    async def start_belt(self) -> None:
        self.commands.append("start")
        self.speed_kmh = max(self.speed_kmh, 1.0)

    async def set_target_speed(self, speed_kmh: float) -> float:
        self.commands.append(f"speed {speed_kmh}")
        self.speed_kmh = speed_kmh
        return speed_kmh

    async def set_target_inclination(self, inclination_pct: float) -> float:
        self.commands.append(f"incline {inclination_pct}")
        return inclination_pct

    async def pause_belt(self) -> None:
        self.commands.append("pause")
        self.speed_kmh = 0.0

    async def stop_belt(self) -> None:
        self.commands.append("stop")
        self.speed_kmh = 0.0

    async def reset_targets(self) -> None:
        self.commands.append("reset")


class FailsFirstRuns(ObedientLink):
    """A link whose run() raises the first `failures` times (adapter hiccups), then behaves."""

    def __init__(self, treadmill_id: str, failures: int) -> None:
        super().__init__(treadmill_id)
        self.failures_left = failures

    async def run(self) -> None:
        self.runs += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise OSError("org.bluez.Error.NotReady")
        await self.closed.wait()


class DrivesItsBelt:
    """A session that runs until shut down, then stops (or pauses) its belt through the link."""

    def __init__(self, link: ObedientLink) -> None:
        self.link = link
        self.shutdown_modes: list[str] = []
        self.runs = 0
        self._done = asyncio.Event()

    @property
    def treadmill_id(self) -> str:
        return self.link.treadmill_id

    def snapshot(self) -> SessionSnapshot:
        return idle_snapshot(self.treadmill_id)

    async def events(self) -> AsyncIterator[SessionEvent]:
        await self._done.wait()
        nothing: tuple[SessionEvent, ...] = ()
        for event in nothing:
            yield event

    async def run(self) -> None:
        self.runs += 1
        await self._done.wait()

    async def shutdown(self, mode: Literal["stop", "pause"] = "stop") -> None:
        self.shutdown_modes.append(mode)
        if self.link.telemetry.belt_moving:
            if mode == "pause":
                await self.link.pause_belt()
            else:
                await self.link.stop_belt()
        self._done.set()

    async def start_profile(
        self,
        profile: str,
        *,
        body_weight_kg: float | None = None,
        clinical: bool = False,
        rider_limits: ProfileLimits | None = None,
    ) -> None:
        del rider_limits  # a double: limits are the real session's business
        await self.link.start_belt()

    async def pause(self) -> None:
        await self.link.pause_belt()

    async def resume(self) -> None:
        await self.link.start_belt()

    async def stop(self) -> None:
        await self.link.stop_belt()

    async def emergency_stop(self) -> StopOutcome:
        await self.link.stop_belt()
        return StopOutcome.STOP_SENT

    async def skip_segment(self) -> None:
        return None

    async def confirm_turn(self) -> None:
        return None

    async def set_speed(self, speed_kmh: float) -> float:
        return await self.link.set_target_speed(speed_kmh)

    async def set_incline(self, incline_pct: float) -> float:
        return await self.link.set_target_inclination(incline_pct)

    def device_info(self) -> DeviceInfo | None:
        return None

    async def set_body_weight(self, body_weight_kg: float) -> None:
        return None


class CrashesWhileRunning(DrivesItsBelt):
    """A session whose run() raises every time (a bug in one treadmill's session)."""

    async def run(self) -> None:
        self.runs += 1
        await asyncio.sleep(0)
        raise RuntimeError("session bug")


class HangsOnShutdown(DrivesItsBelt):
    """A session that never finishes shutting down (stuck waiting on its treadmill)."""

    async def shutdown(self, mode: Literal["stop", "pause"] = "stop") -> None:
        self.shutdown_modes.append(mode)
        await asyncio.Event().wait()


class RecordingBridge:
    """A bridge that runs until closed and records the order of events it sees."""

    def __init__(self, journal: list[str], links: Sequence[ObedientLink] = ()) -> None:
        self.journal = journal
        self.links = links
        # Belt speeds when `offline` went out: the daemon must stop belts first.
        self.speeds_at_close: list[float] = []
        self._closed = asyncio.Event()

    async def run(self) -> None:
        self.journal.append("bridge running")
        await self._closed.wait()

    async def close(self) -> None:
        self.journal.append("offline published")
        self.speeds_at_close = [link.speed_kmh for link in self.links]
        self._closed.set()


class FrozenClock:
    """A `Clock` that stands still until the test moves `now_s`; its sleeps end only when
    cancelled."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def now(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


class CrashingBridge(RecordingBridge):
    """A bridge with a bug: run() raises after a moment."""

    async def run(self) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bridge bug")
