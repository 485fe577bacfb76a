"""The transition table, written out again here as the spec, and the functions that read it."""

from __future__ import annotations

import itertools

import pytest

from durableq.core.errors import InvalidTransition
from durableq.core.jobs import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Action,
    JobStatus,
    cancel_action_for,
    check_transition,
)

P, R, C, F, X = (
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)

# action -> (legal sources, possible targets), as the issues describe the lifecycle.
SPEC: dict[Action, tuple[set[JobStatus], set[JobStatus]]] = {
    Action.CLAIM: ({P}, {R}),
    Action.COMPLETE: ({R}, {C}),
    Action.RETRY_LATER: ({R}, {P}),
    Action.FAIL: ({R}, {F}),
    Action.CANCEL: ({P}, {X}),
    Action.REQUEST_CANCEL: ({R}, {R}),
    Action.ACKNOWLEDGE_CANCEL: ({R}, {X}),
    Action.RELEASE: ({R}, {P}),
    Action.SNOOZE: ({R}, {P}),
    Action.RESCUE: ({R}, {P, F}),
    Action.RETRY: ({F, X}, {P}),
    Action.PURGE: ({C, F, X}, set()),
}


def test_the_table_covers_every_action_exactly_as_specified() -> None:
    assert set(TRANSITIONS) == set(Action)
    for action, (sources, targets) in SPEC.items():
        assert TRANSITIONS[action].sources == sources, action
        assert TRANSITIONS[action].targets == targets, action


def test_terminal_statuses_are_the_finished_ones() -> None:
    assert {C, F, X} == TERMINAL_STATUSES
    assert [s for s in JobStatus if s.is_terminal] == [C, F, X]


@pytest.mark.parametrize(
    ("action", "status"),
    [(a, s) for a, s in itertools.product(Action, JobStatus) if s in SPEC[a][0]],
    ids=str,
)
def test_legal_transition_is_accepted(action: Action, status: JobStatus) -> None:
    check_transition(action, status, job_id=7)


@pytest.mark.parametrize(
    ("action", "status"),
    [(a, s) for a, s in itertools.product(Action, JobStatus) if s not in SPEC[a][0]],
    ids=str,
)
def test_illegal_transition_is_refused_with_a_clear_message(
    action: Action, status: JobStatus
) -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition(action, status, job_id=7)
    error = raised.value
    assert (error.job_id, error.action, error.status) == (7, action.value, status.value)
    assert str(error).startswith(f"cannot {action.value} job 7: it is {status.value}")
    assert error.exit_code == 2


def test_refusals_of_operator_actions_say_what_is_allowed() -> None:
    with pytest.raises(InvalidTransition, match="only failed or canceled jobs can be retried"):
        check_transition(Action.RETRY, C, job_id=1)
    with pytest.raises(InvalidTransition, match="only finished jobs can be purged"):
        check_transition(Action.PURGE, R)


def test_completed_job_cannot_be_retried() -> None:
    with pytest.raises(InvalidTransition, match="cannot retry job 3: it is completed"):
        check_transition(Action.RETRY, C, job_id=3)


def test_cancel_of_pending_ends_it_at_once() -> None:
    assert cancel_action_for(P) is Action.CANCEL


def test_cancel_of_running_asks_its_worker() -> None:
    assert cancel_action_for(R) is Action.REQUEST_CANCEL


@pytest.mark.parametrize("status", [C, F, X], ids=str)
def test_cancel_of_finished_job_is_refused(status: JobStatus) -> None:
    with pytest.raises(InvalidTransition, match="only pending or running jobs can be canceled"):
        cancel_action_for(status, job_id=9)


def test_message_without_job_id_names_no_id() -> None:
    with pytest.raises(InvalidTransition, match=r"^cannot claim job: it is failed$"):
        check_transition(Action.CLAIM, F)
