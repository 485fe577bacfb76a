"""Retention: the pruner deletes finished jobs past their status's retention, and nothing else.

In-process, on a real SQLite file (and PostgreSQL where reachable), with time passed in.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import event

from durableq.client import Client
from durableq.core.config import Settings
from durableq.core.errors import InvalidInput
from durableq.core.jobs import JobStatus
from durableq.worker.maintenance import Pruner
from tests.support.factories import at, insert_jobs

HOUR, DAY = 3600.0, 86400.0


def _statuses(client: Client) -> dict[str, int]:
    return {s: n for s, n in client.store.stats(at(0)).counts.get("default", {}).items() if n}


def test_each_status_is_kept_as_long_as_its_retention_says(any_client: Client) -> None:
    engine = any_client.engine
    for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
        insert_jobs(engine, 3, status, finished_at=at(0))  # old
        insert_jobs(engine, 2, status, finished_at=at(6 * DAY))  # recent
    insert_jobs(engine, 4, JobStatus.PENDING)
    insert_jobs(engine, 1, JobStatus.RUNNING)
    pruner = Pruner(any_client.store, Settings())  # defaults: 24 h, 7 d, 7 d

    pruned = pruner.run_once(at(6 * DAY + HOUR))
    assert pruned == {JobStatus.COMPLETED: 3, JobStatus.FAILED: 0, JobStatus.CANCELED: 0}
    pruned = pruner.run_once(at(7 * DAY + HOUR))
    # The recent completed ones are past their 24 h by now; failed and canceled keep a week.
    assert pruned == {JobStatus.COMPLETED: 2, JobStatus.FAILED: 3, JobStatus.CANCELED: 3}
    assert _statuses(any_client) == {
        "failed": 2,
        "canceled": 2,
        "pending": 4,
        "running": 1,
    }


def test_zero_keeps_a_status_forever(any_client: Client) -> None:
    insert_jobs(any_client.engine, 3, JobStatus.COMPLETED, finished_at=at(0))
    insert_jobs(any_client.engine, 3, JobStatus.FAILED, finished_at=at(0))
    settings = replace(Settings(), retain_completed=0.0, retain_failed=HOUR)
    pruned = Pruner(any_client.store, settings).run_once(at(100 * DAY))
    assert pruned == {JobStatus.FAILED: 3, JobStatus.CANCELED: 0}
    assert _statuses(any_client) == {"completed": 3}


def test_pruning_runs_in_small_transactions(client: Client) -> None:
    insert_jobs(client.engine, 1_234, JobStatus.COMPLETED, finished_at=at(0))
    statements: list[str] = []

    @event.listens_for(client.engine, "before_cursor_execute")
    def _seen(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM JOBS"):
            statements.append(statement)

    settings = replace(Settings(), retain_failed=0.0, retain_canceled=0.0)
    pruned = Pruner(client.store, settings).run_once(at(2 * DAY))
    assert pruned[JobStatus.COMPLETED] == 1_234
    assert len(statements) == 3  # 500 + 500 + 234: the write lock is never held for long


def test_retention_comes_from_the_environment() -> None:
    settings = Settings.from_env({"DURABLEQ_RETAIN_COMPLETED": "1h", "DURABLEQ_RETAIN_FAILED": "0"})
    assert (settings.retain_completed, settings.retain_failed) == (HOUR, 0.0)
    assert settings.retain_canceled == 7 * DAY
    with pytest.raises(InvalidInput, match="invalid duration"):
        Settings.from_env({"DURABLEQ_RETAIN_COMPLETED": "forever"})
