"""The durable job scheduler behind actor reminders and workflow timers (daprd's Scheduler).

Contract (other modules code against exactly this):
- `Job` rows live in the sidecar `Database` (table `scheduler_jobs`); only jobs due within `window`
  seconds are held in an in-memory heap, so memory grows with jobs due soon, not with all jobs.
- `register(kind, handler)`: handler for jobs of that kind. It is awaited when the job is due
  (`clock.now() >= job.due`, never earlier). Returning normally = success; raising = failure,
  retried per the failure policy (constant 1 s, 3 retries per tick, as daprd's Scheduler), then the
  job moves to its next tick (a one-shot job is then deleted). A due job whose kind has no handler
  waits (staged, as in daprd) until one registers.
- At-least-once: a job is deleted / advanced only after its handler succeeded; after a crash it
  fires again.
- `put` upserts by key (registering the same key again replaces the job and its schedule). A job
  replaced or deleted while it fires stays replaced or deleted: completions only touch the
  generation they fired.
- Periodic jobs stay on the grid `due + k * period`; after downtime the missed tick fires once,
  late, and the next one is the first grid tick in the future (see `model.next_tick`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sidecar.clock import Clock
from sidecar.db import Database
from sidecar.scheduler import store
from sidecar.scheduler.model import Job, JobHandler, RetryPolicy, next_tick, validate_job
from sidecar.scheduler.window import DueWindow, Entry
from sidecar.scheduler.write_queue import Failed, Queued, WriteQueue

__all__ = ["Job", "JobHandler", "RetryPolicy", "Scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    """Fires durable jobs at or after their due time; see the module docstring for the guarantees.

    Writes (puts, deletes, tick completions, window loads) go through one `WriteQueue` and are committed
    in batches, one transaction (one fsync) per batch, then applied to the in-memory window in the same
    order.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        window: float = 60.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 512,
        load_limit: int = 50_000,
        stop_timeout: float = 5.0,
    ) -> None:
        if window <= 0 or max_concurrency < 1 or load_limit < 2:
            raise ValueError("window must be > 0, max_concurrency >= 1 and load_limit >= 2")
        self._db = db
        self._clock = clock
        self._window_seconds = window
        self._retry = retry or RetryPolicy()
        self._max_concurrency = max_concurrency
        self._load_limit = load_limit
        self._stop_timeout = stop_timeout
        self._handlers: dict[str, tuple[JobHandler, RetryPolicy]] = {}
        self._window = DueWindow()
        self._generation = 0
        self._wake = asyncio.Event()
        self._writes = WriteQueue(db, self._apply, self._wake.set)
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._load_pending = False
        self._load_retry_at = 0.0
        self._state = "new"  # new -> running -> stopping -> stopped
        self._dispatcher: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def register(self, kind: str, handler: JobHandler, *, retry: RetryPolicy | None = None) -> None:
        """Route jobs of `kind` to `handler` (replacing an earlier one); `retry` overrides default.

        May be called after `start()`: jobs staged for a missing handler then fire.
        """
        self._handlers[kind] = (handler, retry or self._retry)
        self._window.handler_added(kind)
        self._wake.set()

    async def start(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"scheduler cannot start: it is {self._state}")
        await self._db.run(store.create_schema)
        self._generation = await self._db.run(store.max_generation)
        self._state = "running"
        self._writer = asyncio.create_task(self._writes.run(), name="scheduler-writer")
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="scheduler-dispatcher")

    async def stop(self) -> None:
        """Stop firing; give running handlers `stop_timeout` s, cancel the rest, flush writes."""
        if self._stop_task is None:
            if self._state != "running":
                self._state = "stopped"
                return
            self._state = "stopping"
            self._stop_task = asyncio.create_task(self._shutdown(), name="scheduler-stop")
        await asyncio.shield(self._stop_task)

    async def _shutdown(self) -> None:
        assert self._dispatcher is not None and self._writer is not None
        self._dispatcher.cancel()
        await asyncio.gather(self._dispatcher, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._stop_timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("scheduler stop: cancelled %d running handlers", len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        self._writes.close()
        await self._writer
        self._state = "stopped"

    # -- public operations ------------------------------------------------------------------------

    async def put(self, job: Job) -> None:
        await self.put_many([job])

    async def put_many(self, jobs: list[Job]) -> None:
        """Upsert `jobs` in one transaction (a later entry wins over an earlier same key)."""
        for job in jobs:
            validate_job(job)
        self._check_running()
        if not jobs:
            return
        stamped = []
        for job in jobs:
            self._generation += 1
            stamped.append((job, self._generation))
        await self._writes.submit(store.PutJobs(stamped))

    async def get(self, key: str) -> Job | None:
        """The stored job (its `due` is its next tick), or None."""
        self._check_running()
        return await self._db.run(lambda conn: store.get_job(conn, key))

    async def delete(self, key: str) -> bool:
        """Delete a job; True if it existed. A firing in progress ends without re-creating it."""
        self._check_running()
        return bool(await self._writes.submit(store.DeleteKey(key)))

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every job whose key starts with `prefix`; returns how many."""
        self._check_running()
        result = await self._writes.submit(store.DeletePrefix(prefix))
        assert isinstance(result, int)
        return result

    async def list_prefix(self, prefix: str) -> list[Job]:
        """Stored jobs whose key starts with `prefix`, by key."""
        self._check_running()
        return await self._db.run(lambda conn: store.list_prefix(conn, prefix))

    async def count(self) -> int:
        """How many jobs are stored."""
        self._check_running()
        return await self._db.run(store.count_jobs)

    def heap_size(self) -> int:
        """Items in the in-memory heap (grows with jobs due within the window, not all jobs)."""
        return self._window.heap_size()

    def loaded_count(self) -> int:
        """Jobs currently held in memory (queued, running or staged)."""
        return len(self._window.live)

    def busy(self) -> str | None:
        """What keeps the scheduler from being quiet at `now` (a job due, firing, or a write pending)."""
        if self._idle():
            return None
        return f"{self._inflight} job(s) firing, {self._writes.pending} write(s) pending"

    async def next_due_after(self, now: float) -> float | None:
        """The earliest instant after `now` at which a job (or a retry of one) fires."""
        self._check_running()
        stored = await self._db.run(lambda conn: store.next_due_after(conn, now))
        held = self._window.next_fire_at()
        times = [t for t in (stored, held) if t is not None and t > now]
        return min(times) if times else None

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait until no job due now is queued or running and no write is pending (for tests)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not self._idle():
            if loop.time() > end:
                raise TimeoutError(f"scheduler not settled after {timeout} s")
            await asyncio.sleep(0.002)

    # -- dispatcher -----------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            try:
                await self._dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not silently stop every reminder
                log.exception("scheduler dispatcher failed; continuing")
                await asyncio.sleep(0.1)

    async def _dispatch_once(self) -> None:
        now = self._clock.now()
        self._maybe_load(now)
        while self._inflight < self._max_concurrency:
            entry = self._window.pop_due(now, self._handlers.__contains__)
            if entry is None:
                break
            self._launch(entry)
        deadline = self._next_deadline()
        self._wake.clear()
        await self._sleep(deadline)

    def _launch(self, entry: Entry) -> None:
        handler, policy = self._handlers[entry.job.kind]
        self._inflight += 1
        task = asyncio.create_task(self._fire(entry, handler, policy), name=f"job:{entry.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, entry: Entry, handler: JobHandler, policy: RetryPolicy) -> None:
        job = entry.job
        try:
            await handler(job)
            ok = True
        except Exception:
            ok = False
            log.warning(
                "job %s (%s) failed, attempt %d",
                job.key,
                job.kind,
                entry.attempt + 1,
                exc_info=True,
            )
        finally:
            self._inflight -= 1
            self._wake.set()
        now = self._clock.now()
        if not ok and policy.should_retry(entry.attempt):
            self._window.retry(entry, now + policy.interval)
            return
        if not ok:
            log.warning("job %s gave up after %d attempts; moving on", job.key, entry.attempt + 1)
        completion = store.Complete(job.key, entry.generation, next_tick(job, now))
        self._writes.enqueue(Queued(completion, None, entry))

    def _load_wanted(self, now: float) -> bool:
        """Whether the horizon should move now (half a window left, or a paged load drained)."""
        if self._load_pending or now < self._load_retry_at or self._state != "running":
            return False
        horizon_due = self._window.horizon[0]
        if horizon_due >= now + self._window_seconds:
            return False
        if self._window.capped:
            return self._window.active_count() < self._load_limit // 2
        return horizon_due < now + self._window_seconds / 2

    def _maybe_load(self, now: float) -> None:
        if not self._load_wanted(now):
            return
        self._load_pending = True
        after_due, after_key = self._window.horizon
        target = now + self._window_seconds
        self._writes.enqueue(Queued(store.LoadWindow(after_due, after_key, target, self._load_limit)))

    def _load_deadline(self) -> float | None:
        if self._load_pending:
            return None
        if self._load_retry_at and self._clock.now() < self._load_retry_at:
            return self._load_retry_at
        if self._window.capped:
            return None  # the next load waits for the window to drain, which wakes the loop
        return self._window.horizon[0] - self._window_seconds / 2

    def _next_deadline(self) -> float | None:
        times = [self._load_deadline()]
        if self._inflight < self._max_concurrency:
            times.append(self._window.next_fire_at())
        present = [t for t in times if t is not None]
        return min(present) if present else None

    async def _sleep(self, deadline: float | None) -> None:
        if self._wake.is_set():
            return
        wake = asyncio.ensure_future(self._wake.wait())
        waiters: set[asyncio.Future[Any]] = {wake}
        if deadline is not None:
            waiters.add(asyncio.ensure_future(self._clock.wait_until(deadline)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _idle(self) -> bool:
        now = self._clock.now()
        if self._writes.pending or self._inflight or self._window.running or self._load_pending:
            return False
        upcoming = self._window.next_fire_at()
        return (upcoming is None or upcoming > now) and not self._load_wanted(now)

    # -- committed writes -----------------------------------------------------------------------

    def _check_running(self) -> None:
        # While stopping, handlers still finishing may write (e.g. re-register a reminder).
        if self._state not in ("running", "stopping") or self._writes.closing:
            raise RuntimeError(f"scheduler is {self._state}, not running")

    def _apply(self, queued: Queued, result: object) -> None:
        op, window = queued.op, self._window
        if isinstance(result, Failed):
            self._apply_failure(queued, result.error)
            return
        if isinstance(op, store.PutJobs):
            for job, generation in op.jobs:
                window.offer(job, generation)
        elif isinstance(op, store.DeleteKey):
            window.drop(op.key)
        elif isinstance(op, store.DeletePrefix):
            window.drop_prefix(op.prefix)
        elif isinstance(op, store.Complete):
            assert queued.entry is not None
            window.finish(queued.entry, op.next)
        elif isinstance(op, store.LoadWindow):
            assert isinstance(result, list)
            window.loaded(result, op.until, op.limit)
            self._load_pending = False
        if queued.future is not None and not queued.future.done():
            queued.future.set_result(result)

    def _apply_failure(self, queued: Queued, error: Exception) -> None:
        op = queued.op
        if isinstance(op, store.Complete) and queued.entry is not None:
            # Not recorded: fire the tick again later (at-least-once).
            log.error("could not record completion of job %s: %s", op.key, error)
            self._window.retry(queued.entry, self._clock.now() + self._retry.interval)
        elif isinstance(op, store.LoadWindow):
            log.error("could not load due jobs: %s", error)
            self._load_pending = False
            self._load_retry_at = self._clock.now() + 1.0
        if queued.future is not None and not queued.future.done():
            queued.future.set_exception(error)
