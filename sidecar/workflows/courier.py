"""Delivers the workflow outbox to other apps' sidecars, retrying until each message is acknowledged.

daprd retries a call to an app that is absent (its workflow reminder fires again: "the app may not be
available") and the workflow waits; likewise a message here stays in the outbox, in order per app, and
is sent again with a growing pause (wall time: a network retry, not workflow time) until the other
sidecar acknowledges it, which it does only once the message is committed there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import grpc

from sidecar.db import Database
from sidecar.workflows import outbox
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.history import pb
from sidecar.workflows.outbox import OutboxRow

__all__ = ["Courier", "Transport"]

log = logging.getLogger("sidecar.workflows.courier")

# (app id, what, fields, body) -> the answer once the app's sidecar acknowledged (empty for a message);
# raises WorkflowError with the status that sidecar refused a call with, another error if it was not reached.
Transport = Callable[[str, str, Mapping[str, str], bytes], Awaitable[bytes]]

_FIRST_PAUSE = 0.2
_MAX_PAUSE = 2.0


class Courier:
    def __init__(self, db: Database, app_id: str) -> None:
        self._db = db
        self._app_id = app_id
        self.transport: Transport | None = None  # set when the sidecar is on a host registry
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pause: dict[str, float] = {}  # per absent app: the next retry's pause
        self._warned: set[str] = set()
        self.sending = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wf-courier")
        self._wake.set()  # messages left from before a restart

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def purge(self, app_id: str, instance_id: str, force: bool) -> int:
        """Purge `instance_id` of app `app_id` and its descendants there (daprd's RecursivePurgeWorkflowState
        on the child's app): how many instances it deleted, 0 if it had none of that id. A call, not an
        outbox message: as in daprd, the purge answers only once the whole tree is gone, or fails."""
        what = f"failed to purge child workflow '{instance_id}' of app {app_id!r}"
        fields = {"instance": instance_id, "execution": "", "force": "true" if force else ""}
        try:
            answer = await self.call(app_id, "purge", fields, b"", what)
        except WorkflowError as exc:
            if exc.status == grpc.StatusCode.NOT_FOUND:
                return 0  # purged already (daprd ignores it likewise): purging again must succeed
            raise WorkflowError(exc.status, f"{what}: {exc.message}") from None
        return int(pb.PurgeInstancesResponse.FromString(answer).deletedInstanceCount)

    async def call(self, app_id: str, what: str, fields: Mapping[str, str], body: bytes, doing: str) -> bytes:
        """A call to app `app_id`'s sidecar, answered at once: its answer, or WorkflowError with the status it
        refused the call with (UNAVAILABLE, prefixed by `doing`, if it could not be reached)."""
        if self.transport is None:
            raise WorkflowError(
                grpc.StatusCode.UNAVAILABLE,
                f"{doing}: this sidecar runs without a host registry (--registry-dir)",
            )
        try:
            return await self.transport(app_id, what, fields, body)
        except WorkflowError:
            raise
        except Exception as exc:
            raise WorkflowError(
                grpc.StatusCode.UNAVAILABLE, f"{doing}: {exc or type(exc).__name__}"
            ) from None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            rows = await self._db.run(outbox.outbox_rows)
            failed: set[str] = set()
            for row in rows:
                if row.app_id in failed:
                    continue  # keep each app's messages in order
                if not await self._deliver(row):
                    failed.add(row.app_id)
            if failed:
                pause = min(self._pause.get(a, _FIRST_PAUSE) for a in failed)
                for app in failed:
                    self._pause[app] = min(self._pause.get(app, _FIRST_PAUSE) * 2, _MAX_PAUSE)
                asyncio.get_running_loop().call_later(pause, self._wake.set)

    async def _deliver(self, row: OutboxRow) -> bool:
        fields = {"instance": row.instance_id, "execution": row.execution_id}
        if row.extra is not None:
            fields["extra"] = base64.b64encode(row.extra).decode()
        self.sending += 1
        try:
            if self.transport is None:
                raise LookupError("this sidecar runs without a host registry (--registry-dir)")
            await self.transport(row.app_id, row.what, fields, row.body)
        except Exception as exc:
            if row.app_id not in self._warned:  # once per outage, not once per retry
                self._warned.add(row.app_id)
                log.warning(
                    "failed to dispatch workflow %s of %s to remote app %r (the app may not be available; "
                    "retrying until it is): %s",
                    row.what,
                    row.instance_id,
                    row.app_id,
                    exc or type(exc).__name__,
                )
            return False
        finally:
            self.sending -= 1
        await self._db.run(lambda c: outbox.outbox_delete(c, row.seq))
        if row.app_id in self._warned:
            log.info("app %r reached again; workflow messages for it are flowing", row.app_id)
            self._warned.discard(row.app_id)
        self._pause.pop(row.app_id, None)
        return True
