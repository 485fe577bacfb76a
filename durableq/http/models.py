"""Request bodies, as pydantic models: they document the API (OpenAPI) and reject unknown keys.
The values are then checked by the same JobBuilder as the CLI's, so the errors read the same."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 10_000


class JobIn(BaseModel):
    """A job to enqueue. Durations are "30s", "1h30m" or seconds; times are ISO 8601."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=["email.send"])
    payload: dict[str, Any] | None = Field(default=None, examples=[{"to": "ada@example.com"}])
    queue: str = "default"
    priority: int = 0
    delay: str | float | None = Field(default=None, examples=["30s"])
    run_at: str | None = Field(default=None, examples=["2026-12-24T18:00:00Z"])
    max_attempts: int | None = None
    timeout: str | float | None = None
    idempotency_key: str | None = None
    unique: bool | dict[str, Any] | None = Field(
        default=None, examples=[True, {"keys": ["to"], "period": "1h"}]
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[JobIn] = Field(max_length=MAX_BATCH)


class JobSelection(BaseModel):
    """Jobs to act on: by id, or every job matching a filter."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=MAX_BATCH)
    filter: FilterIn | None = None


class FilterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: list[str] = []
    queue: list[str] = []
    type: list[str] = []


class QueueLimitsIn(BaseModel):
    """Limits to change; a key left out keeps its value, null removes the limit."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = None
    max_pending: int | None = None
    rate: str | None = Field(default=None, examples=["100/1m:20"])


JobSelection.model_rebuild()
