"""Shielded operations finish in the background when their caller is cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from treadmilld.runtime.background import Background


class Operation:
    """An operation on the air: takes `seconds`, then succeeds or fails; records its end."""

    def __init__(self, seconds: float, error: Exception | None = None) -> None:
        self.seconds = seconds
        self.error = error
        self._finished = False

    def finished(self) -> bool:
        # A method, not an attribute: mypy would narrow an attribute across the awaits.
        return self._finished

    async def __call__(self) -> str:
        await asyncio.sleep(self.seconds)
        self._finished = True
        if self.error is not None:
            raise self.error
        return "answer"


def unretrieved_errors() -> list[dict[str, Any]]:
    """Collect what the loop's exception handler hears ("exception was never retrieved")."""
    heard: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: heard.append(context))
    return heard


async def test_the_caller_gets_the_result_when_nobody_cancels() -> None:
    background = Background()
    assert await background.shielded(Operation(1.0)()) == "answer"
    assert len(background) == 0


async def test_a_cancelled_caller_leaves_at_once_and_the_operation_still_finishes() -> None:
    heard = unretrieved_errors()
    failures: list[BaseException] = []
    background = Background(on_error=failures.append)
    operation = Operation(5.0, error=RuntimeError("the deck refused"))
    caller = asyncio.create_task(background.shielded(operation()))
    await asyncio.sleep(1.0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    left_at = asyncio.get_running_loop().time()
    assert left_at == pytest.approx(1.0, abs=1e-6)  # the caller did not wait for it
    assert not operation.finished()
    assert len(background) == 1  # held strongly while it runs
    await asyncio.sleep(10.0)
    assert operation.finished()
    assert len(background) == 0
    # Its failure reached nobody else, so it goes to on_error, and asyncio lost nothing.
    assert [str(error) for error in failures] == ["the deck refused"]
    assert heard == []


async def test_waiting_when_cancelled_holds_the_caller_until_the_operation_ends() -> None:
    background = Background()
    operation = Operation(5.0)
    lock = asyncio.Lock()

    async def under_lock() -> str:
        async with lock:
            return await background.shielded(operation(), wait_when_cancelled=True)

    caller = asyncio.create_task(under_lock())
    await asyncio.sleep(1.0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # The cancellation came through only once the operation was done, so whatever the
    # caller held (the Control Point) stayed held until the deck answered.
    assert operation.finished()
    assert asyncio.get_running_loop().time() == pytest.approx(5.0, abs=1e-6)
    assert not lock.locked()


async def test_a_second_cancellation_stops_waiting_but_not_the_operation() -> None:
    background = Background()
    operation = Operation(5.0)
    caller = asyncio.create_task(background.shielded(operation(), wait_when_cancelled=True))
    await asyncio.sleep(1.0)
    caller.cancel()
    await asyncio.sleep(1.0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert asyncio.get_running_loop().time() == pytest.approx(2.0, abs=1e-6)
    assert not operation.finished()
    await asyncio.sleep(5.0)
    assert operation.finished()


async def test_an_operation_cancelled_by_its_own_side_reaches_the_caller_as_cancelled() -> None:
    # Bumble cancels an outstanding request when the link drops: the caller sees that
    # cancellation (and can tell it from its own), and nothing is left in the background.
    background = Background()
    request: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(1.0, request.cancel)
    with pytest.raises(asyncio.CancelledError):
        await background.shielded(request)
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0
    assert len(background) == 0


async def test_spawned_work_runs_to_its_end_and_its_failure_is_reported() -> None:
    heard = unretrieved_errors()
    failures: list[BaseException] = []
    background = Background(on_error=failures.append)
    operation = Operation(2.0, error=OSError("disconnect failed"))
    background.spawn(operation())
    await asyncio.sleep(3.0)
    assert operation.finished()
    assert [str(error) for error in failures] == ["disconnect failed"]
    assert heard == []


async def test_an_error_the_caller_received_is_not_reported_again() -> None:
    failures: list[BaseException] = []
    background = Background(on_error=failures.append)
    with pytest.raises(RuntimeError):
        await background.shielded(Operation(1.0, error=RuntimeError("refused"))())
    await asyncio.sleep(0)
    assert failures == []
