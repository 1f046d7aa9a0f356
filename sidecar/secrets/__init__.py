"""Secret stores: the protocol behind the secrets API and `secretKeyRef`, and the two local stores."""

from __future__ import annotations

from sidecar.secrets.local import EnvSecretStore, LocalFileSecretStore
from sidecar.secrets.store import SecretError, SecretNotFound, SecretStore

__all__ = [
    "EnvSecretStore",
    "LocalFileSecretStore",
    "SecretError",
    "SecretNotFound",
    "SecretStore",
]
