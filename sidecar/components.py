"""The components of the Dapr resource files (`--resources-path`, read by `sidecar.resources`), built into
stores, pub/sub specs and bindings.

Only the component types the embedded sidecar implements load; any other type stops start-up with a message
naming the type, the component and the file (production types run beside a real daprd). Metadata values
resolve as daprd's do: `secretKeyRef`/`envRef` values and the `{uuid}`/`{appID}` placeholders.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecar.bindings.cron import CRON_TYPE, CronSpec
from sidecar.bindings.http import HTTP_TYPE, HttpBinding
from sidecar.bindings.localstorage import LOCALSTORAGE_TYPE, LocalStorage
from sidecar.bindings.output import OutputBinding
from sidecar.clock import Clock, SystemClock
from sidecar.configuration.store import CONFIGURATION_TYPE, SqliteConfigurationStore
from sidecar.conversation import ECHO_TYPE, Echo
from sidecar.crypto import LOCALSTORAGE_CRYPTO_TYPE
from sidecar.lock import LOCK_TYPE, LockStore
from sidecar.pubsub.broker import BrokerSpec
from sidecar.pubsub.durable import DurableOptions
from sidecar.pubsub.subscriptions import DeclarativeSubscription
from sidecar.resources import ComponentError, Resource, read_resources, resource_type
from sidecar.secrets import EnvSecretStore, LocalFileSecretStore, SecretError, SecretStore
from sidecar.state import InMemoryStateStore, SqliteOptions, SqliteStateStore, StateError, StateStore
from sidecar.state.keys import normalize_key_prefix
from sidecar.state.outbox import OutboxConfig
from sidecar.state.properties import ComponentProperties, PropertyError, is_truthy

if TYPE_CHECKING:
    from sidecar.crypto.localstorage import LocalStorageCrypto

__all__ = [
    "SUPPORTED_TYPES",
    "ComponentError",
    "Components",
    "UnsupportedComponent",
    "default_components",
    "load_components",
]

log = logging.getLogger("sidecar.components")

SUPPORTED_TYPES = (
    "state.sqlite",
    "state.in-memory",
    "pubsub.in-memory",
    "pubsub.embedded.sqlite",
    "secretstores.local.file",
    "secretstores.local.env",
    CRON_TYPE,
    LOCK_TYPE,
    LOCALSTORAGE_TYPE,
    HTTP_TYPE,
    CONFIGURATION_TYPE,
    ECHO_TYPE,
    LOCALSTORAGE_CRYPTO_TYPE,
)
# components-contrib's order of state store features, as the metadata API lists them.
_STATE_FEATURE_ORDER = (
    "ETAG",
    "TRANSACTIONAL",
    "QUERY_API",
    "TTL",
    "DELETE_WITH_PREFIX",
    "PARTITION_KEY",
    "KEYS_LIKE",
)


class UnsupportedComponent(ComponentError):
    """A component type the embedded sidecar does not implement; run it beside a real daprd instead."""


@dataclass
class Components:
    """Everything the resources paths declared for this app id."""

    state_stores: dict[str, StateStore] = field(default_factory=dict)
    actor_state_store: str | None = None
    pubsubs: dict[str, BrokerSpec] = field(default_factory=dict)
    secret_stores: dict[str, SecretStore] = field(default_factory=dict)
    subscriptions: list[DeclarativeSubscription] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # component name -> declared version
    outboxes: dict[str, OutboxConfig] = field(default_factory=dict)  # state store name -> its outbox
    bindings: dict[str, CronSpec] = field(default_factory=dict)  # input bindings (bindings.cron)
    locks: dict[str, LockStore] = field(default_factory=dict)  # lock stores (lock.embedded.in-memory)
    output_bindings: dict[str, OutputBinding] = field(default_factory=dict)  # bindings.localstorage
    configurations: dict[str, SqliteConfigurationStore] = field(default_factory=dict)
    conversations: dict[str, Echo] = field(default_factory=dict)  # conversation.echo
    crypto: dict[str, LocalStorageCrypto] = field(default_factory=dict)  # crypto.dapr.localstorage

    def describe(self) -> list[dict[str, Any]]:
        """Metadata-API entries `{"name", "type", "version", "capabilities"}`, as daprd reports them."""
        entries: list[dict[str, Any]] = []
        for name, store in self.state_stores.items():
            caps = [f for f in _STATE_FEATURE_ORDER if f in store.features]
            if "ETAG" in store.features and "TRANSACTIONAL" in store.features:
                caps.append("ACTOR")
            entries.append(self._entry(name, store.component_type, caps))
        for name, spec in self.pubsubs.items():
            entries.append(self._entry(name, spec.type, ["SUBSCRIBE_WILDCARDS"]))
        for name, secrets in self.secret_stores.items():
            entries.append(self._entry(name, secrets.component_type, sorted(secrets.features)))
        for name, binding in self.bindings.items():
            entries.append(self._entry(name, binding.type, ["INPUT_BINDING"]))
        for name, output in self.output_bindings.items():
            entries.append(self._entry(name, output.type, ["OUTPUT_BINDING"]))
        for name in self.locks:
            entries.append(self._entry(name, LOCK_TYPE, []))
        for name in self.configurations:
            entries.append(self._entry(name, CONFIGURATION_TYPE, []))
        for name in self.conversations:
            entries.append(self._entry(name, ECHO_TYPE, []))
        for name, provider in self.crypto.items():
            entries.append(self._entry(name, provider.type, []))
        return entries

    def _entry(self, name: str, type_: str, caps: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "type": type_,
            "version": self.versions.get(name, "v1"),
            "capabilities": caps,
        }

    async def close(self) -> None:
        for store in self.state_stores.values():
            await store.close()


def default_components(
    data_dir: Path, *, clock: Clock | None = None, sqlite_synchronous: str = "FULL"
) -> Components:
    """What `dapr init` gives, minus Redis: `statestore` (state.sqlite at `<data_dir>/state.db`, the actor
    state store), `pubsub` (pubsub.embedded.sqlite at `<data_dir>/pubsub-pubsub.db`: durable, as `dapr init`'s
    Redis streams are; pubsub.in-memory would lose messages on a crash); plus `housekeeping` (bindings.cron,
    `@every 6h`) with no `direction`, so it is read only if the app answers daprd's OPTIONS probe on
    `/housekeeping`."""
    # Expired TTL rows (idempotency records, the feed's dedup marks) are swept hourly, as
    # dapr/components/statestore.yaml declares (state.sqlite's own default never sweeps).
    options = SqliteOptions(
        path=str(Path(data_dir) / "state.db"), synchronous=sqlite_synchronous, cleanup_interval=3600.0
    )
    store = SqliteStateStore("statestore", options, clock or SystemClock())
    return Components(
        state_stores={"statestore": store},
        actor_state_store="statestore",
        pubsubs={"pubsub": BrokerSpec("pubsub", "pubsub.embedded.sqlite", "v1")},
        versions={"statestore": "v1", "pubsub": "v1", "housekeeping": "v1"},
        bindings={"housekeeping": CronSpec.from_metadata("housekeeping", {"schedule": "@every 6h"})},
    )


def load_components(
    paths: Iterable[Path | str],
    *,
    app_id: str,
    data_dir: Path,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    sqlite_synchronous: str = "FULL",
) -> Components:
    """Load every component and subscription in `paths` (directories or single files) for `app_id`.

    Relative `state.sqlite` file paths are taken relative to `data_dir` (daprd: its working directory);
    `environ` feeds `envRef` values and `secretstores.local.env` (default: the process environment).
    Raises `ComponentError` (or `UnsupportedComponent`) naming the file.
    """
    components_, subscriptions = read_resources(paths, app_id)
    result = Components(subscriptions=subscriptions)
    builder = _Builder(app_id, Path(data_dir), clock or SystemClock(), environ, sqlite_synchronous)
    try:
        # Secret stores first: other components' secretKeyRefs resolve against them.
        ordered = sorted(components_, key=lambda r: not resource_type(r).startswith("secretstores."))
        for resource in ordered:
            builder.add(resource, result)
    except BaseException:
        for store in result.state_stores.values():
            if isinstance(store, SqliteStateStore):
                store.shutdown()
        raise
    return result


class _Builder:
    """Turns one component resource into a store or spec, resolving its metadata values."""

    def __init__(
        self,
        app_id: str,
        data_dir: Path,
        clock: Clock,
        environ: Mapping[str, str] | None,
        sqlite_synchronous: str,
    ) -> None:
        self.app_id = app_id
        self.data_dir = data_dir
        self.clock = clock
        self.environ = environ
        self.sqlite_synchronous = sqlite_synchronous

    def add(self, resource: Resource, into: Components) -> None:
        name, type_ = resource.name, resource_type(resource)
        version = str(resource.spec.get("version") or "")
        if type_ not in SUPPORTED_TYPES or version not in ("", "v1"):
            message = (
                f"component {name!r} in {resource.file} has type {type_ or '<missing>'!r}"
                f"{f' version {version!r}' if version not in ('', 'v1') else ''}, which the embedded "
                f"sidecar does not support; it supports only {', '.join(SUPPORTED_TYPES)} "
                "(run production component types beside a real daprd)"
            )
            if is_truthy(str(resource.spec.get("ignoreErrors") or "")):
                log.error("%s; skipped because ignoreErrors is set", message)
                return
            raise UnsupportedComponent(message)
        metadata = self._metadata(resource, into.secret_stores)
        try:
            self._build(name, type_, metadata, into)
        except (PropertyError, StateError, SecretError, sqlite3.Error, OSError, ValueError) as exc:
            raise resource.error(f"cannot initialize {type_}: {exc}") from exc
        into.versions[name] = version

    def _build(self, name: str, type_: str, metadata: dict[str, str], into: Components) -> None:
        props = ComponentProperties(metadata)
        if type_ == "secretstores.local.file":
            into.secret_stores[name] = LocalFileSecretStore.from_metadata(name, metadata, base_dir=Path.cwd())
        elif type_ == "secretstores.local.env":
            into.secret_stores[name] = EnvSecretStore.from_metadata(name, metadata, environ=self.environ)
        elif type_ in ("pubsub.in-memory", "pubsub.embedded.sqlite"):
            if type_ == "pubsub.embedded.sqlite":
                try:  # checked here too, so the error names the file
                    DurableOptions.from_metadata(name, metadata, self.data_dir)
                except ValueError as exc:
                    raise PropertyError(str(exc)) from exc
            into.pubsubs[name] = BrokerSpec(name, type_, "v1", metadata)
        elif type_ == CRON_TYPE:
            into.bindings[name] = CronSpec.from_metadata(name, metadata)
        elif type_ == LOCALSTORAGE_TYPE:
            into.output_bindings[name] = LocalStorage.from_metadata(name, metadata)
        elif type_ == HTTP_TYPE:
            into.output_bindings[name] = HttpBinding.from_metadata(name, metadata)
        elif type_ == CONFIGURATION_TYPE:
            into.configurations[name] = SqliteConfigurationStore.from_metadata(name, metadata, self.data_dir)
        elif type_ == LOCALSTORAGE_CRYPTO_TYPE:
            from sidecar.crypto.localstorage import LocalStorageCrypto  # loads `cryptography`: only when used

            into.crypto[name] = LocalStorageCrypto.from_metadata(name, metadata)
        elif type_ == LOCK_TYPE:
            into.locks[name] = LockStore(name, self.clock)
        elif type_ == ECHO_TYPE:
            into.conversations[name] = Echo(name)
        else:
            key_prefix = normalize_key_prefix(props.get("keyPrefix"))
            store: StateStore
            if type_ == "state.sqlite":
                options = SqliteOptions.from_metadata(
                    metadata, data_dir=self.data_dir, synchronous=self.sqlite_synchronous
                )
                store = SqliteStateStore(name, options, self.clock, key_prefix=key_prefix)
            else:
                store = InMemoryStateStore(name, self.clock, key_prefix=key_prefix)
            into.state_stores[name] = store
            outbox = OutboxConfig.from_metadata(metadata)
            if outbox is not None:
                if "TRANSACTIONAL" not in store.features:  # daprd: every transaction would fail
                    raise PropertyError(f"the outbox needs a transactional state store; {type_} is not one")
                into.outboxes[name] = outbox
                log.info(
                    "state store %s publishes its transactions to %s/%s (outbox)",
                    name,
                    outbox.publish_pubsub,
                    outbox.publish_topic,
                )
            if props.flag("actorStateStore"):
                if into.actor_state_store is not None:
                    raise PropertyError(
                        f"actorStateStore is already set on {into.actor_state_store!r};"
                        " only one state store may hold actor state"
                    )
                into.actor_state_store = name
                log.info("Using '%s' as actor state store", name)

    def _metadata(self, resource: Resource, secrets: Mapping[str, SecretStore]) -> dict[str, str]:
        items = resource.spec.get("metadata") or []
        if not isinstance(items, list):
            raise resource.error("`spec.metadata` must be a list of {name, value} items")
        auth = resource.doc.get("auth") or {}
        store_name = str(auth.get("secretStore") or "") if isinstance(auth, Mapping) else ""
        values: dict[str, str] = {}
        for item in items:
            if not isinstance(item, Mapping) or not item.get("name"):
                raise resource.error("every `spec.metadata` item needs a `name`")
            value = _text(item.get("value"))
            ref = item.get("secretKeyRef") or {}
            env_ref = str(item.get("envRef") or "")
            if not value and env_ref:
                value = self._env_ref(resource, env_ref)
            if isinstance(ref, Mapping) and ref.get("name"):
                value = self._secret(resource, store_name, secrets, ref)
            values[str(item["name"])] = self._placeholders(resource, str(item["name"]), value)
        return values

    def _env_ref(self, resource: Resource, variable: str) -> str:
        upper = variable.upper()
        if upper == "APP_API_TOKEN" or upper.startswith("DAPR_") or " " in variable:
            log.warning("%s references an env variable that isn't allowed: %s", resource.name, variable)
            return ""
        environ = os.environ if self.environ is None else self.environ
        return environ.get(variable, "")

    def _secret(
        self,
        resource: Resource,
        store_name: str,
        secrets: Mapping[str, SecretStore],
        ref: Mapping[str, Any],
    ) -> str:
        secret_name = str(ref["name"])
        key = str(ref.get("key") or secret_name)
        if not store_name:
            raise resource.error(
                f"secretKeyRef {secret_name!r} needs `auth.secretStore` naming a secret store"
            )
        store = secrets.get(store_name)
        if store is None:
            raise resource.error(f"secretKeyRef {secret_name!r}: no secret store {store_name!r}")
        try:
            value = store.get(secret_name).get(key, "")
        except SecretError as exc:
            raise resource.error(f"secretKeyRef {secret_name!r} in {store_name!r}: {exc}") from None
        if not value:
            raise resource.error(f"secretKeyRef {secret_name!r} in {store_name!r} has no key {key!r}")
        return value

    def _placeholders(self, resource: Resource, name: str, value: str) -> str:
        while "{uuid}" in value:
            value = value.replace("{uuid}", str(uuid.uuid4()), 1)
        if "{podName}" in value:
            raise resource.error(f"property {name} refers to {{podName}} but podName is not set")
        value = value.replace("{namespace}", f"default.{self.app_id}")
        return value.replace("{appID}", self.app_id)


def _text(value: Any) -> str:
    """A metadata value as daprd reads it: strings as-is, other YAML values as their JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    try:
        return json.dumps(value, separators=(",", ":"))
    except TypeError:
        return str(value)
