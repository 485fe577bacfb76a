"""/api/v1/jobs: submit (one or a batch), list, show, wait for the result, cancel, retry,
delete, and the same actions in bulk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.concurrency import run_in_threadpool

from durableq.bulk import act_on_each, matching_ids
from durableq.client import Client
from durableq.core.builder import parse_job_id
from durableq.core.durations import parse_duration, parse_instant
from durableq.core.errors import InvalidInput
from durableq.core.jobs import TERMINAL_STATUSES, Job
from durableq.group_commit import GroupCommit
from durableq.http.models import BatchIn, JobIn, JobSelection
from durableq.http.routes.deps import ClientDep, changes_of, metrics_of, writer_of
from durableq.http.schemas import (
    WITH_INPUT,
    BatchOut,
    BulkOut,
    JobOut,
    JobPage,
    ResultOut,
    problem_responses,
)
from durableq.http.waiters import ChangeBroadcast
from durableq.metrics import Metrics
from durableq.views import iso, job_json

router = APIRouter(prefix="/jobs", tags=["jobs"])
WriterDep = Annotated[GroupCommit, Depends(writer_of)]
ChangesDep = Annotated[ChangeBroadcast, Depends(changes_of)]
MetricsDep = Annotated[Metrics, Depends(metrics_of)]
MAX_WAIT = 60.0
BULK = problem_responses(*WITH_INPUT)
# What submit, show and result answer: also the seed design's aliases' (routes/ops.py).
SUBMIT_DOC: dict[str, Any] = {
    "status_code": 201,
    "response_model": JobOut,
    "responses": {
        200: {"model": JobOut, "description": "The job the Idempotency-Key or a twin has"},
        **problem_responses(*WITH_INPUT, 429),
    },
}
SHOW_DOC: dict[str, Any] = {
    "response_model": JobOut,
    "responses": problem_responses(404, 422, 503),
}
RESULT_DOC: dict[str, Any] = {
    "response_model": ResultOut,
    "responses": {
        202: {"model": ResultOut, "description": "Not finished yet (the wait ended first)"},
        **problem_responses(404, 422, 503),
    },
}


@router.post("", summary="Enqueue a job", **SUBMIT_DOC)
async def submit(
    body: JobIn,
    response: Response,
    client: ClientDep,
    writer: WriterDep,
    metrics: MetricsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """201 with the new job and its Location; 200 with the existing job when the
    Idempotency-Key (or a unique twin) already has one. Answered once the job is committed."""
    spec = body.model_dump(exclude_unset=True)
    if idempotency_key is not None:
        if spec.get("idempotency_key") not in (None, idempotency_key):
            raise InvalidInput(
                "the Idempotency-Key header and the body's idempotency_key differ; give one"
            )
        spec["idempotency_key"] = idempotency_key
    job = client.job_from_mapping(spec)
    submitted = await asyncio.wrap_future(writer.submit([job], read_back=True))
    metrics.count_enqueued([job], submitted.enqueued)
    job_id = submitted.enqueued[0]
    response.headers["Location"] = f"/api/v1/jobs/{job_id}"
    if submitted.enqueued.duplicates:
        response.status_code = 200
    if submitted.jobs is None:  # stored, but the read-back failed: read it here
        return job_json(await run_in_threadpool(client.get, job_id))
    return job_json(submitted.jobs[0])


@router.post(
    "/batch",
    status_code=201,
    summary="Enqueue up to 10,000 jobs, all or nothing",
    response_model=BatchOut,
    responses=problem_responses(*WITH_INPUT, 429),
)
async def submit_batch(
    body: BatchIn, client: ClientDep, writer: WriterDep, metrics: MetricsDep
) -> dict[str, Any]:
    jobs = []
    for line, spec in enumerate(body.jobs, start=1):
        try:
            jobs.append(client.job_from_mapping(spec.model_dump(exclude_unset=True)))
        except InvalidInput as error:
            raise InvalidInput(f"job {line} of the batch: {error}; nothing was enqueued") from None
    enqueued = (await asyncio.wrap_future(writer.submit(jobs))).enqueued
    metrics.count_enqueued(jobs, enqueued)
    return {
        "ids": [str(job_id) for job_id in enqueued],
        "duplicates": sorted(enqueued.duplicates),
    }


@router.get(
    "",
    summary="List jobs, newest first",
    response_model=JobPage,
    responses=problem_responses(422, 503),
)
def list_jobs(
    client: ClientDep,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies it
    queue: Annotated[list[str], Query()] = [],  # noqa: B006
    type: Annotated[list[str], Query()] = [],  # noqa: B006
    created_after: str | None = None,
    created_before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
    payload_contains: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Keyset pagination: pass `next_cursor` back as `cursor` for the next (older) page."""
    found = client.jobs(
        statuses=status,
        queues=queue,
        types=type,
        limit=limit,
        created_after=None if created_after is None else parse_instant(created_after),
        created_before=None if created_before is None else parse_instant(created_before),
        before_id=None if cursor is None else _cursor(cursor),
        payload_contains=payload_contains,
    )
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return {"jobs": [job_json(job) for job in found], "next_cursor": next_cursor}


