"""Settings of one sidecar run: the `dapr run` flags plus our own (`--data-dir`, `--dev-clock`).

Built once by the CLI (or a test fixture) and passed down; nothing reads the environment at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SidecarConfig"]


@dataclass
class SidecarConfig:
    app_id: str = "app"
    app_port: int | None = None
    app_protocol: str = "http"
    app_channel_address: str = "127.0.0.1"
    host: str = "127.0.0.1"
    http_port: int = 3500  # 0 = pick a free port
    grpc_port: int = 50001  # 0 = pick a free port
    internal_grpc_port: int | None = None
    metrics_port: int | None = None
    resources_paths: list[Path] = field(default_factory=list)
    config_path: Path | None = None
    data_dir: Path = Path(".data")
    log_level: str = "info"
    dev_clock: bool = False
    api_token: str | None = None  # DAPR_API_TOKEN: required on every API route but healthz
    app_token: str | None = None  # APP_API_TOKEN: sent to the app on every call
    # 1.15+ reminder callbacks carry empty dueTime/period; "1.14" echoes the registered strings.
    reminder_callback_shape: str = "1.15"
    sqlite_synchronous: str = "FULL"
    # app health checks (--enable-app-health-check ...): seconds, daprd's defaults
    app_health_check: bool = False
    app_health_check_path: str = "/healthz"
    app_health_probe_interval: float = 5.0
    app_health_probe_timeout: float = 0.5
    app_health_threshold: int = 3
    app_max_concurrency: int | None = None  # calls into the app at once (--app-max-concurrency)
    max_body_bytes: int = 4 * 1024 * 1024  # --max-body-size: the gRPC app channel's message limit
    enable_api_logging: bool = False
    # --unix-domain-socket: a directory; the HTTP and gRPC APIs also listen on dapr-<app id>-http|grpc.socket
    unix_domain_socket: Path | None = None
    # the host registry of running sidecars (sidecar.hosts); None: this sidecar is alone on its host
    registry_dir: Path | None = None

    @classmethod
    def tokens_from_env(cls, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
        """Read DAPR_API_TOKEN and APP_API_TOKEN the way daprd does (empty string = unset)."""
        return environ.get("DAPR_API_TOKEN") or None, environ.get("APP_API_TOKEN") or None
