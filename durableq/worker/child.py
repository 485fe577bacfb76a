"""A process-pool child: runs handlers for its parent daemon, one job at a time, for as long as
the parent keeps it. It never opens the database; everything goes over one socket.

    parent -> child   ("run", ClaimedJob)   ("stop", reason)
    child -> parent   ("ready", pid)   ("report", progress, message, meta)
                      ("done", Attempt, Report)   ("failed", message): the apps did not load

Started by pool.py as `python -m durableq.worker.child FD SHELL APP...` in a session of its own,
so the parent can signal the whole process group (the handler's own children included). SIGTERM
raises JobCancelled in a running handler (a pure-Python loop stops there); a handler stuck in C
is killed by the parent after a grace period. A watchdog kills the group if the parent dies.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from durableq.core.jobs import ClaimedJob
from durableq.handlers.registry import JobCancelled, build_registry, is_async, load_registry
from durableq.worker.executor import Execution, Executor, StopReason, raised
from durableq.worker.reporting import Reporting

PARENT_CHECK = 0.2  # seconds between looks at whether the parent is still there
FORWARD_EVERY = 0.25  # reports reach the parent at most this often (it saves about 1/s)


class Link:
    """The socket to the parent; sends come from the main thread and the async loop's."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sending = False  # a message is half written: SIGTERM must not cut it short
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self.sending = True
            try:
                self.connection.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
            finally:
                self.sending = False

    def receive(self) -> Any:
        return pickle.loads(self.connection.recv_bytes())


class ForwardedReporting(Reporting):
    """Reports are checked and kept here (the final state goes back with the outcome) and
    forwarded to the parent, which saves them while the job runs."""

    def __init__(self, execution: Execution, link: Link) -> None:
        lost = lambda: execution.reason is StopReason.LOST  # noqa: E731
        super().__init__(execution.job.id, execution.job.meta, lost)
        self._link = link
        self._forwarded_at = 0.0

    def report(
        self,
        progress: float | None = None,
        message: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().report(progress, message, meta)
        now = time.monotonic()
        if meta is not None or now - self._forwarded_at >= FORWARD_EVERY:
            self._forwarded_at = now
            self._link.send(("report", progress, message, None if meta is None else dict(meta)))


class Child:
    """The main thread reads the parent's messages while idle and runs the handlers; a stop
    arrives as a message followed by SIGTERM, whose handler reads the reason (no thread of
    its own is needed, and a job costs no hand-off between threads)."""

    def __init__(self, link: Link, executor: Executor) -> None:
        self.link = link
        self.executor = executor
        self.current: Execution | None = None
        self.sync_handler = False  # SIGTERM may raise in it (an async one is cancelled)
        self._sync: dict[str, bool] = {}

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self.link.send(("ready", os.getpid()))
        while True:
            try:
                message = self.link.receive()
            except (EOFError, OSError):  # the parent closed the pool, or died
                return
            if message[0] == "run":
                (job_id, queue, job_type, payload, attempt, max_attempts) = message[1]
                timeout, token, meta = message[2]
                self._run(
                    ClaimedJob(
                        job_id,
                        queue,
                        job_type,
                        payload,
                        attempt,
                        max_attempts,
                        timeout,
                        token,
                        meta=meta,
                    )
                )
            # A "stop" read here came for a job already done: nothing to stop.

    def _run(self, job: ClaimedJob) -> None:
        execution = Execution(job)
        execution.reporting = ForwardedReporting(execution, self.link)
        self.current = execution
        self.sync_handler = self._is_sync(job.type)
        try:
            attempt = self.executor.attempt(execution)
        except BaseException as error:  # SIGTERM's JobCancelled outside the handler's own try
            attempt = raised(error)
        finally:
            self.sync_handler = False
            self.current = None
        report = execution.reporting.final()
        self.link.send(
            (
                "done",
                (attempt.kind, attempt.result_json, attempt.error, attempt.trace, attempt.delay),
                (report.progress, report.progress_message, report.meta_json),
            )
        )

    def _is_sync(self, job_type: str) -> bool:
        known = self._sync.get(job_type)
        if known is None:
            handler = self.executor.registry.get(job_type)
            known = self._sync[job_type] = handler is not None and not is_async(handler)
        return known

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        execution = self.current
        if execution is None:
            return
        execution.stop(self._stop_reason())  # ctx.cancelled: an async handler is cancelled
        if self.sync_handler and not self.link.sending:
            raise JobCancelled(f"job {execution.job.id} was stopped by its worker")

    def _stop_reason(self) -> StopReason:
        """The reason the parent sent just before its SIGTERM (still unread on the socket)."""
        reason = StopReason.CANCELED
        while self.link.connection.poll(0):
            message = self.link.receive()
            if message[0] == "stop":
                reason = StopReason(message[1])
        return reason


def watch_parent(parent: int) -> None:
    """If the parent dies (kill -9), take this process group down with it: no orphans."""
    while True:
        time.sleep(PARENT_CHECK)
        if os.getppid() != parent:
            os.killpg(os.getpgid(0), signal.SIGKILL)


def main(argv: list[str]) -> int:
    fd, shell, *apps = argv
    link = Link(Connection(int(fd)))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    if os.getcwd() not in sys.path:  # as the parent did, so `--app tasks:registry` is found
        sys.path.insert(0, os.getcwd())
    try:
        registry = build_registry(
            {spec: load_registry(spec) for spec in apps}, shell=shell == "shell"
        )
    except Exception as error:
        link.send(("failed", str(error)))
        return 1
    Child(link, Executor(registry)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
