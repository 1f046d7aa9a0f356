"""What an app's job is once accepted, checked as daprd's Scheduler (go-etcd-cron) checks it, and when it
fires next; kept apart from delivery so the tick arithmetic is plain functions.

A job is the `runtime.v1.Job` the app sent (kept verbatim: GET answers the strings it was given) plus its
clock: when it began, when it expires, how many times it triggered and the instant of its last trigger.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, replace

from dapr.proto.runtime.v1 import jobs_pb2

from sidecar.actors.timefmt import parse_due_time
from sidecar.bindings.schedule import Schedule, ScheduleError, parse_schedule

__all__ = ["JobError", "JobState", "accept", "validate_name"]

_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class JobError(ValueError):
    """The job is not one daprd's Scheduler accepts; the message is go-etcd-cron's."""


def validate_name(full_name: str) -> None:
    """go-etcd-cron's job-name check on the Scheduler's key (`app||<namespace>||<app id>||<name>`)."""
    if not full_name:
        raise JobError("job name cannot be empty")
    sanitized = full_name
    for char in "_:- ":
        sanitized = sanitized.replace(char, "")
    for segment in sanitized.lower().split("||"):
        problems = []
        if len(segment) > 253:
            problems.append("must be no more than 253 characters")
        if not _DNS1123.fullmatch(segment):
            problems.append(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
                " '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used"
                " for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            )
        if problems:
            raise JobError(f'job name is invalid "{sanitized}": {", ".join(problems)}')


def job_schedule(text: str) -> Schedule:
    """go-etcd-cron's parser: six fields (seconds first) or a descriptor, no optional seconds."""
    try:
        return parse_schedule(text, optional_seconds=False)
    except ScheduleError as exc:
        raise JobError(str(exc)) from None


def _point_in_time(text: str, start: float, what: str) -> float:
    try:
        return parse_due_time(text, start) if text else start
    except ValueError as exc:
        if "repetitions" in str(exc):
            raise JobError("repeats not supported for due time") from None
        raise JobError(f"{what} format not recognized") from None


@dataclass(frozen=True)
class JobState:
    """A stored job: the request's `Job` and where it is on its schedule."""

    job: jobs_pb2.Job
    begin: float  # dueTime (fires at it), or the creation instant (the schedule starts after it)
    fires_at_begin: bool  # True when `begin` is a dueTime
    expires: float | None
    count: int = 0  # triggers made (given up ones included), as go-etcd-cron's counter
    last: float | None = None  # the instant of the last trigger
    attempt: int = 0  # failed deliveries of the current trigger

    def next_due(self) -> float | None:
        """go-etcd-cron's `Next(count, last)`: the next trigger instant, or None when the job is done."""
        job = self.job
        if not job.HasField("schedule"):
            return self.begin if self.count == 0 else None
        if job.HasField("repeats") and self.count >= job.repeats:
            return None
        if self.last is None:
            if self.fires_at_begin:
                return self.begin
            return job_schedule(job.schedule).next_after(self.begin)
        due = job_schedule(job.schedule).next_after(self.last)
        if due is None or (self.expires is not None and due > self.expires):
            return None
        return due

    def triggered(self, at: float) -> JobState:
        return replace(self, count=self.count + 1, last=at, attempt=0)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "job": base64.b64encode(self.job.SerializeToString()).decode(),
                "begin": self.begin,
                "fires_at_begin": self.fires_at_begin,
                "expires": self.expires,
                "count": self.count,
                "last": self.last,
                "attempt": self.attempt,
            }
        ).encode()

    @classmethod
    def decode(cls, payload: bytes) -> JobState:
        raw = json.loads(payload)
        job = jobs_pb2.Job()
        job.ParseFromString(base64.b64decode(raw["job"]))
        return cls(
            job,
            raw["begin"],
            raw["fires_at_begin"],
            raw["expires"],
            raw["count"],
            raw["last"],
            raw["attempt"],
        )


def accept(job: jobs_pb2.Job, now: float) -> JobState:
    """go-etcd-cron's `Builder.Parse`: the checks in its order, then the job's begin and expiry."""
    has_schedule, has_due = job.HasField("schedule"), job.HasField("due_time")
    if not has_due and not has_schedule:
        raise JobError("job must have either a due time or a schedule")
    if not has_schedule and job.HasField("repeats") and job.repeats > 1:
        raise JobError("job must have a schedule to repeat")
    if job.HasField("repeats") and job.repeats < 1:
        raise JobError("defined repeats must be greater than 0")
    if not has_schedule and job.HasField("ttl"):
        raise JobError("job must have a schedule to have a ttl")
    if has_schedule:
        job_schedule(job.schedule)
    begin = _point_in_time(job.due_time, now, "due time") if has_due else now
    expires = None
    if job.HasField("ttl"):
        try:
            expires = parse_due_time(job.ttl, begin) if job.ttl else begin
        except ValueError:
            raise JobError("ttl format not recognized") from None
        if has_due and begin > expires:
            raise JobError("ttl must be greater than due time")
    return JobState(job, begin, has_due, expires)
