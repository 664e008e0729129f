"""asyncio iteration over reel's blocking calls.

Each wait runs in the event loop's default executor with a short timeout, so the loop
is never blocked, and a cancelled task leaves at most one worker waiting for a fraction
of a second.
"""

import asyncio
from typing import Any, AsyncIterator, Callable, Optional, Tuple

# Seconds one executor call may wait: bounds how long a cancelled iteration keeps a worker.
_POLL = 0.25


async def blocking_aiter(next_fn: Callable[[Optional[float]], Any]) -> AsyncIterator[Any]:
    """Yields what ``next_fn(timeout)`` returns, skipping its ``None`` (nothing yet)."""
    loop = asyncio.get_running_loop()
    while True:
        item = await loop.run_in_executor(None, next_fn, _POLL)
        if item is not None:
            yield item


async def stream_aiter(
    next_or_end: Callable[[Optional[float]], Tuple[Any, bool]],
) -> AsyncIterator[Any]:
    """Yields a stream's records until ``next_or_end`` says it ended."""
    loop = asyncio.get_running_loop()
    while True:
        item, ended = await loop.run_in_executor(None, next_or_end, _POLL)
        if item is not None:
            yield item
        elif ended:
            return
