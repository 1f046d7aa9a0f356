"""Two real embedded sidecars for the conversation tests: one with a `conversation.echo` component named
`echo` (daprd's quickstart component), one with the default components only (no conversation component)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.thread import SidecarThread
from tests.stack import sidecar_thread

ECHO = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: echo
spec:
  type: conversation.echo
  version: v1
"""


@pytest.fixture(scope="package")
def echo_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    data: Path = tmp_path_factory.mktemp("conversation")
    (data / "components").mkdir()
    (data / "components" / "echo.yaml").write_text(ECHO)
    with sidecar_thread(data, app_id="converse-app", resources_paths=[data / "components"]) as thread:
        yield thread


@pytest.fixture(scope="package")
def bare_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    with sidecar_thread(tmp_path_factory.mktemp("no-conversation"), app_id="bare-app") as thread:
        yield thread
