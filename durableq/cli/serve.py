"""`durableq serve`: the HTTP API (FastAPI on uvicorn) on --db, without running jobs; and the
options and start-up `worker start --http` shares with it."""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from durableq.cli.app import app, db_option
from durableq.core.errors import DurableqError, InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI

    from durableq.client import Client
    from durableq.http.server import ApiServer
    from durableq.metrics import Metrics

log = logging.getLogger("durableq.http")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# After SIGTERM, submissions get 503 this long before the listener closes: a client on a
# keep-alive connection learns to go elsewhere instead of seeing its connection reset.
DRAIN_NOTICE = 0.5
F = TypeVar("F", bound=Callable[..., Any])
PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def api_options(command: F) -> F:
    """--token, --insecure, --max-body, --prefix, --read-only: the same on `serve` and
    `worker start --http`."""
    command = click.option(
        "--read-only",
        is_flag=True,
        help="The dashboard shows no action and refuses every one (the API is unchanged).",
    )(command)
    command = click.option(
        "--prefix",
        default="",
        metavar="PATH",
        help="Serve the dashboard under this path (e.g. /durableq behind a proxy) [default: /].",
    )(command)
    command = click.option(
        "--max-body",
        type=click.IntRange(1024, 1024**3),
        default=1024 * 1024,
        show_default=True,
        metavar="BYTES",
        help="Largest request body the API accepts; larger ones get 413.",
    )(command)
    command = click.option(
        "--insecure",
        is_flag=True,
        help="Allow a non-loopback bind without a token (logs a warning).",
    )(command)
    return click.option(
        "--token",
        envvar="DURABLEQ_API_TOKEN",
        metavar="TOKEN",
        help="Require Authorization: Bearer TOKEN on every route but /healthz "
        "[env DURABLEQ_API_TOKEN].",
    )(command)


@dataclass(frozen=True)
class ApiPlan:
    """Where and how to serve, checked before anything is opened or started."""

    host: str
    port: int
    token: str | None
    insecure: bool
    max_body: int
    prefix: str = ""
    read_only: bool = False


def plan_api(
    bind: str,
    token: str | None,
    insecure: bool,
    max_body: int,
    prefix: str = "",
    read_only: bool = False,
) -> ApiPlan:
    """Check the extra, the bind and the token: bad input fails here, with nothing opened."""
    try:
        from durableq.http.security import check_bind, parse_bind
    except ImportError as error:
        raise DurableqError(
            f"the HTTP API needs the http extra ({error.name} is missing): "
            "pip install 'durableq[http]'"
        ) from None
    if token is not None and not token.strip():
        raise InvalidInput("--token is empty: give a secret, e.g. from `openssl rand -hex 32`")
    host, port = parse_bind(bind)
    check_bind(host, token, insecure)
    return ApiPlan(host, port, token, insecure, max_body, _prefix(prefix), read_only)


def _prefix(value: str) -> str:
    cleaned = value.rstrip("/")
    if cleaned and (
        not PREFIX.fullmatch(cleaned) or cleaned.split("/")[1] in ("api", "static", "healthz")
    ):
        raise InvalidInput(
            f"invalid --prefix {value!r}: a path such as /durableq (letters, digits, . _ - /), "
            "not under /api"
        )
    return cleaned


def start_api(
    client: Client, plan: ApiPlan, log_level: str, metrics: Metrics | None = None
) -> ApiServer:
    """Listen and serve the API in a thread of this process."""
    from durableq.dashboard.app import DashboardSettings
    from durableq.http.app import create_app

    board = DashboardSettings(plan.prefix, plan.read_only)
    app = create_app(
        client, token=plan.token, max_body=plan.max_body, metrics=metrics, dashboard=board
    )
    server = _start(app, plan, log_level, "API")
    where = client.engine.url.render_as_string(hide_password=True)
    log.info(
        "durableq API on %s (docs at /docs), dashboard at %s%s/, database %s",
        server.url,
        server.url,
        plan.prefix,
        where,
    )
    return server


def start_metrics(metrics: Metrics, plan: ApiPlan, log_level: str) -> ApiServer:
    """Serve only /metrics (and /healthz) in a thread of this process."""
    from durableq.http.app import create_metrics_app

    server = _start(create_metrics_app(metrics, token=plan.token), plan, log_level, "metrics")
    log.info("durableq metrics on %s/metrics", server.url)
    return server


def _start(app: FastAPI, plan: ApiPlan, log_level: str, what: str) -> ApiServer:
    from durableq.http.server import ApiServer

    if plan.token is None and plan.insecure:
        log.warning(
            "serving the %s on %s:%d without a token (--insecure): anyone who reaches it may "
            "read it",
            what,
            plan.host,
            plan.port,
        )
    server = ApiServer(app, plan.host, plan.port, log_level=log_level)
    server.start()
    return server


@click.command()
@click.option(
    "--bind",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen. Another host than loopback needs --token (or --insecure).",
)
@api_options
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@db_option
@click.pass_context
def serve(
    ctx: click.Context,
    bind: str,
    token: str | None,
    insecure: bool,
    max_body: int,
    prefix: str,
    read_only: bool,
    log_level: str,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the dashboard (at /) on --db.

    SIGTERM or SIGINT: refuse new submissions (503), finish the requests in flight, commit what
    they submitted, exit 0. A second signal exits at once.
    """
    plan = plan_api(bind, token, insecure, max_body, prefix, read_only)
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    client = app(ctx).client(create=True)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # HUP: a closed terminal
        signal.signal(signum, on_signal)
    server = start_api(client, plan, log_level)
    while not stop.wait(0.5):
        if not server.alive():
            raise DurableqError("the HTTP API stopped unexpectedly; its log is above")
    log.info("stopping: new submissions get 503; finishing the requests in flight")
    server.drain()
    time.sleep(DRAIN_NOTICE)
    server.stop()
    log.info("durableq API stopped")
