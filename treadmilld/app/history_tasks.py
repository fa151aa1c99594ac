"""History's tasks under the supervisor: restarted when they fail, drained at shutdown.

History (one recorder per treadmill, the daily retention) never stops a belt: a failing
task is logged and started again with the supervisor's backoff. At shutdown the recorders
write what they hold within a budget, once the belts stand (the supervisor's order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from treadmilld.app.restarts import Restarts

_log = structlog.get_logger(__name__)


async def keep_history_running(
    name: str,
    body: Callable[[], Awaitable[None]],
    *,
    restarts: Restarts,
    is_stopping: Callable[[], bool],
) -> None:
    """A history task: its failure is logged and it starts again; the belts go on."""
    failures = 0
    while not is_stopping():
        started = restarts.clock.now()
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - history never stops a belt
            failures = restarts.count_failure(failures, started)
            delay = restarts.delay(failures)
            _log.error(
                "history_task_failed",
                task=name,
                error=repr(error),
                retry_in_s=round(delay, 1),
                hint="workouts go on; history is missing until it restarts by itself",
                exc_info=error,
            )
        else:
            if is_stopping():
                return
            failures = restarts.count_failure(failures, started)
            delay = restarts.delay(failures)
            _log.warning("history_task_returned", task=name, retry_in_s=round(delay, 1))
        await restarts.clock.sleep(delay)


async def drain_history(drain: Callable[[], Awaitable[None]] | None, budget_s: float) -> None:
    """The recorders write the workouts' endings; bounded, as the belts stand already."""
    if drain is None:
        return
    try:
        async with asyncio.timeout(budget_s):
            await drain()
    except TimeoutError:
        _log.warning(
            "history_not_drained",
            budget_s=budget_s,
            hint="the database did not answer in time; the next start marks the workouts "
            "still running `interrupted`",
        )
    except Exception as error:  # noqa: BLE001 - shutting down; report and carry on
        _log.warning("history_drain_failed", error=repr(error))
