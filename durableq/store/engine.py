"""Engines configured for a job queue: SQLite pragmas and BEGIN IMMEDIATE, PostgreSQL options."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from durableq.core.config import Settings
from durableq.core.errors import DatabaseError
from durableq.store.sqlite.statements import Turn, begin_immediate, configure, failure
from durableq.store.sqlite.turns import LOCK_SUFFIX, WriteTurns, leave_turns, turns_for

READ_ONLY = {"durableq_read_only": True}
PING_AFTER_IDLE = 1.0  # seconds a PostgreSQL connection may idle in the pool unchecked
BUSY_TIMEOUT_OPTION = "durableq_busy_timeout"
HURRY_AT_OPTION = "durableq_hurry_at"  # a lease renewal: from this monotonic time on, hurry
TURNS_OPTION = "durableq_write_turns"  # a SQLite engine's WriteTurns (sqlite/turns.py)


def make_engine(settings: Settings) -> Engine:
    url = make_url(settings.database)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings)
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_size=10, max_overflow=10)
        _ping_when_idle(engine)
        return engine
    raise DatabaseError(
        f"unsupported database {url.get_backend_name()!r}: use a SQLite path or a postgresql:// URL"
    )


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before use only once it has been idle a while.

    SQLAlchemy's pool_pre_ping pings on every check-out: a round trip on every enqueue, which
    otherwise costs one (postgres/enqueue.py). A connection that went idle for PING_AFTER_IDLE
    is pinged as pre-ping would (a restarted server or a dropped connection is noticed before
    use and replaced: SQLAlchemy retries the check-out on DisconnectionError); one in steady use
    is not. One broken in the last second still fails its statement with a clear error, and the
    pool then replaces all its connections.
    """

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        returned = record.info.get("returned")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE:
            return  # new, or in steady use
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error:
            alive = False
        if not alive:
            raise sa_exc.DisconnectionError("the connection was closed while idle")


def sqlite_path(settings: Settings) -> Path | None:
    url = make_url(settings.database)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


@contextmanager
def removed_unless_prepared(path: Path | None) -> Iterator[None]:
    """A SQLite file that preparing a database creates is removed again if preparing fails
    before anything was written to it (a full disk, a read-only directory): a refused command
    leaves no empty database behind, as it leaves any other database unchanged."""
    existed = path is None or path.exists()
    try:
        yield
    except DatabaseError:
        if not existed and path is not None:
            _remove_if_empty(path)
        raise


def _remove_if_empty(path: Path) -> None:
    # Empty: nothing was written, so nobody (another process preparing it too) relies on it.
    try:
        if path.stat().st_size == 0:
            path.unlink()
            for suffix in ("-journal", "-wal", "-shm", LOCK_SUFFIX):
                sidecar = path.with_name(path.name + suffix)
                if sidecar.exists() and sidecar.stat().st_size == 0:
                    sidecar.unlink()
    except OSError:
        pass


