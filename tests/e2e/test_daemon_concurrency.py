"""Two daemons on one SQLite file share 2,000 jobs: none lost, none run twice at once."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons
from tests.support.processes import wait_until

JOBS = 2000


def executions(records: list[dict[str, Any]]) -> dict[int, list[tuple[float, float, int]]]:
    """Per job, its executions as (start, end, pid); an execution without an end never ended."""
    open_starts: dict[tuple[int, int, int], float] = {}
    done: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for line in records:
        key = (line["job"], line["attempt"], line["pid"])
        if line["event"] == "start":
            open_starts[key] = line["t"]
        elif line["event"] == "end":
            done[line["job"]].append((open_starts.pop(key), line["t"], line["pid"]))
    assert open_starts == {}, f"executions that never ended: {sorted(open_starts)[:10]}"
    return done


@pytest.mark.timeout(180)
def test_two_daemons_complete_2000_jobs_each_exactly_once(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    workers = [daemons.start(db_path, "--concurrency", "4") for _ in range(2)]
    wait_until(lambda: len(client.workers()) == 2, timeout=30, what="both daemons to register")
    # A few milliseconds each: long enough that both daemons must share the work.
    ids = client.enqueue_many([{"type": "record", "payload": {"seconds": 0.003}}] * JOBS)

    def completed() -> bool:
        return client.stats().counts.get("default", {}).get("completed", 0) == JOBS

    wait_until(completed, timeout=150, interval=0.2, what=f"{JOBS} completed jobs")
    for worker in workers:
        assert daemons.stop(worker)[0] == 0, daemons.log(worker)

    assert client.stats().counts == {"default": {"completed": JOBS}}
    ran = executions(daemons.records())
    assert sorted(ran) == sorted(ids)  # none lost
    for job_id, runs in ran.items():
        runs.sort()
        overlapping = [(a, b) for a, b in pairwise(runs) if b[0] < a[1]]
        assert overlapping == [], f"job {job_id} ran twice at once: {overlapping}"
        assert len(runs) == 1, f"job {job_id} ran {len(runs)} times: {runs}"
    pids = [run[2] for runs in ran.values() for run in runs]
    shares = {worker.pid: pids.count(worker.pid) for worker in workers}
    print(f"jobs per daemon: {shares}")
    assert all(shares.values()), shares
    assert all(job.attempts == 1 for job in client.jobs(limit=JOBS))


def test_a_job_longer_than_its_lease_is_not_rescued_from_a_live_daemon(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    workers = [daemons.start(db_path, "--lease", "1s") for _ in range(2)]
    wait_until(lambda: len(client.workers()) == 2, timeout=30, what="both daemons to register")
    job_id = client.enqueue("record", {"seconds": 3.5})  # three and a half leases
    job = client.wait(job_id, timeout=30)
    assert (job.status, job.attempts) == (JobStatus.COMPLETED, 1)
    assert client.errors(job_id) == []
    assert len(daemons.records(job_id, "start")) == 1
    for worker in workers:
        assert daemons.stop(worker)[0] == 0
