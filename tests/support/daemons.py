"""Worker daemons started for one test, all writing one record file, none outliving the test.

with Daemons(tmp_path) as daemons:
    first = daemons.start(db, "--burst")
    ...
    daemons.records()  # the start/end lines written by tests.support.recorder handlers
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from durableq.client import Client
from durableq.core.jobs import Job, JobStatus
from tests.support.processes import environment, start_worker, stop, wait_until
from tests.support.recorder import read_records


class Daemons:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.record = directory / "record.jsonl"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, db: Path | str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """`durableq worker start ARGS` with the recorder app; `env` adds DURABLEQ_* settings."""
        log_path = self.directory / f"daemon-{len(self.processes)}.log"
        process = start_worker(db, *args, log_path=log_path, env=environment(self.record, **env))
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        number = self.processes.index(process)
        return (self.directory / f"daemon-{number}.log").read_text(errors="replace")

    def wait_for_log(
        self, process: subprocess.Popen[bytes], text: str, timeout: float = 30
    ) -> None:
        try:
            wait_until(lambda: text in self.log(process), timeout=timeout, what=repr(text))
        except AssertionError as error:
            raise AssertionError(f"{error}; the daemon's log:\n{self.log(process)}") from None

    def records(self, job_id: int | None = None, event: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in read_records(self.record)
            if (job_id is None or line["job"] == job_id)
            and (event is None or line["event"] == event)
        ]

    def wait_for_record(
        self, job_id: int, event: str = "start", count: int = 1, timeout: float = 30
    ) -> list[dict[str, Any]]:
        return wait_until(  # type: ignore[no-any-return]
            lambda: (found := self.records(job_id, event)) and len(found) >= count and found,
            timeout=timeout,
            what=f"{count} {event!r} record(s) of job {job_id}",
        )

    def stop(
        self, process: subprocess.Popen[bytes], timeout: float = 30, sig: int = signal.SIGTERM
    ) -> tuple[int, float]:
        """SIGTERM (or `sig`) and wait; returns the exit code and how long the exit took."""
        started = time.monotonic()
        code = stop(process, sig, timeout=timeout)
        return code, time.monotonic() - started

    def __enter__(self) -> Daemons:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_for_status(client: Client, job_id: int, *statuses: JobStatus, timeout: float = 30) -> Job:
    """Poll the job until it is in one of `statuses`; fail the test after `timeout`."""
    return wait_until(  # type: ignore[no-any-return]
        lambda: (job := client.get(job_id)).status in statuses and job,
        timeout=timeout,
        interval=0.02,
        what=f"job {job_id} to be {'/'.join(statuses)}",
    )
