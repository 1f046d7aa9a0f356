"""Memory follows the jobs due soon: far-future jobs stay on disk; loads are paged."""

from __future__ import annotations

from sidecar.scheduler import Job


async def test_far_future_jobs_stay_out_of_memory(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler(window=60.0)
    scheduler.register("reminder", recorder)
    base = clock.now() + 86_400
    await scheduler.put_many([Job(f"r||{i}", "reminder", base + i, payload=b'"x"') for i in range(100_000)])
    await scheduler.settled()
    assert await scheduler.count() == 100_000
    assert scheduler.heap_size() == 0
    assert scheduler.loaded_count() == 0

    now = clock.now()
    await scheduler.put_many([Job(f"soon||{i}", "reminder", now + 10 + i) for i in range(5)])
    assert scheduler.heap_size() == 5  # jobs due within the window go straight to the heap

    clock.advance(base - clock.now() - 30)  # the window now reaches ~30 jobs into the batch
    await scheduler.settled()
    assert 20 <= scheduler.loaded_count() <= 40
    assert recorder.keys() == [f"soon||{i}" for i in range(5)]


async def test_paged_loads_fire_every_job_once(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler(load_limit=10)
    scheduler.register("reminder", recorder)
    now = clock.now()
    # 95 jobs share one due instant, so pages must split ties by key without losing any.
    jobs = [Job(f"same||{i:03d}", "reminder", now + 5) for i in range(95)]
    jobs += [Job(f"later||{i:03d}", "reminder", now + 6 + i / 100) for i in range(40)]
    await scheduler.put_many(jobs)
    clock.advance(10)
    await scheduler.settled()
    assert sorted(recorder.keys()) == sorted(job.key for job in jobs)
    assert all(at >= job.due for _, at, job in recorder.calls)
    assert await scheduler.count() == 0


async def test_heap_is_compacted_under_churn(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    now = clock.now()
    for round_ in range(30):
        await scheduler.put_many([Job(f"r||{i}", "reminder", now + 30 + round_ / 100) for i in range(200)])
    assert scheduler.loaded_count() == 200
    assert scheduler.heap_size() <= 2 * 200 + 1024 + 200
