"""Group commit: concurrent submissions share a transaction, and each still gets its own answer
(its own ids, its own error), on both stores."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import timedelta

import pytest

from durableq.client import Client
from durableq.core.errors import IdempotencyConflict, QueueFull
from durableq.core.jobs import NewJob
from durableq.group_commit import GroupCommit, Submitted, WriterClosed
from durableq.store.engine import sqlite_path


@contextmanager
def writes_held(client: Client) -> Iterator[None]:
    """Hold the database's write lock (SQLite) or the jobs table (PostgreSQL), so the writer
    blocks on its first commit and every later submission queues up behind it."""
    path = sqlite_path(client.settings)
    if path is not None:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with client.engine.connect() as connection:
        connection.exec_driver_sql("LOCK TABLE jobs IN EXCLUSIVE MODE")
        yield
        connection.rollback()


def submit_all(
    writer: GroupCommit, client: Client, specs: list[dict[str, object]]
) -> list[Future[Submitted]]:
    return [writer.submit([client.job_from_mapping(spec)], read_back=True) for spec in specs]


def outcome(future: Future[Submitted]) -> object:
    try:
        return future.result(timeout=30)
    except Exception as error:  # the error is the answer under test
        return error


def test_concurrent_submissions_share_commits_and_get_their_own_jobs(any_client: Client) -> None:
    writer = GroupCommit(any_client)
    answers: dict[int, Submitted] = {}
    lock = threading.Lock()

    def producer(n: int) -> None:
        for i in range(25):
            job = any_client.job_from_mapping({"type": "echo", "payload": {"n": n, "i": i}})
            submitted = writer.submit([job], read_back=True).result(timeout=30)
            with lock:
                answers[n * 100 + i] = submitted

    with writes_held(any_client):
        threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.3)  # the first submissions queue up behind the held lock
    for thread in threads:
        thread.join()
    writer.close()
    assert len(answers) == 200
    assert writer.submissions == 200
    assert writer.commits < 200  # grouped: at least the ones queued behind the lock
    for key, submitted in answers.items():
        (job_id,) = submitted.enqueued
        stored = any_client.get(job_id)
        assert stored.payload == {"n": key // 100, "i": key % 100}
        assert submitted.jobs == [stored]  # the answer is what a read of the row gives


def test_a_refused_submission_does_not_take_its_group_down(any_client: Client) -> None:
    any_client.set_queue("small", max_pending=3)
    writer = GroupCommit(any_client)
    with writes_held(any_client):
        futures = submit_all(writer, any_client, [{"type": "t", "queue": "small"}] * 6)
        futures += submit_all(writer, any_client, [{"type": "t", "queue": "roomy"}] * 4)
    results = [outcome(future) for future in futures]
    writer.close()
    full = [r for r in results[:6] if isinstance(r, QueueFull)]
    stored = [r for r in results[:6] if isinstance(r, Submitted)]
    assert (len(stored), len(full)) == (3, 3)
    assert all(isinstance(r, Submitted) for r in results[6:])
    assert any_client.queue("small").pending == 3
    assert any_client.queue("roomy").pending == 4


def test_idempotency_keys_inside_one_group(any_client: Client) -> None:
    writer = GroupCommit(any_client)
    with writes_held(any_client):
        futures = submit_all(
            writer,
            any_client,
            [
                {"type": "t", "payload": {"a": 1}, "idempotency_key": "k"},
                {"type": "t", "payload": {"a": 1}, "idempotency_key": "k"},
                {"type": "t", "payload": {"a": 2}, "idempotency_key": "k"},
            ],
        )
    first, same, other = (outcome(future) for future in futures)
    writer.close()
    assert isinstance(first, Submitted) and isinstance(same, Submitted)
    assert first.enqueued == same.enqueued
    assert first.enqueued.duplicates == frozenset() and same.enqueued.duplicates == {0}
    assert same.jobs == [any_client.get(first.enqueued[0])]
    assert isinstance(other, IdempotencyConflict)
    assert len(any_client.jobs()) == 1


def test_the_answer_matches_the_row_for_every_option(any_client: Client) -> None:
    writer = GroupCommit(any_client)
    later = any_client.clock() + timedelta(hours=2)
    specs: list[dict[str, object]] = [
        {"type": "a"},
        {"type": "b", "payload": {"x": [1, "two", None]}, "queue": "q", "priority": -3},
        {"type": "c", "delay": "90s", "max_attempts": 2, "timeout": "1m30s"},
        {"type": "d", "run_at": later.isoformat()},
        {"type": "e", "unique": True},
    ]
    for spec in specs:
        submitted = writer.submit([any_client.job_from_mapping(spec)], read_back=True).result(30)
        assert submitted.jobs == [any_client.get(submitted.enqueued[0])], spec
    writer.close()


def test_close_commits_what_was_queued_and_refuses_the_rest(any_client: Client) -> None:
    writer = GroupCommit(any_client)
    with writes_held(any_client):
        futures = [writer.submit([NewJob(type="t", payload={})]) for _ in range(5)]
        closer = threading.Thread(target=writer.close)
        closer.start()
        threading.Event().wait(0.2)
        with pytest.raises(WriterClosed, match="shutting down"):
            writer.submit([NewJob(type="t", payload={})])
    closer.join()
    assert all(isinstance(future.result(timeout=1), Submitted) for future in futures)
    assert len(any_client.jobs()) == 5
