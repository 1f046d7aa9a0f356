"""`todo-engine sidecar run -f`: a multi-app run file (the Dapr CLI's format) started as one process tree;
the apps' sidecars (separate processes) find each other and share a broker file, every line is prefixed
with its app, and SIGINT stops them all."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sidecar.runfile import RunFileError, load_run_file
from tests.harness import bound_socket
from tests.sidecar.hosts.conftest import SHARED_PUBSUB

BACK = """\
import os
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

async def hello(request: Request) -> PlainTextResponse:
    body = (await request.body()).decode()
    return PlainTextResponse(f"back got {body} from {request.headers['dapr-caller-app-id']}")

async def subscribe(request: Request) -> JSONResponse:
    return JSONResponse([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}])

async def orders(request: Request) -> JSONResponse:
    print("back received", (await request.json())["data"], flush=True)
    return JSONResponse({"status": "SUCCESS"})

app = Starlette(
    routes=[
        Route("/hello", hello, methods=["POST"]),
        Route("/dapr/subscribe", subscribe),
        Route("/orders", orders, methods=["POST"]),
    ]
)
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["APP_PORT"]), log_level="warning")
"""

FRONT = """\
import os, time, httpx
url = f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}/v1.0/invoke/back/method/hello"
for _ in range(300):
    try:
        reply = httpx.post(url, content=b"hi")
        if reply.status_code == 200:
            print("result:", reply.text, flush=True)
            # through its own sidecar, into the broker file both sidecars share, to back's subscription
            published = httpx.post(url.split("/v1.0/")[0] + "/v1.0/publish/pubsub/orders", json="o-1")
            print("published:", published.status_code, flush=True)
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.1)
time.sleep(600)
"""


def _run_file(tmp: Path, back_port: int) -> Path:
    for name, source in (("back", BACK), ("front", FRONT)):
        (tmp / name).mkdir()
        (tmp / name / "app.py").write_text(source)
    (tmp / "components").mkdir()
    (tmp / "components" / "pubsub.yaml").write_text(SHARED_PUBSUB.format(path=tmp / "shared-pubsub.db"))
    (tmp / "dapr.yaml").write_text(
        textwrap.dedent(
            f"""\
            version: 1
            common:
              resourcesPaths: [./components]
              appLogDestination: console
              daprdLogDestination: console
              env:
                GREETING: hello
            apps:
              - appID: back
                appDirPath: ./back
                appPort: {back_port}
                command: ["{sys.executable}", "app.py"]
              - appDirPath: ./front
                command: ["{sys.executable}", "app.py"]
            """
        )
    )
    return tmp


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_two_apps_from_a_run_file_call_each_other_and_stop_together(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Ctrl-C stops every app and sidecar; a runner killed with -9 takes them along (parent-death signal)."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    runner = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "run", "-f", str(_run_file(tmp_path, port))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert runner.stdout is not None
        for line in runner.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while "== APP - back == back received o-1" not in lines:
            assert runner.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.1)
        tree = _descendants(runner.pid)
        assert len(tree) >= 4  # two sidecars, two apps
    finally:
        runner.send_signal(stop)
        try:
            code = runner.wait(30)
        finally:
            if runner.poll() is None:
                runner.kill()
    reader.join(10)
    assert code == (0 if stop == signal.SIGINT else -signal.SIGKILL), "\n".join(lines)
    assert "== APP - front == result: back got hi from front" in lines
    assert "== APP - front == published: 204" in lines
    assert any(line.startswith("== DAPR - back == ") for line in lines)
    assert any(line.startswith("== DAPR - front == ") for line in lines)
    deadline = time.monotonic() + 10
    while (left := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"orphans: {left}"


def test_paths_and_defaults_resolve_as_the_dapr_cli_does(tmp_path: Path) -> None:
    _run_file(tmp_path, 1234)
    (tmp_path / "front" / ".dapr" / "resources").mkdir(parents=True)
    back, front = load_run_file(tmp_path)
    assert (back.app_id, front.app_id) == ("back", "front")  # appID defaults to appDirPath's name
    assert back.app_dir == (tmp_path / "back").resolve() and back.data_dir == back.app_dir
    assert back.env == {"GREETING": "hello"}
    assert ["--app-port", "1234"] == back.sidecar_args[back.sidecar_args.index("--app-port") :][:2]
    resources = front.sidecar_args[front.sidecar_args.index("--resources-path") + 1]
    assert resources == str((tmp_path / "front" / ".dapr" / "resources").resolve())  # before common's
    resources = back.sidecar_args[back.sidecar_args.index("--resources-path") + 1]
    assert resources == str((tmp_path / "components").resolve())
    assert (back.app_log, back.daprd_log) == ("console", "console")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apps: []\n", "required field 'version'"),
        ("version: 1\napps:\n  - appID: x\n", "required field 'appDirPath'"),
        ("version: 1\napps:\n  - appDirPath: ./nowhere\n", "does not exist"),
        ("version: 1\napps:\n  - appDirPath: .\n    containerImage: x\n", "Kubernetes"),
    ],
)
def test_a_run_file_that_cannot_run_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "dapr.yaml").write_text(text)
    with pytest.raises(RunFileError, match=message):
        load_run_file(tmp_path / "dapr.yaml")


def test_the_project_run_file_loads(tmp_path: Path) -> None:
    """The project's own `dapr/dapr.yaml` (kept loadable by the real `dapr run -f`) loads here too."""
    repo = Path(__file__).resolve().parents[3]
    shutil.copytree(repo / "dapr", tmp_path / "dapr")
    (tmp_path / ".data").mkdir()  # the README's `mkdir -p .data`
    (app,) = load_run_file(tmp_path / "dapr")
    assert app.app_id == "todo-engine" and app.command == ["todo-engine", "serve"]
    assert app.env["TODO_DATA_DIR"] == "." and os.path.samefile(app.data_dir, tmp_path / ".data")
    args = app.sidecar_args
    assert args[args.index("--dapr-http-port", 4) + 1] == "3500"  # the file's port, after the default 0
