"""PostgreSQL's claim statements in SQLAlchemy Core, for the one claim procedure both stores
run (core/queues.claim_within_controls); the SQLite store gives it the same steps in plain DBAPI.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, select, update

from durableq.core import payloads
from durableq.core.jobs import ClaimedJob
from durableq.core.queues import QueueControls, QueueFilter, claim_within_controls
from durableq.store.core.base import RUNNING, J
from durableq.store.postgres import queues as queue_controls
from durableq.store.schema import PENDING_ONLY, UTCDateTime, jobs_table


class CoreClaims:
    def __init__(self) -> None:
        self._statements: dict[QueueFilter, Any] = {
            where: self._claim_statement(where) for where in ("all", "in", "not in")
        }

    @staticmethod
    def _claim_statement(queue_filter: QueueFilter) -> Any:
        now = bindparam("now", type_=UTCDateTime())
        due = select(J.id).where(PENDING_ONLY, J.run_at <= now)
        if queue_filter == "in":
            due = due.where(J.queue.in_(bindparam("queues", expanding=True)))
        elif queue_filter == "not in":
            due = due.where(J.queue.not_in(bindparam("queues", expanding=True)))
        due = (
            due.order_by(J.priority.desc(), J.run_at, J.id)
            .limit(bindparam("limit", type_=Integer()))
            .with_for_update(skip_locked=True)
        )
        return (
            # The subquery's PENDING_ONLY is the CLAIM guard; repeating it out here would lead
            # SQLite to scan every pending row instead of looking the ids up.
            update(jobs_table)
            .where(J.id.in_(due.scalar_subquery()))
            .values(
                status=RUNNING,
                attempts=J.attempts + 1,
                started_at=now,
                updated_at=now,
                worker_id=bindparam("worker_id"),
                lease_token=bindparam("token"),
                lease_expires_at=bindparam("expires", type_=UTCDateTime()),
            )
            .returning(
                J.id,
                J.queue,
                J.type,
                J.payload,
                J.attempts,
                J.max_attempts,
                J.timeout,
                J.run_at,
                J.meta,
                J.priority,
            )
        )

    def claim(
        self,
        connection: Connection,
        worker_id: str,
        queues: Sequence[str],
        caps: Mapping[str, int],
        limit: int,
        now: datetime,
        lease: float,
    ) -> tuple[list[ClaimedJob], float | None, bool]:
        """The claim within the queues' controls (queues.claim_within_controls)."""
        steps = _Steps(self._statements, connection, worker_id, queues, now, lease)
        return claim_within_controls(steps, queues, caps, limit, now.timestamp())


class _Steps:
    """One claim's statements (queues.ClaimSteps): one fencing token and lease for all."""

    def __init__(
        self,
        statements: dict[QueueFilter, Any],
        connection: Connection,
        worker_id: str,
        listened: Sequence[str],
        now: datetime,
        lease: float,
    ) -> None:
        self.statements = statements
        self.connection = connection
        self.listened = listened
        self.token = uuid.uuid4().hex
        self.params: dict[str, Any] = {
            "now": now,
            "worker_id": worker_id,
            "token": self.token,
            "expires": now + timedelta(seconds=lease),
        }

    def controls(self) -> list[QueueControls]:
        return queue_controls.read_controls(self.connection, self.listened)

    def running(self, queues: Sequence[str]) -> dict[str, int]:
        return queue_controls.running_counts(self.connection, queues)

    def set_tat(self, queue: str, tat: float) -> None:
        queue_controls.set_tat(self.connection, queue, tat)

    def take(self, limit: int, where: QueueFilter, queues: Sequence[str]) -> list[ClaimedJob]:
        params = {**self.params, "limit": limit}
        if where != "all":
            params["queues"] = list(queues)
        rows = self.connection.execute(self.statements[where], params).all()
        return [
            ClaimedJob(
                id=row.id,
                queue=row.queue,
                type=row.type,
                payload=payloads.decode(row.payload),
                attempt=row.attempts,
                max_attempts=row.max_attempts,
                timeout=row.timeout,
                lease_token=self.token,
                run_at=row.run_at,
                meta=payloads.decode(row.meta),
                priority=row.priority,
            )
            for row in rows
        ]
