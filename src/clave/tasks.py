"""Ending asyncio tasks one owns, for the asyncio glue of the engine and the relay."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until each has finished.

    Unlike ``with suppress(CancelledError): await task``, a cancellation of the *caller*
    while it waits is not swallowed: it propagates, so a cancelled ``close()`` stops
    (the tasks were told to stop all the same). A task that failed with another
    exception before it saw the cancellation re-raises it here, as awaiting it would.
    """
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error


__all__ = ["cancel_and_wait"]
