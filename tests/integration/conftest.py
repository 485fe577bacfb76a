"""`any_client` for the integration tests, with one PostgreSQL database for the whole session.

Creating and migrating a PostgreSQL database costs about half a second, and these tests need a
fresh one many dozens of times; emptying the tables of a shared one gives the same clean slate in
a few milliseconds. SQLite keeps a new file per test (that is cheap).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.config import Settings, database_url


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_available: str) -> Iterator[str]:
    import psycopg

    name = f"durableq_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_available.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_available.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_postgres_client(shared_postgres_url: str) -> Iterator[Client]:
    with Client.open(Settings(database=shared_postgres_url)) as opened:
        yield opened


@pytest.fixture
def postgres_client(shared_postgres_client: Client) -> Client:
    """The shared PostgreSQL database, emptied."""
    with shared_postgres_client.engine.begin() as connection:
        connection.exec_driver_sql(
            "TRUNCATE jobs, job_errors, workers, queues, schedules, job_minutes "
            "RESTART IDENTITY CASCADE"
        )
        connection.exec_driver_sql("UPDATE rollups SET rolled_up_to = NULL")
        connection.exec_driver_sql(
            "UPDATE leadership SET holder = NULL, term = 0, elected_at = NULL, expires_at = NULL"
        )
    return shared_postgres_client


@pytest.fixture(params=["sqlite", "postgresql"])
def any_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """The same test on both backends; PostgreSQL skips with a reason when unreachable."""
    if request.param == "sqlite":
        with Client.open(Settings(database=database_url(str(tmp_path / "durableq.db")))) as opened:
            yield opened
        return
    yield request.getfixturevalue("postgres_client")
