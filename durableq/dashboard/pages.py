"""The pages: overview, jobs (tabs, filters, search, keyset pages), one job, queues, workers,
schedules. Each reads through the Client and shapes with durableq.views, as the API does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from durableq.client import Client
from durableq.core.builder import parse_job_id
from durableq.core.errors import DurableqError, InvalidInput, JobNotFound
from durableq.core.history import WINDOWS, Outcome, parse_window
from durableq.core.jobs import JobStatus
from durableq.dashboard.charts import overview_charts
from durableq.dashboard.render import page, seconds
from durableq.http.routes.deps import ClientDep
from durableq.views import iso, job_json, queue_json, schedule_json, stats_json, worker_json

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
MATCH_CAP = 10_000
STATUSES = [status.value for status in JobStatus]
RUNNING_SHOWN = 500


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, client: ClientDep, window: str = "1h") -> HTMLResponse:
    lead = client.leader()
    history = client.history(parse_window(window))
    return page(
        request,
        "overview.html",
        "Overview",
        "/",
        stats=stats_json(request.app.state.stats_snapshot.get(), client.clock()),
        statuses=STATUSES,
        workers=client.workers(),
        leader=None if lead is None else lead.holder,
        history=history,
        windows=list(WINDOWS),
        charts=overview_charts(history, _count, seconds),
        totals={outcome.value: history.total(outcome) for outcome in Outcome},
        rolled_up_to=iso(history.rolled_up_to),
    )


def _count(value: float) -> str:
    return f"{value:,.0f}"


@router.get("/jobs", response_class=HTMLResponse)
def jobs(
    request: Request,
    client: ClientDep,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies it
    queue: str = "",
    type: str = "",
    created_after: str = "",
    created_before: str = "",
    q: str = "",
    before: str = "",
) -> HTMLResponse:
    chosen = [name for name in STATUSES if name in status]
    filters = {
        "queue": queue.strip(),
        "type": type.strip(),
        "created_after": created_after,
        "created_before": created_before,
        "q": q.strip(),
    }
    selection = filter_keywords(chosen, filters)
    found_id = _id_in(client, filters["q"])
    listed = client.jobs(limit=PAGE_SIZE, before_id=_page_start(before), **selection)
    if not before and len(listed) < PAGE_SIZE:
        matching = len(listed)  # the whole filter fits on its first page: no second scan
    else:
        matching = client.count_jobs(cap=MATCH_CAP, **selection)
    next_before = str(listed[-1].id) if len(listed) == PAGE_SIZE else None
    current = {"status": chosen, **{k: v for k, v in filters.items() if v}}

    def query(**changes: Any) -> str:
        merged = {**current, "before": before or None, **changes}
        return urlencode({k: v for k, v in merged.items() if v}, doseq=True)

    def toggled(name: str) -> list[str]:
        return [s for s in chosen if s != name] if name in chosen else [*chosen, name]

    hidden = [("status", name) for name in chosen] + [
        (key, value) for key, value in filters.items() if value
    ]
    return page(
        request,
        "jobs.html",
        "Jobs",
        "/jobs",
        jobs=[job_json(job) for job in listed],
        statuses=STATUSES,
        chosen=chosen,
        filters=filters,
        found_id=found_id,
        matching_label=f"{MATCH_CAP:,}+" if matching >= MATCH_CAP else f"{matching:,}",
        next_before=next_before,
        newer=bool(before),
        query=query,
        toggled=toggled,
        hidden=hidden,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, client: ClientDep, job_id: str) -> HTMLResponse:
    found = client.get(job_id)
    shown = job_json(found, client.errors(found.id))
    return page(request, "job.html", f"Job {found.id}", "/jobs", job=shown)


@router.get("/queues", response_class=HTMLResponse)
def queues(request: Request) -> HTMLResponse:
    listed = [queue_json(info) for info in request.app.state.queues_snapshot.get()]
    return page(request, "queues.html", "Queues", "/queues", queues=listed)


@router.get("/workers", response_class=HTMLResponse)
def workers(request: Request, client: ClientDep) -> HTMLResponse:
    lead = client.leader()
    leader_id = None if lead is None else lead.holder
    running: dict[str, list[dict[str, Any]]] = {}
    for found in client.jobs(statuses=[JobStatus.RUNNING], limit=RUNNING_SHOWN):
        if found.worker_id is not None:
            running.setdefault(found.worker_id, []).append(job_json(found))
    listed = [worker_json(worker, leader_id) for worker in client.workers()]
    return page(request, "workers.html", "Workers", "/workers", workers=listed, running=running)


@router.get("/schedules", response_class=HTMLResponse)
def schedules(request: Request, client: ClientDep) -> HTMLResponse:
    listed = [schedule_json(info) for info in client.schedules()]
    return page(request, "schedules.html", "Schedules", "/schedules", schedules=listed)


def filter_keywords(chosen: list[str], filters: dict[str, str]) -> dict[str, Any]:
    """The filter as Client.jobs/count_jobs keywords (search text that is an id is not): the
    list, its count and "all matching" actions all use exactly this."""
    text = filters["q"]
    return {
        "statuses": chosen,
        "queues": [filters["queue"]] if filters["queue"] else [],
        "types": [filters["type"]] if filters["type"] else [],
        "payload_contains": None if not text or text.isdigit() else text,
        "created_after": _local_time(filters.get("created_after", ""), "from"),
        "created_before": _local_time(filters.get("created_before", ""), "to"),
    }


def _id_in(client: Client, text: str) -> int | None:
    if not text.isdigit():
        return None
    try:
        return client.get(parse_job_id(text)).id
    except (JobNotFound, InvalidInput):
        return None


def _page_start(before: str) -> int | None:
    if not before:
        return None
    try:
        return parse_job_id(before)
    except DurableqError:
        raise InvalidInput(f"invalid page {before!r}: follow the page links") from None


def _local_time(value: str, what: str) -> datetime | None:
    """A datetime-local field (the browser's wall clock has no zone: taken as UTC, as shown)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"invalid {what} time {value!r}: use YYYY-MM-DDTHH:MM") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
