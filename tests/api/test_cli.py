"""`todo-engine up` and `todo-engine token` as a user runs them: real processes, real ports."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from api.process.cli import main
from api.process.local_secrets import SECRETS_FILE
from tests.harness import engine_env, up_command, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Up:
    def __init__(self, data: Path, *flags: str) -> None:
        self.proc = subprocess.Popen(
            up_command(data, *flags),
            cwd=ROOT,
            env=engine_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            self.banner = self._read_banner("--dev-clock" in flags)
        except BaseException:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
            raise
        found = re.search(r"API (http://\S+)/v1", self.banner)
        assert found, self.banner
        self.url = found.group(1)

    def _read_banner(self, dev: bool) -> str:
        # A thread reads stdout (a blocking pipe); the test waits on the queue with a deadline.
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if ("dev token" in line) if dev else ("Ctrl-C" in line):
                return "".join(seen)
        raise AssertionError(f"no banner from `todo-engine up`: {''.join(seen)!r}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def _token(data: Path, user: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["token", user, "--data-dir", str(data)]) == 0
    return capsys.readouterr().out.strip()


def test_up_token_and_restart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    up = Up(data, "--dev-clock")
    try:
        assert oct((data / SECRETS_FILE).stat().st_mode & 0o777) == "0o600"
        dev_token = re.search(r"dev token \(user 'dev'\): (\S+)", up.banner)
        assert dev_token
        with httpx.Client(base_url=up.url, timeout=10) as c:
            wait_for(lambda: c.get("/health/ready").status_code == 200, timeout=20)
            assert c.get("/docs").status_code == 200
            token = _token(data, "alice", capsys)
            headers = {"Authorization": f"Bearer {token}"}
            r = c.post("/v1/lists", json={"title": "5m"}, headers=headers)
            assert r.status_code == 201, r.text
            list_url = r.headers["location"]
            assert "server" not in r.headers and "date" in r.headers  # no banner; Date per RFC 9110
            r = c.post(
                "/v1/dev/clock:advance",
                json={"seconds": 60},
                headers={"Authorization": f"Bearer {dev_token.group(1)}"},
            )
            assert r.status_code == 200 and r.json()["offset_seconds"] >= 60
    finally:
        assert up.stop() == 0

    # Same data directory: same secrets (old tokens still work), same lists; no dev clock this time.
    up = Up(data)
    try:
        with httpx.Client(base_url=up.url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as c:
            wait_for(lambda: c.get("/health/ready").status_code == 200, timeout=20)
            assert c.get(list_url).json()["title"] == "5m"
            assert c.post("/v1/dev/clock:advance", json={"seconds": 1}).status_code == 404
    finally:
        assert up.stop() == 0


def test_token_needs_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TODO_JWT_SECRET", raising=False)
    assert main(["token", "bob", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no TODO_JWT_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("TODO_JWT_SECRET", "s" * 40)
    assert main(["token", "bob", "--data-dir", str(tmp_path / "none")]) == 0
    token = capsys.readouterr().out.strip()
    from api.auth import TokenVerifier

    assert TokenVerifier("s" * 40, max_ttl_seconds=30 * 24 * 3600).verify(token) == "bob"


def test_token_lives_at_most_the_configured_maximum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import jwt

    monkeypatch.setenv("TODO_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("TODO_JWT_MAX_TTL", "600")
    assert main(["token", "bob"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), "s" * 40, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600  # the default is the maximum
    assert main(["token", "bob", "--ttl", "601"]) == 2
    assert "TODO_JWT_MAX_TTL" in capsys.readouterr().err
    monkeypatch.setenv("TODO_JWT_MAX_TTL", "forever")
    assert main(["token", "bob"]) == 2
    assert "TODO_JWT_MAX_TTL" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("up", "serve", "token", "sidecar run"):
        assert command in out
    assert main(["nonsense"]) == 2
