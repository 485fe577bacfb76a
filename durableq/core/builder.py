"""Validating and building jobs from what callers give: no database, no SQLAlchemy.

The CLI validates here before it opens (or creates) a database, so bad input changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from durableq.core.config import Settings
from durableq.core.errors import InvalidInput
from durableq.core.jobs import JobKeys, JobStatus, NewJob
from durableq.core.uniqueness import Unique, check_idempotency_key

Clock = Callable[[], datetime]
_NAME = re.compile(r"^[A-Za-z0-9_.:\-/]{1,200}$")
MAX_PRIORITY = 1_000_000
MAX_SECONDS = 10 * 365 * 86400.0  # delays and timeouts, as for durations typed at the CLI


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobBuilder:
    """Validates and builds jobs. It needs no database, so bad input is refused before one is
    opened (or created)."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    def new_job(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        unique: Unique | bool | None = None,
    ) -> NewJob:
        """Validate a job's fields; raises InvalidInput naming the first bad one.

        `idempotency_key`: enqueueing again with it returns this job's id while the job exists.
        `unique`: a Unique (or True for the default: by type, payload and queue while pending
        or running); a twin's id is returned instead of inserting another.
        """
        _check_name("type", type)
        _check_name("queue", queue)
        if payload is None:
            payload = {}
        if payload.__class__ is not dict and not isinstance(payload, Mapping):  # skip the ABC
            from durableq.core.payloads import encode_payload

            encode_payload(payload)  # raises with a message naming the wrong kind
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidInput("priority must be a whole number")
        if abs(priority) > MAX_PRIORITY:
            raise InvalidInput(f"priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}")
        attempts = self.settings.default_max_attempts if max_attempts is None else max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 1000:
            raise InvalidInput("max_attempts must be a whole number from 1 to 1000")
        if timeout is not None and not (_is_seconds(timeout) and timeout > 0):
            raise InvalidInput("timeout must be a positive number of seconds")
        job = NewJob(
            type=type,
            payload=dict(payload),
            queue=queue,
            priority=priority,
            max_attempts=attempts,
            timeout=float(timeout) if timeout is not None else None,
            run_at=self._when(delay, run_at),
        )
        if idempotency_key is None and unique is None:
            return job
        return self._with_keys(job, idempotency_key, unique)

    def _with_keys(
        self, job: NewJob, idempotency_key: str | None, unique: Unique | bool | None
    ) -> NewJob:
        keys = JobKeys()
        if idempotency_key is not None:
            keys = replace(keys, idempotency_key=check_idempotency_key(idempotency_key))
        if unique is True:
            unique = Unique()
        if unique is not None and unique is not False:
            if not isinstance(unique, Unique):
                raise InvalidInput("unique must be a durableq.Unique, True or None")
            # Canonical JSON of the payload: checked now, so that a bad payload is named as such.
            from durableq.core.payloads import encode_payload

            encode_payload(job.payload)
            keys = replace(
                keys,
                unique_key=unique.key(job, self.clock()),
                unique_states=unique.state_bits,
                replace_twin=unique.on_conflict == "replace",
            )
        return job if keys == JobKeys() else replace(job, keys=keys)

    def job_from_mapping(self, spec: Mapping[str, Any]) -> NewJob:
        """A job from a dict such as one line of a JSONL batch file."""
        if spec.__class__ is not dict and not isinstance(spec, Mapping):
            raise InvalidInput('each job must be a JSON object with at least a "type"')
        if not _SPEC_KEYS.issuperset(spec):
            unknown = set(spec) - _SPEC_KEYS
            raise InvalidInput(
                f"unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_SPEC_KEYS))}"
            )
        if "type" not in spec:
            raise InvalidInput('missing "type"')
        run_at = spec.get("run_at")
        if run_at is not None:
            from durableq.core.durations import parse_instant

            run_at = parse_instant(str(run_at))
        delay = spec.get("delay")
        if delay is not None:
            from durableq.core.durations import parse_duration

            delay = parse_duration(str(delay))
        timeout = spec.get("timeout")
        if timeout is not None and not isinstance(timeout, int | float):
            from durableq.core.durations import parse_duration

            timeout = parse_duration(str(timeout))
        return self.new_job(
            spec["type"],
            spec.get("payload"),
            queue=spec.get("queue", "default"),
            priority=spec.get("priority", 0),
            delay=delay,
            run_at=run_at,
            max_attempts=spec.get("max_attempts"),
            timeout=timeout,
            idempotency_key=spec.get("idempotency_key"),
            unique=None if (unique := spec.get("unique")) is None else unique_from_spec(unique),
        )

    def _when(self, delay: float | None, run_at: datetime | None) -> datetime | None:
        if delay is not None and run_at is not None:
            raise InvalidInput("give a delay or a run_at time, not both")
        if delay is not None:
            if not _is_seconds(delay) or delay < 0:
                raise InvalidInput("the delay must be a number of seconds, not negative")
            return self.clock() + timedelta(seconds=delay)
        if run_at is not None:
            if not isinstance(run_at, datetime):
                raise InvalidInput(f"run_at must be a datetime, not {type(run_at).__name__}")
            if run_at.tzinfo is None:
                raise InvalidInput("run_at must be timezone-aware (e.g. datetime.now(UTC))")
            from durableq.core.durations import in_utc

            return in_utc(run_at, run_at.isoformat())
        return None


