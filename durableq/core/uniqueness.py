"""Unique jobs and idempotent enqueues: the keys, and the one procedure every store runs. Pure.

A unique job's key is a hash of canonical JSON (sorted keys) of the fields it is unique by, so
key order in a payload does not matter. The database enforces it: a unique index on the key,
partial on "the job's status is one of its unique states" (schema.UNIQUE_HELD). Those states
always include pending and running, so a job that is waiting or being worked on holds its key
throughout, and an automatic retry (running -> pending) can never collide with a twin. Only an
operator's retry of a failed or canceled job brings a key back, and it is refused with
UniqueConflict while a twin holds it (never a constraint error).

An idempotency key is held for as long as its job exists, whatever its status.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from durableq.core.errors import DatabaseBusy, IdempotencyConflict, InvalidInput
from durableq.core.jobs import JobStatus, NewJob

OnConflict = Literal["skip", "replace"]
UNIQUE_BY = ("type", "payload", "queue")
# One bit per status: a job's unique_states column holds the sum of those it is unique in.
STATE_BITS: Mapping[JobStatus, int] = {status: 1 << i for i, status in enumerate(JobStatus)}
ALWAYS_HELD = (JobStatus.PENDING, JobStatus.RUNNING)
MAX_KEY_LENGTH = 200


def unique_held() -> str:
    """The SQL condition under which a job holds its unique key: its status is one of its
    unique states. The partial unique index and every lookup of a twin use this text."""
    bits = " ".join(f"WHEN '{status.value}' THEN {bit}" for status, bit in STATE_BITS.items())
    return f"unique_key IS NOT NULL AND (unique_states & CASE status {bits} ELSE 0 END) <> 0"


@dataclass(frozen=True)
class Unique:
    """How a job is unique: `by` some of type, payload and queue (payload `keys` picks a
    subset of its fields), within a `period` of seconds (time buckets), while a twin is in
    `states`. `on_conflict`: "skip" returns the twin's id, "replace" also updates a pending
    twin's payload and run_at."""

    by: Sequence[str] = UNIQUE_BY
    keys: Sequence[str] | None = None
    period: float | None = None
    states: Sequence[JobStatus | str] = ("pending", "running")
    on_conflict: OnConflict = "skip"

    def __post_init__(self) -> None:
        by = tuple(self.by) if not isinstance(self.by, str) else (self.by,)
        if not by or not set(by) <= set(UNIQUE_BY) or len(set(by)) != len(by):
            raise InvalidInput(f"unique by must be some of {', '.join(UNIQUE_BY)}, e.g. type")
        if self.keys is not None:
            keys = (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)
            if not keys or not all(isinstance(key, str) and key for key in keys):
                raise InvalidInput("unique keys must be payload field names, e.g. order_id")
            if "payload" not in by:
                raise InvalidInput('unique keys pick payload fields: add "payload" to by')
            object.__setattr__(self, "keys", keys)
        if self.period is not None:
            period = self.period
            if isinstance(period, bool) or not isinstance(period, int | float):
                raise InvalidInput("the unique period must be a number of seconds, e.g. 3600")
            if not math.isfinite(period) or not 1 <= period <= 10 * 365 * 86400:
                raise InvalidInput("the unique period must be from 1 second to 10 years")
        object.__setattr__(self, "by", by)
        object.__setattr__(self, "states", parse_states(self.states))
        if self.on_conflict not in ("skip", "replace"):
            raise InvalidInput(f"unknown on_conflict {self.on_conflict!r}: use skip or replace")

    def key(self, job: NewJob, now: datetime) -> str:
        """The job's unique key: the same for every job this one counts as a twin of."""
        parts: dict[str, Any] = {}
        if "type" in self.by:
            parts["type"] = job.type
        if "queue" in self.by:
            parts["queue"] = job.queue
        if "payload" in self.by:
            payload = job.payload
            if self.keys is not None:
                payload = {key: payload[key] for key in self.keys if key in payload}
            parts["payload"] = payload
        if self.period is not None:
            parts["period"] = [self.period, math.floor(now.timestamp() / self.period)]
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def state_bits(self) -> int:
        return sum(STATE_BITS[JobStatus(status)] for status in self.states)


def parse_states(states: Sequence[JobStatus | str] | str) -> tuple[JobStatus, ...]:
    """Unique states, from names (a comma-separated string too); pending and running always."""
    names = states.split(",") if isinstance(states, str) else list(states)
    parsed: list[JobStatus] = []
    for name in names:
        try:
            parsed.append(JobStatus(str(name).strip()))
        except ValueError:
            allowed = ", ".join(status.value for status in JobStatus)
            raise InvalidInput(f"unknown unique state {name!r}: use some of {allowed}") from None
    missing = [status.value for status in ALWAYS_HELD if status not in parsed]
    if missing:
        raise InvalidInput(
            "unique states must include pending and running (a job being worked on keeps its "
            f"key, so its own retry can never meet a twin): add {', '.join(missing)}"
        )
    return tuple(status for status in JobStatus if status in parsed)


def check_idempotency_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"the idempotency key must be 1-{MAX_KEY_LENGTH} characters, e.g. order-42-email"
        )
    if not key.isprintable():
        raise InvalidInput("the idempotency key must be printable text, without control codes")
    return key


