"""`durableq worker start` runs the daemon; `durableq workers` lists the live ones."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from durableq.cli import params
from durableq.cli.app import app, db_option
from durableq.cli.output import echo_json, workers_table
from durableq.cli.serve import api_options, plan_api, start_api, start_metrics
from durableq.handlers.registry import build_registry, load_registry
from durableq.views import worker_json
from durableq.worker import logs, prefetch

if TYPE_CHECKING:
    from durableq.http.server import ApiServer


@click.group()
def worker() -> None:
    """Run the worker daemon."""


@worker.command("start")
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE:ATTR",
    help="A module's Registry of handlers (repeatable).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=4,
    show_default=True,
    help="Jobs run at once (threads).",
)
@click.option(
    "--prefetch",
    type=click.IntRange(0, 10_000),
    default=prefetch.DEFAULT,
    show_default=True,
    help="The most jobs claimed ahead of the free slots, while jobs are quick enough that one "
    "waits about 50 ms for a slot on average (0: only as many as the free slots).",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME[=N]",
    callback=params.worker_queue,
    help="Only this queue (repeatable) [default: all]; NAME=N runs at most N of its jobs at once.",
)
@click.option(
    "--shutdown-timeout",
    callback=params.duration,
    metavar="DURATION",
    default="30s",
    show_default=True,
    help="On SIGTERM/SIGINT, how long running jobs may take to finish.",
)
@click.option("--burst", is_flag=True, help="Run the jobs that are due, then exit 0.")
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--lease",
    callback=params.duration,
    metavar="DURATION",
    help="How long a job's lease lasts without a heartbeat [env DURABLEQ_LEASE; default 30s].",
)
@click.option(
    "--http",
    "http_bind",
    metavar="HOST:PORT",
    help="Also serve the HTTP API here (as `durableq serve`); on SIGTERM it refuses new "
    "submissions (503) while the workers drain, then stops.",
)
@click.option(
    "--metrics",
    "metrics_bind",
    metavar="HOST:PORT",
    help="Serve Prometheus metrics at /metrics here (with --http they are also on its /metrics).",
)
@api_options
@click.option(
    "--pool",
    type=click.Choice(["thread", "process"]),
    default="thread",
    show_default=True,
    help="Where handlers run: threads of the daemon, or child processes that a timeout or a "
    "cancel can kill.",
)
@click.option(
    "--enable-shell",
    is_flag=True,
    help="Register the `shell` handler, which runs commands from payloads.",
)
@db_option
@click.pass_context
def start(
    ctx: click.Context,
    apps: tuple[str, ...],
    concurrency: int,
    prefetch: int,
    queues: tuple[tuple[str, int | None], ...],
    shutdown_timeout: float,
    burst: bool,
    log_level: str,
    log_format: str,
    lease: float | None,
    http_bind: str | None,
    metrics_bind: str | None,
    token: str | None,
    insecure: bool,
    max_body: int,
    prefix: str,
    read_only: bool,
    pool: str,
    enable_shell: bool,
) -> None:
    """Start a worker daemon: SIGTERM, SIGINT or SIGHUP drains it, a second one stops it at once."""
    from durableq.client import Client
    from durableq.worker.daemon import Worker
    from durableq.worker.dispatcher import WorkerOptions
    from durableq.worker.events import Draining, Event

    plan = (
        None
        if http_bind is None
        else plan_api(http_bind, token, insecure, max_body, prefix, read_only)
    )
    scrape = None if metrics_bind is None else plan_api(metrics_bind, token, insecure, max_body)
    logs.configure(log_level, log_format)
    # Like `python -m`, let `--app tasks:registry` find tasks.py in the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registries = {spec: load_registry(spec) for spec in apps}
    registry = build_registry(registries, shell=enable_shell)
    settings = app(ctx).settings()
    if lease is not None:
        settings = replace(settings, lease=lease)
        settings.__post_init__()
    client = Client.open(settings, create=True)
    ctx.call_on_close(client.close)
    options = WorkerOptions(
        concurrency=concurrency,
        queues=tuple(dict.fromkeys(name for name, _ in queues)),
        shutdown_timeout=shutdown_timeout,
        burst=burst,
        queue_limits=tuple((name, n) for name, n in queues if n is not None),
        prefetch=prefetch,
    )
    runner = None
    if pool == "process":
        from durableq.worker.pool import ProcessPool

        runner = ProcessPool(apps, enable_shell, concurrency)
    daemon = Worker(client, registry, options, runner=runner)
    daemon.install_signal_handlers()
    servers: list[ApiServer] = []
    try:
        if plan is not None or scrape is not None:
            from durableq.metrics import Metrics

            metrics = Metrics(client)
            daemon.events.subscribe(metrics.observe)
            if scrape is not None:
                servers.append(start_metrics(metrics, scrape, log_level))
            if plan is not None:
                servers.append(start_api(client, plan, log_level, metrics))

            def drain_servers(event: Event) -> None:
                if isinstance(event, Draining):
                    for server in servers:
                        server.drain()

            daemon.events.subscribe(drain_servers)
        daemon.run()
    finally:
        for server in servers:  # after the workers drained: the API answered until now
            server.stop()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="An array of worker objects.")
@db_option
@click.pass_context
def workers(ctx: click.Context, as_json: bool) -> None:
    """The live worker daemons: host, pid, queues, concurrency, last heartbeat, the leader."""
    client = app(ctx).reader()
    found = client.workers()
    lead = client.leader()
    leader_id = None if lead is None else lead.holder
    if as_json:
        echo_json([worker_json(w, leader_id) for w in found])
    else:
        workers_table(found, client.clock(), leader_id)
