"""Shared fixtures: a fresh SQLite file per test, a client on it, and PostgreSQL when reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.config import Settings, database_url

POSTGRES_URL = os.environ.get(
    "DURABLEQ_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "durableq.db"


@pytest.fixture
def client(db_path: Path) -> Iterator[Client]:
    with Client.open(Settings(database=database_url(str(db_path)))) as opened:
        yield opened


def _postgres_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install '.[postgres]')"
    try:
        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as error:
        return f"no PostgreSQL reachable at {POSTGRES_URL}: {error}"


@pytest.fixture(scope="session")
def postgres_available() -> str:
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_available: str) -> Iterator[str]:
    """A fresh schema-isolated database: each test gets its own PostgreSQL database."""
    import psycopg

    name = f"durableq_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_available.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = postgres_available.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def any_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """The same test on both backends; PostgreSQL skips with a reason when unreachable."""
    if request.param == "sqlite":
        url = database_url(str(tmp_path / "durableq.db"))
    else:
        url = request.getfixturevalue("postgres_url")
    with Client.open(Settings(database=url)) as opened:
        yield opened
