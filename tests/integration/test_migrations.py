"""The schema: created and upgraded on first use, free of drift, and never touched when foreign."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from durableq.client import Client
from durableq.core.config import Settings, database_url
from durableq.core.errors import DatabaseError, SchemaOutdated, SchemaTooNew
from durableq.store import migrate
from durableq.store.engine import make_engine
from tests.support.processes import REPO, environment, run_cli


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_settings(path: Path) -> Settings:
    return Settings(database=database_url(str(path)))


def test_head_revision_is_the_alembic_scripts_head() -> None:
    assert migrate.script_head() == migrate.HEAD_REVISION
    assert migrate.HEAD_REVISION in migrate.known_revisions()


def test_a_fresh_database_is_created_and_upgraded_on_first_use(db_path: Path) -> None:
    assert not db_path.exists()
    with Client.open(str(db_path)) as client:
        assert db_path.exists()
        assert migrate.current_revision(client.engine) == migrate.HEAD_REVISION
        tables = set(inspect(client.engine).get_table_names())
        assert {"jobs", "job_errors", "workers", "alembic_version"} <= tables
        job_id = client.enqueue("noop")
    with Client.open(str(db_path)) as client:  # a second open finds it current
        assert client.get(job_id).type == "noop"


def test_an_empty_sqlite_file_is_upgraded(db_path: Path) -> None:
    sqlite3.connect(db_path).close()
    with Client.open(str(db_path)) as client:
        assert migrate.current_revision(client.engine) == migrate.HEAD_REVISION


def test_opening_without_create_refuses_a_missing_file_and_creates_nothing(db_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no database at"):
        Client.open(str(db_path), create=False)
    assert not db_path.exists()


def test_opening_without_create_refuses_a_database_without_schema(db_path: Path) -> None:
    sqlite3.connect(db_path).close()
    with pytest.raises(SchemaOutdated, match="no durableq schema yet"):
        Client.open(str(db_path), create=False)


def test_no_drift_between_models_and_migrations(any_client: Client) -> None:
    assert migrate.check(any_client.engine) == []


def test_check_notices_drift(client: Client) -> None:
    with client.engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_jobs_claim")
    differences = migrate.check(client.engine)
    assert any("ix_jobs_claim" in difference for difference in differences), differences


def test_alembic_check_finds_no_drift(client: Client, db_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=REPO,
        env=environment(DURABLEQ_DATABASE=str(db_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def make_schema_too_new(path: Path) -> None:
    Client.open(str(path)).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    connection.close()


def test_a_database_from_a_newer_durableq_is_refused_and_left_untouched(db_path: Path) -> None:
    make_schema_too_new(db_path)
    before = digest(db_path)
    with pytest.raises(SchemaTooNew, match=r"newer than this durableq.*upgrade durableq"):
        Client.open(str(db_path))
    engine = make_engine(sqlite_settings(db_path))
    try:
        with pytest.raises(SchemaTooNew):
            migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert digest(db_path) == before


def test_the_cli_refuses_a_newer_schema_and_leaves_it_untouched(db_path: Path) -> None:
    make_schema_too_new(db_path)
    before = digest(db_path)
    result = run_cli(["enqueue", "noop"], db_path)
    assert result.returncode == 1
    assert result.stderr.startswith("durableq: error: the database schema (revision 9999")
    assert result.stderr.count("\n") == 1
    assert digest(db_path) == before


NOT_SQLITE = b"name,value\nthis is a CSV file, not a database\n" * 50


def test_a_file_that_is_not_sqlite_is_refused_and_left_byte_identical(db_path: Path) -> None:
    db_path.write_bytes(NOT_SQLITE)
    with pytest.raises(DatabaseError, match="is not a SQLite database"):
        Client.open(str(db_path))
    with pytest.raises(DatabaseError, match="is not a SQLite database"):
        Client.open(str(db_path), create=False)
    assert db_path.read_bytes() == NOT_SQLITE


@pytest.mark.parametrize("command", [["enqueue", "noop"], ["jobs", "list"]], ids=" ".join)
def test_the_cli_refuses_a_file_that_is_not_sqlite(db_path: Path, command: list[str]) -> None:
    db_path.write_bytes(NOT_SQLITE)
    result = run_cli(command, db_path)
    assert result.returncode == 1
    assert (
        result.stderr == f"durableq: error: {db_path} is not a SQLite database; pass another --db\n"
    )
    assert db_path.read_bytes() == NOT_SQLITE


def test_a_foreign_jobs_table_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as connection:
        connection.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, what TEXT)")
    connection.close()
    before = digest(db_path)
    with pytest.raises(DatabaseError, match="jobs table but no durableq schema"):
        Client.open(str(db_path))
    assert digest(db_path) == before
