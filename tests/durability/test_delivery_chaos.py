"""Nothing lost, nothing twice: kill -9 of the app, the sidecar or both at random moments while reminders fall
due and writes are acknowledged; the feed then shows every reminder once (never early) and every acknowledged
write once. The full run (500 reminders, 1,000 writes) is `bench/delivery_chaos.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.delivery_chaos import run_chaos


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", [1, 2])
def test_reminders_and_writes_survive_kill9(tmp_path: Path, seed: int) -> None:
    result = run_chaos(tmp_path, reminders=200, writes=300, kills=12, seed=seed, log=lambda _: None)
    assert result.kills.total() == 12 or sum(result.kills.values()) >= 12
    assert (result.lost, result.duplicates, result.early) == (0, 0, 0), result
    assert result.acknowledged == 300 and result.writes_seen == 300 and result.writes_duplicated == 0, result
