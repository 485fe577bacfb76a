"""The store's SQL guards agree with the TRANSITIONS table, status by status.

For each action, one job is inserted in every status (with a lease token, an expired lease and an
old finished_at on all of them, so that only the status can stop the change) and the store
is asked to apply the action to each. Where the table allows the action the row changes to one of
its targets; elsewhere the store refuses (InvalidTransition) or drops the change (a stale
finish, a claim or rescue that skips the row), and the row is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from durableq.client import Client
from durableq.core.errors import InvalidTransition
from durableq.core.jobs import TERMINAL_STATUSES, TRANSITIONS, Action, JobStatus
from durableq.core.outcomes import Finish
from durableq.store.api import Store
from tests.support.factories import at, insert_job, raw_row

FINISH_ACTIONS = [
    Action.COMPLETE,
    Action.RETRY_LATER,
    Action.FAIL,
    Action.ACKNOWLEDGE_CANCEL,
    Action.RELEASE,
    Action.SNOOZE,
]
NOW = at(60)


def one_job_per_status(client: Client, **columns: Any) -> dict[JobStatus, int]:
    """A job in every status, each with a lease token, a lease expired at NOW and an old finish."""
    defaults: dict[str, Any] = {
        "lease_expires_at": at(30),
        "finished_at": at(0),
        "worker_id": "w-old",
        **columns,
    }
    return {
        status: insert_job(client.engine, status, lease_token=f"token-{status.value}", **defaults)
        for status in JobStatus
    }


def rows(client: Client, ids: dict[JobStatus, int]) -> dict[JobStatus, dict[str, Any] | None]:
    return {status: raw_row(client.engine, job_id) for status, job_id in ids.items()}


def assert_only_legal_rows_changed(
    action: Action,
    before: dict[JobStatus, dict[str, Any] | None],
    after: dict[JobStatus, dict[str, Any] | None],
) -> None:
    for status in JobStatus:
        if status in TRANSITIONS[action].sources:
            assert after[status] != before[status], f"{action} did nothing to a {status} job"
        else:
            assert after[status] == before[status], f"{action} changed a {status} job"


def finish_for(action: Action, job_id: int, token: str) -> Finish:
    """The Finish a worker would write for `action`, aimed at the table's target."""
    (target,) = TRANSITIONS[action].targets
    failed = action in (Action.RETRY_LATER, Action.FAIL)
    return Finish(
        job_id=job_id,
        lease_token=token,
        action=action,
        status=target,
        attempt=1,
        finished=target in TERMINAL_STATUSES,
        run_at=at(90) if target is JobStatus.PENDING else None,
        result_json='{"ok":true}' if action is Action.COMPLETE else None,
        error="RuntimeError: boom" if failed else None,
        traceback="Traceback ...\nRuntimeError: boom" if failed else None,
        attempt_delta=-1 if action in (Action.RELEASE, Action.SNOOZE) else 0,
    )


@pytest.mark.parametrize("action", FINISH_ACTIONS, ids=str)
def test_finish_applies_only_where_the_table_allows(any_client: Client, action: Action) -> None:
    ids = one_job_per_status(any_client)
    before = rows(any_client, ids)
    store = any_client.store
    stale = {
        status: store.finish([finish_for(action, job_id, f"token-{status.value}")], NOW)
        for status, job_id in ids.items()
    }
    after = rows(any_client, ids)
    assert_only_legal_rows_changed(action, before, after)
    for status, job_id in ids.items():
        legal = status in TRANSITIONS[action].sources
        assert stale[status] == ([] if legal else [job_id]), status
        if legal:
            row = after[status]
            assert row is not None
            assert row["status"] in {t.value for t in TRANSITIONS[action].targets}
            assert row["lease_token"] is None and row["worker_id"] is None


def test_finish_of_release_gives_the_attempt_back(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.RUNNING, attempts=2, lease_token="t")
    assert any_client.store.finish([finish_for(Action.RELEASE, job_id, "t")], NOW) == []
    job = any_client.store.get(job_id)
    assert (job.status, job.attempts, job.finished_at) == (JobStatus.PENDING, 1, None)
    assert any_client.store.errors(job_id) == []


def test_claim_takes_only_pending_jobs(any_client: Client) -> None:
    ids = one_job_per_status(any_client, run_at=at(0))
    before = rows(any_client, ids)
    claimed = any_client.store.claim("w-new", (), limit=10, now=NOW, lease=30)
    after = rows(any_client, ids)
    assert [job.id for job in claimed] == [ids[JobStatus.PENDING]]
    assert_only_legal_rows_changed(Action.CLAIM, before, after)
    row = after[JobStatus.PENDING]
    assert row is not None
    assert (row["status"], row["attempts"], row["worker_id"]) == ("running", 1, "w-new")
    assert row["lease_token"] == claimed[0].lease_token != "token-pending"


def test_rescue_touches_only_running_jobs(any_client: Client) -> None:
    ids = one_job_per_status(any_client)
    before = rows(any_client, ids)
    report = any_client.store.rescue_expired(NOW)
    after = rows(any_client, ids)
    assert report.requeued == [ids[JobStatus.RUNNING]]
    assert report.failed == report.canceled == []
    assert_only_legal_rows_changed(Action.RESCUE, before, after)
    row = after[JobStatus.RUNNING]
    assert row is not None
    assert row["status"] in {t.value for t in TRANSITIONS[Action.RESCUE].targets}


