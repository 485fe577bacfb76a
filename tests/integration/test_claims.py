"""Claiming: which jobs, in which order, how many, and never one job twice."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.jobs import JobStatus, NewJob
from tests.support.factories import at
from tests.support.processes import REPO, environment, wait_until

LEASE = 30.0


def enqueue(client: Client, *jobs: NewJob) -> list[int]:
    return client.store.enqueue_many(list(jobs), at(0))


def claim_one_by_one(client: Client, now_seconds: float = 100) -> list[int]:
    order = []
    while claimed := client.store.claim("w", (), 1, at(now_seconds), LEASE):
        order.extend(job.id for job in claimed)
    return order


def test_claim_order_is_priority_then_run_at_then_id(any_client: Client) -> None:
    ids = enqueue(
        any_client,
        NewJob("noop", {"n": 0}, priority=0, run_at=at(5)),
        NewJob("noop", {"n": 1}, priority=5, run_at=at(9)),
        NewJob("noop", {"n": 2}, priority=0, run_at=at(1)),
        NewJob("noop", {"n": 3}, priority=5, run_at=at(2)),
        NewJob("noop", {"n": 4}, priority=-3, run_at=at(0)),
        NewJob("noop", {"n": 5}, priority=0, run_at=at(1)),
        NewJob("noop", {"n": 6}, priority=5, run_at=at(2)),
    )
    expected = [ids[3], ids[6], ids[1], ids[2], ids[5], ids[0], ids[4]]
    assert claim_one_by_one(any_client) == expected


def test_a_batch_claim_takes_the_best_jobs(any_client: Client) -> None:
    ids = enqueue(any_client, *(NewJob("noop", {}, priority=p) for p in [1, 9, 3, 7, 5]))
    claimed = any_client.store.claim("w", (), 2, at(1), LEASE)
    assert {job.id for job in claimed} == {ids[1], ids[3]}


def test_jobs_due_in_the_future_are_not_claimed(any_client: Client) -> None:
    (later,) = enqueue(any_client, NewJob("noop", {}, run_at=at(100), priority=10))
    (now,) = enqueue(any_client, NewJob("noop", {}, run_at=at(0)))
    assert [j.id for j in any_client.store.claim("w", (), 10, at(99.999), LEASE)] == [now]
    # Due exactly at run_at.
    assert [j.id for j in any_client.store.claim("w", (), 10, at(100), LEASE)] == [later]


def test_claim_only_from_the_queues_asked_for(any_client: Client) -> None:
    ids = enqueue(any_client, *(NewJob("noop", {}, queue=q) for q in "abcabc"))
    claimed = any_client.store.claim("w", ("a", "c"), 10, at(1), LEASE)
    assert sorted(job.id for job in claimed) == [ids[0], ids[2], ids[3], ids[5]]
    assert {job.queue for job in claimed} == {"a", "c"}
    rest = any_client.store.claim("w", (), 10, at(1), LEASE)
    assert sorted(job.id for job in rest) == [ids[1], ids[4]]


def test_claim_takes_at_most_the_limit(any_client: Client) -> None:
    enqueue(any_client, *(NewJob("noop", {}) for _ in range(10)))
    store = any_client.store
    assert len(store.claim("w", (), 4, at(1), LEASE)) == 4
    assert len(store.claim("w", (), 4, at(1), LEASE)) == 4
    assert len(store.claim("w", (), 4, at(1), LEASE)) == 2
    assert store.claim("w", (), 4, at(1), LEASE) == []
    assert store.claim("w", (), 0, at(1), LEASE) == []


def test_claim_leases_the_job_to_the_worker(any_client: Client) -> None:
    (job_id,) = enqueue(any_client, NewJob("echo", {"x": [1, 2]}, max_attempts=4, timeout=2.5))
    (claimed,) = any_client.store.claim("w-1", (), 5, at(10), LEASE)
    assert (claimed.id, claimed.type, claimed.payload) == (job_id, "echo", {"x": [1, 2]})
    assert (claimed.attempt, claimed.max_attempts, claimed.timeout) == (1, 4, 2.5)
    job = any_client.store.get(job_id)
    assert (job.status, job.attempts, job.worker_id) == (JobStatus.RUNNING, 1, "w-1")
    assert job.started_at == at(10)
    assert job.lease_expires_at == at(10) + timedelta(seconds=LEASE)


def test_each_claim_gets_its_own_fencing_token(any_client: Client) -> None:
    enqueue(any_client, *(NewJob("noop", {}) for _ in range(4)))
    first = any_client.store.claim("w", (), 2, at(1), LEASE)
    second = any_client.store.claim("w", (), 2, at(1), LEASE)
    assert len({job.lease_token for job in first}) == 1
    assert {job.lease_token for job in first}.isdisjoint(job.lease_token for job in second)


def run_claimers(database: str, tmp_path: Path, processes: int, batch: int) -> list[list[int]]:
    go = tmp_path / "go"
    outputs = [tmp_path / f"claimed-{n}.json" for n in range(processes)]
    command = [sys.executable, "-m", "tests.support.claimer", database]
    children = [
        subprocess.Popen([*command, str(out), str(go), str(batch)], env=environment(), cwd=REPO)
        for out in outputs
    ]
    try:
        # Let every child import and open its client before any of them starts claiming.
        ready = [Path(f"{out}.ready") for out in outputs]

        def all_ready() -> bool:
            crashed = [c.returncode for c in children if c.poll() is not None]
            assert crashed == [], f"a claimer exited before claiming: {crashed}"
            return all(r.exists() for r in ready)

        wait_until(all_ready, timeout=60, what="every claimer to be ready")
        go.touch()
        for child in children:
            assert child.wait(timeout=120) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return [json.loads(out.read_text()) for out in outputs]


@pytest.mark.timeout(180)
def test_four_processes_claim_each_of_2000_jobs_exactly_once(
    any_client: Client, tmp_path: Path
) -> None:
    ids = any_client.enqueue_many([{"type": "noop"}] * 2000)
    per_process = run_claimers(any_client.settings.database, tmp_path, processes=4, batch=20)
    everything = list(itertools.chain.from_iterable(per_process))
    duplicates = [job_id for job_id, n in Counter(everything).items() if n > 1]
    assert duplicates == []
    assert sorted(everything) == sorted(ids)
    # Not a test of fairness, but the claims did run concurrently.
    assert sum(1 for claimed in per_process if claimed) >= 2, [len(c) for c in per_process]
    stats = any_client.stats()
    assert stats.counts == {"default": {"completed": 2000}}
