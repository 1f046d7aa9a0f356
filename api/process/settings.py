"""Settings of the app process, read from the environment once by the composition root and passed down.

`load_settings(os.environ)` fails fast on missing or unsafe values; `configure_dapr(settings)` is the one
place that points the Dapr SDK (`dapr.conf.settings`) at the sidecar.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, model_validator
from pydantic.functional_validators import BeforeValidator

from workflows.config import SeriesSettings

__all__ = [
    "DEFAULT_JWT_MAX_TTL",
    "ENV_NAMES",
    "MIN_SECRET_BYTES",
    "OtelSettings",
    "Settings",
    "SettingsError",
    "configure_dapr",
    "jwt_max_ttl",
    "load_settings",
    "series_settings",
]

# Shortest HMAC secret we accept: RFC 7518 §3.2 asks for at least the hash size (256 bits) for HS256.
MIN_SECRET_BYTES = 32
MIN_TOKEN_CHARS = 16


# The longest a bearer token may live unless TODO_JWT_MAX_TTL says otherwise.
DEFAULT_JWT_MAX_TTL = 30 * 24 * 3600
JwtMaxTtl = Annotated[int, Field(ge=60, le=366 * 24 * 3600)]


class SettingsError(ValueError):
    """A setting is missing or unsafe; the message names the environment variable. Not retryable."""


def _comma_list(value: Any) -> Any:
    return frozenset(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value


class OtelSettings(BaseModel):
    """OTLP/HTTP export of request spans, from the standard `OTEL_*` variables (see `load_settings`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    traces_endpoint: str = Field(pattern=r"^https?://")
    service_name: str = Field("todo-engine", min_length=1)
    resource_attributes: dict[str, str] = {}
    # `key=value,...` as OTEL_EXPORTER_OTLP_HEADERS has it; secret: it usually holds an API key
    headers: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    schedule_delay_ms: int = Field(5000, ge=1)

    def header_map(self) -> dict[str, str]:
        raw = "" if self.headers is None else self.headers.get_secret_value()
        return _key_values(raw)


class Settings(BaseModel):
    """Everything the app process needs; immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # public API
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # app channel (what the sidecar calls): loopback only, token required
    channel_host: str = "127.0.0.1"
    channel_port: int = Field(8001, ge=0, le=65535)
    app_id: str = "todo-engine"
    app_api_token: SecretStr
    # the sidecar
    dapr_host: str = "127.0.0.1"
    dapr_http_port: int = Field(3500, ge=1, le=65535)
    dapr_grpc_port: int = Field(50001, ge=1, le=65535)
    dapr_api_token: SecretStr | None = None
    sidecar_wait_seconds: float = Field(30.0, gt=0)
    # Connections per pool to the sidecar's HTTP API: one pool for callers, one for the hosted actors.
    sidecar_connections: int = Field(256, ge=1, le=4096)
    state_store: str = "statestore"
    pubsub: str = "pubsub"
    # auth: the secret itself, or where to read it in a Dapr secret store
    jwt_secret: SecretStr | None = None
    jwt_secret_store: str | None = None
    jwt_secret_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # the longest a bearer token may live (`exp` - `iat`); tokens without `exp` are refused
    jwt_max_ttl_seconds: JwtMaxTtl = DEFAULT_JWT_MAX_TTL
    # limits
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # connections (`api.limits`): request line + headers over this are a 431; headers must be complete
    # within `header_timeout` of their first byte, and a request body may pause at most `body_idle_timeout`
    max_header_bytes: int = Field(32_768, ge=1024, le=1_048_576)
    header_timeout_seconds: float = Field(10.0, gt=0, le=600)
    body_idle_timeout_seconds: float = Field(10.0, gt=0, le=600)
    rate_limit_per_second: float = Field(50.0, gt=0)
    rate_limit_burst: int = Field(200, ge=1)
    items_per_list: int = Field(5_000, ge=1)
    reminders_per_item: int = Field(10, ge=0, le=10)
    page_size_default: int = Field(50, ge=1, le=500)
    # idempotency records and the change feed
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    feed_max_events: int = Field(10_000, ge=10)
    feed_seen_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    # housekeeping (the `housekeeping` cron binding): what it keeps, counted from creation / the event's time
    workflow_retention_seconds: int = Field(30 * 24 * 3600, ge=60)
    feed_retention_seconds: int = Field(30 * 24 * 3600, ge=60)
    # task events reach the feed in batches (Dapr bulk subscribe): at most this many, held at most this long
    feed_batch_max: int = Field(100, ge=1, le=1000)
    feed_batch_window_ms: int = Field(5, ge=1, le=10_000)
    sse_keepalive_seconds: float = Field(15.0, gt=0)
    sse_poll_seconds: float = Field(2.0, gt=0)
    # dead letters of the app's subscriptions: how many are kept (oldest evicted), who may operate them
    # (`TODO_ADMIN_USERS=alice,bob`: JWT subjects)
    dead_letters_max: int = Field(1_000, ge=1, le=10_000)
    admin_users: Annotated[frozenset[str], BeforeValidator(_comma_list)] = frozenset()
    # webhooks (`api.webhooks`): private targets (and plain http) only when allowed; a delivery makes at
    # most `webhook_max_attempts` attempts; `webhook_disable_after` failed deliveries in a row disable one
    webhooks_allow_private: bool = False
    webhooks_per_user: int = Field(20, ge=0, le=1000)
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_disable_after: int = Field(5, ge=1, le=1000)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # logs and traces: OTLP export only when `otel` is set
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    otel: OtelSettings | None = None
    # share of new traces (no sampled caller) marked sampled; daprd's spans follow the flag
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    # garbage collection of the app process (`sidecar.heap`): 0 leaves CPython's default behaviour
    gc_sweep_seconds: float = Field(600.0, ge=0)
    # local runs
    dev_clock: bool = False
    data_dir: Path = Path(".data")
    docs: bool = True

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if not _is_loopback(self.channel_host):
            raise ValueError(
                "channel_host must be a loopback address: the app channel serves actor methods to the sidecar"
            )
        if len(self.app_api_token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"APP_API_TOKEN must be at least {MIN_TOKEN_CHARS} characters")
        if self.jwt_secret is None and not (self.jwt_secret_store and self.jwt_secret_key):
            raise ValueError(
                "no JWT secret: set TODO_JWT_SECRET, or TODO_JWT_SECRET_STORE and TODO_JWT_SECRET_KEY"
            )
        if (
            self.jwt_secret is not None
            and len(self.jwt_secret.get_secret_value().encode()) < MIN_SECRET_BYTES
        ):
            raise ValueError(f"TODO_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        if self.channel_port != 0 and self.channel_port == self.port:
            raise ValueError("the app channel and the public API need different ports")
        return self

    @property
    def dapr_http_endpoint(self) -> str:
        return f"http://{self.dapr_host}:{self.dapr_http_port}"

    @property
    def dapr_grpc_address(self) -> str:
        return f"{self.dapr_host}:{self.dapr_grpc_port}"

    @property
    def dapr_token(self) -> str | None:
        return None if self.dapr_api_token is None else self.dapr_api_token.get_secret_value()


# Environment variable -> field. DAPR_* and APP_* are the names `dapr run` and daprd use.
ENV_NAMES: dict[str, str] = {
    "TODO_HOST": "host",
    "TODO_PORT": "port",
    "TODO_CHANNEL_HOST": "channel_host",
    "APP_PORT": "channel_port",
    "TODO_CHANNEL_PORT": "channel_port",
    "APP_ID": "app_id",
    "APP_API_TOKEN": "app_api_token",
    "TODO_DAPR_HOST": "dapr_host",
    "DAPR_HTTP_PORT": "dapr_http_port",
    "DAPR_GRPC_PORT": "dapr_grpc_port",
    "DAPR_API_TOKEN": "dapr_api_token",
    "TODO_SIDECAR_WAIT_SECONDS": "sidecar_wait_seconds",
    "TODO_SIDECAR_CONNECTIONS": "sidecar_connections",
    "TODO_STATE_STORE": "state_store",
    "TODO_PUBSUB": "pubsub",
    "TODO_JWT_SECRET": "jwt_secret",
    "TODO_JWT_SECRET_STORE": "jwt_secret_store",
    "TODO_JWT_SECRET_KEY": "jwt_secret_key",
    "TODO_JWT_ISSUER": "jwt_issuer",
    "TODO_JWT_AUDIENCE": "jwt_audience",
    "TODO_JWT_MAX_TTL": "jwt_max_ttl_seconds",
    "TODO_MAX_BODY_BYTES": "max_body_bytes",
    "TODO_MAX_HEADER_BYTES": "max_header_bytes",
    "TODO_HEADER_TIMEOUT": "header_timeout_seconds",
    "TODO_BODY_IDLE_TIMEOUT": "body_idle_timeout_seconds",
    "TODO_RATE_LIMIT": "rate_limit_per_second",
    "TODO_RATE_BURST": "rate_limit_burst",
    "TODO_ITEMS_PER_LIST": "items_per_list",
    "TODO_REMINDERS_PER_ITEM": "reminders_per_item",
    "TODO_PAGE_SIZE": "page_size_default",
    "TODO_IDEMPOTENCY_TTL": "idempotency_ttl_seconds",
    "TODO_FEED_MAX_EVENTS": "feed_max_events",
    "TODO_FEED_BATCH_MAX": "feed_batch_max",
    "TODO_WORKFLOW_RETENTION": "workflow_retention_seconds",
    "TODO_FEED_RETENTION": "feed_retention_seconds",
    "TODO_FEED_BATCH_WINDOW_MS": "feed_batch_window_ms",
    "TODO_SSE_KEEPALIVE": "sse_keepalive_seconds",
    "TODO_DEAD_LETTERS_MAX": "dead_letters_max",
    "TODO_ADMIN_USERS": "admin_users",
    "TODO_DEV_CLOCK": "dev_clock",
    "TODO_DATA_DIR": "data_dir",
    "TODO_DOCS": "docs",
    "TODO_LOG_FORMAT": "log_format",
    "TODO_ACCESS_LOG": "access_log",
    "TODO_GC_SWEEP_SECONDS": "gc_sweep_seconds",
    "TODO_WEBHOOKS_ALLOW_PRIVATE": "webhooks_allow_private",
    "TODO_WEBHOOKS_PER_USER": "webhooks_per_user",
    "TODO_WEBHOOK_MAX_ATTEMPTS": "webhook_max_attempts",
    "TODO_WEBHOOK_DISABLE_AFTER": "webhook_disable_after",
    "TODO_WEBHOOK_TIMEOUT": "webhook_timeout_seconds",
}
_BOOLS = ("dev_clock", "docs", "access_log", "webhooks_allow_private")
_FIELD_ENV = {field: env for env, field in ENV_NAMES.items()}


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings from `environ` (empty values count as unset, as daprd does), then `overrides`.

    Raises SettingsError naming the offending environment variable.
    """
    values: dict[str, Any] = {}
    for env, field in ENV_NAMES.items():
        raw = environ.get(env, "").strip()
        if raw:
            values[field] = _parse_bool(env, raw) if field in _BOOLS else raw
    if otel := _otel_settings(environ):
        values["otel"] = otel
    if (ratio := _sample_ratio(environ)) is not None:
        values["trace_sample_ratio"] = ratio
    values.update(overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            name = _FIELD_ENV.get(field, field) or "settings"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def jwt_max_ttl(environ: Mapping[str, str]) -> int:
    """TODO_JWT_MAX_TTL alone, for the commands that mint tokens without loading the whole settings."""
    raw = environ.get("TODO_JWT_MAX_TTL", "").strip()
    if not raw:
        return DEFAULT_JWT_MAX_TTL
    try:
        return int(TypeAdapter(JwtMaxTtl).validate_python(raw))
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: TODO_JWT_MAX_TTL: {exc.errors()[0]['msg']}") from None


def _otel_settings(environ: Mapping[str, str]) -> OtelSettings | None:
    """Span export as the OpenTelemetry SDK environment variables describe it; None when off.

    On when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (plus
    `/v1/traces`) is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Only OTLP over
    HTTP/protobuf is spoken; asking for another protocol fails fast rather than exporting nothing.
    """

    def env(*names: str) -> str:
        return next((v for n in names if (v := environ.get(n, "").strip())), "")

    if env("OTEL_SDK_DISABLED").lower() == "true":
        return None
    exporter = env("OTEL_TRACES_EXPORTER").lower()
    if exporter == "none":
        return None
    if exporter not in ("", "otlp"):
        raise SettingsError(f"OTEL_TRACES_EXPORTER: only otlp or none are supported, got {exporter!r}")
    endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = env("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not base:
            return None
        endpoint = base.rstrip("/") + "/v1/traces"
    protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol not in ("", "http/protobuf"):
        raise SettingsError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: the app exports over http/protobuf only, got {protocol!r}"
        )
    resource = _key_values(env("OTEL_RESOURCE_ATTRIBUTES"))
    values: dict[str, Any] = {
        "traces_endpoint": endpoint,
        "service_name": env("OTEL_SERVICE_NAME") or resource.pop("service.name", "") or "todo-engine",
        "resource_attributes": resource,
        "headers": env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") or None,
    }
    delay = env("OTEL_BSP_SCHEDULE_DELAY")
    if delay:
        values["schedule_delay_ms"] = delay
    try:
        return OtelSettings.model_validate(values)
    except ValidationError as exc:
        names = {
            "traces_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
            "schedule_delay_ms": "OTEL_BSP_SCHEDULE_DELAY",
        }
        problems = [f"{names.get(str(e['loc'][0]), 'OTEL_*')}: {e['msg']}" for e in exc.errors()]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _sample_ratio(environ: Mapping[str, str]) -> float | None:
    """The share of new traces to sample, from OTEL_TRACES_SAMPLER (+ _ARG); None when unset.

    A caller's decision (the `traceparent` flag) is always kept, so every sampler acts as its
    `parentbased_*` variant."""
    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower().removeprefix("parentbased_")
    if not sampler:
        return None
    if sampler in ("always_on", "always_off"):
        return 1.0 if sampler == "always_on" else 0.0
    if sampler != "traceidratio":
        raise SettingsError(
            "OTEL_TRACES_SAMPLER: expected [parentbased_]always_on, always_off or traceidratio, "
            f"got {sampler!r}"
        )
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
    try:
        ratio = float(arg)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise SettingsError(f"OTEL_TRACES_SAMPLER_ARG: expected a ratio between 0 and 1, got {arg!r}")
    return ratio


def _key_values(raw: str) -> dict[str, str]:
    """`k1=v1,k2=v2` with percent-encoded values (W3C baggage style, as the OTEL_* lists use)."""
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {unquote(k.strip()): unquote(v.strip()) for k, v in pairs if k.strip()}


def _parse_bool(env: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{env}: expected true or false, got {raw!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure_dapr(settings: Settings) -> None:
    """Point the Dapr SDK at the sidecar of `settings` (the SDK reads `dapr.conf.settings` on each call).

    Only the composition root (and test fixtures) call this.
    """
    from dapr.conf import settings as dapr_settings

    values: dict[str, object] = {
        "DAPR_RUNTIME_HOST": settings.dapr_host,
        "DAPR_HTTP_PORT": settings.dapr_http_port,
        "DAPR_GRPC_PORT": settings.dapr_grpc_port,
        "DAPR_HTTP_ENDPOINT": None,
        "DAPR_GRPC_ENDPOINT": None,
        "DAPR_API_TOKEN": settings.dapr_token,
        "DAPR_HEALTH_TIMEOUT": int(settings.sidecar_wait_seconds),
    }
    for name, value in values.items():
        setattr(dapr_settings, name, value)


def series_settings(settings: Settings) -> SeriesSettings:
    """The recurring-series settings derived from the app's (one source for API and worker)."""
    return SeriesSettings(state_store=settings.state_store, pubsub=settings.pubsub)
