"""One `todo-engine up --dev-clock` process and one headless Chromium for the whole web suite: the page is
driven the way a person uses it, against the real stack on loopback, with no mocks anywhere.

Chromium is Debian's (`apt-get install -y chromium`); without it every test here fails, saying so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright
except ModuleNotFoundError as exc:  # pragma: no cover - a broken install, not a test outcome
    raise ImportError("tests/web need the `playwright` package: pip install -e '.[test]'") from exc

from api.auth import mint_token
from tests.harness import engine_env, up_command

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")  # Debian's; TODO_WEB_CHROMIUM names another
DEFAULT_ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots and logs; or TODO_WEB_ARTIFACTS
# Without the background-networking flags, Chromium on a closed network stalls on its own updaters.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_SECONDS = 60.0
_API_URL = re.compile(r"^todo-engine is up: API (http://[^\s,]+?)/v1\b")
UI_TIMEOUT_MS = 15_000

expect.set_options(timeout=UI_TIMEOUT_MS)


@dataclass
class Engine:
    """A running `todo-engine up --dev-clock`: its URL, the dev token it printed and its JWT secret."""

    url: str
    dev_token: str | None
    jwt_secret: str

    def token(self, user: str) -> str:
        return mint_token(self.jwt_secret, user, now=int(time.time()), ttl_seconds=3600)

    def client(self, user: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def now(self, user: str) -> dt.datetime:
        """The engine's (dev) clock."""
        with self.client(user) as c:
            r = c.get("/v1/dev/clock")
            r.raise_for_status()
            return dt.datetime.fromisoformat(r.json()["now"])


def artifacts_dir() -> Path:
    path = Path(os.environ.get("TODO_WEB_ARTIFACTS") or DEFAULT_ARTIFACTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read_lines(stream: IO[bytes], lines: queue.Queue[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace").rstrip("\n"))


def _wait_for_banner(
    proc: subprocess.Popen[bytes], lines: queue.Queue[str], log: Path, *, dev_clock: bool
) -> tuple[str, str | None]:
    url: str | None = None
    token: str | None = None
    deadline = time.monotonic() + START_SECONDS
    while url is None or (dev_clock and token is None):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"`todo-engine up` did not start (exit {proc.returncode}):\n{tail}")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        found = _API_URL.match(line)
        if found:
            url = found.group(1)
        elif line.startswith("dev token (user 'dev'): "):
            token = line.split(": ", 1)[1].strip()
    return url, token


@contextlib.contextmanager
def running_engine(data: Path, *, dev_clock: bool, log_name: str) -> Iterator[Engine]:
    """`python -m api up --port 0 [--dev-clock]` as a subprocess; the banner names the port it got."""
    log = artifacts_dir() / log_name
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            up_command(data, *(["--dev-clock"] if dev_clock else [])),
            cwd=ROOT,
            env=engine_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        url, dev_token = _wait_for_banner(proc, lines, log, dev_clock=dev_clock)
        secret = json.loads((data / "secrets.json").read_text())["jwt_secret"]
        yield Engine(url=url, dev_token=dev_token, jwt_secret=secret)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: stops the sidecar, then the app
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture(scope="package")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The stack every web test shares, with the dev clock on."""
    with running_engine(tmp_path_factory.mktemp("web-engine"), dev_clock=True, log_name="engine.log") as up:
        yield up


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    chromium = Path(os.environ.get("TODO_WEB_CHROMIUM") or DEFAULT_CHROMIUM)
    if not chromium.exists():
        pytest.fail(
            f"Chromium not found at {chromium}: the web tests drive a real browser. Install Debian's "
            "(`apt-get install -y chromium`) or point TODO_WEB_CHROMIUM at one.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Web:
    """One browser context and page for one user, recording what a test must not see: console errors,
    uncaught exceptions, and requests leaving the app's origin (the page must work offline)."""

    page: Page
    engine: Engine
    user: str
    name: str
    problems: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    @functools.cached_property
    def token(self) -> str:
        return self.engine.token(self.user)

    def api(self) -> httpx.Client:
        return self.engine.client(self.user)

    def open(self) -> None:
        self.page.goto(self.engine.url + "/")

    def sign_in(self, token: str | None = None) -> None:
        self.open()
        self.page.get_by_label("Token", exact=True).fill(token or self.token)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator("#connection")).to_have_text("Live")
        expect(self.page.locator("#workspace")).to_have_attribute("data-ready", "true")

    def shot(self, label: str) -> Path:
        path = artifacts_dir() / f"{self.name}-{label}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def assert_clean(self, allowed: tuple[str, ...] = ()) -> None:
        """No console error or page error except those containing one of `allowed` (a response status
        the test provoked on purpose, which Chromium logs as a failed resource load)."""
        unexpected = [p for p in self.problems if not any(a in p for a in allowed)]
        assert unexpected == [], f"console errors: {unexpected}"
        foreign = [r.url for r in self.requests if not r.url.startswith((self.engine.url, "data:"))]
        assert foreign == [], f"requests outside the app: {foreign}"


def _console(problems: list[str]) -> Any:
    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text} ({message.location.get('url', '')})")

    return record


@contextlib.contextmanager
def open_web(browser: Browser, engine: Engine, name: str) -> Iterator[Web]:
    """A fresh browser context (en-US, New York time, desktop size) for a new user of `engine`."""
    context = browser.new_context(
        locale="en-US", timezone_id="America/New_York", viewport={"width": 1360, "height": 900}
    )
    page = context.new_page()
    session = Web(page=page, engine=engine, user=f"web-{uuid.uuid4().hex[:10]}", name=name)
    page.on("console", _console(session.problems))
    page.on("pageerror", lambda error: session.problems.append(f"page error: {error}"))
    context.on("request", lambda req: session.requests.append(req))
    try:
        yield session
    finally:
        with contextlib.suppress(Exception):  # the closing picture is a convenience, never a failure
            session.shot("end")
        context.close()


@pytest.fixture
def web(browser: Browser, engine: Engine, request: pytest.FixtureRequest) -> Iterator[Web]:
    with open_web(browser, engine, request.node.name) as session:
        yield session
