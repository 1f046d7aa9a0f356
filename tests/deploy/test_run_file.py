"""`dapr/dapr.yaml`, the run file for `dapr run -f dapr/`: only fields the Dapr CLI reads, paths that resolve
the way the CLI resolves them, and settings the app understands.

The CLI (1.16 to 1.18) decodes the file without strict field checks, so a misspelt key would be dropped
without a word: the field lists below are the CLI's `RunFileConfig`, `SharedRunConfig` and `RunConfig`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from api.process.settings import ENV_NAMES, Settings
from tests.deploy.rendering import REPO

DAPR = REPO / "dapr"
RUN_FILE = DAPR / "dapr.yaml"

_TOP = {"version", "common", "apps", "name"}
_SHARED = {
    "configFilePath", "appProtocol", "apiListenAddresses", "enableProfiling", "logLevel", "appMaxConcurrency",
    "placementHostAddress", "resourcesPath", "resourcesPaths", "appSSL", "maxBodySize", "readBufferSize",
    "enableAppHealthCheck", "appHealthCheckPath", "appHealthProbeInterval", "appHealthProbeTimeout",
    "appHealthThreshold", "enableApiLogging", "runtimePath", "env", "daprdLogDestination",
    "appLogDestination", "schedulerHostAddress",
}  # fmt: skip
_APP = _SHARED | {
    "appID", "appChannelAddress", "appPort", "daprHTTPPort", "daprGRPCPort", "profilePort", "command",
    "metricsPort", "unixDomainSocket", "daprInternalGRPCPort", "containerImage", "containerImagePullPolicy",
    "createService", "appDirPath",
}  # fmt: skip
_LOG_DESTINATIONS = {"console", "file", "fileAndConsole"}
# Variables the CLI sets for the app itself (RunConfig's `env` tags).
_CLI_ENV = {
    "APP_ID",
    "APP_CHANNEL_ADDRESS",
    "APP_PORT",
    "DAPR_HTTP_PORT",
    "DAPR_GRPC_PORT",
    "DAPR_METRICS_PORT",
}


def _run_file() -> dict[str, Any]:
    doc = yaml.safe_load(RUN_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_only_fields_the_cli_reads() -> None:
    doc = _run_file()
    assert set(doc) <= _TOP
    assert doc["version"] == 1
    assert set(doc["common"]) <= _SHARED
    for app in doc["apps"]:
        assert set(app) <= _APP, set(app) - _APP
        for key in ("daprdLogDestination", "appLogDestination"):
            assert app.get(key, doc["common"].get(key, "console")) in _LOG_DESTINATIONS


def test_paths_resolve_as_the_cli_resolves_them() -> None:
    """`common` paths are relative to the run file; each app's appDirPath too, and it is daprd's cwd."""
    doc = _run_file()
    common = doc["common"]
    for path in common["resourcesPaths"]:
        assert (RUN_FILE.parent / path).is_dir(), path  # daprd reads resources from directories only
    assert (RUN_FILE.parent / common["configFilePath"]).is_file()
    (app,) = doc["apps"]
    data_dir = (RUN_FILE.parent / app["appDirPath"]).resolve()
    assert data_dir == REPO / ".data"
    # The CLI refuses a missing appDirPath: the README creates it, and git ignores what lands there.
    assert ".data/" in (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".data" in (REPO / "deployments" / "README.md").read_text(encoding="utf-8")


def test_the_app_is_the_projects_console_script_on_its_app_channel() -> None:
    (app,) = _run_file()["apps"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert app["command"][0] in scripts
    assert app["command"][1:] == ["serve"]
    assert app["appID"] == Settings.model_fields["app_id"].default
    # APP_PORT (set by the CLI from appPort) is the app channel's port in the app's settings.
    assert ENV_NAMES["APP_PORT"] == "channel_port"
    assert app["appPort"] == Settings.model_fields["channel_port"].default
    assert app["appPort"] != Settings.model_fields["port"].default
    assert app.get("appChannelAddress", "127.0.0.1") == "127.0.0.1"


def test_the_environment_names_are_settings_the_app_reads() -> None:
    doc = _run_file()
    env = {**doc["common"].get("env", {}), **doc["apps"][0].get("env", {})}
    assert set(env) <= set(ENV_NAMES), set(env) - set(ENV_NAMES)
    assert _CLI_ENV - {"APP_CHANNEL_ADDRESS", "DAPR_METRICS_PORT"} <= set(ENV_NAMES)
    # No secret in the file: tokens and the JWT key come from the shell (daprd inherits it).
    assert not {"APP_API_TOKEN", "DAPR_API_TOKEN", "TODO_JWT_SECRET"} & set(env)


def test_daprd_loads_the_resiliency_from_a_resources_path() -> None:
    common = _run_file()["common"]
    folders = {(RUN_FILE.parent / p).resolve() for p in common["resourcesPaths"]}
    assert (DAPR / "resiliency.yaml").parent.resolve() in folders
    assert (DAPR / "components").resolve() in folders


def test_the_store_and_key_the_app_reads_its_jwt_key_from_exist(tmp_path: Path) -> None:
    env = _run_file()["common"]["env"]
    stores = {
        d["metadata"]["name"]: d["spec"]["type"]
        for f in (DAPR / "components").glob("*.yaml")
        for d in yaml.safe_load_all(f.read_text(encoding="utf-8"))
        if d
    }
    assert stores[env["TODO_JWT_SECRET_STORE"]].startswith("secretstores.")
    settings = Settings.model_validate(
        {
            "app_api_token": "t" * 20,
            "jwt_secret_store": env["TODO_JWT_SECRET_STORE"],
            "jwt_secret_key": env["TODO_JWT_SECRET_KEY"],
            "data_dir": tmp_path,
        }
    )
    assert settings.jwt_secret is None  # the key is read through the store
