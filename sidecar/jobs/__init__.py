"""The Jobs API: an app's named jobs on the sidecar's durable Scheduler, triggered on the app channel."""

from sidecar.jobs.service import JobsService

__all__ = ["JobsService"]
