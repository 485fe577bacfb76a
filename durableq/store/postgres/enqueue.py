"""One job in one round trip: the enqueue a web request makes, on PostgreSQL.

A transaction costs a round trip for BEGIN, one per statement and one for COMMIT (measured with
libpq's trace: seven for one enqueue, with the pool's pre-ping, the queue row, the bounded-queue
check, the INSERT and the NOTIFY). One statement in autocommit mode is its own transaction: it
names the queue (a queue exists once named), inserts the job unless the queue is bounded, and
notifies idle workers, at once. A bounded queue (max_pending) must have its row locked before
its jobs are counted, which one statement's snapshot cannot do: its jobs take the transaction
path (postgres/queues.admit).

The statement is compiled once and run on the pooled psycopg connection itself: through
SQLAlchemy's execution it cost about 0.3 ms of Python per enqueue, as much as the server's work
(measured: 1,100-1,350 enqueues/s against 1,900-2,100 for the same statement on the raw
connection, scripts in the issue 14 note).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Engine,
    Insert,
    bindparam,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as upsert

from durableq.core import payloads
from durableq.core.jobs import NewJob
from durableq.store.core.base import PENDING, J
from durableq.store.core.queues import Q
from durableq.store.engine import translate_errors
from durableq.store.postgres.changes import CHANNEL
from durableq.store.schema import UTCDateTime, jobs_table, queues_table

# The columns every enqueue on PostgreSQL writes (new_row's keys, in this order).
COLUMNS = (
    "queue",
    "type",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "timeout",
    "run_at",
    "created_at",
    "updated_at",
    "cancel_requested",
)


def new_row(job: NewJob, now: datetime) -> dict[str, Any]:
    """A new job's columns, as every enqueue on PostgreSQL writes them."""
    values = (
        job.queue,
        job.type,
        payloads.encode_payload(job.payload),
        PENDING,
        job.priority,
        0,
        job.max_attempts,
        job.timeout,
        job.run_at or now,
        now,
        now,
        False,
    )
    return dict(zip(COLUMNS, values, strict=True))


def enqueue_one_statement() -> Insert:
    now = bindparam("now", type_=UTCDateTime())
    queue = bindparam("queue", type_=jobs_table.c.queue.type)
    named = (
        upsert(queues_table)
        .values(name=queue, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
        .cte("named")
    )
    notified = select(func.pg_notify(CHANNEL, "").label("sent")).cte("notified")
    bounded = exists().where(Q.name == queue, Q.max_pending.is_not(None))
    values = [queue if name == "queue" else bindparam(name, type_=J[name].type) for name in COLUMNS]
    row = select(*values).select_from(notified).where(~bounded)
    columns = [J[name] for name in COLUMNS]
    return insert(jobs_table).from_select(columns, row).returning(J.id).add_cte(named)


class OneStatementEnqueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        compiled = enqueue_one_statement().compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.constants = dict(compiled.params)  # the notify channel's name and payload
        self.dbapi = engine.dialect.loaded_dbapi

    def __call__(self, job: NewJob, now: datetime) -> int | None:
        """The new job's id; None if its queue is bounded (nothing written: take the other
        path)."""
        params = {**self.constants, **new_row(job, now), "now": now}
        # Translated, the check-out too: a server that refuses connections is a DatabaseError.
        with translate_errors(self.engine):
            pooled = self.engine.raw_connection()
            try:
                connection = pooled.driver_connection
                assert connection is not None
                connection.autocommit = True  # one statement, its own transaction
                try:
                    row = connection.execute(self.sql, params).fetchone()
                finally:
                    if not connection.closed:
                        connection.autocommit = False  # as the pool hands it out
            except self.dbapi.Error as error:
                if self.engine.dialect.is_disconnect(error, connection, None):
                    # As SQLAlchemy does on a disconnect it sees: the server likely dropped
                    # the others too (a restart), so the pool starts afresh.
                    pooled.invalidate()
                    self.engine.dispose()
                raise
            finally:
                pooled.close()
        return None if row is None else int(row[0])
