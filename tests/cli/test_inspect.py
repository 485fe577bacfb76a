"""Reading and managing jobs through the CLI: list, show, stats, cancel, retry, wait, purge, db,
workers; the --db option wherever it is given; help everywhere; output for humans and machines."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from durableq import __version__
from durableq.cli import cli
from durableq.client import Client
from durableq.store.revision import HEAD_REVISION
from tests.cli.conftest import Invoke
from tests.support.seeded import CANCELED, COMPLETED, FAILED, PENDING, RUNNING, content_hash

JOB_KEYS = {
    "id",
    "queue",
    "type",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "last_error",
    "result",
    "run_at",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
}
# Beyond the list: what `jobs show` needs for "every field".
EXTRA_JOB_KEYS = {
    "timeout",
    "cancel_requested",
    "worker_id",
    "idempotency_key",
    "unique_key",
    "schedule",
    "schedule_tick",
    "progress",
    "progress_message",
    "meta",
}
TIMESTAMP_KEYS = {"run_at", "created_at", "updated_at", "started_at", "finished_at"}
STATUSES = ["pending", "running", "completed", "failed", "canceled"]
ANSI = re.compile(r"\x1b\[")


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def assert_utc_or_null(value: str | None) -> None:
    if value is None:
        return
    assert value.endswith("Z"), value
    assert datetime.fromisoformat(value).utcoffset() == UTC.utcoffset(None)


def assert_job_object(job: dict[str, Any]) -> None:
    assert set(job) == JOB_KEYS | EXTRA_JOB_KEYS
    assert isinstance(job["id"], str) and job["id"].isdigit()
    assert isinstance(job["payload"], dict)
    assert job["status"] in STATUSES
    for key in TIMESTAMP_KEYS:
        assert_utc_or_null(job[key])
    for key in ("priority", "attempts", "max_attempts"):
        assert isinstance(job[key], int)


def assert_aligned(table: str) -> None:
    """Every row's cells start where the header's columns start (two spaces apart)."""
    header, *rows = table.splitlines()
    starts = [match.start() for match in re.finditer(r"\S+(?: \S+)*", header)]
    assert len(starts) > 2 and rows
    for row in rows:
        for start in starts[:-1]:
            assert row[start] != " " and (start == 0 or row[start - 1] == " "), (header, row)


# -- jobs list -----------------------------------------------------------------------------------


def test_list_json_is_an_array_of_job_objects_newest_first(invoke: Invoke, seeded: Path) -> None:
    jobs = as_json(invoke(["jobs", "list", "--json"], seeded))
    assert [job["id"] for job in jobs] == ["5", "4", "3", "2", "1"]
    for job in jobs:
        assert_job_object(job)
    by_id = {job["id"]: job for job in jobs}
    assert by_id["1"]["result"]["job"] == COMPLETED
    assert by_id["2"]["last_error"] == "RuntimeError: flaky failure on attempt 1"
    assert by_id["4"]["started_at"] is None and by_id["4"]["finished_at"] is None
    assert by_id["5"]["worker_id"] == "seed-worker"


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--status", "failed"], ["2"]),
        (["--status", "pending", "--status", "running"], ["5", "4"]),
        (["--queue", "held"], ["5"]),
        (["--type", "flaky", "--type", "record"], ["2", "1"]),
        (["--status", "completed", "--queue", "held"], []),
        (["--limit", "2"], ["5", "4"]),
    ],
)
def test_list_filters(invoke: Invoke, seeded: Path, options: list[str], ids: list[str]) -> None:
    jobs = as_json(invoke(["jobs", "list", "--json", *options], seeded))
    assert [job["id"] for job in jobs] == ids


def test_list_table_is_aligned_with_relative_times_and_no_colour_off_a_terminal(
    invoke: Invoke, seeded: Path
) -> None:
    table = invoke(["jobs", "list"], seeded).stdout
    assert not ANSI.search(table)
    assert table.splitlines()[0].split() == [
        "ID",
        "STATUS",
        "QUEUE",
        "TYPE",
        "ATTEMPTS",
        "PRI",
        "RUNS",
        "UPDATED",
        "LAST",
        "ERROR",
    ]
    assert_aligned(table)
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert re.search(r"\bin (59m\d+s|1h)\b", rows["4"]), rows["4"]  # pending, runs in an hour
    assert re.search(r"\b(now|\d+(\.\d)?s ago)\s*$", rows["4"]), rows["4"]
    assert "flaky failure on attempt 1" in rows["2"]


def test_colour_only_when_asked_for(invoke: Invoke, seeded: Path) -> None:
    coloured = invoke(["jobs", "list"], seeded, color=True).stdout
    plain = invoke(["jobs", "list"], seeded).stdout
    assert ANSI.search(coloured) and not ANSI.search(plain)
    # The same table but for the colours; relative times ("1.6s ago") move between the calls.
    ago = re.compile(r"[\d.]+(ms|s|m|h|d) ago")
    assert ago.sub("ago", click.unstyle(coloured)) == ago.sub("ago", plain)


def test_an_empty_list(invoke: Invoke, seeded: Path) -> None:
    empty = invoke(["jobs", "list", "--queue", "nowhere"], seeded)
    assert (empty.stdout, empty.stderr) == ("", "no jobs\n")
    assert as_json(invoke(["jobs", "list", "--queue", "nowhere", "--json"], seeded)) == []


# -- jobs show -----------------------------------------------------------------------------------


def test_show_json_has_every_field_the_result_and_the_error_history(
    invoke: Invoke, seeded: Path
) -> None:
    completed = as_json(invoke(["jobs", "show", str(COMPLETED), "--json"], seeded))
    failed = as_json(invoke(["jobs", "show", str(FAILED), "--json"], seeded))
    for job in (completed, failed):
        assert set(job) == JOB_KEYS | EXTRA_JOB_KEYS | {"errors"}
        assert_job_object({key: value for key, value in job.items() if key != "errors"})
    assert (completed["status"], completed["result"]["job"], completed["errors"]) == (
        "completed",
        COMPLETED,
        [],
    )
    assert completed["started_at"] <= completed["finished_at"]
    [error] = failed["errors"]
    assert set(error) == {"attempt", "error", "traceback", "failed_at"}
    assert (error["attempt"], error["error"]) == (1, "RuntimeError: flaky failure on attempt 1")
    assert "Traceback" in error["traceback"]
    assert_utc_or_null(error["failed_at"])


def test_show_for_humans(invoke: Invoke, seeded: Path) -> None:
    text = invoke(["jobs", "show", str(FAILED)], seeded).stdout
    fields = [line.split("  ")[0] for line in text.splitlines() if line and line[0] != " "]
    for name in ("id", "type", "queue", "status", "priority", "attempts", "timeout", "payload"):
        assert name in fields
    for name in ("result", "last error", "run at", "created", "updated", "started", "finished"):
        assert name in fields
    assert "error history (1)" in text
    assert "- attempt 1, " in text and "RuntimeError: flaky failure on attempt 1" in text
    assert re.search(r"^finished\s+\d{4}-\d\d-\d\dT[\d:.]+Z \((now|.* ago)\)$", text, re.M)
    assert not ANSI.search(text)


# -- stats ---------------------------------------------------------------------------------------


def test_stats_json(invoke: Invoke, seeded: Path) -> None:
    stats = as_json(invoke(["stats", "--json"], seeded))
    assert stats["counts"] == dict.fromkeys(STATUSES, 1)
    assert stats["queues"] == {
        "default": {"pending": 1, "completed": 1, "failed": 1, "canceled": 1},
        "held": {"running": 1},
    }


def test_stats_table(invoke: Invoke, seeded: Path) -> None:
    text = invoke(["stats"], seeded).stdout
    table = text.split("\n\n")[0]
    assert_aligned(table)
    assert table.splitlines()[0].split() == ["QUEUE", *(s.upper() for s in STATUSES)]
    assert table.splitlines()[-1].split() == ["(all)", "1", "1", "1", "1", "1"]


# -- cancel, retry, wait, purge ------------------------------------------------------------------


def job(invoke: Invoke, db: Path, job_id: int) -> dict[str, Any]:
    return as_json(invoke(["jobs", "show", str(job_id), "--json"], db))  # type: ignore[no-any-return]


def test_cancel(invoke: Invoke, seeded: Path) -> None:
    assert invoke(["cancel", str(PENDING)], seeded).stdout == f"job {PENDING} canceled\n"
    assert job(invoke, seeded, PENDING)["status"] == "canceled"
    asked = invoke(["cancel", str(RUNNING)], seeded).stdout
    assert asked.startswith(f"job {RUNNING} is running: cancel requested")
    assert (
        job(invoke, seeded, RUNNING)["status"],
        job(invoke, seeded, RUNNING)["cancel_requested"],
    ) == (
        "running",
        True,
    )


def test_retry(invoke: Invoke, seeded: Path) -> None:
    message = invoke(["retry", str(FAILED)], seeded).stdout
    assert message == f"job {FAILED} is pending again (attempt 2 of 2)\n"
    retried = job(invoke, seeded, FAILED)
    assert (retried["status"], retried["finished_at"], retried["max_attempts"]) == (
        "pending",
        None,
        2,
    )
    assert invoke(["retry", str(CANCELED)], seeded).stdout.startswith(f"job {CANCELED} is pending")


def test_wait_exit_codes(invoke: Invoke, seeded: Path) -> None:
    done = invoke(["wait", str(COMPLETED)], seeded)
    assert (done.exit_code, done.stdout) == (0, f"job {COMPLETED} completed\n")
    failed = invoke(["wait", str(FAILED)], seeded, fails=True)
    assert failed.exit_code == 1
    assert failed.stderr == f"job {FAILED} failed: RuntimeError: flaky failure on attempt 1\n"
    canceled = invoke(["wait", str(CANCELED)], seeded, fails=True)
    assert (canceled.exit_code, canceled.stderr) == (1, f"job {CANCELED} canceled\n")
    pending = invoke(["wait", str(PENDING), "--timeout", "100ms"], seeded, fails=True)
    assert (pending.exit_code, pending.stderr) == (
        1,
        f"job {PENDING} still pending after the timeout\n",
    )


def test_purge_deletes_finished_jobs_only(invoke: Invoke, seeded: Path) -> None:
    assert invoke(["purge", "--older-than", "1h"], seeded).stdout == "0\n"
    assert invoke(["purge", "--older-than", "0s", "--status", "failed"], seeded).stdout == "1\n"
    assert invoke(["purge", "--older-than", "0s"], seeded).stdout == "2\n"
    left = as_json(invoke(["jobs", "list", "--json"], seeded))
    assert [j["id"] for j in left] == [str(RUNNING), str(PENDING)]


# -- db and workers ------------------------------------------------------------------------------


def test_db_commands(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "schema.db"
    assert invoke(["db", "upgrade"], db).stdout == f"upgraded to {HEAD_REVISION}\n"
    assert invoke(["db", "upgrade"], db).stdout == f"already at {HEAD_REVISION}\n"
    assert invoke(["db", "current"], db).stdout == f"{HEAD_REVISION} (head)\n"
    assert invoke(["db", "check"], db).stdout == f"ok: schema at {HEAD_REVISION}, no drift\n"


def test_db_current_on_a_file_durableq_never_touched(invoke: Invoke, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert invoke(["db", "current"], empty).stdout == "none (run `durableq db upgrade`)\n"
    assert empty.read_bytes() == b""


def test_workers_when_none_are_alive(invoke: Invoke, seeded: Path) -> None:
    assert invoke(["workers"], seeded).stdout == "no live workers\n"
    assert as_json(invoke(["workers", "--json"], seeded)) == []


# -- where the database is -----------------------------------------------------------------------


def ids(invoke: Invoke, *args: str, **options: Any) -> list[str]:
    return [j["id"] for j in as_json(invoke([*args, "jobs", "list", "--json"], **options))]


def test_db_before_or_after_the_command_or_from_the_environment(
    invoke: Invoke, seeded: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    invoke(["enqueue", "echo"], other)
    assert ids(invoke, "--db", str(seeded)) == ["5", "4", "3", "2", "1"]
    after = as_json(invoke(["jobs", "list", "--json", "--db", str(other)]))
    assert [j["id"] for j in after] == ["1"]
    from_env = {"DURABLEQ_DATABASE": str(seeded)}
    assert len(ids(invoke, env=from_env)) == 5
    overridden = as_json(invoke(["jobs", "list", "--json", "--db", str(other)], env=from_env))
    assert len(overridden) == 1
    assert len(ids(invoke, "--db", str(other), env=from_env)) == 1


def test_default_database_is_durableq_db_in_the_current_directory(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke(["enqueue", "echo"]).stdout == "1\n"
    assert (tmp_path / "durableq.db").is_file()
    with Client.open(str(tmp_path / "durableq.db"), create=False) as client:
        assert client.get(1).type == "echo"


def test_read_commands_do_not_create_a_database(invoke: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for args in (["jobs", "list"], ["stats"], ["workers"], ["db", "current"], ["wait", "1"]):
        assert invoke(args, missing, fails=True).exit_code != 0
    assert list(tmp_path.iterdir()) == []


def test_reading_changes_nothing(invoke: Invoke, seeded: Path) -> None:
    before = content_hash(seeded)
    for args in (["jobs", "list"], ["jobs", "show", "2"], ["stats", "--json"], ["db", "check"]):
        invoke(args, seeded)
    assert content_hash(seeded) == before


# -- help and version ----------------------------------------------------------------------------


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    context = click.Context(group)
    commands = {name: group.get_command(context, name) for name in group.list_commands(context)}
    for name, command in sorted(commands.items()):
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", command_paths(cli), ids=lambda p: " ".join(p) or "durableq")
def test_help_on_every_command(invoke: Invoke, path: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        result = invoke([*path, flag])
        assert result.stdout.startswith("Usage: "), result.stdout
        assert result.stderr == ""


def test_every_documented_command_exists() -> None:
    paths = {" ".join(path) for path in command_paths(cli)}
    expected = {
        "enqueue",
        "jobs list",
        "jobs show",
        "cancel",
        "retry",
        "wait",
        "stats",
        "purge",
        "db upgrade",
        "db current",
        "db check",
        "workers",
        "worker start",
    }
    assert expected <= paths, expected - paths


def test_version(invoke: Invoke) -> None:
    assert invoke(["--version"]).stdout == f"durableq, version {__version__}\n"


def test_show_prints_what_the_handler_reported(invoke: Invoke, tmp_path: Path) -> None:
    from durableq.core.outcomes import Progress, Report

    db = tmp_path / "reported.db"
    with Client.open(str(db)) as client:
        job_id = client.enqueue("import")
        [claimed] = client.store.claim("w", (), 1, client.clock(), 30.0)
        report = Report(progress=0.4, progress_message="row 40 of 100", meta_json='{"cursor": 40}')
        client.store.record_progress(
            [Progress(job_id, claimed.lease_token, report)], client.clock()
        )
    shown = invoke(["jobs", "show", str(job_id)], db).stdout
    assert re.search(r"progress\s+40% row 40 of 100", shown), shown
    assert re.search(r'meta\s+\{"cursor": 40\}', shown), shown
    data = json.loads(invoke(["jobs", "show", str(job_id), "--json"], db).stdout)
    assert (data["progress"], data["progress_message"], data["meta"]) == (
        0.4,
        "row 40 of 100",
        {"cursor": 40},
    )
