"""The bad-input catalog: everything a user can get wrong, through the real CLI and the library.

Each CLI case runs `python -m durableq` in a subprocess against its own copy of a prepared
database and asserts the contract: exactly one non-empty stderr line starting `durableq: error:`,
no traceback, nothing on stdout, exit code 2 for bad usage or input and 1 for everything else,
and the database (or the file passed as one) unchanged. Library cases assert the error class,
its exit code and a one-line message; daemon cases that a bad handler result fails only its job.

The cases run concurrently (they are independent subprocesses, each in its own directory) in a
module fixture; `test_bad_input` reports each case and `test_catalog` prints the tally.
"""

from __future__ import annotations

import math
import os
import re
import socket
import sqlite3
import subprocess
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from durableq import DiskFull, Registry, Unique
from durableq.client import Client
from durableq.core.errors import (
    DatabaseError,
    DurableqError,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    QueueFull,
)
from tests.support.disks import fill, mount_tmpfs, unmount
from tests.support.processes import environment, run_cli
from tests.support.seeded import (
    COMPLETED,
    PENDING,
    RUNNING,
    build_seeded,
    content_hash,
    copy_database,
    file_hash,
)

BAD_USAGE, FAILURE = 2, 1
MIN_CASES = 30
CONCURRENCY = 3  # subprocesses at once: they mostly wait on imports and fsync
RECORDER = "tests.support.recorder:registry"


# -- where --db points, and how to tell that it did not change ---------------------------------


@dataclass(frozen=True)
class Database:
    """How a case's --db is made, and the fingerprint that must be the same afterwards."""

    make: Callable[[Path, Path], Path]  # (case directory, seeded template) -> the --db path
    fingerprint: Callable[[Path], str]


def _seeded(directory: Path, template: Path) -> Path:
    return copy_database(template, directory / "durableq.db")


def _not_sqlite(directory: Path, _template: Path) -> Path:
    path = directory / "notes.txt"
    path.write_text("shopping list: eggs, flour, a job queue\n" * 200)
    return path


