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
    Boolean,
    Engine,
    Float,
    Insert,
    Integer,
    String,
    Text,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert as upsert

from durableq.core import payloads
from durableq.core.jobs import NewJob
from durableq.store.core.base import PENDING, J
from durableq.store.core.queues import Q
from durableq.store.engine import translated
from durableq.store.postgres.changes import CHANNEL
from durableq.store.schema import UTCDateTime, jobs_table, queues_table


def enqueue_one_statement() -> Insert:
    now = bindparam("now", type_=UTCDateTime())
    queue = bindparam("queue", type_=String())
    named = (
        upsert(queues_table)
        .values(name=queue, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
        .cte("named")
    )
    notified = select(func.pg_notify(CHANNEL, "").label("sent")).cte("notified")
    bounded = exists().where(Q.name == queue, Q.max_pending.is_not(None))
    row = (
        select(
            queue,
            bindparam("type", type_=String()),
            bindparam("payload", type_=Text()),
            literal(PENDING, String()),
            bindparam("priority", type_=Integer()),
            literal(0, Integer()),
            bindparam("max_attempts", type_=Integer()),
            bindparam("timeout", type_=Float()),
            bindparam("run_at", type_=UTCDateTime()),
            now,
            now,
            literal(False, Boolean()),
        )
        .select_from(notified)
        .where(~bounded)
    )
    columns = [
        J.queue,
        J.type,
        J.payload,
        J.status,
        J.priority,
        J.attempts,
        J.max_attempts,
        J.timeout,
        J.run_at,
        J.created_at,
        J.updated_at,
        J.cancel_requested,
    ]
    return insert(jobs_table).from_select(columns, row).returning(J.id).add_cte(named)


class OneStatementEnqueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        compiled = enqueue_one_statement().compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.constants = dict(compiled.params)  # the literals' values, e.g. 'pending'
        self.dbapi = engine.dialect.loaded_dbapi

    def __call__(self, job: NewJob, now: datetime) -> int | None:
        """The new job's id; None if its queue is bounded (nothing written: take the other
        path)."""
        params: dict[str, Any] = {
            **self.constants,
            "queue": job.queue,
            "type": job.type,
            "payload": payloads.encode_payload(job.payload),
            "priority": job.priority,
            "max_attempts": job.max_attempts,
            "timeout": job.timeout,
            "run_at": job.run_at or now,
            "now": now,
        }
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
                # As SQLAlchemy does on a disconnect it sees: the server likely dropped the
                # others too (a restart), so the pool starts afresh, not one failure each.
                pooled.invalidate()
                self.engine.dispose()
            raise translated(error, self.engine) from error
        finally:
            pooled.close()
        return None if row is None else int(row[0])
