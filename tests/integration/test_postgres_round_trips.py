"""What an enqueue costs on the wire to PostgreSQL, counted in libpq's own protocol trace, and
that the idle-only ping (store/engine.py) still replaces a connection the server dropped."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from durableq.client import Client
from durableq.core.errors import DatabaseError, QueueFull
from durableq.core.jobs import JobStatus
from durableq.store.engine import PING_AFTER_IDLE
from durableq.store.postgres.changes import PostgresNotifyWatcher


@pytest.fixture
def traced(postgres_client: Client, tmp_path: Path) -> Iterator[Path]:
    """Every pooled connection checked out from now on writes libpq's trace to this file."""
    path = tmp_path / "libpq.trace"
    handle = path.open("w")

    def trace(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.pgconn.trace(handle.fileno())

    def untrace(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.pgconn.untrace()

    event.listen(postgres_client.engine, "checkout", trace)
    event.listen(postgres_client.engine, "checkin", untrace)
    try:
        yield path
    finally:
        event.remove(postgres_client.engine, "checkout", trace)
        event.remove(postgres_client.engine, "checkin", untrace)
        handle.close()


def messages(path: Path) -> collections.Counter[str]:
    """The client's protocol messages: each Sync (extended protocol) or Query waits for the
    server, i.e. is one round trip."""
    kinds = [
        line.split("\t")[3].split(" ")[0]
        for line in path.read_text().splitlines()
        if "\tF\t" in line
    ]
    return collections.Counter(kinds)


def round_trips(path: Path) -> int:
    found = messages(path)
    return found["Sync"] + found["Query"]


def test_an_enqueue_is_one_round_trip(postgres_client: Client, traced: Path) -> None:
    postgres_client.enqueue("noop")  # the queue's row is new: the same one statement makes it
    for number in range(20):
        postgres_client.enqueue("echo", {"n": number}, queue="mail", priority=number % 3)
    found = messages(traced)
    # One statement each, no BEGIN, COMMIT or ping; psycopg prepares a statement used five
    # times on a connection, which costs that connection one more round trip, once.
    assert (found["Execute"], found["Query"]) == (21, 0), found
    assert round_trips(traced) <= 21 + 2, found
    jobs = postgres_client.jobs(queues=["mail"], limit=100)
    assert sorted(job.payload["n"] for job in jobs) == list(range(20))
    assert {job.status for job in jobs} == {JobStatus.PENDING}
    assert "mail" in {queue.name for queue in postgres_client.queues()}


def test_the_one_statement_wakes_idle_workers(postgres_client: Client) -> None:
    watcher = PostgresNotifyWatcher(postgres_client.engine)
    try:
        watcher.changed()  # start listening, forget what came before
        postgres_client.enqueue("noop")
        deadline = time.monotonic() + 5
        while not watcher.changed():
            assert time.monotonic() < deadline, "no NOTIFY reached the listening watcher"
            time.sleep(0.01)
    finally:
        watcher.close()


def test_a_bounded_queue_still_counts_under_a_lock(postgres_client: Client, traced: Path) -> None:
    postgres_client.set_queue("bounded", max_pending=2)
    postgres_client.enqueue("noop", queue="bounded")
    postgres_client.enqueue("noop", queue="bounded")
    with pytest.raises(QueueFull):
        postgres_client.enqueue("noop", queue="bounded")
    assert postgres_client.count_jobs(queues=["bounded"]) == 2
    # The one statement writes nothing for a bounded queue; the locked transaction does.
    assert round_trips(traced) > 3


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    postgres_client: Client, shared_postgres_url: str
) -> None:
    import psycopg

    postgres_client.enqueue("noop")
    # The server drops every connection of the pool (as a restart would), from outside it.
    with psycopg.connect(shared_postgres_url.replace("+psycopg", ""), autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert dropped is not None and dropped[0] >= 1
    time.sleep(PING_AFTER_IDLE + 0.2)
    for _ in range(5):  # each checks out a pooled connection: dropped ones are replaced
        postgres_client.enqueue("noop")
    assert postgres_client.count_jobs() == 6


def test_a_connection_dropped_in_its_last_second_fails_cleanly_once(
    postgres_client: Client, shared_postgres_url: str
) -> None:
    """Not pinged (in steady use): the enqueue on it fails with a DatabaseError of one line,
    the pool drops every connection it had (the server dropped them all), and the next
    enqueue works."""
    import psycopg

    first = postgres_client.enqueue("noop")
    engine = postgres_client.engine
    with engine.connect(), engine.connect(), engine.connect():
        pass  # three connections in the pool, all about to be dropped
    with psycopg.connect(shared_postgres_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    outcomes: list[str] = []
    for _ in range(3):
        try:
            postgres_client.enqueue("noop")
            outcomes.append("stored")
        except DatabaseError as error:
            assert "\n" not in str(error) and "Traceback" not in str(error)
            outcomes.append("refused")
    assert outcomes[1:] == ["stored", "stored"], outcomes  # the pool started afresh
    stored = postgres_client.jobs(limit=100)
    assert len(stored) == 1 + outcomes.count("stored")
    assert first in {job.id for job in stored}


def test_a_server_refusing_connections_is_a_database_error(
    postgres_client: Client, shared_postgres_url: str
) -> None:
    """The one-statement enqueue checks its connection out of the pool itself: a server that
    refuses new connections must give the same one-line DatabaseError, not a driver error."""
    import psycopg

    postgres_client.enqueue("noop")
    server, name = shared_postgres_url.replace("+psycopg", "").rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            time.sleep(PING_AFTER_IDLE + 0.2)  # pooled connections get pinged, then replaced
            with pytest.raises(DatabaseError) as refused:
                postgres_client.enqueue("noop")
            assert "not currently accepting connections" in str(refused.value)
            assert "\n" not in str(refused.value)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    postgres_client.enqueue("noop")
    assert postgres_client.count_jobs() == 2