@router.get("/{job_id}", summary="A job, with its error history", **SHOW_DOC)
def show(job_id: str, client: ClientDep) -> dict[str, Any]:
    job = client.get(job_id)
    return job_json(job, client.errors(job.id))


@router.get(
    "/{job_id}/result",
    summary="A job's result, waiting for it up to `wait`",
    **RESULT_DOC,
)
async def result(
    job_id: str,
    client: ClientDep,
    changes: ChangesDep,
    response: Response,
    wait: str | None = None,
) -> dict[str, Any]:
    """200 once the job has finished (completed, failed or canceled); 202 while it has not.
    A wait holds no server thread: the request sleeps until the database changes."""
    timeout = 0.0 if wait is None else min(parse_duration(wait), MAX_WAIT)
    wanted = parse_job_id(job_id)
    job = await changes.wait_until(
        lambda: client.get(wanted), lambda job: job.status in TERMINAL_STATUSES, timeout
    )
    if job.status not in TERMINAL_STATUSES:
        response.status_code = 202
    return result_json(job)


def result_json(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "status": job.status.value,
        "result": job.result,
        "last_error": job.last_error,
        "finished_at": iso(job.finished_at),
    }


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a pending job, or stop a running one",
    response_model=JobOut,
    responses=problem_responses(404, 409, 422, 503),
)
def cancel(job_id: str, client: ClientDep) -> dict[str, Any]:
    return job_json(client.cancel(job_id))


@router.post(
    "/{job_id}/retry",
    summary="Run a failed or canceled job again",
    response_model=JobOut,
    responses=problem_responses(404, 409, 422, 503),
)
def retry(job_id: str, client: ClientDep) -> dict[str, Any]:
    return job_json(client.retry(job_id))


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Delete a finished job",
    response_class=Response,
    responses=problem_responses(404, 409, 422, 503),
)
def delete(job_id: str, client: ClientDep) -> Response:
    client.delete(job_id)
    return Response(status_code=204)


@router.post("/cancel", summary="Cancel many jobs", response_model=BulkOut, responses=BULK)
def bulk_cancel(body: JobSelection, client: ClientDep) -> dict[str, Any]:
    return _act_on_each(body, client, client.cancel)


@router.post("/retry", summary="Retry many jobs", response_model=BulkOut, responses=BULK)
def bulk_retry(body: JobSelection, client: ClientDep) -> dict[str, Any]:
    return _act_on_each(body, client, client.retry)


@router.post("/delete", summary="Delete many finished jobs", response_model=BulkOut, responses=BULK)
def bulk_delete(body: JobSelection, client: ClientDep) -> dict[str, Any]:
    return _act_on_each(body, client, client.delete)


def _act_on_each(
    body: JobSelection, client: Client, act: Callable[[int], object]
) -> dict[str, Any]:
    """Act on the listed jobs, or on every job matching the filter (in pages of 500). Jobs the
    action does not apply to are skipped and counted, with the first reasons."""
    if (body.ids is None) == (body.filter is None):
        raise InvalidInput('give "ids" or "filter", not both and not neither')
    if body.ids is not None:
        ids: Iterable[int] = [parse_job_id(job_id) for job_id in body.ids]  # all checked first
    else:
        assert body.filter is not None
        where = body.filter
        ids = matching_ids(client, statuses=where.status, queues=where.queue, types=where.type)
    result = act_on_each(ids, act)
    return {"done": result.done, "skipped": result.skipped, "reasons": result.reasons}


def _cursor(value: str) -> int:
    try:
        return parse_job_id(value)
    except InvalidInput:
        raise InvalidInput(f"invalid cursor {value!r}: pass back a next_cursor") from None
