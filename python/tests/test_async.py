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
