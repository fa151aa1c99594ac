"""A daemon killed mid-workout (SIGKILL: no cleanup runs) loses nothing it had committed: the
next start finds every sample written before the kill, in whole batches, and the workout
`interrupted`."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.records import seconds
from treadmilld.history.records import WorkoutOutcome
from treadmilld.store.api import open_store

# The writer is a fresh interpreter importing SQLAlchemy and Alembic, seconds on a loaded CI
# machine, and the PostgreSQL run may start the session's server first.
pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
BATCH = 10
BATCHES_BEFORE_KILL = 5


def _read_marker(child: subprocess.Popen[str]) -> str:
    """The writer's next marker line; its log lines (on stdout too) are passed over."""
    assert child.stdout is not None
    while True:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        if not ready:
            raise AssertionError("the writer said nothing for 30 s")
        line = child.stdout.readline()
        if not line:
            assert child.stderr is not None
            raise AssertionError(f"the writer ended early:\n{child.stderr.read()}")
        if line.startswith(("begun", "committed ")):
            return line.strip()


def _record_until_killed(url: str) -> int:
    """Start the writer, SIGKILL it while it writes; the last second it saw committed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", url, str(BATCH)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert _read_marker(child) == "begun"
        committed = 0
        for _ in range(BATCHES_BEFORE_KILL):
            committed = int(_read_marker(child).removeprefix("committed "))
        # Killed while it goes on writing: the next batch may or may not have landed.
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    return committed


async def test_a_workout_killed_mid_recording_keeps_every_committed_sample(
    database_url: str,
) -> None:
    committed = _record_until_killed(database_url)

    async with await open_store(database_url) as store:
        assert await store.mark_interrupted_on_start(["tm01"]) == ["w-killed"]
        workout = await store.get_workout("w-killed")

    assert workout.outcome is WorkoutOutcome.INTERRUPTED
    kept = len(workout.samples)
    # Every batch the writer saw committed is there, and a batch is never there in part.
    assert kept >= committed == BATCH * BATCHES_BEFORE_KILL
    assert kept % BATCH == 0
    assert workout.samples == tuple(seconds(0, kept))
