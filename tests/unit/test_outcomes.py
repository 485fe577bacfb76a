"""From what a handler did to the one guarded state change the worker writes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from durableq.core.jobs import TRANSITIONS, Action, ClaimedJob, JobStatus
from durableq.core.outcomes import Outcome, OutcomeKind, resolve
from durableq.core.retry import Backoff

NOW = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
BACKOFF = Backoff(base=2, factor=3, cap=100, jitter=0)


def job(attempt: int = 1, max_attempts: int = 3) -> ClaimedJob:
    return ClaimedJob(7, "default", "t", {}, attempt, max_attempts, None, "token")


def outcome(kind: OutcomeKind, attempt: int = 1, max_attempts: int = 3) -> Outcome:
    error = None if kind in (OutcomeKind.SUCCEEDED, OutcomeKind.CANCELED) else "E: x"
    return Outcome(job(attempt, max_attempts), kind, 0.1, result_json="1", error=error)


def test_success_completes_with_the_result() -> None:
    finish = resolve(outcome(OutcomeKind.SUCCEEDED), NOW, BACKOFF, random.Random(0))
    assert (finish.action, finish.status, finish.finished) == (
        Action.COMPLETE,
        JobStatus.COMPLETED,
        True,
    )
    assert (finish.result_json, finish.error, finish.lease_token) == ("1", None, "token")


@pytest.mark.parametrize(("attempt", "delay"), [(1, 2), (2, 6), (3, 18)])
def test_failure_with_attempts_left_retries_after_the_backoff(attempt: int, delay: int) -> None:
    finish = resolve(outcome(OutcomeKind.RAISED, attempt, 5), NOW, BACKOFF, random.Random(0))
    assert (finish.action, finish.status, finish.finished) == (
        Action.RETRY_LATER,
        JobStatus.PENDING,
        False,
    )
    assert finish.run_at == NOW + timedelta(seconds=delay)
    assert (finish.error, finish.attempt, finish.attempt_delta) == ("E: x", attempt, 0)


@pytest.mark.parametrize("kind", [OutcomeKind.RAISED, OutcomeKind.TIMED_OUT])
def test_failure_of_the_last_attempt_fails_for_good(kind: OutcomeKind) -> None:
    finish = resolve(outcome(kind, 3, 3), NOW, BACKOFF, random.Random(0))
    assert (finish.action, finish.status, finish.finished, finish.run_at) == (
        Action.FAIL,
        JobStatus.FAILED,
        True,
        None,
    )


def test_timeout_with_attempts_left_is_retried() -> None:
    finish = resolve(outcome(OutcomeKind.TIMED_OUT, 1, 2), NOW, BACKOFF, random.Random(0))
    assert finish.action is Action.RETRY_LATER


def test_cancel_ends_canceled_without_an_error() -> None:
    finish = resolve(outcome(OutcomeKind.CANCELED, 1, 1), NOW, BACKOFF, random.Random(0))
    assert (finish.action, finish.status, finish.finished, finish.error) == (
        Action.ACKNOWLEDGE_CANCEL,
        JobStatus.CANCELED,
        True,
        None,
    )


def test_interruption_gives_the_job_back_without_counting_the_attempt() -> None:
    finish = resolve(outcome(OutcomeKind.INTERRUPTED, 3, 3), NOW, BACKOFF, random.Random(0))
    assert (finish.action, finish.status, finish.finished) == (
        Action.RELEASE,
        JobStatus.PENDING,
        False,
    )
    assert (finish.attempt_delta, finish.run_at, finish.error) == (-1, NOW, None)


@pytest.mark.parametrize("kind", list(OutcomeKind), ids=str)
def test_every_resolution_is_a_legal_transition_from_running(kind: OutcomeKind) -> None:
    for attempt in (1, 3):
        finish = resolve(outcome(kind, attempt, 3), NOW, BACKOFF, random.Random(0))
        assert JobStatus.RUNNING in TRANSITIONS[finish.action].sources
        assert finish.status in TRANSITIONS[finish.action].targets
