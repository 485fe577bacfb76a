"""`durableq bench --db postgresql://...`: fresh databases on that server, and the bare psycopg
yardsticks measured on it in the same run.

Each measurement gets a database of its own (CREATE DATABASE, dropped when the run ends), made
with durableq's real schema. The yardsticks run the same statements as bare sqlite3 does in
baseline.py, with psycopg and PostgreSQL's claim (FOR UPDATE SKIP LOCKED): one single-row insert
per transaction, and a claim and a completion per job, one transaction each. Durability is the
server's (synchronous_commit), for durableq and the yardsticks alike.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from durableq.benchmark.baseline import LEASE, WORKER_ID
from durableq.core.errors import DatabaseError, InvalidInput

CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = %(now)s,
    updated_at = %(now)s, worker_id = %(worker)s, lease_token = %(token)s,
    lease_expires_at = %(expires)s
WHERE id = (
    SELECT id FROM jobs WHERE status = 'pending' AND run_at <= %(now)s
    ORDER BY priority DESC, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, queue, type, payload, attempts, max_attempts, timeout
"""

COMPLETE = """
UPDATE jobs SET status = 'completed', finished_at = %(now)s, updated_at = %(now)s, result = NULL,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND status = 'running' AND lease_token = %(token)s
"""

INSERT = """
INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, run_at,
    created_at, updated_at, cancel_requested)
VALUES ('default', 'noop', '{}', 'pending', 0, 0, 10, %(now)s, %(now)s, %(now)s, false)
"""


def plain(url: str) -> str:
    """The URL as libpq takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def check_server(url: str) -> str:
    """The server URL of `bench --db`, checked: a postgresql:// URL we can connect to."""
    if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise InvalidInput(
            f"bench --db takes a postgresql:// URL, not {url!r} (the SQLite sections always "
            "run on fresh files in a temporary directory)"
        )
    psycopg = _psycopg()
    try:
        with psycopg.connect(plain(url), autocommit=True, connect_timeout=10) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatabaseError(
            f"cannot connect to {make_url(url).render_as_string()}: {first}; start the server "
            "or fix the URL (the user needs the right to CREATE DATABASE)"
        ) from None
    return url


def create_database(server: str, label: str) -> str:
    """A new, empty database on the server; returns its URL."""
    name = f"durableq_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}_{label}".lower()[:63]
    with _psycopg().connect(plain(server), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    with _psycopg().connect(plain(url).rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A read for the timings: `?` placeholders, as the SQLite side writes them."""
    with _psycopg().connect(plain(url), autocommit=True) as connection:
        return list(connection.execute(sql.replace("?", "%s"), tuple(params)).fetchall())


def claim_and_complete_all(url: str) -> int:
    """Process every due job, one claim and one completion transaction each; returns the count."""
    with _psycopg().connect(plain(url)) as connection:
        done = 0
        while True:
            now = datetime.now(UTC)
            token = uuid.uuid4().hex
            with connection.transaction():
                claimed = connection.execute(
                    CLAIM,
                    {"now": now, "worker": WORKER_ID, "token": token, "expires": now + LEASE},
                ).fetchone()
            if claimed is None:
                return done
            with connection.transaction():
                connection.execute(
                    COMPLETE, {"now": datetime.now(UTC), "id": claimed[0], "token": token}
                )
            done += 1


def insert_one_each(url: str, count: int, seconds: float) -> tuple[int, float]:
    """Insert no-op jobs one per transaction, up to `count` or `seconds`."""
    with _psycopg().connect(plain(url)) as connection:
        done = 0
        started = time.perf_counter()
        while done < count and time.perf_counter() - started < seconds:
            with connection.transaction():
                connection.execute(INSERT, {"now": datetime.now(UTC)})
            done += 1
        return done, time.perf_counter() - started


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise InvalidInput(
            "bench --db postgresql://... needs psycopg: pip install 'durableq[postgres]'"
        ) from None
    return psycopg
