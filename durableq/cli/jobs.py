"""Producing and managing jobs: enqueue, jobs list|show, cancel, retry, wait, stats, purge."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import IO, Any, TextIO, cast

import click

from durableq.cli import params
from durableq.cli.app import app, db_option
from durableq.cli.output import (
    echo_json,
    job_details,
    job_json,
    jobs_table,
    stats_json,
    stats_table,
)
from durableq.core.builder import JobBuilder
from durableq.core.errors import InvalidInput
from durableq.core.jobs import JobStatus, NewJob
from durableq.core.payloads import encode_payload, parse_payload

BATCH_PROGRESS_MIN = 1000


@click.command()
@click.argument("job_type", metavar="TYPE", required=False)
@click.option(
    "--payload", "payload_text", metavar="JSON", help="The payload: a JSON object, or - for stdin."
)
@click.option("--payload-file", type=click.File("rb"), help="Read the payload from a file.")
@click.option("--queue", default="default", show_default=True, help="Queue name.")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher runs first.")
@click.option(
    "--delay",
    callback=params.duration,
    metavar="DURATION",
    help="Run no sooner than this from now (e.g. 30s, 1h30m).",
)
@click.option(
    "--at",
    "run_at",
    callback=params.instant,
    metavar="ISO8601",
    help="Run no sooner than this time (ISO 8601).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 1000),
    help="Attempts before it fails for good [default 10].",
)
@click.option(
    "--timeout",
    callback=params.duration,
    metavar="DURATION",
    help="Stop the handler after this long (sets ctx.cancelled).",
)
@click.option(
    "--batch",
    type=click.File("rb"),
    metavar="FILE.jsonl",
    help="Enqueue one job per JSON line (- for stdin), all or none.",
)
@db_option
@click.pass_context
def enqueue(
    ctx: click.Context,
    job_type: str | None,
    payload_text: str | None,
    payload_file: IO[bytes] | None,
    queue: str,
    priority: int,
    delay: float | None,
    run_at: datetime | None,
    max_attempts: int | None,
    timeout: float | None,
    batch: IO[bytes] | None,
) -> None:
    """Enqueue a job of TYPE and print its id; or, with --batch, many jobs and print the count."""
    if batch is not None:
        _refuse_options_besides_batch(ctx, job_type, payload_text, payload_file)
        jobs = _read_batch(app(ctx).builder(), batch)
        ids = app(ctx).enqueue(jobs)
        click.echo(len(ids))
        return
    if not job_type:
        raise click.UsageError("missing TYPE (or --batch FILE.jsonl)")
    if payload_text is not None and payload_file is not None:
        raise click.UsageError("give --payload or --payload-file, not both")
    if delay is not None and run_at is not None:
        raise click.UsageError("give --delay or --at, not both")
    payload = _payload(payload_text, payload_file)
    # Validated before the database is opened: bad input must neither create nor change it.
    builder = app(ctx).builder()
    job = builder.new_job(
        job_type,
        payload,
        queue=queue,
        priority=priority,
        delay=delay,
        run_at=run_at,
        max_attempts=max_attempts,
        timeout=timeout,
    )
    [job_id] = app(ctx).enqueue([job])
    click.echo(job_id)


# Options a batch line sets for itself; given on the command line too, they would be ignored.
_PER_JOB_OPTIONS = ("queue", "priority", "delay", "run_at", "max_attempts", "timeout")


def _refuse_options_besides_batch(
    ctx: click.Context, job_type: str | None, payload_text: str | None, payload_file: object
) -> None:
    if job_type or payload_text is not None or payload_file is not None:
        raise click.UsageError("--batch takes its jobs from the file: give no TYPE or payload")
    given = [
        name
        for name in _PER_JOB_OPTIONS
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ]
    if given:
        flags = ", ".join(
            "--at" if name == "run_at" else "--" + name.replace("_", "-") for name in given
        )
        raise click.UsageError(f"with --batch each line sets its own options: remove {flags}")


def _payload(text: str | None, file: IO[bytes] | None) -> dict[str, Any]:
    if file is not None:
        return parse_payload(_decode(file.read(), f"--payload-file {file.name}"))
    if text == "-":
        return parse_payload(_decode(sys.stdin.buffer.read(), "stdin"))
    if text is None:
        return {}
    return parse_payload(text)


def _decode(data: bytes, source: str) -> str:
    """Strict UTF-8 (a leading byte-order mark is dropped): JSON text is Unicode."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"{source} is not UTF-8 text (byte {error.start}: {error.reason})"
        ) from None


def _read_batch(builder: JobBuilder, source: IO[bytes]) -> list[NewJob]:
    lines = source.readlines()
    show_progress = sys.stderr.isatty() and len(lines) >= BATCH_PROGRESS_MIN
    jobs: list[NewJob] = []
    output = sys.stderr if show_progress else cast(TextIO, _Null())
    with click.progressbar(lines, label="validating", file=output) as progress:
        for number, line in enumerate(progress, start=1):
            if not line.strip():
                continue
            try:
                jobs.append(_batch_job(builder, line))
            except InvalidInput as error:
                raise InvalidInput(
                    f"line {number} of the batch: {error}; nothing was enqueued"
                ) from None
    if not jobs:
        raise InvalidInput("the batch has no jobs; nothing was enqueued")
    return jobs


def _batch_job(builder: JobBuilder, line: bytes) -> NewJob:
    """One line's job, fully validated, so that a bad line is named before anything is written."""
    text = _decode(line, "the line")
    try:
        spec = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise InvalidInput("the JSON is nested too deeply") from None
    job = builder.job_from_mapping(spec)
    encode_payload(job.payload)  # size and serialisability, checked again when stored
    return job


def _no_constants(name: str) -> Any:
    raise InvalidInput(f"{name} is not valid JSON")


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


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
    client = app(ctx).client()
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
    client = app(ctx).client()
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
    client = app(ctx).client()
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
