"""Running durableq as users do: real subprocesses, real signals, waiting on conditions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DURABLEQ = [sys.executable, "-m", "durableq"]


def environment(record: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.pop("DURABLEQ_DATABASE", None)
    if record is not None:
        env["DURABLEQ_TEST_RECORD"] = str(record)
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    db: Path | str | None = None,
    *,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`durableq [--db DB] ARGS...` in a subprocess; returns the completed process."""
    command = [*DURABLEQ, *(["--db", str(db)] if db is not None else []), *args]
    return subprocess.run(
        command,
        input=input,
        capture_output=True,
        text=True,
        env=env or environment(),
        timeout=timeout,
        cwd=cwd,
    )


def run_cli_importing(
    db: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], bool, list[str]]:
    """`durableq --db DB ARGS...` under `-X importtime`: the process, whether it imported
    SQLAlchemy, and its stderr lines other than the import times."""
    done = subprocess.run(
        [*DURABLEQ[:1], "-X", "importtime", *DURABLEQ[1:], "--db", str(db), *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
    )
    # -X importtime prints "import time: self | cumulative | <indent>module" per import.
    lines = done.stderr.splitlines()
    imported = any(line.split("|")[-1].strip() == "sqlalchemy" for line in lines)
    return done, imported, [line for line in lines if not line.startswith("import time:")]


def start_worker(
    db: Path | str,
    *extra: str,
    record: Path | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    app: str | None = "tests.support.recorder:registry",
) -> subprocess.Popen[bytes]:
    """`durableq worker start` as a daemon subprocess, logging to `log_path` (or DEVNULL)."""
    command = [*DURABLEQ, "--db", str(db), "worker", "start"]
    if app:
        command += ["--app", app]
    command += list(extra)
    output: Any = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env or environment(record),
            cwd=REPO,
        )
    finally:
        if log_path is not None:
            output.close()


def wait_until(
    condition: Callable[[], Any], timeout: float = 30, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Signal a process and wait for it; SIGKILL it if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
