"""Recurring jobs under several daemons and kill -9: exactly one job per tick, none lost.

Two and four daemons run the same three schedules (every 1, 2 and 3 seconds, catch_up="all")
while daemons are killed at random and replaced. Afterwards every schedule has exactly one job
per tick, and no tick between its first and its last is missing. No daemon logged an error.

Replay a run with DURABLEQ_SOAK_SEED=<the printed seed>.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.reliability.battery import (
    TEST_TIMEOUT,
    Figures,
    fleet,
    integrity,
    kill_one,
    problem_lines,
    query,
    seeded_rng,
    sized,
    wait_registered,
    wait_started,
)
from tests.support.scheduled import PERIODS

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

APPS = ("--app", "tests.support.scheduled:registry")


@pytest.mark.parametrize("daemon_count", [2, 4])
def test_each_tick_fires_exactly_once_under_kills(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures], daemon_count: int
) -> None:
    seed, rng = seeded_rng()
    report = figures(f"schedules, {daemon_count} daemons, kill -9 (seed {seed})")
    seconds = sized(12, 120)
    args = ("--concurrency", "4", "--lease", "2s", "--log-level", "warning", *APPS)
    kills = 0
    with fleet(db_path, tmp_path, *args) as daemons:
        for _ in range(daemon_count):
            daemons.start()
        wait_registered(db_path, daemon_count)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(rng.uniform(0.3, 1.5))
            if kill_one(daemons, rng):
                kills += 1
            daemons.assert_none_died()
        # A replacement still importing would die of the SIGTERM: let each register first.
        wait_started(db_path, [daemon.pid for daemon in daemons.alive()])
        codes = daemons.stop_all()
    rows = query(db_path, "SELECT schedule, schedule_tick FROM jobs WHERE schedule IS NOT NULL")
    report["kills"], report["jobs"] = kills, len(rows)
    for name, period in PERIODS.items():
        ticks = [datetime.fromisoformat(r["schedule_tick"]) for r in rows if r["schedule"] == name]
        assert len(ticks) == len(set(ticks)), f"{name}: a tick fired twice"
        ticks.sort()
        gaps = [(a, b) for a, b in itertools.pairwise(ticks) if (b - a).total_seconds() != period]
        assert not gaps, f"{name}: ticks lost between {gaps[:3]}"
        assert len(ticks) >= seconds / period - 3, f"{name}: only {len(ticks)} ticks"
        report[f"ticks_{name}"] = len(ticks)
    assert kills >= 3, "too few kills to prove anything"
    assert set(codes.values()) == {0}
    assert not (bad := problem_lines(daemons.combined_logs())), "\n".join(bad[:20])
    assert integrity(db_path) == "ok"
