"""The `SecretStore` protocol behind the secrets API and the `secretKeyRef`s of component files."""

from __future__ import annotations

from typing import Protocol

__all__ = ["SecretError", "SecretNotFound", "SecretStore"]


class SecretError(Exception):
    """A secret store could not answer (daprd: 500 ERR_SECRET_GET). Not retryable as such."""


class SecretNotFound(SecretError):
    """No secret by that name (daprd reports it as ERR_SECRET_GET too)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name} not found")
        self.name = name


class SecretStore(Protocol):
    """A secret store component. `features` uses daprd's names (`MULTIPLE_KEY_VALUES_PER_SECRET`)."""

    name: str
    component_type: str
    features: frozenset[str]

    def get(self, name: str) -> dict[str, str]:
        """The key/value pairs of secret `name`; raises `SecretNotFound`."""
        ...

    def bulk(self) -> dict[str, dict[str, str]]:
        """Every secret the store holds, by name."""
        ...
