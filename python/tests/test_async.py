"""asyncio iteration over readers, live streams and watches, without blocking the loop."""

import asyncio
import threading

import reel


def test_reader_stream_and_watch_aiter(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    kv = reel.KvStore(tmp_path / "kv")

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        threading.Timer(0.3, lambda: spool.append_many(range(3))).start()

        got = []
        async for rec in spool.reader().aiter():
            got.append(rec.value)
            if len(got) == 3:
                break
        live = []
        async for rec in spool.stream(live=True, lt=3).aiter():
            live.append(rec.seq)
        events = []
        async for ev in kv.watch("w", fetch=True).aiter():
            events.append(ev)
            if ev == {"synced": True}:
                threading.Timer(0.1, lambda: kv.set("w.x", 1)).start()
            if "value" in ev:
                break
        tick.cancel()
        return got, live, events, ticks

    got, live, events, ticks = asyncio.run(asyncio.wait_for(main(), 30))
    assert got == [0, 1, 2]
    assert live == [0, 1, 2]
    assert events == [{"synced": True}, {"path": "w.x", "value": 1, "rev": 0}]
    assert ticks >= 10, "the event loop was blocked while waiting"


def test_a_cancelled_wait_loses_nothing(tmp_path):
    """A wait cut short by ``asyncio.wait_for`` used to leave a worker that went on
    waiting, took the next record (or event) from the reader, and dropped it: the
    program never saw it, and its next commit made the loss permanent."""
    spool = reel.Spool(tmp_path / "s")
    kv = reel.KvStore(tmp_path / "kv")
    reader = spool.reader("r")
    live = spool.stream(live=True)
    watch = kv.watch()

    async def cut_short(it):
        try:
            return await asyncio.wait_for(it.__anext__(), 0.05)
        except asyncio.TimeoutError:
            return None

    async def main():
        assert await cut_short(reader.aiter()) is None
        assert await cut_short(live.aiter()) is None
        assert await cut_short(watch.aiter()) is None
        spool.append("first")
        kv.set("a", 1)
        await asyncio.sleep(0.5)  # the cancelled waits see the record and end
        # A blocking call and a new async iteration both still get them.
        rec = reader.next(timeout=1)
        assert rec is not None and rec.value == "first"
        assert (await live.aiter().__anext__()).value == "first"
        assert watch.next(timeout=1) == {"path": "a", "value": 1, "rev": 0}
        spool.append("second")
        assert await cut_short(reader.aiter()) is not None

    asyncio.run(asyncio.wait_for(main(), 30))
    reader.commit()
    assert reader.position == 2
