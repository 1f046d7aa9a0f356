"""Durable recurring-task workflows: recurrence math, the series workflow, its activities and runtime,
and the service the API calls to create, inspect and control series."""

from __future__ import annotations

from workflows.activities import OCCURRENCE_DUE, SeriesActivities
from workflows.completion import completion_of, forward_completion, raise_completed
from workflows.config import SeriesSettings
from workflows.errors import SeriesConflict
from workflows.hosting import SeriesHandles, open_series, start_worker
from workflows.inspection import WorkflowInspector
from workflows.models import SeriesState, SeriesTemplate, TemplatePatch
from workflows.runtime import register_series, series_id_of, series_instance_id
from workflows.series import CONTROL_EVENT, SERIES_WORKFLOW
from workflows.series_client import SeriesService
from workflows.views import (
    OccurrencesPage,
    Series,
    SeriesPage,
    SeriesPatch,
    SeriesSpec,
    WorkflowInfo,
    WorkflowPage,
    WorkflowTimeline,
)

__all__ = [
    "CONTROL_EVENT",
    "OCCURRENCE_DUE",
    "SERIES_WORKFLOW",
    "OccurrencesPage",
    "Series",
    "SeriesActivities",
    "SeriesConflict",
    "SeriesHandles",
    "SeriesPage",
    "SeriesPatch",
    "SeriesService",
    "SeriesSettings",
    "SeriesSpec",
    "SeriesState",
    "SeriesTemplate",
    "TemplatePatch",
    "WorkflowInfo",
    "WorkflowInspector",
    "WorkflowPage",
    "WorkflowTimeline",
    "completion_of",
    "forward_completion",
    "open_series",
    "raise_completed",
    "register_series",
    "series_id_of",
    "series_instance_id",
    "start_worker",
]
