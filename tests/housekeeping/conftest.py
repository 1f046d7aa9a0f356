"""The housekeeping tests' own stack (sidecar with its built-in components, the app channel, the public API,
a dev clock), apart from the API suite's: these tests move the clock by weeks and purge."""

from __future__ import annotations

from tests.stack import stack_fixture

stack = stack_fixture("housekeeping")
