"""Everything at once under kill -9: producers and daemons die at random while a limited queue,
unique jobs and recurring schedules are in use (issue 16, case 4).

Three daemons (the recorder's handlers and three second-level schedules, catch_up="all") share
one SQLite file with a short lease; two producer processes (tests/reliability/producer.py,
`mixed`) enqueue in turn to a queue limited to 2 running jobs, to `default`, and unique jobs
keyed by one of 4 values. Random daemons and producers are SIGKILLed and replaced. Afterwards,
from the database, the record file and the producers' output:

- every acknowledged job is there and completed; none ran twice unless its daemon was killed;
  no two executions of one job overlapped;
- the limited queue never ran more than 2 at once, even across daemons and rescues;
- no two unique twins (same key) ran at the same time (a twin can only be enqueued once the
  previous one finished);
- each schedule fired exactly once per tick, with no tick lost;
- no daemon logged an error, every daemon stopped cleanly, the file is intact.

The default run is small (for CI); DURABLEQ_SOAK=1 runs 200 kills over 100,000 jobs
(DURABLEQ_SOAK_JOBS and DURABLEQ_SOAK_KILLS override). Replay with DURABLEQ_SOAK_SEED=<seed>.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import (
    TEST_TIMEOUT,
    Execution,
    Figures,
    Fleet,
    count,
    executions,
    fleet,
    integrity,
    jobs_by_id,
    overlaps,
    problem_lines,
    query,
    reruns_without_a_kill,
    scalar,
    seeded_rng,
    sized,
    statuses,
    wait_registered,
    wait_started,
)
from tests.reliability.test_queue_limits import most_at_once
from tests.support.processes import environment, wait_until
from tests.support.scheduled import PERIODS

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

DAEMONS = 3
PRODUCERS = 2
LIMIT = 2  # the `limited` queue's global concurrency
SECONDS = "0.02"  # a job sleeps 0 to this long
PRODUCER = [sys.executable, "-m", "tests.reliability.producer"]
MIN_UPTIME = 1.0  # a process younger than this may still be importing: do not pick it


@dataclass
class Producers:
    """Producer processes; each one's stdout holds one line per acknowledged job."""

    db: Path
    directory: Path
    processes: list[tuple[subprocess.Popen[bytes], Path, float]] = field(default_factory=list)

    def start(self) -> None:
        tag = f"p{len(self.processes)}"
        out = self.directory / f"{tag}.out"
        with open(out, "wb") as sink:
            process = subprocess.Popen(
                [*PRODUCER, str(self.db), tag, "mixed", "", SECONDS, "0.002"],
                stdout=sink,
                env=environment(),
            )
        self.processes.append((process, out, time.monotonic()))

    def alive(self) -> list[subprocess.Popen[bytes]]:
        now = time.monotonic()
        return [p for p, _, t in self.processes if p.poll() is None and now - t >= MIN_UPTIME]

    def assert_none_died(self) -> None:
        for process, out, _ in self.processes:
            code = process.poll()
            assert code in (None, -signal.SIGKILL), f"producer {out.name} exited with {code}"

    def kill_all(self) -> None:
        for process, _, _ in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()

    def acknowledged(self) -> list[int]:
        """Ids from complete lines only: a line cut by the kill was never acknowledged."""
        ids = []
        for _, out, _ in self.processes:
            for line in out.read_text().splitlines(keepends=True):
                if line.endswith("\n"):
                    ids.append(int(line.split()[0]))
        return ids


