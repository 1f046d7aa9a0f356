"""When jobs fire: never early, periodic repetitions and ttl, the retry policy, staging, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.scheduler import Job, RetryPolicy


async def test_never_fires_before_due(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    due = clock.now() + 10
    await scheduler.put(Job("r||a", "reminder", due))

    clock.advance(9.9)
    await scheduler.settled()
    assert recorder.calls == []

    clock.advance(0.2)
    await scheduler.settled()
    assert recorder.keys() == ["r||a"]
    _, fired_at, job = recorder.calls[0]
    assert fired_at >= job.due == due
    assert await scheduler.get("r||a") is None  # a one-shot job is gone once it succeeded


async def test_job_due_now_fires_promptly_without_advancing(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    await scheduler.put(Job("r||now", "reminder", clock.now()))
    await scheduler.settled()
    assert recorder.keys() == ["r||now"]


async def test_large_jump_loads_and_fires_jobs_beyond_the_window(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler(window=60.0)
    scheduler.register("reminder", recorder)
    now = clock.now()
    await scheduler.put_many(
        [Job("r||hour", "reminder", now + 3600), Job("r||day", "reminder", now + 86_400)]
    )
    await scheduler.settled()
    assert scheduler.loaded_count() == 0

    clock.advance(3600)
    await scheduler.settled()
    assert recorder.keys() == ["r||hour"]
    clock.advance(86_400)
    await scheduler.settled()
    assert recorder.keys() == ["r||hour", "r||day"]
    assert all(at >= job.due for _, at, job in recorder.calls)


async def test_periodic_job_stops_after_remaining(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    due = clock.now() + 1
    await scheduler.put(Job("r||p", "reminder", due, period=1.0, remaining=3))

    for expected in (1, 2, 3, 3, 3):
        clock.advance(1.0)
        await scheduler.settled()
        assert recorder.count("r||p") == expected
    assert [job.due for _, _, job in recorder.calls] == [due, due + 1, due + 2]
    assert [job.remaining for _, _, job in recorder.calls] == [3, 2, 1]
    assert await scheduler.get("r||p") is None


async def test_periodic_job_stops_at_ttl(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    due = clock.now() + 1
    await scheduler.put(Job("r||ttl", "reminder", due, period=1.0, expires=due + 2.5))

    for _ in range(6):
        clock.advance(1.0)
        await scheduler.settled()
    assert [job.due for _, _, job in recorder.calls] == [due, due + 1, due + 2]
    assert await scheduler.get("r||ttl") is None


async def test_periodic_job_after_downtime_fires_once_then_resumes_on_grid(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    due = clock.now() + 1
    await scheduler.put(Job("r||p", "reminder", due, period=10.0))

    clock.advance(1000)
    await scheduler.settled()
    assert recorder.count("r||p") == 1
    stored = await scheduler.get("r||p")
    assert stored is not None
    assert clock.now() < stored.due <= clock.now() + 10
    assert (stored.due - due) / 10 == pytest.approx(round((stored.due - due) / 10))


async def test_failing_handler_is_retried_three_times_then_given_up(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    recorder.failures["r||f"] = 100
    await scheduler.put(Job("r||f", "reminder", clock.now()))

    await scheduler.settled()
    assert recorder.count("r||f") == 1
    for expected in (2, 3, 4):
        clock.advance(0.9)
        await scheduler.settled()
        assert recorder.count("r||f") == expected - 1  # retries wait the full interval
        clock.advance(0.2)
        await scheduler.settled()
        assert recorder.count("r||f") == expected
    clock.advance(10)
    await scheduler.settled()
    assert recorder.count("r||f") == 4  # 1 call + 3 retries, as daprd's default policy
    assert await scheduler.get("r||f") is None


async def test_retry_that_succeeds_completes_the_job(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    recorder.failures["r||f"] = 2
    await scheduler.put(Job("r||f", "reminder", clock.now()))
    for _ in range(5):
        await scheduler.settled()
        clock.advance(1.0)
    await scheduler.settled()
    assert recorder.count("r||f") == 3
    assert await scheduler.get("r||f") is None


async def test_periodic_job_moves_to_next_tick_after_giving_up(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    recorder.failures["r||p"] = 4
    due = clock.now() + 1
    await scheduler.put(Job("r||p", "reminder", due, period=30.0, remaining=5))
    for _ in range(6):
        clock.advance(1.0)
        await scheduler.settled()
    assert recorder.count("r||p") == 4
    stored = await scheduler.get("r||p")
    assert stored is not None
    assert (stored.due, stored.remaining) == (due + 30, 4)

    clock.advance(30)
    await scheduler.settled()
    assert recorder.count("r||p") == 5  # the next tick fires normally


async def test_per_kind_retry_policy(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler(retry=RetryPolicy(interval=5.0, max_retries=1))
    scheduler.register("drop", recorder, retry=RetryPolicy(max_retries=0))
    scheduler.register("slow", recorder)
    recorder.failures.update({"d": 10, "s": 10})
    await scheduler.put_many([Job("d", "drop", clock.now()), Job("s", "slow", clock.now())])
    await scheduler.settled()
    clock.advance(4.0)
    await scheduler.settled()
    assert (recorder.count("d"), recorder.count("s")) == (1, 1)
    clock.advance(1.5)
    await scheduler.settled()
    clock.advance(10)
    await scheduler.settled()
    assert (recorder.count("d"), recorder.count("s")) == (1, 2)
    assert await scheduler.count() == 0


async def test_job_without_handler_waits_until_one_registers(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    await scheduler.put(Job("w||1", "workflow-timer", clock.now()))
    clock.advance(5)
    await scheduler.settled()
    assert await scheduler.count() == 1

    scheduler.register("workflow-timer", recorder)
    await scheduler.settled()
    assert recorder.keys() == ["w||1"]
    assert await scheduler.count() == 0


async def test_concurrency_is_bounded_and_same_key_never_overlaps(open_scheduler, clock):
    scheduler, _ = await open_scheduler(max_concurrency=3)
    release = asyncio.Event()
    running: dict[str, int] = {}
    peak = {"all": 0, "same_key": 0}
    done: list[bytes] = []

    async def handler(job: Job) -> None:
        running[job.key] = running.get(job.key, 0) + 1
        peak["all"] = max(peak["all"], sum(running.values()))
        peak["same_key"] = max(peak["same_key"], running[job.key])
        await release.wait()
        running[job.key] -= 1
        done.append(job.payload)

    scheduler.register("reminder", handler)
    now = clock.now()
    await scheduler.put_many([Job(f"k{i}", "reminder", now, payload=b"%d" % i) for i in range(6)])
    for _ in range(200):
        if sum(running.values()) == 3:
            break
        await asyncio.sleep(0.005)
    # a new version of a running key is due now but must wait for the running one
    await scheduler.put(Job("k0", "reminder", now, payload=b"k0-v2"))
    await asyncio.sleep(0.05)
    assert sum(running.values()) == 3
    release.set()
    await scheduler.settled()
    assert peak == {"all": 3, "same_key": 1}
    assert sorted(done) == sorted([b"%d" % i for i in range(6)] + [b"k0-v2"])
    assert await scheduler.count() == 0


async def test_invalid_jobs_are_rejected(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    now = clock.now()
    for job in (
        Job("", "reminder", now),
        Job("k", "", now),
        Job("k", "reminder", float("nan")),
        Job("k", "reminder", now, period=0.0),
        Job("k", "reminder", now, period=1.0, remaining=0),
        Job("k", "reminder", now, period=1.0, expires=now),
    ):
        with pytest.raises(ValueError):
            await scheduler.put(job)
    assert await scheduler.count() == 0


async def test_lifecycle_errors(open_scheduler, clock):
    scheduler, _ = await open_scheduler(start=False)
    with pytest.raises(RuntimeError):
        await scheduler.put(Job("k", "reminder", clock.now()))
    await scheduler.start()
    with pytest.raises(RuntimeError):
        await scheduler.start()
    await scheduler.stop()
    with pytest.raises(RuntimeError):
        await scheduler.put(Job("k", "reminder", clock.now()))
    await scheduler.stop()  # idempotent
