"""`todo-engine sidecar run -f <dir or file>`: a multi-app run file as `dapr run -f` runs it.

The file is the Dapr CLI's (version 1, `common` and `apps`), resolved as its `runfileconfig` does: `common`
paths relative to the file, `appDirPath` too, an app's own paths relative to its appDirPath; an app without
resources or config takes `<appDirPath>/.dapr/resources` / `.dapr/config.yaml`, else `common`'s. Each app
gets a `sidecar run` (with `--port-file`) and then its command, with `dapr run`'s environment, in its
appDirPath, all children of this process; their lines are prefixed `== APP - <id> ==` (the CLI's) and
`== DAPR - <id> ==`. SIGINT/SIGTERM stops every app, then every sidecar. The sidecars find each other
through the host registry, so the apps invoke each other and share actor types.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from sidecar.flags import app_environment, build_parser, config_from_args
from sidecar.supervision import die_with_parent

__all__ = ["RunFileApp", "load_run_file", "main"]

log = logging.getLogger("sidecar.runfile")

# RunConfig / SharedRunConfig fields (Dapr CLI pkg/runfileconfig) and the `sidecar run` flag of each.
_FLAGS = {
    "appID": "--app-id",
    "appPort": "--app-port",
    "appProtocol": "--app-protocol",
    "appChannelAddress": "--app-channel-address",
    "appMaxConcurrency": "--app-max-concurrency",
    "daprHTTPPort": "--dapr-http-port",
    "daprGRPCPort": "--dapr-grpc-port",
    "daprInternalGRPCPort": "--dapr-internal-grpc-port",
    "metricsPort": "--metrics-port",
    "profilePort": "--profile-port",
    "configFilePath": "--config",
    "logLevel": "--log-level",
    "appHealthCheckPath": "--app-health-check-path",
    "appHealthProbeInterval": "--app-health-probe-interval",
    "appHealthProbeTimeout": "--app-health-probe-timeout",
    "appHealthThreshold": "--app-health-threshold",
    "maxBodySize": "--max-body-size",
    "readBufferSize": "--read-buffer-size",
    "placementHostAddress": "--placement-host-address",
    "schedulerHostAddress": "--scheduler-host-address",
    "unixDomainSocket": "--unix-domain-socket",
    "apiListenAddresses": "--bind",
}
_SWITCHES = {
    "enableAppHealthCheck": "--enable-app-health-check",
    "enableApiLogging": "--enable-api-logging",
    "enableProfiling": "--enable-profiling",
    "appSSL": "--app-ssl",
}
_OTHER = {"appDirPath", "command", "env", "resourcesPath", "resourcesPaths", "appLogDestination"}
_OTHER |= {"daprdLogDestination", "runtimePath"}
_KUBERNETES = {"containerImage", "containerImagePullPolicy", "createService"}
_DESTINATIONS = ("console", "file", "fileAndConsole")
_STOP_GRACE = 10.0  # seconds a child gets after SIGTERM before SIGKILL


class RunFileError(ValueError):
    """The run file cannot be run: the message names the field and why."""


@dataclass
class RunFileApp:
    """One app of the run file, resolved: the `sidecar run` arguments, its command and environment."""

    app_id: str
    app_dir: Path
    sidecar_args: list[str]
    command: list[str]
    env: dict[str, str]
    app_log: str = "fileAndConsole"  # the CLI's defaults
    daprd_log: str = "file"
    data_dir: Path = field(default_factory=Path)


def _abs(base: Path, value: str, what: str) -> Path:
    path = Path(os.path.expanduser(value))
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise RunFileError(f"{what}: {path} does not exist")
    return path.resolve()


def _paths(base: Path, config: Mapping[str, Any], where: str) -> list[Path]:
    listed = list(config.get("resourcesPaths") or [])
    if str(config.get("resourcesPath") or "").strip():
        listed.append(config["resourcesPath"])
    return [_abs(base, str(p), f"{where} resourcesPaths") for p in listed]


def load_run_file(target: Path) -> list[RunFileApp]:
    """The apps of the run file `target` (or `<target>/dapr.yaml`), resolved as the Dapr CLI does."""
    path = target / "dapr.yaml" if target.is_dir() else target
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RunFileError(f"cannot read the run file {path}: {exc}") from None
    if not isinstance(doc, dict) or not doc.get("version"):
        raise RunFileError("required field 'version' not found in the provided run template file")
    if doc["version"] != 1:
        raise RunFileError(f"run file version {doc['version']!r} is not supported (version 1)")
    base = path.parent.resolve()
    common: dict[str, Any] = dict(doc.get("common") or {})
    common_resources = _paths(base, common, "common")
    common_config = (
        _abs(base, common["configFilePath"], "common configFilePath")
        if common.get("configFilePath")
        else None
    )
    apps = doc.get("apps") or []
    if not apps:
        raise RunFileError("the run file has no apps")
    resolved = [_app(base, dict(app), common, common_resources, common_config) for app in apps]
    dirs = [app.app_dir for app in resolved]
    for app in resolved:
        # The sidecar's data dir is the app's dir (daprd's cwd: relative component files land there);
        # apps sharing one appDirPath get one each under it.
        shared = dirs.count(app.app_dir) > 1
        app.data_dir = app.app_dir / ".dapr" / "data" / app.app_id if shared else app.app_dir
        app.sidecar_args += ["--data-dir", str(app.data_dir)]
    return resolved


def _app(
    base: Path,
    app: dict[str, Any],
    common: Mapping[str, Any],
    common_resources: list[Path],
    common_config: Path | None,
) -> RunFileApp:
    if not app.get("appDirPath"):
        raise RunFileError("required field 'appDirPath' not found in the provided app config file")
    app_dir = _abs(base, str(app["appDirPath"]), "appDirPath")
    app_id = str(app.get("appID") or app_dir.name)
    for key in sorted(_KUBERNETES & set(app)):
        raise RunFileError(f"app {app_id}: {key} is for `dapr run -k` (Kubernetes), not the embedded sidecar")
    merged = {**common, **{k: v for k, v in app.items() if v not in (None, "", [], {})}}
    unknown = set(merged) - set(_FLAGS) - set(_SWITCHES) - _OTHER
    if unknown:  # the CLI drops unknown keys without a word; a misspelt key should not be lost
        log.warning(
            "app %s: run file fields not known to `dapr run -f`, ignored: %s", app_id, sorted(unknown)
        )
    resources = _paths(app_dir, app, f"app {app_id}")
    local = app_dir / ".dapr"
    if not resources:
        resources = [local / "resources"] if (local / "resources").is_dir() else common_resources
    config = (
        _abs(app_dir, app["configFilePath"], f"app {app_id} configFilePath")
        if app.get("configFilePath")
        else None
    )
    if config is None:
        config = local / "config.yaml" if (local / "config.yaml").is_file() else common_config
    args = ["--app-id", app_id, "--dapr-http-port", "0", "--dapr-grpc-port", "0"]
    for key, flag in _FLAGS.items():
        if key in merged and key not in ("appID", "configFilePath"):
            args += [flag, str(merged[key])]
    args += [flag for key, flag in _SWITCHES.items() if merged.get(key)]
    for folder in resources:
        args += ["--resources-path", str(folder)]
    if config is not None:
        args += ["--config", str(config)]
    command = merged.get("command") or []
    if isinstance(command, str) or not all(isinstance(c, str) for c in command):
        raise RunFileError(f"app {app_id}: command must be a list of strings")
    env = {str(k): str(v) for k, v in {**(common.get("env") or {}), **(app.get("env") or {})}.items()}
    logs = {}
    for key in ("appLogDestination", "daprdLogDestination"):
        value = str(merged.get(key) or ("fileAndConsole" if key == "appLogDestination" else "file"))
        if value not in _DESTINATIONS:
            raise RunFileError(f"app {app_id}: {key} {value!r} is not one of {', '.join(_DESTINATIONS)}")
        logs[key] = value
    return RunFileApp(
        app_id, app_dir, args, list(command), env, logs["appLogDestination"], logs["daprdLogDestination"]
    )


class _Lines:
    """Where one child's lines go: the console with a prefix, a log file under `.dapr/logs`, or both."""

    def __init__(self, prefix: str, destination: str, log_file: Path, console: TextIO) -> None:
        self.prefix = prefix
        self.console = console if destination in ("console", "fileAndConsole") else None
        self.file: TextIO | None = None
        if destination in ("file", "fileAndConsole"):
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self.file = log_file.open("a", encoding="utf-8")

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            if self.console is not None:
                self.console.write(f"{self.prefix}{text}\n")
                self.console.flush()
            if self.file is not None:
                self.file.write(text + "\n")
                self.file.flush()
        if self.file is not None:
            self.file.close()


