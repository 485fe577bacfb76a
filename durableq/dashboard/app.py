"""Mount the dashboard on the API's app: pages, actions, login, our static files, HTML errors."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from durableq.dashboard import actions, auth, pages
from durableq.dashboard.render import HERE, page
from durableq.snapshots import Snapshot


@dataclass(frozen=True)
class DashboardSettings:
    prefix: str = ""  # "" or "/ops": every page, link and asset lives under it
    read_only: bool = False
    token: str | None = None  # set by create_app from its own token

    @property
    def login_path(self) -> str:
        return f"{self.prefix}/login"


def mount_dashboard(app: FastAPI, settings: DashboardSettings) -> None:
    app.state.dashboard = settings
    client = app.state.client
    # The overview's counts scan the table: served from a snapshot refreshed behind the page.
    app.state.stats_snapshot = Snapshot(client.stats, fresh=2.0)
    app.state.queues_snapshot = Snapshot(client.queues, fresh=2.0)  # renewed by every action
    app.state.html_error = html_error
    routers = (auth.router, actions.router, pages.router)
    # Errors on these routes are answered as HTML pages (http/problems.py).
    app.state.html_endpoints = frozenset(
        route.endpoint
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    )
    for router in routers:
        app.include_router(router, prefix=settings.prefix)
    app.mount(f"{settings.prefix}/static", StaticFiles(directory=HERE / "static"), name="static")


def html_error(request: Request, status: int, detail: str) -> Response:
    """What a browser sees instead of problem+json when a page fails (an unknown job, ...)."""
    response: HTMLResponse = page(request, "error.html", "Error", "", status=status, detail=detail)
    response.status_code = status
    return response
