"""The CLI as users run it: real `python -m durableq` processes, a real worker daemon."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from durableq.client import Client
from tests.support.processes import (
    DURABLEQ,
    environment,
    run_cli,
    start_worker,
    stop,
    wait_until,
)
from tests.support.recorder import read_records

WORKER_KEYS = {
    "id",
    "host",
    "pid",
    "queues",
    "concurrency",
    "started_at",
    "heartbeat_at",
    "leader",
}


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert "\x1b[" not in done.stdout + done.stderr, "colour codes off a terminal"
    return done.stdout


def test_enqueue_run_and_wait(seeded: Path, tmp_path: Path) -> None:
    """Payload from stdin and from a file, a batch from stdin; `wait` blocks until a worker has
    run the job, then exits 0 for completed and 1 for failed or still pending."""
    db, record = seeded, tmp_path / "record.jsonl"
    (tmp_path / "payload.json").write_text('{"succeed_on": 9}')
    slow = ok(run_cli(["enqueue", "record", "--payload", "-"], db, input='{"seconds": 1.5}'))
    flaky = ok(
        run_cli(
            ["enqueue", "flaky", "--payload-file", "payload.json", "--max-attempts", "1"],
            db,
            cwd=tmp_path,
        )
    )
    batch = '{"type": "record"}\n{"type": "record", "delay": "1h"}\n'
    assert ok(run_cli(["enqueue", "--batch", "-"], db, input=batch)) == "2\n"
    assert (slow, flaky) == ("6\n", "7\n")  # after the seeded jobs 1-5

    waiter = subprocess.Popen(
        [*DURABLEQ, "--db", str(db), "wait", "6", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    worker = start_worker(db, "--burst", record=record)
    try:
        wait_until(
            lambda: any(r["event"] == "start" and r["job"] == 6 for r in read_records(record)),
            what="job 6 to start",
        )
        assert waiter.poll() is None, "wait returned while its job was still running"
        assert worker.wait(timeout=60) == 0
        out, err = waiter.communicate(timeout=60)
    finally:
        stop(worker)
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert (waiter.returncode, out, err) == (0, "job 6 completed\n", "")

    failed = run_cli(["wait", "7"], db)
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr == "job 7 failed: RuntimeError: flaky failure on attempt 1\n"
    pending = run_cli(["wait", "9", "--timeout", "200ms"], db)
    assert (pending.returncode, pending.stderr) == (1, "job 9 still pending after the timeout\n")
    table = ok(run_cli(["jobs", "list", "--limit", "4"], db))
    assert [line.split()[1] for line in table.splitlines()[1:]] == [
        "pending",
        "completed",
        "failed",
        "completed",
    ]


def test_database_from_the_environment_after_the_command_and_by_default(
    seeded: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = environment(DURABLEQ_DATABASE=str(seeded))
    assert len(json.loads(ok(run_cli(["jobs", "list", "--json"], env=env, cwd=work)))) == 5
    assert ok(run_cli(["enqueue", "echo"], cwd=work)) == "1\n"
    assert [p.name for p in work.iterdir()] == ["durableq.db"]
    after = ["jobs", "list", "--json", "--db", str(work / "durableq.db")]
    assert [job["type"] for job in json.loads(ok(run_cli(after, env=env)))] == ["echo"]


def test_workers_lists_a_live_daemon(seeded: Path) -> None:
    db = seeded
    daemon = start_worker(db, "--concurrency", "2", "--queue", "mail=1", "--queue", "sms")
    try:
        with Client.open(str(db), create=False) as client:
            wait_until(client.workers, what="the daemon to register")
            wait_until(client.leader, what="the daemon to lead")
        [worker] = json.loads(ok(run_cli(["workers", "--json"], db)))
        table = ok(run_cli(["workers"], db))
    finally:
        assert stop(daemon) == 0
    assert set(worker) == WORKER_KEYS
    assert (worker["pid"], worker["queues"], worker["concurrency"]) == (
        daemon.pid,
        ["mail=1", "sms"],
        2,
    )
    assert worker["heartbeat_at"].endswith("Z")
    assert worker["leader"] is True  # the only daemon leads
    header, row = table.splitlines()
    assert header.split()[:3] == ["ID", "HOST", "PID"] and header.split()[-1] == "LEADER"
    assert row.split()[0] == worker["id"] and "mail=1,sms" in row and row.split()[-1] == "yes"


def test_help_exits_zero_and_touches_nothing(tmp_path: Path) -> None:
    assert ok(run_cli(["jobs", "list", "--help"], cwd=tmp_path)).startswith("Usage: ")
    assert list(tmp_path.iterdir()) == []


def on_a_terminal(
    args: list[str], db: Path, *, stream: str, stdin: Path | None = None
) -> tuple[int, str, str]:
    """Run with `stream` ("stdout" or "stderr") on a pseudo-terminal; returns the exit code,
    what went to the other stream (a pipe) and what the terminal showed."""
    leader, follower = pty.openpty()
    source = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL  # noqa: SIM115
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
    try:
        process = subprocess.Popen(
            [*DURABLEQ, "--db", str(db), *args],
            stdin=source,
            env=environment(),
            **streams,  # type: ignore[call-overload]
        )
    finally:
        os.close(follower)
        if stdin is not None:
            source.close()  # type: ignore[union-attr]
    shown = bytearray()
    while True:  # the terminal's output ends with EIO once the process has closed it
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    other = process.stderr if stream == "stdout" else process.stdout
    assert other is not None
    piped = other.read().decode()
    other.close()
    return process.wait(timeout=60), piped, shown.decode(errors="replace")


def test_colour_and_progress_only_on_a_terminal(seeded: Path, tmp_path: Path) -> None:
    code, _, table = on_a_terminal(["jobs", "list"], seeded, stream="stdout")
    assert code == 0 and "\x1b[" in table and "flaky" in table
    lines = tmp_path / "many.jsonl"
    lines.write_text("".join(json.dumps({"type": "noop"}) + "\n" for _ in range(1200)))
    code, count, progress = on_a_terminal(
        ["enqueue", "--batch", "-"], seeded, stream="stderr", stdin=lines
    )
    assert (code, count) == (0, "1200\n")
    assert "validating" in progress
