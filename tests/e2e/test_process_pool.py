"""`worker start --pool process`: handlers in child processes that a timeout or a cancel can
stop however they misbehave, with real daemons, real signals and real process tables.

- `while True: pass` with a 1 s timeout fails within 1 s + the grace, and the process is gone;
- a C-level sleep (ctypes) and a handler that swallows every exception are stopped as well;
- `os._exit(137)` is recorded as worker lost and retried;
- a grandchild the handler started dies with its child;
- kill -9 of the daemon leaves no child or grandchild behind, and the job is rescued as usual;
- children are reused across jobs; reports, snoozes and async handlers work there too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.jobs import JobStatus
from durableq.worker.pool import KILL_GRACE
from tests.support.processes import REPO, environment, start_worker, stop, wait_until

pytestmark = pytest.mark.timeout(120)

APP = """
import asyncio, ctypes, os, subprocess, time
from durableq import JobContext, Registry, Snooze

registry = Registry()


def note_pid(payload):
    path = payload.get("pidfile")
    if path:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


@registry.handler("spin")
def spin(ctx, payload):
    note_pid(payload)
    while True:
        pass


@registry.handler("c_sleep")
def c_sleep(ctx, payload):
    note_pid(payload)
    ctypes.CDLL(None).sleep(60)


@registry.handler("stubborn")
def stubborn(ctx, payload):
    note_pid(payload)
    while True:
        try:
            time.sleep(60)
        except BaseException:
            pass  # swallows the worker's SIGTERM: only SIGKILL stops it


@registry.handler("exit137")
def exit137(ctx, payload):
    os._exit(137)


@registry.handler("grandchild")
def grandchild(ctx, payload):
    note_pid(payload)
    sleeper = subprocess.Popen(["sleep", "300"])
    with open(payload["grandchild"], "w") as f:
        f.write(str(sleeper.pid))
    while True:
        time.sleep(0.05)


@registry.handler("pid")
def pid(ctx, payload):
    return os.getpid()


@registry.handler("report")
def report(ctx, payload):
    ctx.report_progress(0.5, "half")
    ctx.update_meta({"pid": os.getpid()})
    return "ok"


@registry.handler("snooze_once")
def snooze_once(ctx, payload):
    if not os.path.exists(payload["flag"]):
        open(payload["flag"], "w").close()
        raise Snooze(0)
    return "woke"


@registry.handler("async_ping")
async def async_ping(ctx, payload):
    await asyncio.sleep(0.01)
    return {"pong": os.getpid()}
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "poolapp.py").write_text(APP)
    return tmp_path


