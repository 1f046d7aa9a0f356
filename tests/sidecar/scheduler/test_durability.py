"""Jobs survive a restart, and a firing that did not finish fires again (at-least-once)."""

from __future__ import annotations

import asyncio

from sidecar.scheduler import Job


async def test_jobs_survive_restart_and_deleted_stay_deleted(open_scheduler, clock, recorder):
    first, db = await open_scheduler()
    now = clock.now()
    await first.put_many(
        [
            Job("r||a", "reminder", now + 10, payload=b'"a"'),
            Job("r||b", "reminder", now + 20),
            Job("r||c", "reminder", now + 30, period=5.0, remaining=2, expires=now + 100),
        ]
    )
    assert await first.delete("r||b") is True
    assert await first.delete("r||b") is False
    await first.stop()
    db.close()

    clock.advance(25)  # "a" becomes due while nothing runs
    second, _ = await open_scheduler()
    second.register("reminder", recorder)
    await second.settled()
    assert recorder.keys() == ["r||a"]
    assert recorder.calls[0][2] == Job("r||a", "reminder", now + 10, payload=b'"a"')

    clock.advance(5)
    await second.settled()
    clock.advance(5)
    await second.settled()
    assert recorder.keys() == ["r||a", "r||c", "r||c"]
    assert await second.count() == 0


async def test_periodic_progress_is_durable(open_scheduler, clock, recorder):
    first, db = await open_scheduler()
    first.register("reminder", recorder)
    due = clock.now() + 1
    await first.put(Job("r||p", "reminder", due, period=60.0, remaining=3))
    clock.advance(1)
    await first.settled()
    await first.stop()
    db.close()

    second, _ = await open_scheduler()
    assert await second.get("r||p") == Job("r||p", "reminder", due + 60, period=60.0, remaining=2)


async def test_firing_interrupted_by_shutdown_fires_again_after_restart(open_scheduler, clock, recorder):
    first, db = await open_scheduler(stop_timeout=0.05)
    entered = asyncio.Event()

    async def hangs(job: Job) -> None:
        entered.set()
        await asyncio.Event().wait()

    first.register("reminder", hangs)
    await first.put(Job("r||x", "reminder", clock.now()))
    await asyncio.wait_for(entered.wait(), 5)
    await first.stop()  # the handler is cancelled: its success was never recorded
    db.close()

    second, _ = await open_scheduler()
    second.register("reminder", recorder)
    await second.settled()
    assert recorder.keys() == ["r||x"]
    assert await second.count() == 0


async def test_stop_waits_for_running_handlers_and_records_them(open_scheduler, clock, recorder):
    first, db = await open_scheduler()
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow(job: Job) -> None:
        entered.set()
        await release.wait()

    first.register("reminder", slow)
    await first.put(Job("r||s", "reminder", clock.now()))
    await asyncio.wait_for(entered.wait(), 5)
    stopping = asyncio.create_task(first.stop())
    await asyncio.sleep(0.02)
    release.set()
    await stopping
    db.close()

    second, _ = await open_scheduler()
    assert await second.count() == 0  # completed during stop, so it does not fire again


async def test_generations_keep_growing_across_restarts(open_scheduler, clock):
    def generation(conn):
        return conn.execute("SELECT generation FROM scheduler_jobs WHERE key = 'r||a'").fetchone()[0]

    first, db = await open_scheduler()
    await first.put(Job("r||a", "reminder", clock.now() + 1000))
    old = await db.run(generation)
    await first.stop()
    db.close()

    # A replacement after restart must not reuse a generation, or a completion of the old
    # version could delete the new one.
    second, db2 = await open_scheduler()
    await second.put(Job("r||a", "reminder", clock.now() + 1000, payload=b"v2"))
    assert await db2.run(generation) > old


async def test_concurrent_stops_both_wait_for_the_flush(open_scheduler, clock, recorder):
    first, db = await open_scheduler()
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow(job: Job) -> None:
        entered.set()
        await release.wait()

    first.register("reminder", slow)
    await first.put(Job("r||s", "reminder", clock.now()))
    await asyncio.wait_for(entered.wait(), 5)
    stops = [asyncio.create_task(first.stop()) for _ in range(2)]
    await asyncio.sleep(0.02)
    assert not any(stop.done() for stop in stops)
    release.set()
    await asyncio.gather(*stops)
    assert await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM scheduler_jobs").fetchone()[0]) == 0
