"""Fixtures every suite that boots the engine (`tests.stack`) shares: the caller, a client, and the SDK
pointed at this suite's sidecar before each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from api.process.settings import configure_dapr
from sidecar.hosts.registry import REGISTRY_DIR_ENV
from tests.stack import Stack


@pytest.fixture(scope="session", autouse=True)
def _own_host_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Sidecars the tests start as processes register in a registry of this run, not the user's."""
    previous = os.environ.get(REGISTRY_DIR_ENV)
    os.environ[REGISTRY_DIR_ENV] = str(tmp_path_factory.mktemp("host-registry"))
    yield
    if previous is None:
        os.environ.pop(REGISTRY_DIR_ENV, None)
    else:
        os.environ[REGISTRY_DIR_ENV] = previous


@pytest.fixture(autouse=True)
def _this_sidecar(request: pytest.FixtureRequest) -> None:
    """Each suite's `stack` is its own sidecar; a test may have pointed the SDK elsewhere."""
    if "stack" in request.fixturenames:
        stack = request.getfixturevalue("stack")
        if isinstance(stack, Stack):  # other suites' `stack` fixtures are other things
            configure_dapr(stack.settings)


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(stack: Stack, user: str) -> Iterator[httpx.Client]:
    with stack.client(user) as c:
        yield c
