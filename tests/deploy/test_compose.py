"""`deployments/compose` and the app image: daprd beside the app with flags daprd 1.16 has, wired to the same
ports, files and secrets as the app, and an image that packages what pyproject.toml declares.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from api.process.settings import ENV_NAMES
from tests.deploy.rendering import REPO

COMPOSE = REPO / "deployments" / "compose" / "compose.yaml"
DOCKERFILE = REPO / "deployments" / "docker" / "Dockerfile"

# daprd 1.16's flags (cmd/daprd/options plus the logger's and the metrics exporter's).
DAPRD_FLAGS = set(
    """mode dapr-http-port dapr-listen-addresses dapr-public-port dapr-public-listen-address dapr-grpc-port
    dapr-internal-grpc-port dapr-internal-grpc-listen-address app-port profile-port app-protocol
    components-path resources-path config app-id control-plane-address sentry-address
    control-plane-trust-domain control-plane-namespace sentry-request-jwt-audiences allowed-origins
    enable-profiling version build-info wait app-max-concurrency enable-mtls app-ssl
    dapr-http-max-request-size max-body-size dapr-http-read-buffer-size read-buffer-size
    unix-domain-socket dapr-graceful-shutdown-seconds dapr-block-shutdown-duration
    enable-api-logging disable-builtin-k8s-secret-store enable-app-health-check
    app-health-check-path app-health-probe-interval app-health-probe-timeout app-health-threshold
    app-channel-address placement-host-address scheduler-host-address scheduler-job-streams
    actors-service reminders-service log-level log-as-json enable-metrics metrics-port
    metrics-listen-address""".split()
)
_INTERPOLATED = re.compile(r"^\$\{([A-Z_]+):\?[^}]+\}$")


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _flags(command: list[str]) -> dict[str, list[str]]:
    flags: dict[str, list[str]] = {}
    for arg in command[1:]:
        assert arg.startswith("--") and "=" in arg, f"write daprd flags as --name=value: {arg}"
        name, _, value = arg[2:].partition("=")
        flags.setdefault(name, []).append(value)
    return flags


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The host file or folder a service sees at `container_path`, through its bind mounts."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith(".") and (container_path == target or container_path.startswith(target + "/")):
            return (COMPOSE.parent / str(source) / container_path[len(target) :].lstrip("/")).resolve()
    raise AssertionError(f"{container_path} is not on a bind mount")


def test_daprd_shares_the_apps_network_and_uses_flags_daprd_has() -> None:
    services = _compose()["services"]
    assert set(services) == {"app", "daprd", "placement", "scheduler"}
    daprd = services["daprd"]
    assert daprd["network_mode"] == "service:app"  # the app channel stays on 127.0.0.1
    assert daprd["command"][0] == "./daprd"
    flags = _flags(daprd["command"])
    assert set(flags) <= DAPRD_FLAGS, set(flags) - DAPRD_FLAGS
    env = services["app"]["environment"]
    assert flags["app-id"] == [env["APP_ID"]]
    assert flags["app-port"] == [env["TODO_CHANNEL_PORT"]]
    assert flags["app-channel-address"] == ["127.0.0.1"]
    assert flags["dapr-http-port"] == [env["DAPR_HTTP_PORT"]]
    assert flags["dapr-grpc-port"] == [env["DAPR_GRPC_PORT"]]
    for flag, service in (("placement-host-address", "placement"), ("scheduler-host-address", "scheduler")):
        host, _, port = flags[flag][0].partition(":")
        command = services[service]["command"]
        assert host == service and command[command.index("--port") + 1] == port


def test_daprd_loads_the_same_files_as_dapr_run() -> None:
    daprd = _compose()["services"]["daprd"]
    flags = _flags(daprd["command"])
    folders = [_host_path(daprd, p) for p in flags["resources-path"]]
    assert folders == [REPO / "dapr" / "components", REPO / "dapr"]
    assert all(f.is_dir() for f in folders)
    assert _host_path(daprd, flags["config"][0]) == REPO / "dapr" / "config.yaml"


def test_secrets_come_from_the_shell_and_reach_both_containers() -> None:
    services = _compose()["services"]
    app, daprd = services["app"]["environment"], services["daprd"]["environment"]
    assert set(app) <= set(ENV_NAMES), set(app) - set(ENV_NAMES)
    for name in ("APP_API_TOKEN", "DAPR_API_TOKEN"):
        match = _INTERPOLATED.match(app[name])
        assert match and match.group(1) == name and daprd[name] == app[name]
    # The app reads its JWT key from the env secret store, i.e. from daprd's TODO_SECRET_<key>.
    store = yaml.safe_load((REPO / "dapr" / "components" / "secretstore.yaml").read_text(encoding="utf-8"))
    assert store["metadata"]["name"] == app["TODO_JWT_SECRET_STORE"]
    prefix = {m["name"]: m["value"] for m in store["spec"]["metadata"]}["prefix"]
    assert _INTERPOLATED.match(daprd[prefix + app["TODO_JWT_SECRET_KEY"]])


def test_images_are_pinned_to_one_dapr_version() -> None:
    services = _compose()["services"]
    tags = {services[s]["image"].rpartition(":")[2] for s in ("daprd", "placement", "scheduler")}
    assert len(tags) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", tags.pop())
    build = services["app"]["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE


def test_the_image_packages_the_project_and_runs_serve_as_the_pods_user() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.MULTILINE))
    assert copied == packages
    assert all((REPO / p).is_dir() for p in copied)
    (entrypoint,) = re.findall(r"^ENTRYPOINT \[\"([\w-]+)\"\]$", text, re.MULTILINE)
    assert entrypoint in project["project"]["scripts"]
    assert re.search(r'^CMD \["serve"\]$', text, re.MULTILINE)
    (uid,) = re.findall(r"^USER (\d+):\d+$", text, re.MULTILINE)
    deployment = yaml.safe_load(
        (REPO / "deployments" / "k8s" / "base" / "deployment.yaml").read_text(encoding="utf-8")
    )
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
