"""Durable job scheduler shared by actor reminders and workflow timers (like Dapr's Scheduler service)."""

from sidecar.scheduler.jobs import Job, JobHandler, Scheduler

__all__ = ["Job", "JobHandler", "Scheduler"]
