"""Stopping daemons: SIGTERM drains and gives unfinished jobs back; kill -9 loses nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons, wait_for_status

SHUTDOWN_TIMEOUT = 1.0
SHUTDOWN_GRACE = 2.0  # how long the daemon waits for handlers told to stop, after the timeout


def test_sigterm_finishes_what_it_can_and_gives_back_the_rest(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    quick = client.enqueue("record", {"seconds": 0.3})
    cooperative = client.enqueue("record", {"seconds": 30})
    stubborn = client.enqueue("stubborn", {"seconds": 30})
    worker = daemons.start(
        db_path, "--concurrency", "3", "--shutdown-timeout", f"{SHUTDOWN_TIMEOUT}s"
    )
    for job_id in (quick, cooperative, stubborn):
        daemons.wait_for_record(job_id, "start")

    code, took = daemons.stop(worker)
    assert code == 0, daemons.log(worker)
    print(f"SIGTERM to exit: {took:.2f}s")
    assert took < SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE + 3, took

    # Finished within the shutdown timeout: completed as usual.
    assert client.get(quick).status is JobStatus.COMPLETED
    assert daemons.records(quick, "end")
    # Told to stop at the timeout (ctx.cancelled), it stopped: back to pending, attempt not counted.
    assert daemons.records(cooperative, "stopped")
    # Ignored ctx.cancelled past the grace period: released all the same.
    assert daemons.records(stubborn, "end") == []
    for job_id in (cooperative, stubborn):
        job = client.get(job_id)
        assert (job.status, job.attempts, job.worker_id) == (JobStatus.PENDING, 0, None), job_id
        assert job.run_at <= client.clock()  # due again at once
        assert client.errors(job_id) == []


def test_sighup_drains_as_sigterm_does(client: Client, db_path: Path, daemons: Daemons) -> None:
    # A closed terminal sends SIGHUP: it used to kill the daemon at once (exit -1, no drain).
    quick = client.enqueue("record", {"seconds": 0.5})
    worker = daemons.start(db_path)
    daemons.wait_for_record(quick, "start")
    code, _took = daemons.stop(worker, sig=signal.SIGHUP)
    assert code == 0, daemons.log(worker)
    assert "SIGHUP: finishing running jobs" in daemons.log(worker)
    assert client.get(quick).status is JobStatus.COMPLETED


def test_a_released_job_runs_again_as_the_same_attempt(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    # One attempt allowed: had the interrupted run counted, there would be none left.
    job_id = client.enqueue("record", {"seconds": 1.5}, max_attempts=1)
    first = daemons.start(db_path, "--shutdown-timeout", "200ms")
    daemons.wait_for_record(job_id, "start")
    assert daemons.stop(first)[0] == 0
    assert daemons.records(job_id, "stopped")
    assert client.get(job_id).status is JobStatus.PENDING

    second = daemons.start(db_path, "--burst")
    assert second.wait(timeout=60) == 0, daemons.log(second)
    job = client.get(job_id)
    assert (job.status, job.attempts) == (JobStatus.COMPLETED, 1)
    starts = daemons.records(job_id, "start")
    assert [(s["attempt"], s["pid"]) for s in starts] == [(1, first.pid), (1, second.pid)]


def test_second_sigterm_exits_at_once(client: Client, db_path: Path, daemons: Daemons) -> None:
    job_id = client.enqueue("stubborn", {"seconds": 30})
    worker = daemons.start(db_path, "--shutdown-timeout", "60s")
    daemons.wait_for_record(job_id, "start")
    worker.send_signal(signal.SIGTERM)
    # Two signals sent back to back may arrive as one: send the second once the first is seen.
    daemons.wait_for_log(worker, "waiting up to 60s")
    code, took = daemons.stop(worker, timeout=20)
    assert code == 128 + signal.SIGTERM  # not 0: it did not finish its work
    assert took < 5, took
    # Its lease is still held: after a kill the job waits for a rescue, it is not lost.
    assert client.get(job_id).status is JobStatus.RUNNING


def test_kill_9_mid_job_then_another_daemon_rescues_it_after_the_lease(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    job_id = client.enqueue("record", {"seconds": 1.5}, max_attempts=3)
    doomed = daemons.start(db_path, "--lease", "2s")
    (first_start,) = daemons.wait_for_record(job_id, "start")
    os.kill(doomed.pid, signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL
    assert client.get(job_id).status is JobStatus.RUNNING

    rescuer = daemons.start(db_path, "--lease", "2s")
    job = wait_for_status(client, job_id, JobStatus.COMPLETED, JobStatus.FAILED, timeout=30)
    assert job.status is JobStatus.COMPLETED, client.errors(job_id)
    assert job.attempts == 2  # the killed attempt counts
    (error,) = client.errors(job_id)
    assert error.attempt == 1 and "died" in error.error

    starts = daemons.records(job_id, "start")
    assert [(s["attempt"], s["pid"]) for s in starts] == [(1, doomed.pid), (2, rescuer.pid)]
    ends = daemons.records(job_id, "end")
    assert [(e["attempt"], e["pid"]) for e in ends] == [(2, rescuer.pid)]
    # Rescued only once the dead worker's lease ran out, not as soon as someone looked.
    assert starts[1]["t"] - first_start["t"] >= 1.0
    assert daemons.stop(rescuer)[0] == 0