def _truncated(directory: Path, template: Path) -> Path:
    path = _seeded(directory, template)
    # Mid-page, about halfway: the schema page survives, the tables' pages do not.
    os.truncate(path, path.stat().st_size // 2 + 1000)
    return path


def _newer_schema(directory: Path, template: Path) -> Path:
    path = _seeded(directory, template)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    connection.close()
    return path


def _full_queue(directory: Path, template: Path) -> Path:
    """Seeded, with the default queue (one pending job) bounded at one pending job."""
    path = _seeded(directory, template)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE queues SET max_pending = 1 WHERE name = 'default'")
    connection.close()
    return path


def _missing_file(directory: Path, _template: Path) -> Path:
    return directory / "never-created.db"


def _missing_directory(directory: Path, _template: Path) -> Path:
    return directory / "no" / "such" / "directory" / "durableq.db"


def _read_only_file(directory: Path, template: Path) -> Path:
    path = _seeded(directory, template)
    _freeze(path)
    return path


def _read_only_directory(directory: Path, _template: Path) -> Path:
    frozen = directory / "read-only"
    frozen.mkdir()
    _freeze(frozen)
    return frozen / "durableq.db"


# -- small disks of a case's own: read-only or full (mounting a tmpfs needs root) -------------

DISK = "disk"  # the mount point in a case's directory


def _mount_disk(directory: Path, size: str) -> Path:
    mount = directory / DISK
    mount.mkdir()
    return mount_tmpfs(mount, size)


def _on_read_only_filesystem(directory: Path, template: Path) -> Path:
    """The seeded database on a filesystem mounted read-only (as after `mount -o remount,ro`)."""
    mount = _mount_disk(directory, "16m")
    path = copy_database(template, mount / "durableq.db")
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    return path


def _on_full_disk(directory: Path, template: Path) -> Path:
    mount = _mount_disk(directory, "16m")
    path = copy_database(template, mount / "durableq.db")
    fill(mount)
    return path


def _missing_on_full_disk(directory: Path, _template: Path) -> Path:
    mount = _mount_disk(directory, "1m")
    fill(mount)
    return mount / "durableq.db"


def _absence(path: Path) -> str:
    """No database file, journal or directory appeared."""
    made = [p.name for p in (path, *_sidecars(path), path.parent) if p.exists()]
    return f"present: {made}" if made else "absent"


def _absence_in_existing_directory(path: Path) -> str:
    made = [p.name for p in (path, *_sidecars(path)) if p.exists()]
    return f"present: {made}" if made else "absent"


def _sidecars(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal")]


DATABASES: Mapping[str, Database] = {
    "seeded": Database(_seeded, content_hash),
    "not-sqlite": Database(_not_sqlite, file_hash),
    "truncated": Database(_truncated, file_hash),
    "newer-schema": Database(_newer_schema, content_hash),
    "full-queue": Database(_full_queue, content_hash),
    "missing-file": Database(_missing_file, _absence_in_existing_directory),
    "missing-directory": Database(_missing_directory, _absence),
    "read-only-file": Database(_read_only_file, file_hash),
    "read-only-directory": Database(_read_only_directory, _absence_in_existing_directory),
    "read-only-filesystem": Database(_on_read_only_filesystem, file_hash),
    "full-disk": Database(_on_full_disk, file_hash),
    "missing-on-full-disk": Database(_missing_on_full_disk, _absence_in_existing_directory),
}


# -- read-only: root ignores file modes, but not the immutable attribute ----------------------


def _freeze(path: Path) -> None:
    path.chmod(0o555 if path.is_dir() else 0o444)
    if os.access(path, os.W_OK):  # root: modes do not bind it, the immutable flag does
        subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if os.access(path, os.W_OK):
        _thaw(path)
        pytest.skip(
            "running as root and `chattr +i` is unavailable here, so nothing can make "
            f"{path.name} read-only for this process"
        )


def _thaw(path: Path) -> None:
    if path.exists():
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextmanager
def _thawed_afterwards(directory: Path) -> Iterator[None]:
    """Whatever a case froze is writable again afterwards, and its disk unmounted, so that
    tmp_path can be deleted."""
    try:
        yield
    finally:
        for frozen in (directory / "durableq.db", directory / "read-only"):
            _thaw(frozen)
        if os.path.ismount(directory / DISK):
            unmount(directory / DISK)


# -- the three kinds of case -------------------------------------------------------------------


@dataclass(frozen=True)
class CliCase:
    """`durableq --db DB ARGS...` must fail with one line, the exit code, and DB unchanged.

    `{dir}` in ARGS is the case's directory, where `files` are written first.
    """

    name: str
    args: tuple[str, ...]
    code: int
    says: str
    db: str = "seeded"
    stdin: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # set for the command only

    def run(self, directory: Path, template: Path) -> None:
        for name, content in self.files.items():
            (directory / name).write_bytes(content)
        database = DATABASES[self.db]
        with _thawed_afterwards(directory):
            path = database.make(directory, template)
            before = database.fingerprint(path)
            args = [arg.replace("{dir}", str(directory)) for arg in self.args]
            env = environment(**self.env) if self.env else None
            done = run_cli(args, path, input=self.stdin, cwd=directory, env=env)
            assert_one_error_line(done, self.code, self.says)
            assert database.fingerprint(path) == before, f"{self.db} database changed"


@dataclass(frozen=True)
class LibraryCase:
    """A library call on a seeded database must raise `error` (with `code`), changing nothing."""

    name: str
    call: Callable[[Client], object]
    error: type[DurableqError]
    code: int
    says: str
    db: str = "seeded"

    def run(self, directory: Path, template: Path) -> None:
        database = DATABASES[self.db]
        with _thawed_afterwards(directory):
            path = database.make(directory, template)
            before = database.fingerprint(path)
            with pytest.raises(self.error) as raised, Client.open(str(path)) as client:
                self.call(client)
            after = database.fingerprint(path)
        message = str(raised.value)
        assert raised.value.exit_code == self.code, (raised.value.exit_code, message)
        assert message.strip() and "\n" not in message, f"not one line: {message!r}"
        assert self.says in message, f"{self.says!r} not in {message!r}"
        assert after == before, f"{self.db} database changed"


@dataclass(frozen=True)
class ScenarioCase:
    """Anything that needs more than one step (a worker meeting a bad handler result)."""

    name: str
    scenario: Callable[[Path, Path], None]

    def run(self, directory: Path, template: Path) -> None:
        self.scenario(directory, template)


Case = CliCase | LibraryCase | ScenarioCase


def assert_one_error_line(done: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    shown = f"exit {done.returncode}, stdout {done.stdout!r}, stderr {done.stderr!r}"
    assert "Traceback" not in done.stderr + done.stdout, shown
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"not exactly one stderr line: {shown}"
    assert lines[0].startswith("durableq: error: "), shown
    assert says in lines[0], f"{says!r} not in the error: {shown}"
    assert done.returncode == code, shown
    assert done.stdout == "", shown


# -- scenarios: a bad result fails its job, the daemon lives on --------------------------------

SURROGATE_APP = b"""
from durableq import Registry

registry = Registry()


@registry.handler("returns_surrogate")
def returns_surrogate(ctx, payload):
    return {"text": b"caf\\xe9".decode("utf-8", "surrogateescape")}


@registry.handler("raises_surrogate")
def raises_surrogate(ctx, payload):
    raise RuntimeError(b"bad \\xff byte".decode("utf-8", "surrogateescape"))
"""


REPORTING_APP = b"""
from durableq import Fail, Registry, RetryIn, Snooze

registry = Registry()
BAD = {
    "snooze_soon": lambda ctx: Snooze("soon"),
    "snooze_negative": lambda ctx: Snooze(-5),
    "retry_in_nan": lambda ctx: RetryIn(float("nan")),
    "progress_too_big": lambda ctx: ctx.report_progress(1.5),
    "progress_a_word": lambda ctx: ctx.report_progress("half"),
    "meta_a_list": lambda ctx: ctx.update_meta(["a"]),
    "meta_not_json": lambda ctx: ctx.update_meta({"when": object()}),
    "meta_too_big": lambda ctx: ctx.update_meta({"blob": "x" * 70000}),
}


@registry.handler("bad_report")
def bad_report(ctx, payload):
    told = BAD[payload["what"]](ctx)
    if isinstance(told, Exception):
        raise told
"""


def bad_reports_from_handlers(directory: Path, template: Path) -> None:
    """Handlers that snooze or retry with a bad delay or report bad progress or metadata: each
    fails its own attempt with one line saying what was wrong; the daemon goes on."""
    (directory / "reporting.py").write_bytes(REPORTING_APP)
    path = _seeded(directory, template)
    expected = {
        "snooze_soon": "invalid duration 'soon'",
        "snooze_negative": "invalid delay -5",
        "retry_in_nan": "invalid delay nan",
        "progress_too_big": "invalid progress 1.5: use a fraction from 0 to 1",
        "progress_a_word": "invalid progress 'half'",
        "meta_a_list": "metadata must be a mapping with string keys",
        "meta_not_json": "metadata must be JSON-serialisable",
        "meta_too_big": "the job's metadata would pass 65536 bytes",
    }
    with Client.open(str(path)) as client:
        ids = {w: client.enqueue("bad_report", {"what": w}, max_attempts=1) for w in expected}
        after = client.enqueue("noop", priority=-1)
    _run_burst(path, "reporting:registry", directory)
    with Client.open(str(path)) as client:
        assert client.get(after).status.value == "completed"
        for what, says in expected.items():
            job = client.get(ids[what])
            error = job.last_error or ""
            assert job.status.value == "failed" and says in error and "\n" not in error, error


def _run_burst(path: Path, app: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = run_cli(["worker", "start", "--burst", "--app", app], path, cwd=cwd)
    assert done.returncode == 0, f"the daemon did not survive: {done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _port_taken(directory: Path, template: Path, command: tuple[str, ...]) -> None:
    """Something else listens on the port: one line that says so, exit 1, nothing written."""
    database = DATABASES["seeded"]
    path = database.make(directory, template)
    before = database.fingerprint(path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        where = f"127.0.0.1:{taken.getsockname()[1]}"
        flag = "--bind" if command[0] == "serve" else "--http"
        done = run_cli([*command, flag, where], path, cwd=directory)
    assert_one_error_line(done, 1, f"cannot listen on {where}: address already in use")
    assert database.fingerprint(path) == before


def _statuses(client: Client, *job_ids: int) -> list[str]:
    return [client.get(job_id).status.value for job_id in job_ids]


def unserialisable_result(directory: Path, template: Path) -> None:
    path = _seeded(directory, template)
    with Client.open(str(path)) as client:
        bad = client.enqueue("unserialisable", max_attempts=1)
        after = client.enqueue("record", priority=-1)  # runs after the bad one
    _run_burst(path, RECORDER, directory)
    with Client.open(str(path)) as client:
        assert _statuses(client, bad, after) == ["failed", "completed"]
        error = client.get(bad).last_error or ""
        assert "not JSON-serialisable" in error and "\n" not in error, error


def undecodable_text_from_handlers(directory: Path, template: Path) -> None:
    """Lone surrogates (undecodable bytes) in a result or an error message: UTF-8 cannot store
    them, and once they made saving the outcome raise, which killed the daemon."""
    (directory / "surrogates.py").write_bytes(SURROGATE_APP)
    path = _seeded(directory, template)
    with Client.open(str(path)) as client:
        result = client.enqueue("returns_surrogate", max_attempts=1)
        error = client.enqueue("raises_surrogate", max_attempts=1)
        after = client.enqueue("noop", priority=-1)
    _run_burst(path, "surrogates:registry", directory)
    with Client.open(str(path)) as client:
        assert _statuses(client, result, error, after) == ["failed", "failed", "completed"]
        assert "not JSON-serialisable" in (client.get(result).last_error or "")
        assert "bad \\udcff byte" in (client.get(error).last_error or "")


# -- the catalog ---------------------------------------------------------------------------------

DEEP_JSON = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
HUGE_JSON = b'{"blob": "' + b"x" * (8 * 1024 * 1024 + 1) + b'"}'
BATCH_WITH_BAD_LINE = b'{"type": "echo"}\n{"type": "echo", "payload": {"n": 2\n{"type": "echo"}\n'
NAIVE = datetime(2030, 1, 1, 12, 0)  # no tzinfo

CASES: list[Case] = [
    # payloads
    CliCase("invalid JSON", ("enqueue", "echo", "--payload", "{n: 1}"), 2, "not valid JSON"),
    CliCase("NaN in JSON", ("enqueue", "echo", "--payload", '{"n": NaN}'), 2, "NaN"),
    CliCase(
        "Infinity in JSON", ("enqueue", "echo", "--payload", '{"n": -Infinity}'), 2, "Infinity"
    ),
    CliCase(
        "JSON over 8 MiB",
        ("enqueue", "echo", "--payload-file", "{dir}/huge.json"),
        2,
        "larger than 8 MiB",
        files={"huge.json": HUGE_JSON},
    ),
    CliCase(
        "a payload file over 16 MiB (refused before it is read whole)",
        ("enqueue", "echo", "--payload-file", "{dir}/huger.json"),
        2,
        "is larger than 16 MiB; a payload is at most 8 MiB",
        files={"huger.json": HUGE_JSON * 3},
    ),
    CliCase(
        "deeply nested JSON on stdin",
        ("enqueue", "echo", "--payload", "-"),
        2,
        "nested too deeply",
        stdin=DEEP_JSON,
    ),
    CliCase("payload an array", ("enqueue", "echo", "--payload", "[1, 2]"), 2, "not an array"),
    CliCase(
        "payload file not UTF-8",
        ("enqueue", "echo", "--payload-file", "{dir}/latin1.json"),
        2,
        "not UTF-8",
        files={"latin1.json": '{"city": "Orléans"}'.encode("latin-1")},
    ),
    CliCase(
        "payload and payload file",
        ("enqueue", "echo", "--payload", "{}", "--payload-file", "{dir}/p.json"),
        2,
        "not both",
        files={"p.json": b"{}"},
    ),
    CliCase("bad job type", ("enqueue", "send email"), 2, "invalid type 'send email'"),
    # once "internal error" with exit 1 (OverflowError, ValueError): found trying to break it
    CliCase(
        "--at past year 9999 once in UTC",
        ("enqueue", "noop", "--at", "9999-12-31T23:59:59-01:00"),
        2,
        "out of range once in UTC: use years 1 to 9999",
    ),
    CliCase(
        "--at before year 1 once in UTC",
        ("enqueue", "noop", "--at", "0001-01-01T00:00:00+01:00"),
        2,
        "out of range once in UTC",
    ),
    CliCase(
        "a payload number of 5,000 digits",
        ("enqueue", "noop", "--payload-file", "{dir}/digits.json"),
        2,
        "the payload has a number too long to read",
        files={"digits.json": b'{"n": ' + b"9" * 5000 + b"}"},
    ),
    CliCase(
        "a batch line with a 5,000-digit number",
        ("enqueue", "--batch", "{dir}/digits.jsonl"),
        2,
        "line 1 of the batch: the payload has a number too long to read",
        files={"digits.jsonl": b'{"type": "noop", "payload": {"n": ' + b"9" * 5000 + b"}}\n"},
    ),
    LibraryCase(
        "library: run_at past year 9999 once in UTC",
        lambda c: c.enqueue(
            "noop", run_at=datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1)))
        ),
        InvalidInput,
        2,
        "out of range once in UTC",
    ),
    CliCase("priority out of range", ("enqueue", "echo", "--priority", "10000000"), 2, "priority"),
    # job ids
    CliCase("unknown id", ("jobs", "show", "999"), 2, "no job with id 999"),
    CliCase("non-numeric id", ("cancel", "seven"), 2, "job ids are whole numbers"),
    CliCase("negative id", ("retry", "--", "-3"), 2, "job ids are positive"),
    CliCase("id too large", ("wait", str(2**70)), 2, "too large"),
    # illegal transitions
    CliCase("cancel completed", ("cancel", str(COMPLETED)), 2, "it is completed"),
    CliCase("retry pending", ("retry", str(PENDING)), 2, "it is pending"),
    CliCase("retry running", ("retry", str(RUNNING)), 2, "it is running"),
    CliCase("retry completed", ("retry", str(COMPLETED)), 2, "it is completed"),
    CliCase(
        "purge pending",
        ("purge", "--older-than", "0s", "--status", "pending"),
        2,
        "only completed, failed or canceled",
    ),
    # durations and dates
    CliCase("duration 3x", ("enqueue", "echo", "--delay", "3x"), 2, "invalid duration '3x'"),
    CliCase(
        "retention not a duration",
        ("worker", "start", "--burst"),
        2,
        "invalid duration 'forever'",
        env={"DURABLEQ_RETAIN_COMPLETED": "forever"},
    ),
    CliCase(
        "history retention not a duration",
        ("worker", "start", "--burst"),
        2,
        "invalid duration '1 week'",
        env={"DURABLEQ_RETAIN_HISTORY": "1 week"},
    ),
    LibraryCase(
        "library: history of a window it does not keep",
        lambda c: c.history("2h"),
        InvalidInput,
        2,
        "invalid window '2h': use one of 1h, 24h, 7d",
    ),
    LibraryCase(
        "library: history of a queue name with a space",
        lambda c: c.history("1h", ["my mail"]),
        InvalidInput,
        2,
        "invalid queue",
    ),
    CliCase("duration -5s", ("enqueue", "echo", "--delay", "-5s"), 2, "invalid duration '-5s'"),
    CliCase("empty duration", ("enqueue", "echo", "--timeout", ""), 2, "invalid duration ''"),
    CliCase("duration 1h-5m", ("purge", "--older-than", "1h-5m"), 2, "invalid duration"),
    CliCase("date not ISO", ("enqueue", "echo", "--at", "next tuesday"), 2, "invalid date-time"),
    CliCase(
        "both --delay and --at",
        ("enqueue", "echo", "--delay", "5m", "--at", "2030-01-01T00:00:00Z"),
        2,
        "not both",
    ),
    CliCase("max attempts 0", ("enqueue", "echo", "--max-attempts", "0"), 2, "--max-attempts"),
    CliCase("unknown status", ("jobs", "list", "--status", "done"), 2, "unknown status 'done'"),
    # databases
    CliCase(
        "not a SQLite file", ("enqueue", "echo"), 1, "is not a SQLite database", db="not-sqlite"
    ),
    CliCase("truncated database", ("enqueue", "echo"), 1, "is corrupt", db="truncated"),
    CliCase("newer schema", ("enqueue", "echo"), 1, "newer than this durableq", db="newer-schema"),
    CliCase(
        "newer schema, db upgrade",
        ("db", "upgrade"),
        1,
        "newer than this durableq",
        db="newer-schema",
    ),
    CliCase(
        "newer schema, db check", ("db", "check"), 1, "newer than this durableq", db="newer-schema"
    ),
    CliCase("missing directory", ("enqueue", "echo"), 1, "does not exist", db="missing-directory"),
    CliCase("missing database, read", ("stats",), 1, "no database at", db="missing-file"),
    CliCase("missing database, db check", ("db", "check"), 1, "no database at", db="missing-file"),
    CliCase("read-only database file", ("enqueue", "echo"), 1, "read-only", db="read-only-file"),
    CliCase(
        "read-only directory",
        ("enqueue", "echo"),
        1,
        "cannot open database",
        db="read-only-directory",
    ),
    # read-only and full disks (issue 16)
    *(
        CliCase(
            f"{' '.join(args)} on a read-only filesystem",
            args,
            1,
            "is on a read-only filesystem",
            db="read-only-filesystem",
        )
        for args in (
            ("enqueue", "echo"),
            ("jobs", "list"),
            ("db", "upgrade"),
            ("worker", "start", "--burst", "--app", RECORDER),
        )
    ),
    *(
        CliCase(f"{' '.join(args)} on a full disk", args, 1, "the disk is full", db="full-disk")
        for args in (("enqueue", "echo"), ("stats",), ("queue", "pause", "mail"))
    ),
    *(
        CliCase(
            f"{' '.join(args)}, a new database on a full disk",
            args,
            1,
            "the disk is full",
            db="missing-on-full-disk",
        )
        for args in (("db", "upgrade"), ("enqueue", "echo"))
    ),
    LibraryCase(
        "library: enqueue on a full disk",
        lambda c: c.enqueue("echo"),
        DiskFull,
        1,
        "free some space",
        db="full-disk",
    ),
    LibraryCase(
        "library: enqueue on a read-only filesystem",
        lambda c: c.enqueue("echo"),
        DatabaseError,
        1,
        "remount it read-write",
        db="read-only-filesystem",
    ),
    # worker --app
    CliCase(
        "unknown handler module",
        ("worker", "start", "--burst", "--app", "no_such_module_anywhere:registry"),
        2,
        "cannot import 'no_such_module_anywhere'",
    ),
    CliCase(
        "--app not MODULE:ATTR",
        ("worker", "start", "--burst", "--app", "tests.support.recorder"),
        2,
        "use MODULE:ATTRIBUTE",
    ),
    CliCase(
        "--app not a Registry",
        ("worker", "start", "--burst", "--app", "os:sep"),
        2,
        "is not a durableq Registry",
    ),
    CliCase(
        "--app a function that fails",
        ("worker", "start", "--burst", "--app", "json:dumps"),
        2,
        "to make a Registry failed",
    ),
    # batches
    CliCase(
        "batch with a bad line",
        ("enqueue", "--batch", "{dir}/jobs.jsonl"),
        2,
        "line 2 of the batch",
        files={"jobs.jsonl": BATCH_WITH_BAD_LINE},
    ),
    CliCase(
        "batch line with an unknown key",
        ("enqueue", "--batch", "-"),
        2,
        "line 2 of the batch: unknown key 'colour'",
        stdin='{"type": "echo"}\n{"type": "echo", "colour": "red"}\n',
    ),
    CliCase(
        "batch line over 8 MiB",
        ("enqueue", "--batch", "{dir}/big.jsonl"),
        2,
        "line 2 of the batch: the payload is larger than 8 MiB",
        files={"big.jsonl": b'{"type": "echo"}\n{"type": "echo", "payload": ' + HUGE_JSON + b"}\n"},
    ),
    CliCase(
        "batch line not UTF-8",
        ("enqueue", "--batch", "{dir}/latin1.jsonl"),
        2,
        "line 1 of the batch: the line is not UTF-8",
        files={"latin1.jsonl": '{"type": "echo", "payload": {"c": "é"}}\n'.encode("latin-1")},
    ),
    CliCase(
        "batch with options it would ignore",
        ("enqueue", "--batch", "-", "--queue", "emails"),
        2,
        "remove --queue",
        stdin='{"type": "echo"}\n',
    ),
    # queues: backpressure, and the controls' own inputs
    CliCase(
        "enqueue into a full queue",
        ("enqueue", "echo"),
        1,
        'queue "default" is full: 1 pending, max 1; retry later',
        db="full-queue",
    ),
    CliCase(
        "batch with one job for a full queue",
        ("enqueue", "--batch", "-"),
        1,
        'queue "default" is full',
        db="full-queue",
        stdin='{"type": "echo", "queue": "other"}\n{"type": "echo"}\n',
    ),
    CliCase("queue set, no option", ("queue", "set", "mail"), 2, "give at least one of"),
    CliCase(
        "queue concurrency past 32 bits",
        ("queue", "set", "mail", "--concurrency", "2147483648"),
        2,
        "at most 2147483647; for no limit give none",
    ),
    LibraryCase(
        "library: max_pending of 2**63 (was a 500 from the API)",
        lambda c: c.set_queue("default", max_pending=2**63),
        InvalidInput,
        2,
        "invalid max_pending 9223372036854775808: at most 2147483647",
    ),
    CliCase(
        "queue concurrency not a number",
        ("queue", "set", "mail", "--concurrency", "lots"),
        2,
        "invalid --concurrency 'lots': give a positive number or none",
    ),
    CliCase(
        "queue concurrency zero", ("queue", "set", "mail", "--concurrency", "0"), 2, "positive"
    ),
    CliCase(
        "queue max-pending negative",
        ("queue", "set", "mail", "--max-pending", "-3"),
        2,
        "invalid --max-pending '-3'",
    ),
    CliCase(
        "queue rate without a period",
        ("queue", "set", "mail", "--rate", "5"),
        2,
        "invalid rate '5': use N/DURATION[:BURST]",
    ),
    CliCase(
        "queue rate with a bad period",
        ("queue", "set", "mail", "--rate", "5/soon"),
        2,
        "invalid rate '5/soon'",
    ),
    CliCase(
        "queue rate of zero", ("queue", "set", "mail", "--rate", "0/1s"), 2, "must be positive"
    ),
    CliCase(
        "queue rate burst zero",
        ("queue", "set", "mail", "--rate", "5/1s:0"),
        2,
        "must be positive",
    ),
    CliCase("queue name with a space", ("queue", "pause", "my mail"), 2, "invalid queue"),
    CliCase("queue resume, no name", ("queue", "resume"), 2, "Missing argument"),
    CliCase(
        "queue pause on a read-only file",
        ("queue", "pause", "mail"),
        1,
        "read-only",
        db="read-only-file",
    ),
    CliCase(
        "worker queue limit zero",
        ("worker", "start", "--burst", "--queue", "mail=0"),
        2,
        "give NAME or NAME=N with N a positive number",
    ),
    CliCase(
        "worker queue limit not a number",
        ("worker", "start", "--burst", "--queue", "mail=four"),
        2,
        "invalid --queue 'mail=four'",
    ),
    # unique jobs and idempotent enqueues
    CliCase(
        "idempotency key empty",
        ("enqueue", "echo", "--idempotency-key", ""),
        2,
        "the idempotency key must be 1-200 characters",
    ),
    CliCase(
        "idempotency key too long",
        ("enqueue", "echo", "--idempotency-key", "k" * 201),
        2,
        "the idempotency key must be 1-200 characters",
    ),
    CliCase(
        "idempotency key reused in a batch with another payload",
        ("enqueue", "--batch", "{dir}/keys.jsonl"),
        2,
        'idempotency key "k" belongs to an earlier job of this batch',
        files={
            "keys.jsonl": b'{"type": "echo", "idempotency_key": "k", "payload": {"n": 1}}\n'
            b'{"type": "echo", "idempotency_key": "k", "payload": {"n": 2}}\n'
        },
    ),
    CliCase(
        "unique states without running",
        ("enqueue", "echo", "--unique-states", "pending"),
        2,
        "unique states must include pending and running",
    ),
    CliCase(
        "unique state unknown",
        ("enqueue", "echo", "--unique-states", "pending,running,done"),
        2,
        "unknown unique state 'done'",
    ),
    CliCase(
        "unique period not a duration",
        ("enqueue", "echo", "--unique-period", "soon"),
        2,
        "invalid duration 'soon'",
    ),
    CliCase(
        "unique period zero",
        ("enqueue", "echo", "--unique-period", "0s"),
        2,
        "the unique period must be from 1 second to 10 years",
    ),
    CliCase(
        "unique keys empty",
        ("enqueue", "echo", "--unique-keys", ","),
        2,
        "unique keys must be payload field names",
    ),
    CliCase(
        "on-conflict unknown",
        ("enqueue", "echo", "--on-conflict", "merge"),
        2,
        "Invalid value for '--on-conflict'",
    ),
    CliCase(
        "unique option with --batch",
        ("enqueue", "--batch", "{dir}/one.jsonl", "--unique"),
        2,
        "remove --unique",
        files={"one.jsonl": b'{"type": "echo"}\n'},
    ),
    CliCase(
        "batch unique option unknown",
        ("enqueue", "--batch", "{dir}/size.jsonl"),
        2,
        "unknown unique option 'size'",
        files={"size.jsonl": b'{"type": "echo", "unique": {"size": 1}}\n'},
    ),
    CliCase(
        "batch unique not an object",
        ("enqueue", "--batch", "{dir}/word.jsonl"),
        2,
        '"unique" must be true or an object',
        files={"word.jsonl": b'{"type": "echo", "unique": "yes"}\n'},
    ),
    # the HTTP server
    CliCase("serve bind without a port", ("serve", "--bind", "localhost"), 2, "invalid --bind"),
    CliCase(
        "serve bind with a bad port", ("serve", "--bind", "127.0.0.1:99999"), 2, "invalid --bind"
    ),
    CliCase(
        "serve off loopback without a token",
        ("serve", "--bind", "0.0.0.0:8080"),
        2,
        "binding to 0.0.0.0 exposes the API to other hosts: give --token",
    ),
    CliCase("serve with an empty token", ("serve", "--token", " "), 2, "--token is empty"),
    CliCase("serve with a tiny body limit", ("serve", "--max-body", "10"), 2, "Invalid value for"),
    CliCase(
        "serve with a relative prefix", ("serve", "--prefix", "ops"), 2, "invalid --prefix 'ops'"
    ),
    CliCase("serve with a prefix under /api", ("serve", "--prefix", "/api/x"), 2, "not under /api"),
    CliCase("worker with an unknown pool", ("worker", "start", "--pool", "fork"), 2, "'fork'"),
    CliCase(
        "worker with a negative prefetch",
        ("worker", "start", "--prefetch", "-1"),
        2,
        "Invalid value for '--prefetch'",
    ),
    CliCase(
        "bench --db with a SQLite path",
        ("bench", "--db", "{dir}/other.db", "--quick"),
        2,
        "bench --db takes a postgresql:// URL",
    ),
    CliCase(
        "bench --db with an unreachable server",
        ("bench", "--db", "postgresql://nobody@127.0.0.1:1/none", "--quick"),
        1,
        "cannot connect to postgresql://nobody@127.0.0.1:1/none",
    ),
    CliCase(
        "bench --db, a SQLite-only section",
        ("bench", "--db", "postgresql://nobody@127.0.0.1:1/none", "--only", "cli"),
        2,
        "section 'cli' runs on SQLite only",
    ),
    CliCase(
        "process pool with an app the children cannot import",
        ("worker", "start", "--pool", "process", "--app", "no_such_app:registry", "--burst"),
        2,
        "cannot import 'no_such_app'",
    ),
    ScenarioCase("serve on a port in use", lambda d, t: _port_taken(d, t, ("serve",))),
    ScenarioCase(
        "worker --http on a port in use",
        lambda d, t: _port_taken(d, t, ("worker", "start", "--burst")),
    ),
    CliCase(
        "worker --http off loopback without a token",
        ("worker", "start", "--http", "0.0.0.0:8080"),
        2,
        "binding to 0.0.0.0 exposes the API to other hosts: give --token",
    ),
    CliCase(
        "worker --metrics off loopback without a token",
        ("worker", "start", "--metrics", "0.0.0.0:9100"),
        2,
        "binding to 0.0.0.0 exposes the API to other hosts: give --token",
    ),
    CliCase(
        "worker --http without a port",
        ("worker", "start", "--http", "localhost"),
        2,
        "invalid --bind",
    ),
    # recurring jobs
    CliCase(
        "schedules of a non-database",
        ("schedules",),
        1,
        "is not a SQLite database",
        db="not-sqlite",
    ),
    LibraryCase(
        "library: unique by an unknown field",
        lambda c: c.enqueue("echo", unique=Unique(by=("colour",))),
        InvalidInput,
        2,
        "unique by must be some of type, payload, queue",
    ),
    LibraryCase(
        "library: unique keys without payload",
        lambda c: c.enqueue("echo", unique=Unique(by=("type",), keys=("a",))),
        InvalidInput,
        2,
        'add "payload" to by',
    ),
    LibraryCase(
        "library: unique on_conflict unknown",
        lambda c: c.enqueue("echo", unique=Unique(on_conflict="merge")),  # type: ignore[arg-type]
        InvalidInput,
        2,
        "unknown on_conflict 'merge'",
    ),
    LibraryCase(
        "library: idempotency key with a newline",
        lambda c: c.enqueue("echo", idempotency_key="a\nb"),
        InvalidInput,
        2,
        "printable text",
    ),
    LibraryCase(
        "library: schedule with a bad cron",
        lambda c: Registry().schedule("s", cron="61 * * * *", type="echo"),
        InvalidInput,
        2,
        "invalid cron '61 * * * *'",
    ),
    LibraryCase(
        "library: schedule with seven cron fields",
        lambda c: Registry().schedule("s", cron="0 0 0 * * * *", type="echo"),
        InvalidInput,
        2,
        "use five fields",
    ),
    LibraryCase(
        "library: schedule in an unknown zone",
        lambda c: Registry().schedule("s", cron="@daily", type="echo", timezone="Mars/Olympus"),
        InvalidInput,
        2,
        "unknown time zone 'Mars/Olympus'",
    ),
    LibraryCase(
        "library: schedule catch_up unknown",
        lambda c: Registry().schedule("s", cron="@daily", type="echo", catch_up="some"),  # type: ignore[arg-type]
        InvalidInput,
        2,
        "unknown catch_up 'some'",
    ),
    LibraryCase(
        "library: schedule max_catch_up zero",
        lambda c: Registry().schedule("s", cron="@daily", type="echo", max_catch_up=0),
        InvalidInput,
        2,
        "max_catch_up must be a whole number from 1 to 1000",
    ),
    LibraryCase(
        "library: schedule on a day that does not exist",
        lambda c: Registry().schedule("s", cron="0 0 30 2 *", type="echo"),
        InvalidInput,
        2,
        "invalid cron '0 0 30 2 *' (Bad day-of-month)",
    ),
    LibraryCase(
        "library: schedule of a bad job type",
        lambda c: Registry().schedule("s", cron="@daily", type="a b"),
        InvalidInput,
        2,
        "invalid type",
    ),
    # the library
    LibraryCase(
        "library: enqueue into a full queue",
        lambda c: c.enqueue("echo"),
        QueueFull,
        1,
        'queue "default" is full',
        db="full-queue",
    ),
    LibraryCase(
        "library: queue concurrency zero",
        lambda c: c.set_queue("mail", concurrency=0),
        InvalidInput,
        2,
        "invalid concurrency 0",
    ),
    LibraryCase(
        "library: bad rate text",
        lambda c: c.set_queue("mail", rate="fast"),
        InvalidInput,
        2,
        "invalid rate 'fast'",
    ),
    LibraryCase(
        "library: bad type name", lambda c: c.enqueue("a b"), InvalidInput, 2, "invalid type"
    ),
    LibraryCase(
        "library: payload not a dict",
        lambda c: c.enqueue("echo", [1, 2]),  # type: ignore[arg-type]
        InvalidInput,
        2,
        "must be a JSON object",
    ),
    LibraryCase(
        "library: NaN in payload",
        lambda c: c.enqueue("echo", {"n": math.nan}),
        InvalidInput,
        2,
        "not JSON-serialisable",
    ),
    LibraryCase(
        "library: naive run_at",
        lambda c: c.enqueue("echo", run_at=NAIVE),
        InvalidInput,
        2,
        "timezone-aware",
    ),
    LibraryCase(
        "library: delay and run_at",
        lambda c: c.enqueue("echo", delay=5, run_at=NAIVE.astimezone()),
        InvalidInput,
        2,
        "not both",
    ),
    LibraryCase(
        "library: NaN delay",
        lambda c: c.enqueue("echo", delay=math.nan),
        InvalidInput,
        2,
        "delay",
    ),
    LibraryCase(
        "library: timedelta delay",
        lambda c: c.enqueue("echo", delay=timedelta(seconds=5)),  # type: ignore[arg-type]
        InvalidInput,
        2,
        "delay",
    ),
    LibraryCase(
        "library: boolean timeout",
        lambda c: c.enqueue("echo", timeout=True),
        InvalidInput,
        2,
        "timeout",
    ),
    LibraryCase(
        "library: unknown id", lambda c: c.cancel(12345), JobNotFound, 2, "no job with id 12345"
    ),
    LibraryCase(
        "library: retry a completed job",
        lambda c: c.retry(COMPLETED),
        InvalidTransition,
        2,
        "it is completed",
    ),
    LibraryCase(
        "library: open a non-database",
        lambda c: None,
        DatabaseError,
        1,
        "is not a SQLite database",
        db="not-sqlite",
    ),
    ScenarioCase("handler result not JSON-serialisable", unserialisable_result),
    ScenarioCase("undecodable text from handlers", undecodable_text_from_handlers),
    ScenarioCase("bad outcomes and reports from handlers", bad_reports_from_handlers),
]
assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"


# -- running the catalog -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    handled: bool
    skipped: str | None = None
    failure: str | None = None


def _attempt(case: Case, directory: Path, template: Path) -> Outcome:
    directory.mkdir(parents=True)
    try:
        case.run(directory, template)
    except pytest.skip.Exception as skip:
        return Outcome(handled=False, skipped=str(skip.msg))
    except BaseException:  # reported by the case's own test
        return Outcome(handled=False, failure=traceback.format_exc())
    return Outcome(handled=True)


def _selected(request: pytest.FixtureRequest) -> list[Case]:
    """The cases this session will report on: all of them when test_catalog runs."""
    wanted: set[str] = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:
            continue
        if getattr(item, "originalname", "") == "test_catalog":
            return CASES
        callspec: Any = getattr(item, "callspec", None)
        if callspec is not None and "case" in callspec.params:
            wanted.add(callspec.params["case"].name)
    return [case for case in CASES if case.name in wanted]


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    template = build_seeded(tmp_path_factory.mktemp("template") / "seeded.db")
    root = tmp_path_factory.mktemp("cases")
    cases = _selected(request)
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        futures = {
            case.name: pool.submit(_attempt, case, root / f"case{index}", template)
            for index, case in enumerate(cases)
        }
        return {name: future.result() for name, future in futures.items()}


def _test_id(case: Case) -> str:
    return re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")


@pytest.mark.parametrize("case", CASES, ids=[_test_id(case) for case in CASES])
def test_bad_input(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.name]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.handled, outcome.failure


def test_catalog(outcomes: dict[str, Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    attempted = [name for name, outcome in outcomes.items() if not outcome.skipped]
    handled = [name for name in attempted if outcomes[name].handled]
    skipped = {name: o.skipped for name, o in outcomes.items() if o.skipped}
    with capsys.disabled():
        print(f"\n{len(handled)}/{len(attempted)} bad inputs handled", end="")
        print(f" ({len(skipped)} skipped: {skipped})" if skipped else "")
    assert len(attempted) >= MIN_CASES
    unhandled = sorted(set(attempted) - set(handled))
    assert not unhandled, f"not handled: {unhandled}"
