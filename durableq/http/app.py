"""The FastAPI application: routes, the token rule, the body limit and problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from durableq import __version__
from durableq.client import Client
from durableq.dashboard.app import DashboardSettings, mount_dashboard
from durableq.group_commit import GroupCommit
from durableq.http import problems
from durableq.http.limits import DEFAULT_MAX_BODY, BodyLimit
from durableq.http.routes import jobs, ops, queues
from durableq.http.schemas import EVERY_ROUTE, Problem, problem_responses
from durableq.http.security import CrossSiteGuard, TokenGuard
from durableq.http.waiters import ChangeBroadcast
from durableq.metrics import Metrics

DESCRIPTION = """A durable job queue over HTTP: submit jobs, follow them, manage queues.

Every error is `application/problem+json` with a stable `code`. Durations are "30s", "1h30m" or
seconds; times are ISO 8601. Off loopback, every route but /healthz needs
`Authorization: Bearer <token>`.
"""


def create_app(
    client: Client,
    *,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    metrics: Metrics | None = None,
    dashboard: DashboardSettings | None = None,
) -> FastAPI:
    """The whole API, and the dashboard (default: at /, read-write; pass settings to move it
    under a prefix or make it read-only). `metrics`: the process's (a worker's, fed by its
    events); by default one of the app's own, with the database gauges and the submissions."""
    writer = GroupCommit(client)
    changes = ChangeBroadcast(client.store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.open()
        changes.open()
        app.state.draining = False
        for snapshot in (app.state.stats_snapshot, app.state.queues_snapshot):
            snapshot.warm()  # a million jobs take a second to count: not on the first visit
        yield
        writer.close()  # after the last request: what was submitted is committed first
        changes.close()

    app = FastAPI(
        title="durableq",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=problem_responses(*EVERY_ROUTE),
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.state.client = client
    app.state.writer = writer
    app.state.changes = changes
    app.state.metrics = metrics or Metrics(client)
    app.state.draining = False

    def drain() -> None:
        """Refuse new submissions (503), end long-polls, fail /readyz. Quick: a flag, a wake."""
        app.state.draining = True
        changes.stop()

    app.state.drain = drain
    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(jobs.router)
    v1.include_router(queues.router)
    app.include_router(ops.health)
    app.include_router(v1)
    app.include_router(ops.api)
    app.include_router(ops.seed)
    app.include_router(ops.scrape)
    board = replace(dashboard or DashboardSettings(), token=token)  # the login checks it
    mount_dashboard(app, board)
    problems.install(app)
    # Outermost first on the way in: the token is checked before a body is read.
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(CrossSiteGuard)
    app.add_middleware(
        TokenGuard,
        token=token,
        open_paths=frozenset({board.login_path, f"{board.prefix}/static/"}),
        login_path=board.login_path,
    )
    return app


def create_metrics_app(metrics: Metrics, *, token: str | None = None) -> FastAPI:
    """Only /metrics and /healthz: what `worker start --metrics` serves. The same token rule."""
    app = FastAPI(title="durableq metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics = metrics
    app.include_router(ops.health)
    app.include_router(ops.scrape)
    problems.install(app)
    app.add_middleware(TokenGuard, token=token)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the Problem schema every error response refers to."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        app.openapi_schema = document
    return app.openapi_schema
