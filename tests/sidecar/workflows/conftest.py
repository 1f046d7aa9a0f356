"""Fixtures: one workflow sidecar per test module (fresh SQLite file, ManualClock) and an SDK client.

Each module registers its own workflows on a module-scoped `WorkflowRuntime` (see `running_worker`),
so exactly one worker is connected to a module's sidecar at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dapr.ext.workflow import DaprWorkflowClient

from sidecar.clock import ManualClock
from tests.sidecar.workflows.support import WorkflowSidecar, close_client


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[WorkflowSidecar]:
    served = WorkflowSidecar(tmp_path_factory.mktemp("wf") / "sidecar.db", clock).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def client(sidecar: WorkflowSidecar) -> Iterator[DaprWorkflowClient]:
    wf_client = DaprWorkflowClient(host="127.0.0.1", port=str(sidecar.port))
    yield wf_client
    close_client(wf_client)
