"""`durableq db upgrade | current | check`: the schema, through Alembic."""

from __future__ import annotations

import click

from durableq.cli.app import app, db_option
from durableq.db import migrate
from durableq.db.engine import enable_wal, make_engine
from durableq.errors import DatabaseError


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema to this version's (also automatic on first use)."""
    engine = make_engine(app(ctx).settings())
    try:
        ran = migrate.upgrade(engine)
        enable_wal(engine)
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"upgraded to {revision}" if ran else f"already at {revision}")


@db.command()
@db_option
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the database's schema revision and whether it is this version's."""
    engine = make_engine(app(ctx).settings())
    try:
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if revision is None:
        click.echo("none (run `durableq db upgrade`)")
    elif revision == migrate.HEAD_REVISION:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision} (this durableq's head is {migrate.HEAD_REVISION})")


@db.command()
@db_option
@click.pass_context
def check(ctx: click.Context) -> None:
    """Exit 0 if the schema is current and matches the models exactly, 1 otherwise."""
    engine = make_engine(app(ctx).settings())
    try:
        revision = migrate.current_revision(engine)
        if revision != migrate.HEAD_REVISION:
            raise DatabaseError(
                f"the schema is at {revision or 'nothing'}, not {migrate.HEAD_REVISION}; "
                "run `durableq db upgrade`"
            )
        differences = migrate.check(engine)
    finally:
        engine.dispose()
    if differences:
        raise DatabaseError(f"the schema differs from the models: {'; '.join(differences)}")
    click.echo(f"ok: schema at {revision}, no drift")


COMMANDS = [db]
