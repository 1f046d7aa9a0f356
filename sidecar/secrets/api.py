"""The secrets building block behind both wires (daprd's `universal.GetSecret`/`GetBulkSecret`): store
lookup, the Configuration's secret scopes (a denied key is 403 `ERR_PERMISSION_DENIED`; bulk reads leave
denied keys out) and daprd's error codes and messages."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sidecar.daprconfig import SecretScope
from sidecar.errors import error
from sidecar.gojson import go_quote
from sidecar.secrets.store import SecretError, SecretStore

__all__ = ["SecretsAPI"]

log = logging.getLogger("sidecar.secrets")


class SecretsAPI:
    def __init__(self, stores: Mapping[str, SecretStore], scopes: Mapping[str, SecretScope]) -> None:
        self.stores = stores
        self.scopes = scopes

    def _store(self, name: str) -> SecretStore:
        if not self.stores:
            raise error("ERR_SECRET_STORES_NOT_CONFIGURED", "secret store is not configured")
        store = self.stores.get(name)
        if store is None:
            raise error("ERR_SECRET_STORE_NOT_FOUND", f"failed finding secret store with key {name}")
        return store

    def allowed(self, store: str, key: str) -> bool:
        scope = self.scopes.get(store)
        return scope is None or scope.allows(key)

    def get(self, store_name: str, key: str) -> dict[str, str]:
        store = self._store(store_name)
        if not self.allowed(store_name, key):
            raise error(
                "ERR_PERMISSION_DENIED",
                f"access denied by policy to get {go_quote(key)} from {go_quote(store_name)}",
            )
        try:
            return store.get(key)
        except SecretError as exc:
            raise error(
                "ERR_SECRET_GET",
                f"failed getting secret with key {key} from secret store {store_name}: {exc}",
            ) from exc

    def bulk(self, store_name: str) -> dict[str, dict[str, str]]:
        store = self._store(store_name)
        try:
            secrets = store.bulk()
        except SecretError as exc:
            raise error(
                "ERR_SECRET_GET", f"failed getting secrets from secret store {store_name}: {exc}"
            ) from exc
        kept = {}
        for key, value in secrets.items():
            if self.allowed(store_name, key):
                kept[key] = value
            else:
                log.debug("access denied by policy to get %r from %r", key, store_name)
        return kept
