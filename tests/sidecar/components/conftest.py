"""Fixtures for the component and secrets tests: `serve(routes)` serves routes over real HTTP on loopback,
with the sidecar's error mapping (the factory's `routes_fixture`)."""

from tests.stack import routes_fixture

serve = routes_fixture()
