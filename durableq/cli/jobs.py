"""Managing jobs: jobs list|show, cancel, retry, wait, stats, purge (enqueue: cli/enqueue.py)."""

from __future__ import annotations

import click

from durableq.cli import params
from durableq.cli.app import app, db_option
from durableq.cli.output import (
    echo_json,
    job_details,
    jobs_table,
    stats_table,
)
from durableq.core.jobs import JobStatus
from durableq.views import job_json, stats_json


@click.group()
def jobs() -> None:
    """Inspect jobs."""


@jobs.command("list")
@click.option(
    "--status",
    "statuses",
    callback=params.status,
    metavar="STATUS",
    multiple=True,
    help="Only this status (repeatable).",
)
@click.option("--queue", "queues", multiple=True, help="Only this queue (repeatable).")
@click.option("--type", "types", multiple=True, help="Only this job type (repeatable).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="An array of job objects.")
@db_option
@click.pass_context
def list_jobs(
    ctx: click.Context,
    statuses: tuple[JobStatus, ...],
    queues: tuple[str, ...],
    types: tuple[str, ...],
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    client = app(ctx).reader()
    found = client.jobs(statuses=statuses, queues=queues, types=types, limit=limit, offset=offset)
    if as_json:
        echo_json([job_json(job) for job in found])
    elif found:
        jobs_table(found, client.clock())
    else:
        click.echo("no jobs", err=True)


@jobs.command("show")
@click.argument("job_id", metavar="ID", callback=params.job_id)
@click.option("--json", "as_json", is_flag=True, help="One job object, with its error history.")
@db_option
@click.pass_context
def show_job(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Every field of a job, its result and its error history."""
    client = app(ctx).reader()
    job = client.get(job_id)
    errors = client.store.errors(job.id)
    if as_json:
        echo_json(job_json(job, errors))
    else:
        job_details(job, errors, client.clock())


@click.command()
@click.argument("job_id", metavar="ID", callback=params.job_id)
@db_option
@click.pass_context
def cancel(ctx: click.Context, job_id: int) -> None:
    """Cancel a pending job, or ask the worker of a running one to stop it."""
    job = app(ctx).client().cancel(job_id)
    if job.status is JobStatus.CANCELED:
        click.echo(f"job {job.id} canceled")
    else:
        click.echo(f"job {job.id} is running: cancel requested, its handler is told to stop")


@click.command()
@click.argument("job_id", metavar="ID", callback=params.job_id)
@db_option
@click.pass_context
def retry(ctx: click.Context, job_id: int) -> None:
    """Run a failed or canceled job again, now."""
    job = app(ctx).client().retry(job_id)
    click.echo(f"job {job.id} is pending again (attempt {job.attempts + 1} of {job.max_attempts})")


@click.command()
@click.argument("job_id", metavar="ID", callback=params.job_id)
@click.option(
    "--timeout",
    callback=params.duration,
    metavar="DURATION",
    help="Give up after this long (exit 1).",
)
@db_option
@click.pass_context
def wait(ctx: click.Context, job_id: int, timeout: float | None) -> None:
    """Wait for a job to finish: exit 0 if it completed, 1 otherwise or on timeout."""
    job = app(ctx).client().wait(job_id, timeout=timeout)
    if job.status is JobStatus.COMPLETED:
        click.echo(f"job {job.id} completed")
        return
    if job.status.is_terminal:
        reason = f": {job.last_error}" if job.last_error else ""
        click.echo(f"job {job.id} {job.status.value}{reason}", err=True)
    else:
        click.echo(f"job {job.id} still {job.status.value} after the timeout", err=True)
    ctx.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable counts.")
@db_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts by queue and status, the oldest due job's wait, and recent throughput."""
    client = app(ctx).reader()
    figures = client.stats()
    if as_json:
        echo_json(stats_json(figures, client.clock()))
    else:
        stats_table(figures, client.clock())


@click.command()
@click.option(
    "--older-than",
    required=True,
    callback=params.duration,
    metavar="DURATION",
    help="Finished longer ago than this.",
)
@click.option(
    "--status",
    "statuses",
    callback=params.finished_status,
    metavar="STATUS",
    multiple=True,
    help="Only this finished status (repeatable) [default: all finished].",
)
@db_option
@click.pass_context
def purge(ctx: click.Context, older_than: float, statuses: tuple[JobStatus, ...]) -> None:
    """Delete finished jobs (completed, failed, canceled) and their error history."""
    deleted = app(ctx).client().purge(older_than, statuses)
    click.echo(deleted)
