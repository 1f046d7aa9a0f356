"""`dapr run`'s flags for `todo-engine sidecar run`: each implemented, or refused with the reason (an
ignored flag would silently change what the app gets), read into a `SidecarConfig`; and the environment
`dapr run` gives the app it starts.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

from sidecar.config import SidecarConfig
from sidecar.hosts.registry import default_registry_dir
from sidecar.supervision import PARENT_GONE_GRACE

__all__ = ["APP_PROTOCOLS", "app_environment", "build_parser", "config_from_args", "log_accepted"]

log = logging.getLogger("sidecar")

APP_PROTOCOLS = ("http", "grpc")
# `dapr run --app-protocol` values the embedded sidecar refuses, and why
_REFUSED_PROTOCOLS = {
    "https": "TLS to the app is not supported by the embedded sidecar; use http",
    "grpcs": "TLS to the app is not supported by the embedded sidecar; use grpc",
    "h2c": "HTTP/2 cleartext to the app is not supported by the embedded sidecar; use http or grpc",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="todo-engine sidecar run",
        description="Run the embedded Dapr-compatible sidecar (a drop-in for `dapr run`).",
    )
    p.add_argument("--app-id", "-a", default="app")
    p.add_argument("--app-port", "-p", type=int, default=None)
    p.add_argument("--app-protocol", "-P", default="http", choices=[*APP_PROTOCOLS, *_REFUSED_PROTOCOLS])
    p.add_argument("--app-channel-address", default="127.0.0.1")
    p.add_argument(
        "--app-max-concurrency", type=int, default=-1, help="calls into the app at once (-1: no limit)"
    )
    p.add_argument("--enable-app-health-check", action="store_true", help="probe the app's health")
    p.add_argument("--app-health-check-path", default="/healthz", help="HTTP path of the health probe")
    p.add_argument("--app-health-probe-interval", type=int, default=5, help="seconds between probes")
    p.add_argument("--app-health-probe-timeout", type=int, default=500, help="probe timeout in ms")
    p.add_argument("--app-health-threshold", type=int, default=3, help="failed probes before unhealthy")
    p.add_argument(
        "--dapr-http-max-request-size", type=int, default=None, help="MB; deprecated: use --max-body-size"
    )
    p.add_argument(
        "--max-body-size", default=None, help='largest message on the gRPC app channel, e.g. "4Mi"'
    )
    p.add_argument(
        "--dapr-http-read-buffer-size", type=int, default=None, help="KB; deprecated: use --read-buffer-size"
    )
    p.add_argument("--read-buffer-size", default=None, help="accepted; uvicorn has no fixed header buffer")
    p.add_argument("--enable-api-logging", action="store_true", help="log every API call, as daprd")
    p.add_argument("--placement-host-address", default=None, help="accepted, ignored: placement is embedded")
    p.add_argument(
        "--scheduler-host-address", default=None, help="accepted, ignored: the scheduler is embedded"
    )
    p.add_argument(
        "--unix-domain-socket", "-u", default=None, type=Path, help="a directory: the API on Unix sockets too"
    )
    p.add_argument("--app-ssl", action="store_true", help="refused: use --app-protocol grpcs/https (refused)")
    p.add_argument("--enable-profiling", action="store_true", help="refused: no profiling server")
    p.add_argument("--profile-port", type=int, default=None, help="refused with --enable-profiling")
    p.add_argument("--dapr-http-port", "-H", type=int, default=3500)
    p.add_argument("--dapr-grpc-port", "-G", type=int, default=50001)
    p.add_argument("--dapr-internal-grpc-port", "-I", type=int, default=None)
    p.add_argument("--metrics-port", "-M", type=int, default=None)
    p.add_argument("--resources-path", action="append", default=[], type=Path)
    p.add_argument(
        "--components-path",
        "-d",
        action="append",
        default=[],
        type=Path,
        help="deprecated alias of --resources-path",
    )
    p.add_argument("--config", "-c", type=Path, default=None)
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warn", "warning", "error", "fatal"],
    )
    p.add_argument(
        "--log-as-json",
        action="store_true",
        help="log one JSON object per line, with daprd's fields (time, level, type, msg, scope, ...)",
    )
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument(
        "--dev-clock",
        action="store_true",
        help='make time controllable: POST /v1.0-dev/clock/advance {"seconds": N}',
    )
    p.add_argument(
        "--bind", "--dapr-listen-addresses", default="127.0.0.1", help="address the sidecar's APIs listen on"
    )
    p.add_argument(
        "--port-file",
        type=Path,
        default=None,
        help="write the bound ports as JSON to this file once listening",
    )
    p.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        metavar="PID",
        help="our parent: stop when it dies (SIGTERM via Linux prctl PR_SET_PDEATHSIG); refuse to start "
        "if it already has",
    )
    p.add_argument(
        "--parent-pipe",
        type=int,
        default=None,
        metavar="FD",
        help="inherited read end of a pipe whose write end only the parent holds: stop at EOF, i.e. when "
        f"the parent dies (any POSIX). On parent death the graceful stop gets {PARENT_GONE_GRACE} s",
    )
    p.add_argument(
        "--data-dir-lock-fd",
        type=int,
        default=None,
        metavar="FD",
        help="inherited descriptor of <data-dir>/engine.lock that the parent (todo-engine up) has locked: "
        "share that lock instead of taking it; without it the sidecar locks the data dir itself",
    )
    p.add_argument(
        "--registry-dir",
        default=None,
        metavar="DIR",
        help="the host registry through which sidecars on this machine find each other (app ids, actor "
        "types): default $TODO_ENGINE_REGISTRY_DIR, else $XDG_RUNTIME_DIR/todo-engine/registry, else "
        "~/.todo-engine/registry; 'none' runs this sidecar alone",
    )
    p.add_argument("app_command", nargs=argparse.REMAINDER, help="-- followed by the app command to start")
    return p


def _refuse(args: argparse.Namespace) -> None:
    """`dapr run` flags the embedded sidecar cannot honour: stop with the reason, never ignore them."""
    refusals = {
        "app_ssl": "--app-ssl is not supported: the embedded sidecar talks to the app in plaintext",
        "enable_profiling": "--enable-profiling is not supported: the sidecar has no profiling server",
        "profile_port": "--profile-port is not supported: the embedded sidecar has no profiling server",
    }
    for name, message in refusals.items():
        if getattr(args, name):
            raise SystemExit(f"error: {message}")
    if args.app_protocol in _REFUSED_PROTOCOLS:
        raise SystemExit(
            f"error: --app-protocol {args.app_protocol}: {_REFUSED_PROTOCOLS[args.app_protocol]}"
        )
    if args.dapr_http_max_request_size is not None and args.max_body_size is not None:
        raise SystemExit("error: give --max-body-size or --dapr-http-max-request-size, not both")


def _body_bytes(args: argparse.Namespace) -> int:
    """--max-body-size ("4Mi", "512Ki", bytes) or the deprecated --dapr-http-max-request-size (MB)."""
    if args.dapr_http_max_request_size is not None:
        return int(args.dapr_http_max_request_size) * 1024 * 1024
    if args.max_body_size is None:
        return 4 * 1024 * 1024
    text = str(args.max_body_size).strip()
    for suffix, factor in (("Ki", 1024), ("Mi", 1024**2), ("Gi", 1024**3), ("k", 1000), ("M", 1000**2)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * factor
    if text.isdigit():
        return int(text)
    raise SystemExit(f"error: --max-body-size {text!r}: expected a size such as 4Mi, 512Ki or 1048576")


def log_accepted(args: argparse.Namespace) -> None:
    """Flags that mean nothing on one host: accepted (scripts for `dapr run` keep working), said so."""
    if args.placement_host_address:
        log.info("--placement-host-address ignored: actor placement is embedded (single host)")
    if args.scheduler_host_address:
        log.info("--scheduler-host-address ignored: the scheduler is embedded (single host)")
    if args.dapr_http_read_buffer_size is not None or args.read_buffer_size is not None:
        log.info("read buffer size ignored: the embedded sidecar's HTTP server has no fixed header buffer")
    if args.dapr_http_max_request_size is not None or args.max_body_size is not None:
        log.info("max body size applies to the gRPC app channel; the HTTP API does not cap request bodies")


def config_from_args(args: argparse.Namespace, environ: dict[str, str]) -> SidecarConfig:
    api_token, app_token = SidecarConfig.tokens_from_env(environ)
    if args.config is not None and not args.config.exists():
        raise SystemExit(f"error: --config {args.config} does not exist")
    _refuse(args)
    return SidecarConfig(
        app_id=args.app_id,
        app_port=args.app_port,
        app_protocol=args.app_protocol,
        app_channel_address=args.app_channel_address,
        host=args.bind,
        http_port=args.dapr_http_port,
        grpc_port=args.dapr_grpc_port,
        internal_grpc_port=args.dapr_internal_grpc_port,
        metrics_port=args.metrics_port,
        resources_paths=[*args.resources_path, *args.components_path],
        config_path=args.config,
        data_dir=args.data_dir,
        log_level=args.log_level,
        dev_clock=args.dev_clock,
        api_token=api_token,
        app_token=app_token,
        app_health_check=args.enable_app_health_check,
        app_health_check_path=args.app_health_check_path,
        app_health_probe_interval=float(args.app_health_probe_interval),
        app_health_probe_timeout=args.app_health_probe_timeout / 1000,
        app_health_threshold=args.app_health_threshold,
        app_max_concurrency=args.app_max_concurrency if args.app_max_concurrency > 0 else None,
        max_body_bytes=_body_bytes(args),
        enable_api_logging=args.enable_api_logging,
        unix_domain_socket=args.unix_domain_socket,
        registry_dir=_registry_dir(args.registry_dir, environ),
    )


def _registry_dir(flag: str | None, environ: Mapping[str, str]) -> Path | None:
    if flag is None:
        return default_registry_dir(environ)
    return None if flag.lower() == "none" else Path(flag)


def app_environment(
    config: SidecarConfig, http_port: int, grpc_port: int, metrics_port: int | None
) -> dict[str, str]:
    """What `dapr run` gives the app it starts (the Dapr CLI's `getAppCommand` environment)."""
    env = {
        "APP_ID": config.app_id,
        "APP_PROTOCOL": config.app_protocol,
        "APP_CHANNEL_ADDRESS": config.app_channel_address,
        "DAPR_HTTP_PORT": str(http_port),
        "DAPR_GRPC_PORT": str(grpc_port),
    }
    if config.app_port is not None:
        env["APP_PORT"] = str(config.app_port)
    if metrics_port is not None:
        env["DAPR_METRICS_PORT"] = str(metrics_port)
    if config.api_token:
        env["DAPR_API_TOKEN"] = config.api_token
    if config.app_token:
        env["APP_API_TOKEN"] = config.app_token
    return env
