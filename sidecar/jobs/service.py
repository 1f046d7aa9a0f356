"""The Jobs API behind both wires: an app's jobs kept on the sidecar's durable Scheduler and triggered on
the app channel as daprd does (HTTP `POST /job/<name>`, gRPC `OnJobEvent`), with daprd's errors.

Each job is one Scheduler job (kind `app-job`, key `job||<name>`) due at its next trigger; its payload is
the whole job (`model.JobState`), so jobs survive restarts and a dev clock steps through them. A trigger
re-arms the key with the next instant (go-etcd-cron's `Next(count, last)`: missed instants after downtime
are caught up one by one) or, on a failed delivery, with the retry its failure policy allows (daprd's
default: constant 1 s, 3 retries). While app health checks report the app unhealthy, a trigger fails
(daprd: "app is not in a healthy state") and is retried per that policy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import grpc
from dapr.proto.runtime.v1 import jobs_pb2
from google.protobuf import json_format, struct_pb2

from sidecar import gojson
from sidecar.appchannel import AppChannel, AppUnhealthy, ChannelBase
from sidecar.appchannel_grpc import AppCallError, GrpcAppChannel
from sidecar.clock import Clock
from sidecar.jobs.errors import RichError, rich
from sidecar.jobs.model import JobError, JobState, accept, validate_name
from sidecar.scheduler import Scheduler
from sidecar.scheduler.model import Job, RetryPolicy

__all__ = ["JOB_KIND", "KEY_PREFIX", "JobsService"]

log = logging.getLogger("sidecar.jobs")

JOB_KIND = "app-job"
KEY_PREFIX = "job||"
NAMESPACE = "default"  # daprd's namespace outside Kubernetes
_VALUE_TYPE = "type.googleapis.com/google.protobuf.Value"
_DEFAULT_POLICY = RetryPolicy(interval=1.0, max_retries=3)


class JobsService:
    def __init__(
        self,
        scheduler: Scheduler,
        channel: ChannelBase,
        clock: Clock,
        app_id: str,
        app_protocol: str = "http",
    ) -> None:
        self._scheduler = scheduler
        self._channel = channel
        self._clock = clock
        self._app_id = app_id
        self._app_protocol = app_protocol
        self._lock = asyncio.Lock()  # an overwrite=false check and its put are one step
        self.triggered: dict[str, int] = {}  # deliveries the app accepted, per job (for tests and metadata)
        # Delivery failures are handled here (the job's own failure policy), so a raise means a sidecar
        # fault; the Scheduler then retries as daprd's Scheduler would.
        scheduler.register(JOB_KIND, self._fire)

    def _meta(self) -> dict[str, str]:
        return {"appID": self._app_id, "namespace": NAMESPACE}

    def _need_name(self, name: str) -> None:
        if not name:
            raise rich(
                "DAPR_SCHEDULER_JOB_NAME_EMPTY",
                "Name is empty",
                400,
                grpc.StatusCode.INVALID_ARGUMENT,
                self._meta(),
            )

    def _full_name(self, name: str) -> str:
        return f"app||{NAMESPACE}||{self._app_id}||{name}"

    # -- API ----------------------------------------------------------------------------------

    async def schedule(self, job: jobs_pb2.Job | None, overwrite: bool) -> None:
        if job is None:
            raise rich(
                "DAPR_SCHEDULER_EMPTY", "Job is empty", 400, grpc.StatusCode.INVALID_ARGUMENT, self._meta()
            )
        self._need_name(job.name)
        if not job.HasField("schedule") and not job.HasField("due_time"):
            raise rich(
                "DAPR_SCHEDULER_SCHEDULE_EMPTY",
                "Schedule is empty",
                400,
                grpc.StatusCode.INVALID_ARGUMENT,
                self._meta(),
            )
        try:
            validate_name(self._full_name(job.name))
            state = accept(job, self._clock.now())
        except JobError as exc:
            raise self._schedule_error(str(exc), grpc.StatusCode.UNKNOWN) from None
        key = KEY_PREFIX + job.name
        async with self._lock:
            if not overwrite and await self._scheduler.get(key) is not None:
                raise self._schedule_error(
                    f"job already exists: '{self._full_name(job.name)}'", grpc.StatusCode.ALREADY_EXISTS
                )
            await self._arm(key, state)

    def _schedule_error(self, reason: str, code: grpc.StatusCode) -> RichError:
        # The Scheduler's answer wrapped by daprd (`SchedulerScheduleJob`): Unknown is reported as Internal.
        text = f"rpc error: code = {_go_code(code)} desc = {reason}"
        if code == grpc.StatusCode.UNKNOWN and not reason.startswith("job name"):
            text = f"rpc error: code = Unknown desc = job failed validation: {reason}"
        shown = grpc.StatusCode.INTERNAL if code == grpc.StatusCode.UNKNOWN else code
        status = 409 if shown == grpc.StatusCode.ALREADY_EXISTS else 500
        return rich(
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            f"failed to schedule job due to: {text}",
            status,
            shown,
            self._meta(),
        )

    async def get(self, name: str) -> jobs_pb2.Job:
        self._need_name(name)
        stored = await self._scheduler.get(KEY_PREFIX + name)
        if stored is None:
            raise rich(
                "DAPR_SCHEDULER_GET_JOB",
                f"failed to get job due to: rpc error: code = NotFound desc = job not found: {name}",
                500,
                grpc.StatusCode.INTERNAL,
                self._meta(),
            )
        return JobState.decode(stored.payload).job

    async def delete(self, name: str) -> None:
        self._need_name(name)
        await self._scheduler.delete(KEY_PREFIX + name)  # deleting an unknown job succeeds, as in etcd

    async def delete_prefix(self, prefix: str) -> None:
        """Every job whose name starts with `prefix` (all of the app's for ""), as Scheduler's
        `DeleteByNamePrefix` for the app's job target; none matching is no error."""
        await self._scheduler.delete_prefix(KEY_PREFIX + prefix)

    async def list(self) -> list[jobs_pb2.Job]:
        return [JobState.decode(j.payload).job for j in await self._scheduler.list_prefix(KEY_PREFIX)]

    # -- triggering ---------------------------------------------------------------------------

    async def _arm(self, key: str, state: JobState) -> None:
        due = state.next_due()
        if due is None:
            await self._scheduler.delete(key)
            return
        await self._scheduler.put(Job(key, JOB_KIND, due, payload=state.encode()))

    async def _fire(self, stored: Job) -> None:
        state = JobState.decode(stored.payload)
        name = state.job.name
        try:
            await self._deliver(state.job)
        except _DeliveryFailed as exc:
            retry = _retry_after(state.job, state.attempt)
            if retry is not None:
                log.warning("job %s: %s; retrying in %.3g s", name, exc, retry)
                # Same key, same trigger: the new generation replaces this one when it completes.
                retried = replace(state, attempt=state.attempt + 1)
                await self._scheduler.put(
                    replace(stored, due=self._clock.now() + retry, payload=retried.encode())
                )
                return
            log.error("job %s: %s; giving up this trigger", name, exc)
        else:
            self.triggered[name] = self.triggered.get(name, 0) + 1
        # The trigger is done (delivered, or given up): the next instant follows the one that fired.
        # (A retry's own due time is not the trigger's instant: `next_due` recomputes that.)
        await self._arm(stored.key, state.triggered(state.next_due() or stored.due))

    async def _deliver(self, job: jobs_pb2.Job) -> None:
        if not self._channel.configured:
            raise _DeliveryFailed("received job, but app channel not initialized")
        if not self._channel.healthy():
            raise _DeliveryFailed(str(AppUnhealthy()))
        if isinstance(self._channel, GrpcAppChannel):
            try:
                await self._channel.on_job_event(job.name, job.data if job.HasField("data") else None)
            except (AppCallError, AppUnhealthy, OSError, TimeoutError) as exc:
                raise _DeliveryFailed(
                    f"error returned from app channel while sending triggered job to app: {exc}"
                ) from exc
            return
        assert isinstance(self._channel, AppChannel)
        try:
            response = await self._channel.request(
                "POST",
                "/job/" + job.name.lstrip("/"),
                body=_callback_body(job),
                headers={"content-type": "application/json"},
            )
        except (OSError, TimeoutError) as exc:
            raise _DeliveryFailed(
                f"error returned from app channel while sending triggered job to app: {exc}"
            ) from exc
        if 200 <= response.status <= 299:
            return
        if response.status == 404:  # daprd: non-retriable, counted as done
            log.error(
                "non-retriable error returned from app while processing triggered job %s: 404", job.name
            )
            return
        raise _DeliveryFailed(
            f"unexpected status code returned from app while processing triggered job {job.name}."
            f" status code returned: {response.status}"
        )


class _DeliveryFailed(Exception):
    pass


def _callback_body(job: jobs_pb2.Job) -> bytes:
    """daprd's HTTP channel: a `google.protobuf.Value` as its JSON, anything else as its bytes, trimmed."""
    if not job.HasField("data"):
        return b""
    if job.data.type_url == _VALUE_TYPE:
        value = struct_pb2.Value()
        job.data.Unpack(value)
        if value.WhichOneof("kind") is None:
            return b""
        return gojson.dumps(json_format.MessageToDict(value))  # Go prints 1, not 1.0
    return bytes(job.data.value).strip()


def _retry_after(job: jobs_pb2.Job, attempt: int) -> float | None:
    """Seconds until the next delivery attempt of a failed trigger, or None to give it up."""
    if job.HasField("failure_policy"):
        policy = job.failure_policy
        if policy.HasField("drop"):
            return None
        if policy.HasField("constant"):
            constant = policy.constant
            if constant.HasField("max_retries") and attempt >= constant.max_retries:
                return None
            return constant.interval.ToTimedelta().total_seconds() if constant.HasField("interval") else 0.0
    if _DEFAULT_POLICY.should_retry(attempt):
        return _DEFAULT_POLICY.interval
    return None


def _go_code(code: grpc.StatusCode) -> str:
    """gRPC's status name as Go prints it (`AlreadyExists`)."""
    return "".join(part.capitalize() for part in code.name.split("_"))
