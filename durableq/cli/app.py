"""The context every command shares: which database, and a client opened on first use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from durableq.core.builder import JobBuilder, utc_now
from durableq.core.config import Settings
from durableq.core.jobs import NewJob
from durableq.core.uniqueness import Enqueued
from durableq.reader import Reader
from durableq.store.sqlite.enqueue import enqueue_quickly
from durableq.store.sqlite.ready import open_reads

if TYPE_CHECKING:
    from durableq.client import Client

F = TypeVar("F", bound=Callable[..., Any])


class App:
    def __init__(self, database: str | None) -> None:
        self.database = database
        self._client: Client | None = None

    def settings(self) -> Settings:
        settings = Settings.from_env()
        return settings.with_database(self.database) if self.database else settings

    def builder(self) -> JobBuilder:
        """Validates jobs without opening the database: bad input must not create or change it."""
        return JobBuilder(self.settings())

    def enqueue(self, jobs: Sequence[NewJob]) -> Enqueued:
        """Store validated jobs; a ready SQLite file takes the path that skips SQLAlchemy."""
        ids = enqueue_quickly(self.settings(), jobs, utc_now())
        if ids is None:
            ids = self.client(create=True).enqueue_many(jobs)
        return ids

    def reader(self) -> Reader:
        """For the read commands: a ready SQLite file is read without SQLAlchemy (the same
        statements the SQLite store runs); anything else goes through the client."""
        if self._client is None:
            settings = self.settings()
            reads = open_reads(settings)
            if reads is not None:
                click.get_current_context().call_on_close(reads.close)
                return Reader(settings, reads)
        return self.client()

    def client(self, create: bool = False) -> Client:
        """Open the database; only commands that write jobs may create it."""
        if self._client is None:
            from durableq.client import Client  # SQLAlchemy: loaded only when needed

            self._client = Client.open(self.settings(), create=create)
            click.get_current_context().call_on_close(self._client.close)
        return self._client


def _remember_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and isinstance(ctx.find_root().obj, App):
        ctx.find_root().obj.database = value
    return value


def db_option(function: F) -> F:
    """--db on the group and on every command, so it can go before or after the command name."""
    on_group = function.__name__ == "cli"
    return click.option(
        "--db",
        metavar="URL_OR_PATH",
        envvar="DURABLEQ_DATABASE" if on_group else None,
        expose_value=on_group,
        callback=None if on_group else _remember_db,
        help="Database: a SQLite path or a postgresql:// URL [env DURABLEQ_DATABASE; "
        "default ./durableq.db].",
    )(function)


def app(ctx: click.Context) -> App:
    obj = ctx.find_root().obj
    assert isinstance(obj, App)
    return obj
