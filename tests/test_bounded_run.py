"""The suite's scenario runner never hangs: a timed-out scenario whose clean-up
ignores its cancellation fails the test within the grace period."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import bounded_run


def test_a_scenario_returns_its_value() -> None:
    async def scenario() -> int:
        await asyncio.sleep(0)
        return 7

    assert bounded_run.run(scenario(), 5) == 7


def test_a_slow_scenario_times_out() -> None:
    async def scenario() -> None:
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError, match=r"within 0\.2 s"):
        bounded_run.run(scenario(), 0.2)


@pytest.mark.timeout(60)  # without the grace this would hang: fail fast instead
def test_a_clean_up_that_ignores_cancellation_fails_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bounded_run, "CANCEL_GRACE", 0.3)
    stuck = asyncio.Event()

    async def scenario() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            while True:  # e.g. a close() that swallows CancelledError and waits forever
                try:
                    await stuck.wait()
                except asyncio.CancelledError:
                    continue

    with pytest.raises(AssertionError, match="still running"):
        bounded_run.run(scenario(), 0.2)


def test_a_scenario_that_swallows_its_timeout_is_reported() -> None:
    async def scenario() -> int:
        with contextlib.suppress(asyncio.CancelledError):  # as some clean-ups do
            await asyncio.sleep(60)
        return 1

    with pytest.warns(RuntimeWarning, match="ran into its 0.2 s timeout"):
        assert bounded_run.run(scenario(), 0.2) == 1
