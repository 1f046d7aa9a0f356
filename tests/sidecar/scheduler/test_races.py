"""Writes racing a firing: a replaced or deleted job stays replaced or deleted."""

from __future__ import annotations

import asyncio

from sidecar.scheduler import Job


class Gate:
    """A handler that blocks each call until released, so a test can act while a job fires."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[Job] = []

    async def __call__(self, job: Job) -> None:
        self.calls.append(job)
        self.entered.set()
        await self.release.wait()

    async def wait_entered(self) -> None:
        await asyncio.wait_for(self.entered.wait(), 5)


async def test_put_while_firing_is_not_overwritten_by_the_completion(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    gate = Gate()
    scheduler.register("reminder", gate)
    await scheduler.put(Job("r||k", "reminder", clock.now(), payload=b"v1"))
    await gate.wait_entered()

    replacement = Job("r||k", "reminder", clock.now() + 100, payload=b"v2")
    await scheduler.put(replacement)
    gate.release.set()
    await scheduler.settled()
    assert await scheduler.get("r||k") == replacement  # v1's completion did not delete it

    clock.advance(100)
    await scheduler.settled()
    assert [job.payload for job in gate.calls] == [b"v1", b"v2"]
    assert await scheduler.get("r||k") is None


async def test_periodic_replaced_while_firing_keeps_the_new_schedule(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    gate = Gate()
    scheduler.register("reminder", gate)
    now = clock.now()
    await scheduler.put(Job("r||p", "reminder", now, period=1.0))
    await gate.wait_entered()

    replacement = Job("r||p", "reminder", now + 50, period=7.0, remaining=2)
    await scheduler.put(replacement)
    gate.release.set()
    await scheduler.settled()
    assert await scheduler.get("r||p") == replacement  # not advanced by the old period
    clock.advance(5)
    await scheduler.settled()
    assert len(gate.calls) == 1


async def test_delete_while_firing_is_not_undone(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    gate = Gate()
    scheduler.register("reminder", gate)
    await scheduler.put(Job("r||d", "reminder", clock.now(), period=1.0))
    await gate.wait_entered()

    assert await scheduler.delete("r||d") is True
    gate.release.set()
    await scheduler.settled()
    assert await scheduler.get("r||d") is None
    for _ in range(3):
        clock.advance(1.0)
        await scheduler.settled()
    assert len(gate.calls) == 1


async def test_handler_re_registering_its_own_key(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    seen: list[int] = []

    async def again(job: Job) -> None:
        n = int(job.payload)
        seen.append(n)
        if n < 3:  # like an actor re-registering its reminder from the callback
            await scheduler.put(Job(job.key, job.kind, clock.now() + 1, payload=b"%d" % (n + 1)))

    scheduler.register("reminder", again)
    await scheduler.put(Job("r||self", "reminder", clock.now(), payload=b"1"))
    for _ in range(4):
        await scheduler.settled()
        clock.advance(1.0)
    await scheduler.settled()
    assert seen == [1, 2, 3]
    assert await scheduler.count() == 0


async def test_delete_prefix_and_list_prefix(open_scheduler, clock, recorder):
    scheduler, _ = await open_scheduler()
    scheduler.register("reminder", recorder)
    now = clock.now()
    keys = ["a||1", "a||2", "a|x", "ab", "b", "a||\U0010ffff", "a||\U0010ffff||z"]
    await scheduler.put_many([Job(k, "reminder", now + 5) for k in keys])
    assert [j.key for j in await scheduler.list_prefix("a||")] == sorted(
        ["a||1", "a||2", "a||\U0010ffff", "a||\U0010ffff||z"]
    )
    assert [j.key for j in await scheduler.list_prefix("a||\U0010ffff")] == [
        "a||\U0010ffff",
        "a||\U0010ffff||z",
    ]
    assert await scheduler.delete_prefix("a||") == 4
    assert await scheduler.delete_prefix("a||") == 0
    clock.advance(10)
    await scheduler.settled()
    assert sorted(recorder.keys()) == sorted(["a|x", "ab", "b"])
    assert await scheduler.delete_prefix("") == 0


async def test_new_version_waits_for_the_running_one(open_scheduler, clock):
    scheduler, _ = await open_scheduler()
    gate = Gate()
    scheduler.register("reminder", gate)
    await scheduler.put(Job("r||k", "reminder", clock.now(), payload=b"v1"))
    await gate.wait_entered()

    await scheduler.put(Job("r||k", "reminder", clock.now(), payload=b"v2"))
    await asyncio.sleep(0.05)
    assert [job.payload for job in gate.calls] == [b"v1"]  # due, but the key is busy
    gate.release.set()
    await scheduler.settled()
    assert [job.payload for job in gate.calls] == [b"v1", b"v2"]
    assert await scheduler.count() == 0