def test_everything_at_once_under_kills(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    total = sized(1200, 100_000, "DURABLEQ_SOAK_JOBS")
    kills = sized(12, 200, "DURABLEQ_SOAK_KILLS")
    seed, rng = seeded_rng()
    report = figures(f"long soak, everything at once (seed {seed})")
    began = time.monotonic()
    with Client.open(str(db_path)) as client:
        client.set_queue("limited", concurrency=LIMIT)
    args = ("--concurrency", "4", "--lease", "2s", "--log-level", "warning")
    args += ("--app", "tests.support.scheduled:registry")
    producers = Producers(db_path, tmp_path)
    with fleet(db_path, tmp_path, *args) as daemons:
        try:
            for _ in range(DAEMONS):
                daemons.start()
            wait_registered(db_path, DAEMONS)
            for _ in range(PRODUCERS):
                producers.start()
            done = _kill_while_producing(db_path, daemons, producers, total, kills, rng)
            producers.kill_all()
            acknowledged = producers.acknowledged()
            wait_until(
                lambda: _all_completed(db_path, acknowledged, daemons),
                timeout=120 + total / 50,
                what=f"every acknowledged job to complete ({statuses(db_path)})",
            )
            wait_started(db_path, [daemon.pid for daemon in daemons.alive()])
            codes = daemons.stop_all()
        finally:
            producers.kill_all()
    report["jobs"], report["acknowledged"] = (
        scalar(db_path, "SELECT count(*) FROM jobs"),
        len(set(acknowledged)),
    )
    report["daemon_kills"], report["producer_kills"] = done
    report["wall_s"] = round(time.monotonic() - began, 1)
    _check(db_path, daemons, acknowledged, codes, report)


def _kill_while_producing(
    db: Path, daemons: Fleet, producers: Producers, total: int, kills: int, rng: random.Random
) -> tuple[int, int]:
    """Kill a random daemon or producer (and start its replacement) at random moments until
    `total` jobs exist and `kills` were made; returns (daemons killed, producers killed)."""
    thresholds = sorted(rng.uniform(0.02, 0.95) * total for _ in range(kills))
    killed = {"daemon": 0, "producer": 0}
    deadline = time.monotonic() + 120 + total / 40
    while thresholds or count_jobs(db) < total:
        assert time.monotonic() < deadline, f"stalled: {statuses(db)}, {len(thresholds)} left"
        if thresholds and count_jobs(db) >= thresholds[0]:
            kind = rng.choice(("daemon", "daemon", "producer"))
            if kind == "daemon":
                candidates = [d for d in daemons.alive() if time.time() - d.started >= MIN_UPTIME]
                if candidates:
                    daemons.kill(rng.choice(candidates))
                    daemons.start()
                    killed[kind] += 1
                    thresholds.pop(0)
            elif producers.alive():
                process = rng.choice(producers.alive())
                process.kill()
                process.wait()
                producers.start()
                killed[kind] += 1
                thresholds.pop(0)
        daemons.assert_none_died()
        producers.assert_none_died()
        time.sleep(0.02)
    return killed["daemon"], killed["producer"]


def count_jobs(db: Path) -> int:
    return int(scalar(db, "SELECT count(*) FROM jobs WHERE schedule IS NULL"))


def _all_completed(db: Path, acknowledged: list[int], daemons: Fleet) -> bool:
    daemons.assert_none_died()
    # Scheduled jobs keep coming while daemons run: only the producers' must all be done.
    left = scalar(db, "SELECT count(*) FROM jobs WHERE schedule IS NULL AND status != 'completed'")
    return int(left) == 0 and count(db, "completed") >= len(set(acknowledged))


def _check(
    db: Path, daemons: Fleet, acknowledged: list[int], codes: dict[int, int], report: Figures
) -> None:
    rows = jobs_by_id(db)
    runs = executions(daemons.record, daemons.kill_time)
    lost = sorted(set(acknowledged) - set(rows))
    assert not lost, f"{len(lost)} acknowledged job(s) lost: {lost[:20]}"
    unfinished = [i for i in acknowledged if rows[i]["status"] != "completed"]
    assert not unfinished, f"acknowledged jobs not completed: {unfinished[:20]}"
    assert not (bad := overlaps(runs)), "executions overlapped:\n" + "\n".join(bad[:10])
    assert not (bad := reruns_without_a_kill(runs, daemons.kill_time)), "\n".join(bad[:10])
    report["extra_runs"] = sum(len(found) - 1 for found in runs.values())

    limited = [
        run for i, row in rows.items() if row["queue"] == "limited" for run in runs.get(i, [])
    ]
    report["limited_peak"] = peak = most_at_once(limited)
    assert peak <= LIMIT, f"{peak} executions of a queue limited to {LIMIT} ran at once"

    twins: dict[int, list[Execution]] = defaultdict(list)
    for i, row in rows.items():
        if row["queue"] == "unique":
            twins[json.loads(row["payload"])["key"]].extend(runs.get(i, []))
    report["unique_jobs"] = sum(1 for row in rows.values() if row["queue"] == "unique")
    for key, found in twins.items():
        found.sort(key=lambda run: run.start)
        clashes = [
            (a, b)
            for a, b in itertools.pairwise(found)
            if a.job != b.job and (a.end is None or b.start < a.end)
        ]
        assert not clashes, f"unique key {key}: twins ran at once: {clashes[:3]}"

    ticks = query(db, "SELECT schedule, schedule_tick FROM jobs WHERE schedule IS NOT NULL")
    report["schedule_ticks"] = len(ticks)
    for name, period in PERIODS.items():
        mine = sorted(
            datetime.fromisoformat(r["schedule_tick"]) for r in ticks if r["schedule"] == name
        )
        assert len(mine) == len(set(mine)), f"{name}: a tick fired twice"
        gaps = [(a, b) for a, b in itertools.pairwise(mine) if (b - a).total_seconds() != period]
        assert not gaps, f"{name}: ticks lost between {gaps[:3]}"

    assert set(codes.values()) == {0}, codes
    assert not (bad := problem_lines(daemons.combined_logs())), "\n".join(bad[:20])
    assert integrity(db) == "ok"
