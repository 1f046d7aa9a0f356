"""The dev clock in a running sidecar: the offset every call to the app carries, what an advance waits for
(the busy sources `TimeSkipper` polls), and the offset kept in the data dir across restarts, so a restarted
sidecar resumes the time it had reached.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sidecar.clock import ManualClock
from sidecar.datadir import read_dev_clock, write_dev_clock
from sidecar.timeskip import TimeSkipper

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["DEV_CLOCK_HEADER", "restore_dev_clock", "save_dev_clock", "time_skipper"]

log = logging.getLogger("sidecar")

# Sent to the app on every call when the dev clock is on: the clock's offset from wall time, in seconds.
DEV_CLOCK_HEADER = "x-dev-clock-offset"


def time_skipper(sidecar: Sidecar) -> TimeSkipper | None:
    """With the dev clock: what an advance steps through and waits for (see sidecar.timeskip)."""
    clock = sidecar.clock
    if not isinstance(clock, ManualClock):
        return None
    # The app's handlers must see the instant that fired them: every call carries the offset.
    sidecar.channel.extra_headers = lambda: {DEV_CLOCK_HEADER: repr(clock.offset)}

    def channel_busy() -> str | None:
        n = sidecar.channel.in_flight
        return f"{n} call(s) to the app unanswered" if n else None

    def api_busy() -> str | None:
        n = sidecar.http_app.count if sidecar.http_app is not None else 0
        return f"{n} API request(s) being served" if n else None

    def pubsub_busy() -> str | None:
        if not sidecar.pubsub.busy():
            return None
        n = sum(sidecar.pubsub.pending().values())
        return f"{n} message(s) not yet acknowledged by subscribers"

    def outbox_busy() -> str | None:
        return "outbox events not yet handed to the broker" if sidecar.transactions.busy() else None

    async def timers_next(now: float) -> float | None:
        return sidecar.timers.next_due_after(now)

    return TimeSkipper(
        clock,
        busy={
            "scheduler": sidecar.scheduler.busy,
            "actor timers": sidecar.timers.busy,
            "app channel": channel_busy,
            "API": api_busy,
            "workflows": sidecar.workflows.busy,
            "pub/sub": pubsub_busy,
            "state outbox": outbox_busy,
        },
        next_due=[sidecar.scheduler.next_due_after, timers_next],
        on_step=lambda: save_dev_clock(sidecar),
    )


def restore_dev_clock(sidecar: Sidecar) -> None:
    """A restarted dev-clock sidecar resumes the time it had reached: never moves backwards."""
    clock = sidecar.clock
    if not isinstance(clock, ManualClock):
        return
    saved = read_dev_clock(sidecar.config.data_dir)
    if saved is None:
        return
    if saved > clock.offset:
        clock.advance(saved - clock.offset)
        log.info("dev clock restored: %+.0f s from wall time", clock.offset)


def save_dev_clock(sidecar: Sidecar) -> None:
    if isinstance(sidecar.clock, ManualClock):
        write_dev_clock(sidecar.config.data_dir, sidecar.clock.offset)