def _sqlite_engine(settings: Settings) -> Engine:
    path = sqlite_path(settings)
    if path is not None and not path.parent.is_dir():
        raise DatabaseError(
            f"cannot open database {path}: directory {path.parent} does not exist; create it "
            "or pass another --db"
        )
    turns = None if path is None else turns_for(str(path))  # until dispose()
    engine = create_engine(
        settings.database,
        connect_args={"timeout": settings.busy_timeout, "check_same_thread": False},
        execution_options={BUSY_TIMEOUT_OPTION: settings.busy_timeout, TURNS_OPTION: turns},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        configure(dbapi_connection, settings.synchronous, settings.busy_timeout)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("durableq_read_only", False):
            connection.exec_driver_sql("BEGIN")
            return
        hurry_at = options.get(HURRY_AT_OPTION)
        info = connection.connection.info
        # Held until the dialect's commit or rollback, unless SQLite's lock is found taken by
        # a writer outside the turns (statements.Turn).
        turn = Turn(turns, settings.busy_timeout, hurry_at)
        info[TURN_HELD] = turn
        try:
            begin_immediate(
                connection.connection.driver_connection,
                settings.busy_timeout,
                hurry_at=hurry_at,
                on_first_refusal=turn.leave,
            )
        except BaseException:
            _give_turn_back(info)
            raise

    if turns is not None:
        _give_turns_back_after_transactions(engine)
    return engine


TURN_HELD = "durableq_write_turn"  # in a pooled connection's info: its transaction's Turn


def _give_turn_back(info: dict[Any, Any] | None) -> None:
    turn = None if info is None else info.pop(TURN_HELD, None)
    if turn is not None:
        turn.leave()


def _info_of(connection: Any) -> dict[Any, Any] | None:
    """A pooled connection's info; None for what SQLAlchemy passes outside the pool (its first
    connection's rollback), which holds no turn."""
    try:
        info = connection.info
    except (AttributeError, NotImplementedError):
        return None
    return info if isinstance(info, dict) else None


def _give_turns_back_after_transactions(engine: Engine) -> None:
    """A write transaction through SQLAlchemy holds the write turn from its BEGIN (the begin
    event above) to its COMMIT or ROLLBACK, which SQLAlchemy runs through the dialect; and a
    connection closed or invalidated in the middle of one gives it back too."""
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(connection: Any) -> None:
        try:
            commit(connection)
        finally:
            _give_turn_back(_info_of(connection))

    def do_rollback(connection: Any) -> None:
        try:
            rollback(connection)
        finally:
            _give_turn_back(_info_of(connection))

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]

    @event.listens_for(engine, "close")
    @event.listens_for(engine, "invalidate")
    def _dropped(dbapi_connection: Any, record: ConnectionPoolEntry, *_: Any) -> None:
        _give_turn_back(record.info)


def dispose(engine: Engine) -> None:
    """Close an engine's connections, and its lock file (sqlite/turns.py)."""
    engine.dispose()
    turns = turns_of(engine)
    if turns is not None:
        engine.update_execution_options(**{TURNS_OPTION: None})
        leave_turns(turns)


def turns_of(engine: Engine) -> WriteTurns | None:
    """The write turns of a SQLite engine's file; None for another dialect or in memory."""
    turns = engine.get_execution_options().get(TURNS_OPTION)
    return turns if isinstance(turns, WriteTurns) else None


def busy_timeout_of(engine: Engine) -> float:
    return float(engine.get_execution_options().get(BUSY_TIMEOUT_OPTION, 10.0))


def enable_wal(engine: Engine) -> None:
    """WAL persists in the file, so it is set once when the database is prepared."""
    if engine.dialect.name != "sqlite":
        return
    with translate_errors(engine), engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        mode = raw.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise DatabaseError("could not switch the database to WAL mode")


@contextmanager
def translate_errors(engine: Engine | None = None) -> Iterator[None]:
    """Turn driver errors a user can act on into DurableqErrors with a useful message."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        raise translated(error, engine) from error
    except sqlite3.Error as error:  # the SQLite store's plain-DBAPI operations
        raise translated(error, engine) from error
    except Exception as error:  # raised by the engine's driver outside SQLAlchemy (psycopg)
        if engine is not None and isinstance(error, engine.dialect.loaded_dbapi.Error):
            raise translated(error, engine) from error
        raise


def translated(error: Exception, engine: Engine | None) -> DatabaseError:
    """A driver's error (through SQLAlchemy or raised by the DBAPI connection itself) as a
    DatabaseError with a useful message."""
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    message = str(original).strip() if original is not None else str(error)
    operational = isinstance(error, sa_exc.OperationalError | sqlite3.OperationalError) or (
        engine is not None
        and isinstance(error, getattr(engine.dialect.loaded_dbapi, "OperationalError", ()))
    )
    return failure(message, _describe(engine), operational)


def _describe(engine: Engine | None) -> str:
    if engine is None:
        return "(unknown)"
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)
