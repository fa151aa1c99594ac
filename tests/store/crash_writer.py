"""Run as a child process by test_crash.py: records a workout the way the daemon will, a batch
of 1 Hz samples per commit, printing each batch's last second once it is committed, until it is
killed. Usage: python crash_writer.py DATABASE_URL BATCH_SIZE"""

from __future__ import annotations

import asyncio
import sys

from tests.store.records import running, seconds
from treadmilld.store.api import open_store


def _say(marker: str) -> None:
    sys.stdout.write(marker + "\n")
    sys.stdout.flush()


async def record(url: str, batch_size: int) -> None:
    store = await open_store(url)
    await store.begin_workout(running("w-killed", rider_id=None))
    _say("begun")
    second = 0
    while True:
        await store.append_samples("w-killed", seconds(second, batch_size))
        second += batch_size
        _say(f"committed {second}")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1], int(sys.argv[2])))
