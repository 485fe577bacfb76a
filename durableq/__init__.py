"""durableq: a durable job queue persisted in SQLite (or PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durableq.errors import DurableqError
from durableq.handlers import JobCancelled, JobContext, Registry
from durableq.jobs import Job, JobStatus

if TYPE_CHECKING:
    from durableq.client import Client

__version__ = "0.1.0"

__all__ = [
    "Client",
    "DurableqError",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobStatus",
    "Registry",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Client brings SQLAlchemy, whose import is most of a CLI call's time: load it when used.
    if name == "Client":
        from durableq.client import Client

        return Client
    raise AttributeError(f"module 'durableq' has no attribute {name!r}")
