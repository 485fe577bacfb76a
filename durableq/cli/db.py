"""`durableq db upgrade | current | check`: the schema, through Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from durableq.cli.app import app, db_option
from durableq.core.config import Settings
from durableq.core.errors import DatabaseError
from durableq.store import migrate
from durableq.store.engine import (
    dispose,
    enable_wal,
    make_engine,
    removed_unless_prepared,
    sqlite_path,
)


@click.group()
def db() -> None:
    """Manage the database schema."""


@contextmanager
def _engine(settings: Settings, create: bool) -> Iterator[Engine]:
    """An engine on the database; only `upgrade` may create a missing SQLite file."""
    path = sqlite_path(settings)
    if not create and path is not None and not path.exists():
        raise DatabaseError(f"no database at {path}; run `durableq db upgrade` to create it")
    engine = make_engine(settings)
    try:
        with removed_unless_prepared(path if create else None):
            yield engine
    finally:
        dispose(engine)


@db.command()
@db_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema to this version's (also automatic on first use)."""
    with _engine(app(ctx).settings(), create=True) as engine:
        ran = migrate.upgrade(engine)
        enable_wal(engine)
        revision = migrate.current_revision(engine)
    click.echo(f"upgraded to {revision}" if ran else f"already at {revision}")


@db.command()
@db_option
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the database's schema revision and whether it is this version's."""
    with _engine(app(ctx).settings(), create=False) as engine:
        revision = migrate.current_revision(engine)
    if revision is None:
        click.echo("none (run `durableq db upgrade`)")
    elif revision == migrate.HEAD_REVISION:
        click.echo(f"{revision} (head)")
    elif revision not in migrate.known_revisions():
        click.echo(f"{revision} (newer than this durableq's head {migrate.HEAD_REVISION})")
    else:
        click.echo(f"{revision} (this durableq's head is {migrate.HEAD_REVISION})")


@db.command()
@db_option
@click.pass_context
def check(ctx: click.Context) -> None:
    """Exit 0 if the schema is current and matches the models exactly, 1 otherwise."""
    with _engine(app(ctx).settings(), create=False) as engine:
        # Refuses a newer schema with "upgrade durableq", an older one with "db upgrade".
        migrate.ensure_current(engine, create=False)
        differences = migrate.check(engine)
    if differences:
        raise DatabaseError(f"the schema differs from the models: {'; '.join(differences)}")
    click.echo(f"ok: schema at {migrate.HEAD_REVISION}, no drift")