def pool_worker(db: Path, app_dir: Path, *extra: str, **settings: str) -> subprocess.Popen[bytes]:
    env = pool_env(app_dir, DURABLEQ_BACKOFF_BASE="0.1", DURABLEQ_BACKOFF_JITTER="0", **settings)
    return start_worker(
        db,
        "--pool",
        "process",
        *extra,
        app="poolapp:registry",
        env=env,
        log_path=app_dir / "worker.log",
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def read_pid(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip(), what=f"{path.name}")
    return int(path.read_text())


@pytest.mark.parametrize("kind", ["spin", "c_sleep", "stubborn"])
def test_a_handler_past_its_timeout_is_stopped_and_its_process_is_gone(
    db_path: Path, app_dir: Path, kind: str
) -> None:
    pidfile = app_dir / f"{kind}.pid"
    with Client.open(str(db_path)) as client:
        job_id = client.enqueue(kind, {"pidfile": str(pidfile)}, timeout=1, max_attempts=1)
        daemon = pool_worker(db_path, app_dir, "--concurrency", "1")
        try:
            child = read_pid(pidfile)
            wait_until(
                lambda: client.get(job_id).status is JobStatus.FAILED,
                timeout=10,
                what="the timed-out job to fail",
            )
            job = client.get(job_id)
            assert job.last_error is not None and job.last_error.startswith("timed out after 1s")
            assert job.started_at is not None and job.finished_at is not None
            took = (job.finished_at - job.started_at).total_seconds()
            assert took <= 1 + KILL_GRACE + 0.5, took
            if kind == "stubborn":  # it swallowed SIGTERM: the process had to be killed
                wait_until(lambda: not alive(child), timeout=3, what="the child to be gone")
                assert "killed" in job.last_error
            # The slot runs the next job in a live child (a fresh one where it was killed).
            next_id = client.enqueue("pid")
            wait_until(lambda: client.get(next_id).status is JobStatus.COMPLETED)
            assert alive(client.get(next_id).result)
        finally:
            stop(daemon)
        print(f"[pool] {kind}: failed {took:.2f}s after its start (timeout 1s)")


def test_a_child_that_dies_is_worker_lost_and_retried(db_path: Path, app_dir: Path) -> None:
    with Client.open(str(db_path)) as client:
        job_id = client.enqueue("exit137", max_attempts=2)
        daemon = pool_worker(db_path, app_dir, "--concurrency", "1")
        try:
            wait_until(lambda: client.get(job_id).status is JobStatus.FAILED, timeout=20)
        finally:
            stop(daemon)
        errors = [error.error for error in client.errors(job_id)]
        assert errors == ["worker lost: the handler's process died (exit code 137)"] * 2


def test_a_grandchild_dies_with_its_child(db_path: Path, app_dir: Path) -> None:
    grandchild = app_dir / "grandchild.pid"
    with Client.open(str(db_path)) as client:
        job_id = client.enqueue(
            "grandchild", {"grandchild": str(grandchild)}, timeout=1, max_attempts=1
        )
        daemon = pool_worker(db_path, app_dir, "--concurrency", "1")
        try:
            sleeper = read_pid(grandchild)
            assert alive(sleeper)
            wait_until(lambda: client.get(job_id).status is JobStatus.FAILED, timeout=10)
            wait_until(lambda: not alive(sleeper), timeout=5, what="the grandchild to die")
        finally:
            stop(daemon)


def test_kill_9_of_the_daemon_leaves_no_orphans_and_the_job_is_rescued(
    db_path: Path, app_dir: Path
) -> None:
    pidfile, grandchild = app_dir / "child.pid", app_dir / "grandchild.pid"
    with Client.open(str(db_path)) as client:
        job_id = client.enqueue(
            "grandchild",
            {"pidfile": str(pidfile), "grandchild": str(grandchild)},
            timeout=4,
            max_attempts=3,
        )
        daemon = pool_worker(db_path, app_dir, "--concurrency", "1", DURABLEQ_LEASE="2s")
        child, sleeper = read_pid(pidfile), read_pid(grandchild)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        killed = time.monotonic()
        wait_until(lambda: not alive(child) and not alive(sleeper), timeout=5, what="orphans")
        gone_after = time.monotonic() - killed
        assert client.get(job_id).status is JobStatus.RUNNING  # until its lease is rescued
        pidfile.unlink()
        rescuer = pool_worker(db_path, app_dir, "--concurrency", "1", "--lease", "2s")
        try:
            wait_until(lambda: client.get(job_id).attempts == 2, timeout=30, what="the rescue")
            assert "died" in (client.errors(job_id)[0].error)
        finally:
            stop(rescuer)
    print(f"[pool] kill -9: child and grandchild gone {gone_after:.2f}s after the daemon")


def test_children_are_reused_and_run_reports_snoozes_and_async(
    db_path: Path, app_dir: Path
) -> None:
    with Client.open(str(db_path)) as client:
        pids = client.enqueue_many([{"type": "pid"}] * 20)
        reported = client.enqueue("report")
        snoozed = client.enqueue("snooze_once", {"flag": str(app_dir / "flag")})
        pinged = client.enqueue("async_ping")
        done = subprocess.run(
            [
                *pool_cli(db_path),
                "--concurrency",
                "2",
                "--burst",
            ],
            env=pool_env(app_dir),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        used = {client.get(i).result for i in pids}
        assert len(used) <= 2  # two slots, two long-lived children for twenty jobs
        job = client.get(reported)
        assert (job.progress, job.progress_message, job.status) == (
            0.5,
            "half",
            JobStatus.COMPLETED,
        )
        assert job.meta is not None and job.meta["pid"] in used
        woke = client.get(snoozed)
        assert (woke.result, woke.attempts, woke.meta) == ("woke", 1, {"snoozes": 1})
        assert client.get(pinged).result["pong"] in used


def test_an_app_that_does_not_load_in_the_child_is_one_clear_line(
    db_path: Path, app_dir: Path
) -> None:
    done = subprocess.run(
        [*pool_cli(db_path, app="nosuchmodule:registry"), "--burst"],
        env=pool_env(app_dir),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "cannot import 'nosuchmodule'" in done.stderr


def pool_cli(db: Path, app: str = "poolapp:registry") -> list[str]:
    from tests.support.processes import DURABLEQ

    return [*DURABLEQ, "--db", str(db), "worker", "start", "--pool", "process", "--app", app]


def pool_env(app_dir: Path, **settings: str) -> dict[str, str]:
    env = environment(**settings)
    env["PYTHONPATH"] = os.pathsep.join([str(app_dir), env["PYTHONPATH"]])
    return env


def test_cancel_stops_a_handler_that_never_looks(db_path: Path, app_dir: Path) -> None:
    pidfile = app_dir / "spin.pid"
    with Client.open(str(db_path)) as client:
        job_id = client.enqueue("spin", {"pidfile": str(pidfile)}, max_attempts=5)
        daemon = pool_worker(db_path, app_dir, "--concurrency", "1")
        try:
            read_pid(pidfile)
            client.cancel(job_id)
            asked = time.monotonic()
            wait_until(lambda: client.get(job_id).status is JobStatus.CANCELED, timeout=10)
            took = time.monotonic() - asked
        finally:
            stop(daemon)
        assert took < 1 + KILL_GRACE, took
        assert client.errors(job_id) == []
    print(f"[pool] cancel of a spinning handler: canceled {took:.2f}s after the request")
