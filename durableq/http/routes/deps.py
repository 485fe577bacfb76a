"""What the routes need from the application: its client, its group-commit writer and
the broadcast of database changes that long-polls wait on.

Both are async so that FastAPI resolves them on the event loop, not with a hop to a thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from durableq.client import Client
from durableq.group_commit import GroupCommit
from durableq.http.problems import ApiProblem
from durableq.http.waiters import ChangeBroadcast
from durableq.metrics import Metrics

DRAINING = "the server is shutting down and takes no new jobs: submit to another one or retry"


async def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


ClientDep = Annotated[Client, Depends(client_of)]


async def writer_of(request: Request) -> GroupCommit:
    """The writer, for a route that submits: refused with 503 while the server drains."""
    if request.app.state.draining:
        raise ApiProblem(503, "draining", DRAINING, {"Retry-After": "1"})
    writer: GroupCommit = request.app.state.writer
    return writer


async def changes_of(request: Request) -> ChangeBroadcast:
    changes: ChangeBroadcast = request.app.state.changes
    return changes


async def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics
