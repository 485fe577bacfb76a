"""`durableq queues` lists the queues; `durableq queue pause|resume|set` controls one."""

from __future__ import annotations

from typing import Any

import click

from durableq.cli import params
from durableq.cli.app import app, db_option
from durableq.cli.output import echo_json, table
from durableq.core.durations import format_duration
from durableq.core.queues import QueueInfo, format_rate, parse_limit, parse_rate
from durableq.views import queue_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="An array of queue objects.")
@db_option
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Every queue: paused, pending, running, limits, and how long its oldest due job waits."""
    found = app(ctx).reader().queues()
    if as_json:
        echo_json([queue_json(q) for q in found])
        return
    if not found:
        click.echo("no queues yet")
        return
    table(
        ["QUEUE", "PAUSED", "PENDING", "RUNNING", "CONCURRENCY", "MAX PENDING", "RATE", "WAIT"],
        [_row(q) for q in found],
    )


def _row(q: QueueInfo) -> list[str]:
    wait = "-" if q.oldest_due_wait is None else format_duration(round(q.oldest_due_wait, 1))
    return [
        q.name,
        "yes" if q.paused else "no",
        str(q.pending),
        str(q.running),
        "-" if q.concurrency is None else str(q.concurrency),
        "-" if q.max_pending is None else str(q.max_pending),
        format_rate(q.rate),
        wait,
    ]


@click.group()
def queue() -> None:
    """Pause, resume or limit one queue (for every daemon on the database)."""


@queue.command()
@click.argument("name", callback=params.queue_name)
@db_option
@click.pass_context
def pause(ctx: click.Context, name: str) -> None:
    """No job of NAME starts until it is resumed; running ones finish. Survives restarts."""
    _show(app(ctx).client(create=True).pause_queue(name))


@queue.command()
@click.argument("name", callback=params.queue_name)
@db_option
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Let NAME's jobs start again (idle daemons wake at once)."""
    _show(app(ctx).client(create=True).resume_queue(name))


@queue.command("set")
@click.argument("name", callback=params.queue_name)
@click.option(
    "--concurrency",
    metavar="N|none",
    help="At most N jobs of the queue running at once, across all daemons.",
)
@click.option(
    "--max-pending",
    metavar="N|none",
    help="Refuse enqueues (QueueFull, exit 1) once N jobs are pending.",
)
@click.option(
    "--rate",
    metavar="N/DURATION[:BURST]|none",
    help="At most N starts per DURATION across all daemons, BURST at once [burst: N].",
)
@db_option
@click.pass_context
def set_(
    ctx: click.Context,
    name: str,
    concurrency: str | None,
    max_pending: str | None,
    rate: str | None,
) -> None:
    """Set NAME's limits; `none` removes one, an option left out keeps it."""
    changes: dict[str, Any] = {}
    if concurrency is not None:
        changes["concurrency"] = parse_limit(concurrency, "--concurrency")
    if max_pending is not None:
        changes["max_pending"] = parse_limit(max_pending, "--max-pending")
    if rate is not None:
        changes["rate"] = None if rate.strip().lower() == "none" else parse_rate(rate)
    if not changes:
        raise click.UsageError("give at least one of --concurrency, --max-pending, --rate")
    _show(app(ctx).client(create=True).set_queue(name, **changes))


def _show(info: QueueInfo) -> None:
    limits = (
        f"concurrency {'-' if info.concurrency is None else info.concurrency}, "
        f"max pending {'-' if info.max_pending is None else info.max_pending}, "
        f"rate {format_rate(info.rate)}"
    )
    state = "paused" if info.paused else "active"
    click.echo(
        f"queue {info.name}: {state}; {info.pending} pending, {info.running} running; {limits}"
    )