class _Running:
    def __init__(self, app: RunFileApp) -> None:
        self.app = app
        self.sidecar: asyncio.subprocess.Process | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.pumps: list[asyncio.Task[None]] = []

    def _lines(self, kind: str, destination: str, stamp: str) -> _Lines:
        prefix = f"== {'APP' if kind == 'app' else 'DAPR'} - {self.app.app_id} == "
        log_file = self.app.app_dir / ".dapr" / "logs" / f"{self.app.app_id}_{kind}_{stamp}.log"
        return _Lines(prefix, destination, log_file, sys.stdout)

    async def start(self, ports_dir: Path, stamp: str) -> None:
        app = self.app
        port_file = ports_dir / f"{app.app_id}.json"
        env = {**os.environ, **app.env}
        self.sidecar = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sidecar",
            *app.sidecar_args,
            "--port-file",
            str(port_file),
            "--parent-pid",
            str(os.getpid()),
            cwd=app.app_dir,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.sidecar.stdout is not None
        self.pumps.append(
            asyncio.create_task(self._lines("daprd", app.daprd_log, stamp).pump(self.sidecar.stdout))
        )
        while not port_file.exists():
            if self.sidecar.returncode is not None:
                raise RunFileError(
                    f"app {app.app_id}: its sidecar exited with code {self.sidecar.returncode}"
                )
            await asyncio.sleep(0.05)
        if not app.command:
            return
        ports = json.loads(port_file.read_text())
        config = config_from_args(build_parser().parse_args(app.sidecar_args), env)
        env.update(app_environment(config, ports["http"], ports["grpc"], ports["metrics"]))
        log.info("starting app %s: %s", app.app_id, " ".join(app.command))
        runner = os.getpid()
        self.process = await asyncio.create_subprocess_exec(
            *app.command,
            cwd=app.app_dir,
            env=env,
            preexec_fn=lambda: die_with_parent(runner),  # killed with -9, this runner takes its apps along
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        self.pumps.append(
            asyncio.create_task(self._lines("app", app.app_log, stamp).pump(self.process.stdout))
        )

    async def wait(self) -> int:
        """Until the app (or, without a command, the sidecar) exits; then stop the other."""
        first = self.process or self.sidecar
        assert first is not None
        code = await first.wait()
        log.info(
            "app %s: %s exited with code %s", self.app.app_id, "app" if self.process else "sidecar", code
        )
        await self.stop()
        return code

    async def stop(self) -> None:
        for child in (self.process, self.sidecar):  # the app first, as `sidecar run` stops its app
            if child is None or child.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            try:
                await asyncio.wait_for(child.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        # A grandchild still holding the pipe must not hold up the stop.
        await asyncio.wait(self.pumps, timeout=_STOP_GRACE)


async def run_apps(apps: list[RunFileApp]) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    running = [_Running(app) for app in apps]
    stamp = time.strftime("%Y%m%d%H%M%S")
    with tempfile.TemporaryDirectory(prefix="todo-engine-run-") as ports_dir:
        try:
            for one in running:
                await one.start(Path(ports_dir), stamp)
            waits = [asyncio.ensure_future(one.wait()) for one in running]
            stop = asyncio.ensure_future(stopping.wait())
            pending = set(waits)
            while pending and not stopping.is_set():
                _, pending = await asyncio.wait(pending | {stop}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stop)
            if stopping.is_set():
                log.info("stopping every app")
            stop.cancel()
        finally:
            await asyncio.gather(*(one.stop() for one in running))
        codes = [w.result() for w in waits if w.done() and not w.cancelled()]
    return 0 if stopping.is_set() else next((c for c in codes if c), 0)


def main(argv: list[str]) -> int:
    """`sidecar run -f <dir or file>` (the only argument it takes with `-f`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 2 or argv[0] not in ("-f", "--run-file"):
        sys.stderr.write("usage: todo-engine sidecar run -f <run file or directory holding dapr.yaml>\n")
        return 2
    try:
        apps = load_run_file(Path(argv[1]))
        for app in apps:  # refuse bad flags now, before anything starts
            config_from_args(build_parser().parse_args(app.sidecar_args), {**os.environ, **app.env})
        return asyncio.run(run_apps(apps))
    except RunFileError as exc:
        log.error("%s", exc)
        return 1
