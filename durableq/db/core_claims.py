"""The claim in SQLAlchemy Core (PostgreSQL's path): one UPDATE per queue share, in the
caller's transaction, within every queue's controls. SQLite's hot path (db/fastpath.py) runs the
same plan in plain DBAPI; the repository tests hold both to one behaviour.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, select, update

from durableq import payloads
from durableq.db import queue_ops
from durableq.db.base import RUNNING, J
from durableq.db.schema import PENDING_ONLY, UTCDateTime, jobs_table
from durableq.jobs import ClaimedJob
from durableq.queues import plan_claim


class CoreClaims:
    def __init__(self) -> None:
        self._claim_all = self._claim_statement(None)
        self._claim_queues = self._claim_statement("in")
        self._claim_other_queues = self._claim_statement("not in")

    def _claim_statement(self, queue_filter: str | None) -> Any:
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
            .returning(J.id, J.queue, J.type, J.payload, J.attempts, J.max_attempts, J.timeout)
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
        """The claim within the queues' controls (the same plan as SQLite's hot path)."""
        if limit <= 0:
            return [], None, False
        token = uuid.uuid4().hex
        take = functools.partial(self._claim_rows, connection, worker_id, token, now, lease)
        controls = queue_ops.read_controls(connection, queues)
        if not controls and not caps:
            return take(limit, "in" if queues else None, queues), None, False
        capped_globally = [c.name for c in controls if c.concurrency is not None]
        running = queue_ops.running_counts(connection, capped_globally)
        plan = plan_claim(controls, running, queues, caps, now.timestamp())
        claimed: list[ClaimedJob] = []
        taken: dict[str, int] = {}
        for name, allowed in plan.capped:
            wanted = min(allowed, limit - len(claimed))
            if wanted <= 0:
                break
            got = take(wanted, "in", (name,))
            rate = plan.rated.get(name)
            if rate is not None and got:
                tat = next(c.rate_tat for c in controls if c.name == name)
                queue_ops.set_tat(connection, name, rate.advance(tat, now.timestamp(), len(got)))
            claimed += got
            taken[name] = len(got)
        rest = limit - len(claimed)
        if rest > 0 and plan.rest:
            if plan.only is not None:
                claimed += take(rest, "in", plan.only)
            elif plan.excluded:
                claimed += take(rest, "not in", plan.excluded)
            else:
                claimed += take(rest, None, ())
        return claimed, plan.wake_in, plan.held(taken)

    def _claim_rows(
        self,
        connection: Connection,
        worker_id: str,
        token: str,
        now: datetime,
        lease: float,
        limit: int,
        queue_filter: str | None,
        queues: Sequence[str],
    ) -> list[ClaimedJob]:
        params: dict[str, Any] = {
            "now": now,
            "limit": limit,
            "worker_id": worker_id,
            "token": token,
            "expires": now + timedelta(seconds=lease),
        }
        statement = {
            None: self._claim_all,
            "in": self._claim_queues,
            "not in": self._claim_other_queues,
        }[queue_filter]
        if queue_filter is not None:
            params["queues"] = list(queues)
        rows = connection.execute(statement, params).all()
        return [
            ClaimedJob(
                id=row.id,
                queue=row.queue,
                type=row.type,
                payload=payloads.decode(row.payload),
                attempt=row.attempts,
                max_attempts=row.max_attempts,
                timeout=row.timeout,
                lease_token=token,
            )
            for row in rows
        ]
