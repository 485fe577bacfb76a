"""durableq: a durable job queue persisted in SQLite (or PostgreSQL)."""

__version__ = "0.1.0"

from durableq.client import Client
from durableq.errors import DurableqError
from durableq.handlers import JobCancelled, JobContext, Registry
from durableq.jobs import Job, JobStatus

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
