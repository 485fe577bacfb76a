"""What every Core operation shares: columns, status guards and transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    insert,
    literal,
    select,
)

from durableq.core.errors import JobNotFound
from durableq.core.jobs import (
    Action,
    Job,
    JobStatus,
    sources_of,
)
from durableq.store.engine import HURRY_AT_OPTION, READ_ONLY, translate_errors
from durableq.store.records import job_from_row
from durableq.store.schema import (
    job_errors_table,
    jobs_table,
    workers_table,
)

J = jobs_table.c
E = job_errors_table.c
W = workers_table.c

RUNNING = JobStatus.RUNNING.value
PENDING = JobStatus.PENDING.value


def status_guard(*actions: Action) -> Any:
    """The statuses from which the transition table allows every one of `actions`; one source
    renders as `status = 'x'`, a literal, the form the partial indexes are keyed on."""
    sources = sorted(set.intersection(*({s.value for s in sources_of(a)} for a in actions)))
    assert sources, actions
    if len(sources) == 1:
        return J.status == literal(sources[0])
    return J.status.in_(sources)


class CoreBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._insert_error = insert(job_errors_table)

    def _notify(self, connection: Connection) -> None:
        """Wake idle workers at this transaction's commit (SQLite's watchers see any commit;
        PostgreSQL's store sends a NOTIFY)."""

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self, hurry_at: float | None = None) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the write lock from its start.

        `hurry_at` (a time.monotonic() value) is for lease renewals: from then on the wait for
        SQLite's write lock stops being fair (see sqlite/statements.begin_immediate).
        """
        if hurry_at is None:
            with translate_errors(self.engine), self.engine.begin() as connection:
                yield connection
            return
        with translate_errors(self.engine), self.engine.connect() as connection:
            connection = connection.execution_options(**{HURRY_AT_OPTION: hurry_at})
            with connection.begin():
                yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(self.engine), self.engine.connect() as connection:
            connection = connection.execution_options(**READ_ONLY)
            with connection.begin():
                yield connection

    @staticmethod
    def _get(connection: Connection, job_id: int) -> Job:
        row = connection.execute(select(jobs_table).where(J.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)
