"""/api/v1/queues: list, show, pause, resume, and change limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from durableq.http.models import QueueLimitsIn
from durableq.http.routes.deps import ClientDep
from durableq.http.schemas import WITH_INPUT, QueueOut, problem_responses
from durableq.store.records import UNSET
from durableq.views import queue_json

router = APIRouter(prefix="/queues", tags=["queues"])
ONE = problem_responses(422, 503)


@router.get(
    "",
    summary="Every queue: paused, pending, running, limits, oldest wait",
    response_model=list[QueueOut],
    responses=problem_responses(503),
)
def list_queues(client: ClientDep) -> list[dict[str, Any]]:
    return [queue_json(info) for info in client.queues()]


@router.get("/{name}", summary="One queue", response_model=QueueOut, responses=ONE)
def show_queue(name: str, client: ClientDep) -> dict[str, Any]:
    return queue_json(client.queue(name))


@router.post(
    "/{name}/pause",
    summary="No job of the queue starts until it is resumed",
    response_model=QueueOut,
    responses=ONE,
)
def pause(name: str, client: ClientDep) -> dict[str, Any]:
    return queue_json(client.pause_queue(name))


@router.post(
    "/{name}/resume", summary="Resume a paused queue", response_model=QueueOut, responses=ONE
)
def resume(name: str, client: ClientDep) -> dict[str, Any]:
    return queue_json(client.resume_queue(name))


@router.patch(
    "/{name}",
    summary="Change a queue's limits (null removes one)",
    response_model=QueueOut,
    responses=problem_responses(*WITH_INPUT),
)
def set_limits(name: str, body: QueueLimitsIn, client: ClientDep) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)
    info = client.set_queue(
        name,
        concurrency=given.get("concurrency", UNSET),
        max_pending=given.get("max_pending", UNSET),
        rate=given.get("rate", UNSET),
    )
    return queue_json(info)
