"""Schema upgrades through Alembic's API, and the check that runs before every use."""

from __future__ import annotations

import importlib
import io
import sys
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from durableq.core.errors import DatabaseError, SchemaOutdated, SchemaTooNew
from durableq.store.engine import READ_ONLY, translate_errors
from durableq.store.revision import HEAD_REVISION as HEAD_REVISION  # re-exported
from durableq.store.revision import VERSION_TABLE


def script_location() -> Path:
    # The top-level migrations/ folder, installed as the package durableq._migrations.
    scripts = importlib.import_module("durableq._migrations")
    assert scripts.__file__ is not None
    return Path(scripts.__file__).parent


def _alembic_config(connection: Connection | None = None, quiet: bool = True) -> object:
    from alembic.config import Config

    config = Config(stdout=io.StringIO() if quiet else sys.stdout)
    config.set_main_option("script_location", str(script_location()))
    config.attributes["configure_logging"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for a database durableq has never touched."""
    with translate_errors(engine), engine.connect() as connection:
        connection = connection.execution_options(**READ_ONLY)
        with connection.begin():
            if not inspect(connection).has_table(VERSION_TABLE):
                _refuse_foreign_tables(connection)
                return None
            row = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
            return None if row is None else str(row[0])


def _refuse_foreign_tables(connection: Connection) -> None:
    tables = set(inspect(connection).get_table_names())
    if "jobs" in tables:
        raise DatabaseError(
            "the database has a jobs table but no durableq schema version; use a new --db"
        )


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(script_location()))
    return {revision.revision for revision in scripts.walk_revisions()}


def script_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(script_location())).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> bool:
    """Bring the schema to HEAD_REVISION. Returns True if anything ran."""
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return False
    _refuse_unknown(revision)
    from alembic import command

    with translate_errors(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Daemons starting together on a new database: one migrates, the others wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(7461215)"))
        command.upgrade(_alembic_config(connection), "head")  # type: ignore[arg-type]
    return True


def _refuse_unknown(revision: str | None) -> None:
    if revision is not None and revision not in known_revisions():
        raise SchemaTooNew(
            f"the database schema (revision {revision}) is newer than this durableq "
            f"(knows up to {HEAD_REVISION}); upgrade durableq"
        )


def ensure_current(engine: Engine, create: bool) -> None:
    """Upgrade an older or new database when `create`; otherwise refuse what is not current."""
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return
    _refuse_unknown(revision)
    if create:
        upgrade(engine)
        return
    if revision is None:
        raise SchemaOutdated(
            "the database has no durableq schema yet; enqueue a job or run `durableq db upgrade`"
        )
    raise SchemaOutdated(
        f"the database schema (revision {revision}) is older than this durableq "
        f"({HEAD_REVISION}); run `durableq db upgrade`"
    )


def check(engine: Engine) -> list[str]:
    """Differences between the models and the database (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from durableq.store.schema import metadata

    with translate_errors(engine), engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [str(diff) for diff in compare_metadata(context, metadata)]
