"""`durableq enqueue`: one job from options, or many from a JSON Lines batch."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import IO, Any, TextIO, cast

import click

from durableq.cli import params
from durableq.cli.app import app, db_option
from durableq.core.builder import JobBuilder
from durableq.core.errors import InvalidInput
from durableq.core.jobs import NewJob
from durableq.core.payloads import MAX_PAYLOAD_BYTES, encode_payload, huge_number, parse_payload
from durableq.core.uniqueness import Unique

BATCH_PROGRESS_MIN = 1000


# Input read for a payload: twice the stored limit, room for indentation and spaces.
MAX_PAYLOAD_INPUT = 2 * MAX_PAYLOAD_BYTES


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
    "--idempotency-key",
    metavar="KEY",
    help="Enqueueing again with KEY prints the first job's id (while it exists) and adds none.",
)
@click.option(
    "--unique",
    is_flag=True,
    help="No twin (same type, payload and queue) while one is pending or running: print its id.",
)
@click.option(
    "--unique-period",
    callback=params.duration,
    metavar="DURATION",
    help="Unique within time buckets of DURATION (e.g. 1h); implies --unique.",
)
@click.option(
    "--unique-states",
    metavar="STATES",
    help="Statuses a twin counts in, comma-separated [pending,running]; implies --unique.",
)
@click.option(
    "--unique-keys",
    metavar="FIELDS",
    help="Compare only these payload fields, comma-separated; implies --unique.",
)
@click.option(
    "--on-conflict",
    type=click.Choice(["skip", "replace"]),
    help="skip: keep the twin [default]; replace: update a pending twin's payload and run "
    "time. Implies --unique.",
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
    idempotency_key: str | None,
    unique: bool,
    unique_period: float | None,
    unique_states: str | None,
    unique_keys: str | None,
    on_conflict: str | None,
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
        idempotency_key=idempotency_key,
        unique=_unique(unique, unique_period, unique_states, unique_keys, on_conflict),
    )
    [job_id] = app(ctx).enqueue([job])
    click.echo(job_id)


def _unique(
    flag: bool,
    period: float | None,
    states: str | None,
    keys: str | None,
    on_conflict: str | None,
) -> Unique | None:
    if not flag and period is None and states is None and keys is None and on_conflict is None:
        return None
    return Unique(
        keys=None if keys is None else [key.strip() for key in keys.split(",")],
        period=period,
        states=states if states is not None else ("pending", "running"),
        on_conflict="replace" if on_conflict == "replace" else "skip",
    )


# Options a batch line sets for itself; given on the command line too, they would be ignored.
_PER_JOB_OPTIONS = (
    "queue",
    "priority",
    "delay",
    "run_at",
    "max_attempts",
    "timeout",
    "idempotency_key",
    "unique",
    "unique_period",
    "unique_states",
    "unique_keys",
    "on_conflict",
)


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
        return parse_payload(_decode(_bounded(file, f"--payload-file {file.name}"), file.name))
    if text == "-":
        return parse_payload(_decode(_bounded(sys.stdin.buffer, "stdin"), "stdin"))
    if text is None:
        return {}
    return parse_payload(text)


def _bounded(stream: IO[bytes], source: str) -> bytes:
    """At most MAX_PAYLOAD_INPUT bytes: a 100 MB file used to be read whole (416 MB of memory)
    only to be refused by the 8 MiB check afterwards."""
    data = stream.read(MAX_PAYLOAD_INPUT + 1)
    if len(data) > MAX_PAYLOAD_INPUT:
        raise InvalidInput(
            f"{source} is larger than {MAX_PAYLOAD_INPUT // 1024**2} MiB; a payload is at most "
            f"{MAX_PAYLOAD_BYTES // 1024**2} MiB: store big data elsewhere and pass a key"
        )
    return data


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
    except ValueError as error:  # a number with more digits than Python reads
        raise InvalidInput(huge_number(error)) from None
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
