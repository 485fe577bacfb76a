"""Response bodies, as pydantic models: what /openapi.json promises, checked against what the
routes really send by schemathesis (tests/http/test_openapi.py). The bodies themselves are
built by durableq.views, the same as the CLI's --json; these models describe them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable `code` per kind of error."""

    type: str = Field(examples=["urn:durableq:problem:job_not_found"])
    title: str
    status: int
    detail: str = Field(examples=["no job with id 99"])
    code: str = Field(examples=["job_not_found"])


class ErrorOut(BaseModel):
    attempt: int
    error: str
    traceback: str | None
    failed_at: str | None


class JobOut(BaseModel):
    """A job, as `durableq jobs show --json` prints it. Ids are strings (JSON numbers lose
    precision past 2^53 in some languages)."""

    id: str
    queue: str
    type: str
    payload: dict[str, Any]
    status: str = Field(examples=["pending"])
    priority: int
    attempts: int
    max_attempts: int
    last_error: str | None
    result: Any
    run_at: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    timeout: float | None
    cancel_requested: bool
    worker_id: str | None
    idempotency_key: str | None
    unique_key: str | None
    schedule: str | None
    schedule_tick: str | None
    progress: float | None = Field(description="What the handler last reported, 0 to 1")
    progress_message: str | None
    meta: dict[str, Any] | None = Field(description="The handler's metadata (and snoozes)")
    errors: list[ErrorOut] | None = Field(
        default=None, description="The error history (GET /jobs/{id} only)"
    )


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page")


class ResultOut(BaseModel):
    id: str
    status: str
    result: Any
    last_error: str | None
    finished_at: str | None


class BatchOut(BaseModel):
    ids: list[str]
    duplicates: list[int] = Field(description="Positions of jobs that matched an existing one")


class BulkOut(BaseModel):
    done: int
    skipped: int
    reasons: list[str] = Field(description="Why jobs were skipped (the first 20)")


class RateOut(BaseModel):
    count: int
    period_seconds: float
    burst: int


class QueueOut(BaseModel):
    name: str
    paused: bool
    paused_at: str | None
    pending: int
    running: int
    concurrency: int | None
    max_pending: int | None
    rate: RateOut | None
    oldest_due_wait_seconds: float | None


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str] | None
    concurrency: int
    started_at: str | None
    heartbeat_at: str | None
    leader: bool


class StatsOut(BaseModel):
    counts: dict[str, int]
    queues: dict[str, dict[str, int]]
    oldest_pending_age_seconds: float | None
    completed_last_minute: int
    failed_last_minute: int


class HistoryBucketOut(BaseModel):
    start: str
    completed: int
    failed: int
    canceled: int
    errored: int
    mean_wait_seconds: float | None
    mean_duration_seconds: float | None


class HistoryOut(BaseModel):
    window: str
    step_seconds: int
    rolled_up_to: str | None
    buckets: list[HistoryBucketOut]


class ScheduleOut(BaseModel):
    name: str
    cron: str
    description: str | None
    timezone: str
    type: str
    queue: str
    catch_up: str
    max_catch_up: int
    no_overlap: bool
    active: bool
    next_run_at: str | None
    last_tick: str | None
    last_run_at: str | None
    last_job_id: str | None
    last_job_status: str | None
    seen_at: str | None


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    revision: str


_DESCRIPTIONS = {
    400: "The body is not JSON",
    401: "No or a wrong token (off loopback)",
    403: "A browser's request from another site (or a read-only dashboard)",
    404: "No such job (or route)",
    409: "The job's status does not allow it",
    413: "The body is over the limit",
    422: "The input is not valid",
    429: "The queue is full (max_pending); see Retry-After",
    500: "A bug: the server log has the details",
    503: "Draining, or the database is unavailable; see Retry-After",
}
EVERY_ROUTE = (401, 403, 500)
WITH_INPUT = (400, 413, 422, 503)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of a route for these error statuses, as problem+json."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
