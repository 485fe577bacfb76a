"""durableq: a durable job queue persisted in SQLite (or PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durableq.core.errors import (
    DatabaseBusy,
    DatabaseError,
    DiskFull,
    DurableqError,
    HandlerNotFound,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    QueueFull,
    SchemaOutdated,
    SchemaTooNew,
    UniqueConflict,
)
from durableq.core.jobs import Job, JobStatus
from durableq.core.uniqueness import Unique
from durableq.handlers.outcomes import Cancel, Fail, LeaseLost, RetryIn, Snooze
from durableq.handlers.registry import JobCancelled, JobContext, Registry

if TYPE_CHECKING:
    from durableq.async_client import AsyncClient
    from durableq.client import Client

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Cancel",
    "Client",
    "DatabaseBusy",
    "DatabaseError",
    "DiskFull",
    "DurableqError",
    "Fail",
    "HandlerNotFound",
    "IdempotencyConflict",
    "InvalidInput",
    "InvalidTransition",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobNotFound",
    "JobStatus",
    "LeaseLost",
    "QueueFull",
    "Registry",
    "RetryIn",
    "SchemaOutdated",
    "SchemaTooNew",
    "Snooze",
    "Unique",
    "UniqueConflict",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Client brings SQLAlchemy, whose import is most of a CLI call's time: load it when used.
    if name == "Client":
        from durableq.client import Client

        return Client
    if name == "AsyncClient":
        from durableq.async_client import AsyncClient

        return AsyncClient
    raise AttributeError(f"module 'durableq' has no attribute {name!r}")
