"""Durable job scheduler shared by actor reminders and workflow timers (like Dapr's Scheduler)."""

from sidecar.scheduler.jobs import Job, JobHandler, RetryPolicy, Scheduler

__all__ = ["Job", "JobHandler", "RetryPolicy", "Scheduler"]