class Enqueued(list[int]):
    """The ids of an enqueue, in the order given; `duplicates` holds the positions of the jobs
    that were not inserted because a twin (or the idempotency key's job) exists: their ids are
    the existing jobs'."""

    duplicates: frozenset[int]

    def __init__(self, ids: Sequence[int], duplicates: frozenset[int] = frozenset()) -> None:
        super().__init__(ids)
        self.duplicates = duplicates


@dataclass(frozen=True)
class Twin:
    """An existing job that holds a key a new job asks for."""

    id: int
    type: str
    payload: Mapping[str, Any]
    status: JobStatus


class KeySteps(Protocol):
    """What a store provides for an enqueue with keys, inside its write transaction."""

    def by_idempotency_key(self, key: str) -> Twin | None: ...

    def by_unique_key(self, key: str) -> Twin | None: ...

    def by_schedule_tick(self, schedule: str, tick: datetime) -> Twin | None: ...

    def replace(self, twin_id: int, job: NewJob) -> bool:
        """Update a pending twin's payload and run_at; False if it is no longer pending."""
        ...

    def admit(self, jobs: Sequence[NewJob]) -> None:
        """Refuse (QueueFull) jobs a queue has no room for; makes new queues' rows."""
        ...

    def insert(self, job: NewJob) -> int | None:
        """Insert one row; None if a key was taken meanwhile (a concurrent transaction)."""
        ...


RACE_RETRIES = 5


def enqueue_with_keys(steps: KeySteps, jobs: Sequence[NewJob]) -> Enqueued:
    """Insert the jobs that have no twin, row by row, in order; report the duplicates.

    Twins are looked up first, so that a batch's duplicates neither count against max_pending
    nor are written; the database's unique indexes then decide any race with another
    transaction (PostgreSQL), which ends in a lookup again.
    """
    ids: dict[int, int] = {}
    twin_in_batch: dict[int, int] = {}  # position -> the earlier position it duplicates
    duplicates: set[int] = set()
    batch_keys: dict[tuple[str, str], int] = {}  # keys taken earlier in this batch
    fresh: list[int] = []
    for position, job in enumerate(jobs):
        earlier = _twin_in_batch(jobs, batch_keys, job)
        if earlier is not None:
            twin_in_batch[position] = earlier
            duplicates.add(position)
            continue
        existing = _existing_twin(steps, job)
        if existing is not None:
            ids[position] = existing
            duplicates.add(position)
            continue
        for kind, key in _keys(job):
            batch_keys[(kind, key)] = position
        fresh.append(position)
    if fresh:
        steps.admit([jobs[position] for position in fresh])
    for position in fresh:
        ids[position], inserted = _insert(steps, jobs[position])
        if not inserted:
            duplicates.add(position)
    for position, earlier in twin_in_batch.items():
        ids[position] = ids[earlier]
    return Enqueued([ids[position] for position in range(len(jobs))], frozenset(duplicates))


def _keys(job: NewJob) -> list[tuple[str, str]]:
    keys = []
    if job.idempotency_key is not None:
        keys.append(("idempotency", job.idempotency_key))
    if job.unique_key is not None:
        keys.append(("unique", job.unique_key))
    return keys


def _twin_in_batch(
    jobs: Sequence[NewJob], batch_keys: Mapping[tuple[str, str], int], job: NewJob
) -> int | None:
    if job.idempotency_key is not None:
        earlier = batch_keys.get(("idempotency", job.idempotency_key))
        if earlier is not None:
            _check_same(job, jobs[earlier].type, jobs[earlier].payload, None)
            return earlier
    if job.unique_key is not None:
        return batch_keys.get(("unique", job.unique_key))
    return None


def _existing_twin(steps: KeySteps, job: NewJob) -> int | None:
    """The id of the job that this one duplicates, if any (replacing a pending twin's data)."""
    if job.idempotency_key is not None:
        twin = steps.by_idempotency_key(job.idempotency_key)
        if twin is not None:
            _check_same(job, twin.type, twin.payload, twin.id)
            return twin.id
    if job.unique_key is not None:
        twin = steps.by_unique_key(job.unique_key)
        if twin is not None:
            if job.replace_twin and twin.status is JobStatus.PENDING:
                steps.replace(twin.id, job)
            return twin.id
    if job.schedule is not None and job.schedule_tick is not None:
        twin = steps.by_schedule_tick(job.schedule, job.schedule_tick)
        if twin is not None:
            return twin.id
    return None


def _check_same(job: NewJob, type: str, payload: Mapping[str, Any], job_id: int | None) -> None:
    if type != job.type:
        raise IdempotencyConflict(job.idempotency_key or "", job_id, "type")
    if _normalised(payload) != _normalised(job.payload):
        raise IdempotencyConflict(job.idempotency_key or "", job_id, "payload")


def _normalised(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _insert(steps: KeySteps, job: NewJob) -> tuple[int, bool]:
    """The job's id and True, or a twin's id and False when a concurrent transaction won."""
    for _ in range(RACE_RETRIES):
        job_id = steps.insert(job)
        if job_id is not None:
            return job_id, True
        # A concurrent transaction committed a twin: it is the one to return (or, if it left
        # its unique states meanwhile, the key is free again and the insert is tried anew).
        existing = _existing_twin(steps, job)
        if existing is not None:
            return existing, False
    raise DatabaseBusy("the job's unique key kept changing hands; retry the enqueue")
