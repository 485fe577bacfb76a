"""How jobs, stats and workers look on a terminal and in JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from durableq.core.durations import format_duration
from durableq.core.jobs import Job, JobError, JobStatus
from durableq.store.records import Stats, WorkerInfo
from durableq.views import iso, stats_json

STATUS_COLOURS = {
    JobStatus.PENDING: "cyan",
    JobStatus.RUNNING: "yellow",
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELED: "magenta",
}


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def relative(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    text = format_duration(abs(seconds))
    return f"in {text}" if seconds > 0 else f"{text} ago"


def status_text(status: JobStatus) -> str:
    return click.style(status.value, fg=STATUS_COLOURS[status])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns; styles are ignored when measuring widths."""
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(click.unstyle(cell)))
    click.echo(_line([click.style(h, bold=True) for h in headers], widths))
    for row in rows:
        click.echo(_line(row, widths))


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [
        cell + " " * (width - len(click.unstyle(cell)))
        for cell, width in zip(cells, widths, strict=True)
    ]
    return "  ".join(padded).rstrip()


def truncate(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    first = text.splitlines()[0] if text.strip() else text
    return first if len(first) <= width else first[: width - 1] + "…"


def jobs_table(jobs: Sequence[Job], now: datetime) -> None:
    rows = [
        [
            str(job.id),
            status_text(job.status),
            job.queue,
            job.type,
            f"{job.attempts}/{job.max_attempts}",
            str(job.priority),
            relative(job.run_at, now) if job.status is JobStatus.PENDING else "-",
            relative(job.updated_at, now),
            truncate(job.last_error, 50),
        ]
        for job in jobs
    ]
    table(
        ["ID", "STATUS", "QUEUE", "TYPE", "ATTEMPTS", "PRI", "RUNS", "UPDATED", "LAST ERROR"],
        rows,
    )


def job_details(job: Job, errors: Sequence[JobError], now: datetime) -> None:
    fields = [
        ("id", str(job.id)),
        ("type", job.type),
        ("queue", job.queue),
        (
            "status",
            status_text(job.status) + (" (cancel requested)" if job.cancel_requested else ""),
        ),
        ("priority", str(job.priority)),
        ("attempts", f"{job.attempts} of {job.max_attempts}"),
        ("timeout", format_duration(job.timeout) if job.timeout else "none"),
        ("payload", json.dumps(job.payload, ensure_ascii=False)),
        ("result", "-" if job.result is None else json.dumps(job.result, ensure_ascii=False)),
        ("last error", job.last_error or "-"),
        ("run at", _moment(job.run_at, now)),
        ("created", _moment(job.created_at, now)),
        ("updated", _moment(job.updated_at, now)),
        ("started", _moment(job.started_at, now)),
        ("finished", _moment(job.finished_at, now)),
        ("worker", job.worker_id or "-"),
    ]
    if job.schedule is not None:
        fields.append(("schedule", f"{job.schedule}, tick {iso(job.schedule_tick)}"))
    if job.idempotency_key is not None:
        fields.append(("idempotency key", job.idempotency_key))
    if job.unique_key is not None:
        fields.append(("unique key", job.unique_key))
    if job.progress is not None:
        said = f" {job.progress_message}" if job.progress_message else ""
        fields.append(("progress", f"{job.progress:.0%}{said}"))
    if job.meta:
        fields.append(("meta", json.dumps(job.meta, ensure_ascii=False, sort_keys=True)))
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{click.style(name.ljust(width), bold=True)}  {value}")
    if errors:
        click.echo()
        click.echo(click.style(f"error history ({len(errors)})", bold=True))
        for error in errors:
            click.echo(f"- attempt {error.attempt}, {_moment(error.failed_at, now)}: {error.error}")
            if error.traceback:
                for line in error.traceback.rstrip().splitlines():
                    click.echo(f"    {line}")


def _moment(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    return f"{iso(value)} ({relative(value, now)})"


def stats_table(stats: Stats, now: datetime) -> None:
    data = stats_json(stats, now)
    statuses = [status.value for status in JobStatus]
    rows = [
        [queue, *(str(per.get(status, 0)) for status in statuses)]
        for queue, per in sorted(stats.counts.items())
    ]
    rows.append(["(all)", *(str(data["counts"][status]) for status in statuses)])
    table(["QUEUE", *(status.upper() for status in statuses)], rows)
    click.echo()
    age = data["oldest_pending_age_seconds"]
    click.echo(f"oldest due pending job: {'-' if age is None else format_duration(age)} waiting")
    click.echo(
        f"last minute: {stats.completed_last_minute} completed, {stats.failed_last_minute} failed"
    )


def workers_table(
    workers: Sequence[WorkerInfo], now: datetime, leader_id: str | None = None
) -> None:
    if not workers:
        click.echo("no live workers")
        return
    table(
        ["ID", "HOST", "PID", "QUEUES", "CONCURRENCY", "STARTED", "LAST HEARTBEAT", "LEADER"],
        [
            [
                worker.id,
                worker.host,
                str(worker.pid),
                ",".join(worker.queues) or "all",
                str(worker.concurrency),
                relative(worker.started_at, now),
                relative(worker.heartbeat_at, now),
                "yes" if worker.id == leader_id else "",
            ]
            for worker in workers
        ],
    )
