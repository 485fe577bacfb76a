"""Health and readiness, workers, stats and schedules, and the seed design's three routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from durableq.http.problems import ApiProblem
from durableq.http.routes import jobs
from durableq.http.routes.deps import DRAINING, ClientDep
from durableq.http.schemas import (
    HealthOut,
    HistoryOut,
    ReadyOut,
    ScheduleOut,
    StatsOut,
    WorkerOut,
    problem_responses,
)
from durableq.metrics import CONTENT_TYPE, Metrics
from durableq.store.revision import HEAD_REVISION
from durableq.views import history_json, schedule_json, stats_json, worker_json

health = APIRouter(tags=["health"])
scrape = APIRouter(tags=["metrics"])
api = APIRouter(tags=["operations"])
seed = APIRouter(tags=["seed routes"])


@health.get(
    "/healthz", summary="The process is up (no auth, no database)", response_model=HealthOut
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@scrape.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
)
def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE)


@api.get(
    "/readyz",
    summary="The database is reachable and its schema current",
    response_model=ReadyOut,
    responses=problem_responses(503),
)
def readyz(request: Request, client: ClientDep) -> dict[str, str]:
    from durableq.store import migrate

    if request.app.state.draining:
        raise ApiProblem(503, "draining", DRAINING)
    try:
        revision = migrate.current_revision(client.engine)
    except Exception as error:  # any failure to reach the database means not ready
        raise ApiProblem(503, "not_ready", f"the database cannot be reached: {error}") from None
    if revision != HEAD_REVISION:
        raise ApiProblem(
            503,
            "not_ready",
            f"the schema is at revision {revision}, this durableq needs {HEAD_REVISION}; "
            "run `durableq db upgrade`",
        )
    return {"status": "ready", "revision": revision}


@api.get(
    "/api/v1/workers",
    summary="The live daemons, and which one leads",
    response_model=list[WorkerOut],
    responses=problem_responses(503),
)
def workers(client: ClientDep) -> list[dict[str, Any]]:
    leader = client.leader()
    leader_id = None if leader is None else leader.holder
    return [worker_json(worker, leader_id) for worker in client.workers()]


@api.get(
    "/api/v1/stats",
    summary="Counts by queue and status, oldest due job, last minute",
    response_model=StatsOut,
    responses=problem_responses(503),
)
def stats(client: ClientDep) -> dict[str, Any]:
    return stats_json(client.stats(), client.clock())


@api.get(
    "/api/v1/stats/history",
    summary="Jobs finished per minute (1h), 15 minutes (24h) or 2 hours (7d)",
    response_model=HistoryOut,
    responses=problem_responses(422, 503),
)
def history(
    client: ClientDep,
    window: str = "1h",
    queue: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies it
) -> dict[str, Any]:
    return history_json(client.history(window, queue))


@api.get(
    "/api/v1/schedules",
    summary="The recurring jobs the daemons declared",
    response_model=list[ScheduleOut],
    responses=problem_responses(503),
)
def schedules(client: ClientDep) -> list[dict[str, Any]]:
    return [schedule_json(info) for info in client.schedules()]


# The seed design's routes are the same endpoints, registered a second time under its paths.
seed.add_api_route(
    "/job", jobs.submit, methods=["POST"], summary="Alias of POST /api/v1/jobs", **jobs.SUBMIT_DOC
)
seed.add_api_route(
    "/status/{job_id}", jobs.show, summary="Alias of GET /api/v1/jobs/{id}", **jobs.SHOW_DOC
)
seed.add_api_route(
    "/result/{job_id}",
    jobs.result,
    summary="Alias of GET /api/v1/jobs/{id}/result",
    **jobs.RESULT_DOC,
)
