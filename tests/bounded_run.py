"""One asyncio scenario per test, in a fresh event loop, that never hangs the suite.

``asyncio.run(asyncio.wait_for(scenario, timeout))`` waits without end for a
cancelled scenario whose clean-up is stuck; :func:`run` gives up instead and fails
the test (tests/e2e, tests/engine and tests/relay use it).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CANCEL_GRACE = 20.0
"""Seconds a timed-out scenario has to finish its clean-up once cancelled."""


def run(scenario: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run one scenario in a fresh event loop, failing after ``timeout`` seconds.

    Unlike ``asyncio.run(asyncio.wait_for(...))``, nothing here waits without end: a
    scenario whose clean-up still runs ``CANCEL_GRACE`` seconds after its cancellation,
    or a task left behind that ignores cancellation, fails the test instead of hanging
    the suite (its tasks are abandoned with the loop)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        task = loop.create_task(scenario)
        loop.run_until_complete(asyncio.wait({task}, timeout=timeout))
        if not task.done():
            task.cancel()
            loop.run_until_complete(asyncio.wait({task}, timeout=CANCEL_GRACE))
            if not task.done():
                raise AssertionError(
                    f"scenario timed out after {timeout} s and its clean-up was still "
                    f"running {CANCEL_GRACE} s after it was cancelled"
                )
            if task.cancelled():
                raise TimeoutError(f"scenario did not finish within {timeout} s")
            # It swallowed its cancellation somewhere and finished anyway: say so.
            warnings.warn(
                f"scenario ran into its {timeout} s timeout; something swallowed the "
                "cancellation and it finished anyway",
                RuntimeWarning,
                stacklevel=2,
            )
        return task.result()
    finally:
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left, give it a few seconds, and close the loop regardless."""
    try:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=5))
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), 5))
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), 5))
    except TimeoutError:
        pass
    finally:
        asyncio.set_event_loop(None)
        loop.close()
