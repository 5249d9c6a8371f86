"""cancel_and_wait: tasks end, and a cancellation of the one waiting is never swallowed."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from clave.tasks import cancel_and_wait


async def slow_to_stop(release: asyncio.Event, stopping: asyncio.Event) -> None:
    """A task that, told to stop, needs ``release`` before it does."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        stopping.set()
        await release.wait()
        raise


def test_a_cancelled_caller_stays_cancelled() -> None:
    async def scenario() -> tuple[bool, bool]:
        release, stopping = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(slow_to_stop(release, stopping))
        await asyncio.sleep(0)
        closer = asyncio.create_task(cancel_and_wait(task))
        await stopping.wait()  # the task is stopping; the closer waits for it
        closer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closer
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return closer.cancelled(), task.cancelled()

    assert asyncio.run(scenario()) == (True, True)


def test_tasks_end_and_a_failure_is_raised() -> None:
    async def fails(started: asyncio.Event) -> None:
        started.set()
        raise ValueError("broken")

    async def scenario() -> None:
        started = asyncio.Event()
        broken = asyncio.create_task(fails(started))
        idle = asyncio.create_task(asyncio.Event().wait())
        await started.wait()
        with pytest.raises(ValueError, match="broken"):
            await cancel_and_wait(broken, idle)
        assert idle.cancelled() and broken.done()
        await cancel_and_wait()  # nothing to end

    asyncio.run(scenario())