# An operator's command and the actions it may take: cancel is CANCEL on a pending job and
# REQUEST_CANCEL on a running one.
OPERATORS: dict[str, tuple[Callable[[Store, int, datetime], Any], tuple[Action, ...]]] = {
    "cancel": (
        lambda store, job_id, now: store.cancel(job_id, now),
        (Action.CANCEL, Action.REQUEST_CANCEL),
    ),
    "retry": (lambda store, job_id, now: store.retry(job_id, now), (Action.RETRY,)),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_command_is_refused_where_the_table_forbids_it(
    any_client: Client, name: str
) -> None:
    operation, actions = OPERATORS[name]
    allowed = set().union(*(TRANSITIONS[action].sources for action in actions))
    ids = one_job_per_status(any_client)
    before = rows(any_client, ids)
    for status, job_id in ids.items():
        if status in allowed:
            operation(any_client.store, job_id, NOW)
        else:
            with pytest.raises(InvalidTransition, match=f"cannot {name} job {job_id}: it is"):
                operation(any_client.store, job_id, NOW)
    after = rows(any_client, ids)
    for status in JobStatus:
        assert (after[status] != before[status]) == (status in allowed), status


def test_cancel_of_pending_ends_it_at_once(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.PENDING)
    job = any_client.store.cancel(job_id, NOW)
    assert (job.status, job.finished_at, job.cancel_requested) == (JobStatus.CANCELED, NOW, False)
    assert any_client.store.claim("w", (), 10, at(120), 30) == []


def test_cancel_of_running_only_asks_its_worker(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.RUNNING, lease_token="t")
    job = any_client.store.cancel(job_id, NOW)
    assert (job.status, job.cancel_requested, job.finished_at) == (JobStatus.RUNNING, True, None)
    report = any_client.store.poll_cancel_requests("factory-worker", {job_id: "t"})
    assert report.cancel_requested == {job_id}
    assert report.lost == frozenset()


@pytest.mark.parametrize(
    "action", [Action.ACKNOWLEDGE_CANCEL, Action.RETRY_LATER, Action.RELEASE], ids=str
)
def test_worker_finish_of_a_cancel_requested_job_ends_it_canceled(
    any_client: Client, action: Action
) -> None:
    job_id = insert_job(any_client.engine, JobStatus.RUNNING, lease_token="t")
    any_client.store.cancel(job_id, at(10))
    assert any_client.store.finish([finish_for(action, job_id, "t")], NOW) == []
    job = any_client.store.get(job_id)
    assert job.status is JobStatus.CANCELED
    assert job.finished_at == NOW
    # Canceled is final: no claim picks it up again, even once its retry time has passed.
    assert any_client.store.claim("w", (), 10, at(3600), 30) == []


def test_cancel_requested_job_that_completed_anyway_stays_completed(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.RUNNING, lease_token="t")
    any_client.store.cancel(job_id, at(10))
    any_client.store.finish([finish_for(Action.COMPLETE, job_id, "t")], NOW)
    assert any_client.store.get(job_id).status is JobStatus.COMPLETED


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELED], ids=str)
def test_retry_of_failed_or_canceled_job_makes_it_due_now(
    any_client: Client, status: JobStatus
) -> None:
    job_id = insert_job(any_client.engine, status, attempts=3, max_attempts=3, run_at=at(0))
    job = any_client.store.retry(job_id, NOW)
    assert (job.status, job.run_at, job.finished_at) == (JobStatus.PENDING, NOW, None)
    # Attempts are history; an exhausted job gets one more so that the retry can run.
    assert (job.attempts, job.max_attempts) == (3, 4)
    (claimed,) = any_client.store.claim("w", (), 10, NOW, 30)
    assert (claimed.id, claimed.attempt, claimed.max_attempts) == (job_id, 4, 4)


def test_completed_job_cannot_be_retried(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.COMPLETED)
    before = raw_row(any_client.engine, job_id)
    with pytest.raises(InvalidTransition, match="only failed or canceled jobs can be retried"):
        any_client.store.retry(job_id, NOW)
    assert raw_row(any_client.engine, job_id) == before


def test_purge_deletes_only_finished_statuses(any_client: Client) -> None:
    ids = one_job_per_status(any_client)
    deleted = any_client.store.purge(NOW, sorted(TERMINAL_STATUSES))
    assert deleted == 3
    after = rows(any_client, ids)
    for status in JobStatus:
        assert (after[status] is None) == (status in TRANSITIONS[Action.PURGE].sources), status


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING], ids=str)
def test_purge_of_an_unfinished_status_is_refused(any_client: Client, status: JobStatus) -> None:
    ids = one_job_per_status(any_client)
    with pytest.raises(InvalidTransition, match="only finished jobs can be purged"):
        any_client.store.purge(NOW, [JobStatus.COMPLETED, status])
    assert all(row is not None for row in rows(any_client, ids).values())