_SPEC_KEYS = {
    "type",
    "payload",
    "queue",
    "priority",
    "delay",
    "run_at",
    "max_attempts",
    "timeout",
    "idempotency_key",
    "unique",
}
_UNIQUE_KEYS = {"by", "keys", "period", "states", "on_conflict"}


def unique_from_spec(spec: object) -> Unique | bool | None:
    """A batch line's "unique": true, or an object with by, keys, period, states, on_conflict
    (period as a duration, "1h", or seconds)."""
    if spec is None or isinstance(spec, bool):
        return spec
    if not isinstance(spec, Mapping):
        raise InvalidInput('"unique" must be true or an object, e.g. {"period": "1h"}')
    unknown = set(spec) - _UNIQUE_KEYS
    if unknown:
        allowed = ", ".join(sorted(_UNIQUE_KEYS))
        raise InvalidInput(f"unknown unique option {sorted(unknown)[0]!r}; allowed: {allowed}")
    options = dict(spec)
    period = options.get("period")
    if isinstance(period, str):
        from durableq.core.durations import parse_duration

        options["period"] = parse_duration(period)
    return Unique(**options)


def _is_seconds(value: object) -> bool:
    """A finite number of seconds a datetime can be moved by (booleans are not numbers here)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_SECONDS
    )


def check_name(what: str, value: object) -> str:
    """A type, queue or schedule name: 1-200 letters, digits or . _ - : /."""
    _check_name(what, value)
    assert isinstance(value, str)
    return value


def _check_name(what: str, value: object) -> None:
    # Types and queues repeat endlessly in a batch: remember the ones already checked.
    if isinstance(value, str) and value in _VALID_NAMES:
        return
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: use 1-200 letters, digits or . _ - : /")
    if len(_VALID_NAMES) > 10_000:
        _VALID_NAMES.clear()
    _VALID_NAMES.add(value)


_VALID_NAMES: set[str] = set()


def parse_job_id(value: int | str) -> int:
    try:
        job_id = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"invalid job id {value!r}: job ids are whole numbers") from None
    if job_id < 1:
        raise InvalidInput(f"invalid job id {value!r}: job ids are positive")
    if job_id > 2**63 - 1:
        raise InvalidInput(f"invalid job id {value!r}: too large to be a job id")
    return job_id


def parse_status(value: JobStatus | str) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        names = ", ".join(status.value for status in JobStatus)
        raise InvalidInput(f"unknown status {value!r}: use one of {names}") from None
