"""Queue controls under several daemons and kill -9: limits hold across processes.

- A global concurrency limit of 2 over 4 daemons x 8 slots, with random kill -9s: at no moment
  do more than 2 executions of the queue run (a killed job's slot counts until it is rescued).
- A rate limit of 5/s burst 5 over 3 daemons: no 1-second window starts more than rate + burst,
  and waiting costs no attempt.
- max_pending under 4 concurrent producers: the queue never holds more than its bound.
- A pause reaches every daemon at once and survives their restart; resume wakes idle daemons
  within milliseconds, not at the next poll.

Replay a run with DURABLEQ_SOAK_SEED=<the printed seed>.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import (
    TEST_TIMEOUT,
    Execution,
    Figures,
    count,
    executions,
    fleet,
    integrity,
    jobs_by_id,
    kill_one,
    overlaps,
    problem_lines,
    seeded_rng,
    statuses,
    wait_all,
    wait_registered,
)
from tests.support.processes import environment
from tests.support.recorder import read_records

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

POLL = "DURABLEQ_POLL_INTERVAL"


def most_at_once(runs: list[Execution]) -> int:
    """The largest number of executions that ran at the same moment."""
    edges = sorted(
        [(run.start, 1) for run in runs] + [(run.end or float("inf"), -1) for run in runs],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_a_global_concurrency_limit_holds_under_kills(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    seed, rng = seeded_rng()
    report = figures(f"queue concurrency limit 2, 4 daemons x 8, kill -9 (seed {seed})")
    total, kills = 200, 5
    with Client.open(str(db_path)) as client:
        client.set_queue("limited", concurrency=2)
        ids = client.enqueue_many(
            [{"type": "record", "queue": "limited", "payload": {"seconds": 0.05}}] * total
        )
        client.enqueue_many([{"type": "record", "queue": "free"}] * 50)  # not held back
    args = ("--concurrency", "8", "--lease", "2s", "--log-level", "warning")
    with fleet(db_path, tmp_path, *args) as daemons:
        for _ in range(4):
            daemons.start()
        wait_registered(db_path, 4)
        thresholds = sorted(rng.uniform(0.05, 0.8) for _ in range(kills))
        deadline = time.monotonic() + 120
        while thresholds:
            assert time.monotonic() < deadline, f"stalled: {statuses(db_path)}"
            if count(db_path, "completed") >= thresholds[0] * total and kill_one(daemons, rng):
                thresholds.pop(0)
            daemons.assert_none_died()
            time.sleep(0.02)
        wait_all(db_path, "completed", total + 50, timeout=120, fleet=daemons)
        codes = daemons.stop_all()
    runs = executions(daemons.record, daemons.kill_time)
    limited = [run for job in ids for run in runs.get(job, [])]
    report["max_running_at_once"] = peak = most_at_once(limited)
    report["executions"], report["kills"] = len(limited), kills
    assert peak <= 2, f"{peak} executions of a queue limited to 2 ran at once"
    assert peak == 2, "the limit was never reached: the test proves nothing"
    assert not (bad := overlaps(runs)), "\n".join(bad[:10])
    assert all(row["status"] == "completed" for row in jobs_by_id(db_path).values())
    assert set(codes.values()) == {0}
    assert not (bad := problem_lines(daemons.combined_logs())), "\n".join(bad[:20])
    assert integrity(db_path) == "ok"


def test_a_rate_limit_holds_across_daemons_and_costs_no_attempts(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("queue rate 5/s burst 5, 3 daemons")
    total = 100
    with Client.open(str(db_path)) as client:
        client.set_queue("api", rate="5/1s:5")
        client.enqueue_many([{"type": "record", "queue": "api"}] * total)
    with fleet(db_path, tmp_path, "--concurrency", "4", "--log-level", "warning") as daemons:
        for _ in range(3):
            daemons.start()
        wait_all(db_path, "completed", total, timeout=60, fleet=daemons)
        codes = daemons.stop_all()
    starts = sorted(r["t"] for r in read_records(daemons.record) if r["event"] == "start")
    # The busiest 1-second window, starting at each start.
    busiest = max(sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts))
    report["busiest_second"], report["seconds"] = busiest, starts[-1] - starts[0]
    assert len(starts) == total
    assert busiest <= 5 + 5, f"{busiest} starts in one second under a 5/s burst 5 limit"
    assert starts[-1] - starts[0] >= (total - 5) / 5 - 1.0, "ran faster than the rate allows"
    assert all(row["attempts"] == 1 for row in jobs_by_id(db_path).values())
    assert set(codes.values()) == {0}


PRODUCER = """
import sys
from durableq.client import Client
from durableq.core.errors import QueueFull
accepted = refused = 0
with Client.open(sys.argv[1]) as client:
    for i in range(int(sys.argv[2])):
        try:
            client.enqueue_many([{"type": "record", "queue": "bounded"}] * (1 + i % 3))
            accepted += 1
        except QueueFull:
            refused += 1
print(accepted, refused)
"""


def test_max_pending_holds_under_concurrent_producers(
    db_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("max_pending 100, 4 producers")
    with Client.open(str(db_path)) as client:
        client.set_queue("bounded", max_pending=100)
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER, str(db_path), "200"],
            env=environment(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in producers]
    assert all(p.returncode == 0 for p in producers)
    accepted = sum(int(out[0]) for out in outputs)
    refused = sum(int(out[1]) for out in outputs)
    pending = count(db_path, "pending")
    report["accepted_batches"], report["refused_batches"], report["pending"] = (
        accepted,
        refused,
        pending,
    )
    assert pending <= 100, f"{pending} pending jobs in a queue bounded at 100"
    assert pending >= 98, "the producers should have filled the queue to (nearly) its bound"
    assert refused > 0


def test_pause_reaches_every_daemon_survives_restarts_and_resume_wakes_at_once(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("pause and resume, 2 daemons")
    env = environment(tmp_path / "record.jsonl", **{POLL: "30s"})  # no poll may do the work
    with (
        Client.open(str(db_path)) as client,
        fleet(db_path, tmp_path, "--log-level", "warning", env=env) as daemons,
    ):
        for _ in range(2):
            daemons.start()
        wait_registered(db_path, 2)
        client.pause_queue("mail")
        client.enqueue_many([{"type": "record", "queue": "mail"}] * 20)
        client.enqueue_many([{"type": "record", "queue": "other"}] * 5)
        wait_all(db_path, "completed", 5, timeout=30, fleet=daemons)
        time.sleep(1.0)
        assert count(db_path, "pending") == 20, "a paused queue's job started"
        codes = daemons.stop_all()
        assert set(codes.values()) == {0}
        for _ in range(2):  # new daemons read the pause from the database
            daemons.start()
        wait_registered(db_path, 2)
        time.sleep(1.0)
        assert count(db_path, "pending") == 20, "a restarted daemon ignored the pause"
        resumed = time.time()
        client.resume_queue("mail")
        wait_all(db_path, "completed", 25, timeout=10, fleet=daemons)
        daemons.stop_all()
    mail_starts = [
        r["t"] for r in read_records(daemons.record) if r["event"] == "start" and r["job"] <= 20
    ]
    report["resume_to_first_start_ms"] = first = (min(mail_starts) - resumed) * 1000
    assert len(mail_starts) == 20
    assert first < 500, f"the first job started {first:.0f} ms after resume (the poll is 30 s)"
