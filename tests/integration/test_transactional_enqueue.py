"""Enqueue in the caller's own transaction (the outbox pattern), on SQLite and PostgreSQL: a
rollback leaves no job, a commit leaves one a worker runs; a connection to another database,
or one outside a transaction, is refused and writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, select

from durableq.client import Client
from durableq.core.errors import InvalidInput
from durableq.core.jobs import JobStatus
from durableq.handlers.registry import JobContext, Registry
from durableq.worker.daemon import Worker
from durableq.worker.dispatcher import WorkerOptions

app = MetaData()
orders = Table(
    "shop_orders",
    app,
    Column("id", Integer, primary_key=True),
    Column("item", String(50)),
)


def app_engine(client: Client) -> Engine:
    """The application's own engine on the same database, as an app would make it."""
    engine = create_engine(client.engine.url)
    app.create_all(engine)
    return engine


def test_rollback_leaves_no_job_and_commit_leaves_one_a_worker_runs(any_client: Client) -> None:
    engine = app_engine(any_client)
    try:
        with engine.connect() as connection:
            orders_before = connection.execute(select(orders)).all()
        with pytest.raises(RuntimeError, match="payment declined"), engine.begin() as connection:
            connection.execute(orders.insert().values(item="book"))
            any_client.enqueue("ship", {"item": "book"}, connection=connection)
            raise RuntimeError("payment declined")
        assert any_client.jobs() == []
        with engine.begin() as connection:
            order = connection.execute(orders.insert().values(item="lamp")).inserted_primary_key
            job_id = any_client.enqueue("ship", {"order": order[0]}, connection=connection)
            more = any_client.enqueue_many(
                [{"type": "email", "payload": {"order": order[0]}}], connection=connection
            )
        with engine.connect() as connection:
            assert len(connection.execute(select(orders)).all()) == len(orders_before) + 1
        assert [job.id for job in any_client.jobs()] == [more[0], job_id]

        shipped: list[dict[str, Any]] = []
        registry = Registry()

        @registry.handler("ship")
        def ship(ctx: JobContext, payload: dict[str, Any]) -> None:
            shipped.append(payload)

        registry.handler("email")(lambda ctx, payload: None)
        Worker(any_client, registry, WorkerOptions(concurrency=1, burst=True)).run()
        assert any_client.get(job_id).status is JobStatus.COMPLETED
        assert shipped == [{"order": order[0]}]
    finally:
        app.drop_all(engine)
        engine.dispose()


def test_a_connection_to_another_database_or_outside_a_transaction_is_refused(
    any_client: Client, tmp_path: Path
) -> None:
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.begin() as connection, pytest.raises(InvalidInput, match="same database"):
        any_client.enqueue("ship", connection=connection)
    engine = app_engine(any_client)
    try:
        with engine.connect() as connection, pytest.raises(InvalidInput, match="open transaction"):
            any_client.enqueue("ship", connection=connection)
    finally:
        app.drop_all(engine)
        engine.dispose()
    assert any_client.jobs() == []
