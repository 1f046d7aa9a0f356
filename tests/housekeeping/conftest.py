"""One real stack for the housekeeping tests (sidecar with its built-in components, the app channel, the
public API, a dev clock), apart from the API suite's: these tests move the clock by weeks and purge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.process.settings import configure_dapr
from tests.api.conftest import Stack, running_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("housekeeping")) as running:
        yield running


@pytest.fixture(autouse=True)
def _this_sidecar(stack: Stack) -> None:
    configure_dapr(stack.settings)
