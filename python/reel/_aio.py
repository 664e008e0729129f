"""asyncio iteration over reel's blocking calls.

An iteration takes the next item with ``next(0)`` on the event loop's thread (it never
waits) and, when there is none, waits in the loop's default executor with ``_ready``,
which takes nothing: a cancelled iteration (``asyncio.wait_for`` timing out, a task
cancelled) cannot lose an item to a worker that went on waiting after it. Such a wait
is kept per object (reader, stream or watch), and the next iteration over the object
waits for it to end before it takes anything, so items keep their order.
"""

import asyncio
import weakref
from typing import Any, AsyncIterator, Callable, Optional, Tuple

# Seconds one executor call may wait: bounds how long a cancelled iteration keeps a worker.
_POLL = 0.25

# The object waited on (``ready_fn.__self__``) -> its wait in a worker, possibly left
# running by a cancelled iteration.
_waits: "weakref.WeakKeyDictionary[Any, asyncio.Future]" = weakref.WeakKeyDictionary()


async def _settle(ready_fn: Callable[[Optional[float]], Any]) -> None:
    """Lets a wait a cancelled iteration left on this object end first."""
    fut = _waits.get(ready_fn.__self__)
    if fut is not None and not fut.done() and fut.get_loop() is asyncio.get_running_loop():
        await asyncio.shield(fut)


async def _wait_ready(ready_fn: Callable[[Optional[float]], Any]) -> None:
    """``ready_fn(_POLL)`` in a worker, shielded: a cancelled caller leaves it running."""
    loop = asyncio.get_running_loop()
    owner = ready_fn.__self__
    fut = _waits.get(owner)
    if fut is None or fut.done() or fut.get_loop() is not loop:
        fut = loop.run_in_executor(None, ready_fn, _POLL)
        _waits[owner] = fut
    await asyncio.shield(fut)


async def ready_aiter(
    next_fn: Callable[[Optional[float]], Any],
    ready_fn: Callable[[Optional[float]], Any],
) -> AsyncIterator[Any]:
    """Yields what ``next_fn(0)`` returns, waiting with ``ready_fn`` while it has none."""
    while True:
        await _settle(ready_fn)
        item = next_fn(0)
        if item is not None:
            yield item
        else:
            await _wait_ready(ready_fn)


async def ready_stream_aiter(
    next_or_end: Callable[[Optional[float]], Tuple[Any, bool]],
    ready_fn: Callable[[Optional[float]], Any],
) -> AsyncIterator[Any]:
    """Yields a stream's records until ``next_or_end`` says it ended."""
    while True:
        await _settle(ready_fn)
        item, ended = next_or_end(0)
        if item is not None:
            yield item
        elif ended:
            return
        else:
            await _wait_ready(ready_fn)
