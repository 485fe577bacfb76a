"""Reports from running handlers on every store: progress and metadata saved fenced by the
lease, kept through a finish that carries the last state, and refused to a stale owner."""

from __future__ import annotations

from durableq.client import Client
from durableq.core.jobs import Action, JobStatus
from durableq.core.outcomes import Finish, Progress, Report


def test_progress_is_fenced_and_the_finish_keeps_the_last_report(any_client: Client) -> None:
    store = any_client.store
    job_id = any_client.enqueue("import")
    [claimed] = store.claim("w1", (), 1, any_client.clock(), 30.0)
    assert claimed.meta is None
    report = Report(progress=0.5, progress_message="half", meta_json='{"rows": 10}')
    assert (
        store.record_progress([Progress(job_id, claimed.lease_token, report)], any_client.clock())
        == []
    )
    job = any_client.get(job_id)
    assert (job.progress, job.progress_message, job.meta) == (0.5, "half", {"rows": 10})
    # A stale owner's report changes nothing.
    stale = Progress(job_id, "not-the-token", Report(progress=0.9))
    assert store.record_progress([stale], any_client.clock()) == [job_id]
    assert any_client.get(job_id).progress == 0.5
    # A finish carrying nothing new leaves the reports; one carrying a report writes it.
    retry = Finish(
        job_id,
        claimed.lease_token,
        Action.RETRY_LATER,
        JobStatus.PENDING,
        1,
        False,
        run_at=any_client.clock(),
        error="boom",
    )
    assert store.finish([retry], any_client.clock()) == []
    job = any_client.get(job_id)
    assert (job.progress, job.meta) == (0.5, {"rows": 10})
    [again] = store.claim("w2", (), 1, any_client.clock(), 30.0)
    assert again.meta == {"rows": 10}  # the next attempt starts from the saved metadata
    done = Finish(
        job_id,
        again.lease_token,
        Action.COMPLETE,
        JobStatus.COMPLETED,
        2,
        True,
        report=Report(progress=1.0, progress_message="done", meta_json='{"rows": 20}'),
    )
    assert store.finish([done], any_client.clock()) == []
    job = any_client.get(job_id)
    assert (job.status, job.progress, job.progress_message, job.meta) == (
        JobStatus.COMPLETED,
        1.0,
        "done",
        {"rows": 20},
    )


def test_a_snooze_gives_the_attempt_back(any_client: Client) -> None:
    store = any_client.store
    job_id = any_client.enqueue("poll", max_attempts=1)
    now = any_client.clock()
    for _ in range(3):
        [claimed] = store.claim("w", (), 1, now, 30.0)
        snooze = Finish(
            job_id,
            claimed.lease_token,
            Action.SNOOZE,
            JobStatus.PENDING,
            1,
            False,
            run_at=now,
            attempt_delta=-1,
        )
        assert store.finish([snooze], now) == []
    job = any_client.get(job_id)
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
