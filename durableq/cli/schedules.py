"""`durableq schedules`: the recurring jobs the daemons have declared, and how they are doing."""

from __future__ import annotations

from datetime import datetime

import click

from durableq.cli.app import app, db_option
from durableq.cli.output import echo_json, relative, table
from durableq.core.schedules import ScheduleInfo
from durableq.views import iso, schedule_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="An array of schedule objects.")
@db_option
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """Every schedule: cron, time zone, next and last run, the last job, active or not.

    Schedules are declared in code (`registry.schedule(...)`) and stored by the daemons that
    run with that code; one that no running daemon declares is shown inactive.
    """
    client = app(ctx).client()
    found = client.schedules()
    if as_json:
        echo_json([schedule_json(info) for info in found])
        return
    if not found:
        click.echo("no schedules yet: declare them with registry.schedule(...) and start a worker")
        return
    now = client.clock()
    table(
        ["NAME", "CRON", "ZONE", "TYPE", "NEXT RUN", "LAST RUN", "LAST JOB", "ACTIVE"],
        [_row(info, now) for info in found],
    )


def _row(info: ScheduleInfo, now: datetime) -> list[str]:
    next_run = "-"
    if info.next_run_at is not None:
        next_run = f"{iso(info.next_run_at)} ({relative(info.next_run_at, now)})"
    last_run = "-" if info.last_run_at is None else relative(info.last_run_at, now)
    last_job = "-"
    if info.last_job_id is not None:
        last_job = f"{info.last_job_id} ({info.last_job_status or 'purged'})"
    return [
        info.name,
        info.cron,
        info.timezone,
        info.type,
        "-" if not info.active else next_run,
        last_run,
        last_job,
        "yes" if info.active else "no",
    ]
