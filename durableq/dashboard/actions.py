"""The actions: POST forms (never GET), each answered with a redirect back to a page that says
what happened. Cross-site posts are refused below (http.security.CrossSiteGuard); a read-only
dashboard refuses them all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from durableq.bulk import act_on_each, matching_ids
from durableq.client import Client
from durableq.core.builder import parse_job_id
from durableq.core.errors import DurableqError, InvalidInput
from durableq.dashboard.pages import MATCH_CAP, STATUSES, filter_keywords
from durableq.http.problems import ApiProblem
from durableq.http.routes.deps import ClientDep

router = APIRouter(include_in_schema=False)
ACTIONS = ("retry", "cancel", "delete")


async def form_of(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body (the only kind our forms send)."""
    _writable(request)
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def _writable(request: Request) -> None:
    if request.app.state.dashboard.read_only:
        raise ApiProblem(403, "read_only", "this dashboard is read-only (--read-only)")


def back(request: Request, path: str, notice: str) -> RedirectResponse:
    """Back to a page, which then shows the action's effect (not a snapshot from before it)."""
    request.app.state.stats_snapshot.invalidate()
    request.app.state.queues_snapshot.invalidate()
    base = request.app.state.dashboard.prefix
    return RedirectResponse(f"{base}{path}?{urlencode({'notice': notice})}", status_code=303)


@router.post("/jobs/{job_id}/{action}")
async def job_action(
    request: Request, client: ClientDep, job_id: str, action: str
) -> RedirectResponse:
    _writable(request)  # the form carries nothing else
    act = _act(client, action)
    found = parse_job_id(job_id)
    try:
        act(found)
    except DurableqError as error:
        return back(request, f"/jobs/{found}", f"{action} refused: {error}")
    if action == "delete":
        return back(request, "/jobs", f"job {found} deleted")
    return back(request, f"/jobs/{found}", f"job {found}: {action} done")


@router.post("/jobs/actions")
async def bulk_action(request: Request, client: ClientDep) -> RedirectResponse:
    form = await form_of(request)
    action = _one(form, "action")
    act = _act(client, action)
    scope = _one(form, "scope") or "selected"
    if scope == "selected":
        ids = iter([parse_job_id(value) for value in form.get("id", [])])
    elif scope == "matching":
        ids = _matching(client, form)
    else:
        raise InvalidInput(f"unknown scope {scope!r}: use selected or matching")
    result = act_on_each(ids, act, cap=MATCH_CAP, max_reasons=3)
    reasons = result.reasons
    if result.stopped:
        reasons = [f"stopped after {MATCH_CAP:,}: run it again for the rest", *reasons]
    notice = f"{action}: {result.done} done, {result.skipped} skipped" + (
        f" ({'; '.join(reasons)})" if reasons else ""
    )
    return back(request, "/jobs", notice)


@router.post("/queues/{name}/{action}")
async def queue_action(
    request: Request, client: ClientDep, name: str, action: str
) -> RedirectResponse:
    form = await form_of(request)
    try:
        if action == "pause":
            client.pause_queue(name)
        elif action == "resume":
            client.resume_queue(name)
        elif action == "limits":
            client.set_queue(
                name,
                concurrency=_optional_int(_one(form, "concurrency"), "concurrency"),
                max_pending=_optional_int(_one(form, "max_pending"), "max pending"),
                rate=_one(form, "rate").strip() or None,
            )
        else:
            raise InvalidInput(f"unknown queue action {action!r}")
    except DurableqError as error:
        return back(request, "/queues", f"{name}: {error}")
    return back(request, "/queues", f"{name}: {action} done")


def _act(client: Client, action: str) -> Callable[[int], object]:
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}: use {', '.join(ACTIONS)}")
    acts: dict[str, Callable[[int], object]] = {
        "retry": client.retry,
        "cancel": client.cancel,
        "delete": client.delete,
    }
    return acts[action]


def _matching(client: Client, form: dict[str, list[str]]) -> Iterator[int]:
    """Every job the page's filter matches (the form carries it as hidden fields)."""
    chosen = [name for name in STATUSES if name in form.get("status", [])]
    keys = ("queue", "type", "q", "created_after", "created_before")
    filters = {key: _one(form, key).strip() for key in keys}
    return matching_ids(client, **filter_keywords(chosen, filters))


def _one(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key)
    return values[0] if values else ""


def _optional_int(text: str, what: str) -> int | None:
    text = text.strip()
    if not text or text in ("∞", "none"):
        return None
    if not text.isdigit():
        raise InvalidInput(f"invalid {what} {text!r}: a whole number, or empty for no limit")
    return int(text)
