"""The process pool (`worker start --pool process`): handlers run in long-lived child processes
(child.py), one per slot, so a handler that ignores `ctx.cancelled` can still be stopped.

The parent keeps everything that touches the database (claims, heartbeats, every fenced write);
a child only runs handlers and sends back what happened. On a timeout, a cancel, a lapsed lease
or a shutdown the parent tells the child why (so `ctx.cancelled` is set), sends SIGTERM to the
child's process group (a pure-Python handler stops at once), and after KILL_GRACE sends SIGKILL
(a handler stuck in C, or one that swallowed the exception); a fresh child takes the slot. A
child that dies on its own (a segfault, `os._exit`, the OOM killer) ends the attempt as
"worker lost", retried like any failure.

Children are started as `python -m durableq.worker.child` (a new interpreter: never a fork of
this threaded daemon), in a session of their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from durableq.core.errors import HandlerNotFound
from durableq.core.outcomes import Outcome, OutcomeKind, Report
from durableq.handlers.outcomes import LeaseLost
from durableq.worker.executor import Attempt, Execution, outcome_of, stopped_before_start

log = logging.getLogger("durableq.worker")

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
START_TIMEOUT = 60.0  # a child importing a big app may take a while
POLL = 0.02  # how often a waiting slot looks at ctx.cancelled


class ChildProcess:
    """One child and the parent's end of its socket."""

    def __init__(self, apps: Sequence[str], shell: bool) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "durableq.worker.child",
                    str(theirs.fileno()),
                    "shell" if shell else "no-shell",
                    *apps,
                ],
                pass_fds=[theirs.fileno()],
                start_new_session=True,  # its own process group: killpg reaches grandchildren
            )
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        self.pid = self.process.pid

    def wait_ready(self) -> None:
        if not self.connection.poll(START_TIMEOUT):
            self.kill()
            raise HandlerNotFound(f"a process-pool child did not start in {START_TIMEOUT:g}s")
        message = self._receive()
        if message is None:
            code = self.process.wait()
            raise HandlerNotFound(f"a process-pool child exited at start (code {code})") from None
        if message[0] == "failed":
            self.kill()
            raise HandlerNotFound(f"a process-pool child could not load the apps: {message[1]}")

    def run(self, execution: Execution) -> tuple[Outcome, bool]:
        """Run the execution's job in this child; the outcome, and whether the child lives."""
        job = execution.job
        # Plain tuples: pickling dataclasses costs several times more (a round trip is ~300 us).
        self._send(
            (
                "run",
                (job.id, job.queue, job.type, job.payload, job.attempt, job.max_attempts),
                (job.timeout, job.lease_token, job.meta),
            )
        )
        stopped_at: float | None = None
        while True:
            if self._ready():
                message = self._receive()
                if message is None:
                    return self._died(execution), False
                if message[0] == "report":
                    _forward(execution, message)
                elif message[0] == "done":
                    attempt = Attempt(*message[1])
                    report = Report(*message[2])
                    return outcome_of(execution, attempt, report), True
                continue
            if execution.cancelled.is_set():
                now = time.monotonic()
                if stopped_at is None:
                    stopped_at = now
                    self._stop(execution)
                elif now - stopped_at >= KILL_GRACE:
                    log.warning(
                        "job %s: handler still running %gs after SIGTERM; killing its process",
                        execution.job.id,
                        KILL_GRACE,
                    )
                    self.kill()
                    return self._died(execution), False

    def _ready(self) -> bool:
        try:
            return self.connection.poll(POLL)
        except (EOFError, OSError):
            return True  # _receive sees the end

    def _send(self, message: tuple[Any, ...]) -> None:
        # Plain pickle: multiprocessing's own pickler costs more per message.
        self.connection.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def _receive(self) -> Any:
        try:
            return pickle.loads(self.connection.recv_bytes())
        except (EOFError, OSError):
            return None

    def _stop(self, execution: Execution) -> None:
        reason = execution.reason
        with contextlib.suppress(OSError):  # already gone: the next poll sees it
            if reason is not None:
                self._send(("stop", reason.value))
            os.killpg(self.pid, signal.SIGTERM)

    def _died(self, execution: Execution) -> Outcome:
        """The child is gone (killed by us, or by something else) while running the job."""
        self.kill()
        code = self.process.wait()
        if execution.reason is not None:  # we stopped it: the reason says what happened
            error = f"its process was killed {KILL_GRACE:g}s after SIGTERM"
            return outcome_of(execution, Attempt(OutcomeKind.RAISED, error=error))
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        log.warning("job %s: its handler's process died (%s)", execution.job.id, how)
        error = f"worker lost: the handler's process died ({how})"
        return outcome_of(execution, Attempt(OutcomeKind.RAISED, error=error))

    def kill(self) -> None:
        """SIGKILL to the child's whole process group (its own children too)."""
        with contextlib.suppress(OSError):  # ProcessLookupError: already gone
            os.killpg(self.pid, signal.SIGKILL)
        self.connection.close()

    def close(self) -> None:
        """Let an idle child go: it exits when its socket closes; killed if it lingers."""
        self.connection.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()


def _forward(execution: Execution, message: tuple[Any, ...]) -> None:
    """A child's report reaches this execution's reporting, which the progress saver saves."""
    _, progress, text, meta = message
    try:
        execution.reporting.report(progress, text, meta)
    except LeaseLost:
        pass  # the child was told (a "stop" with reason lost); its next report raises there
    except Exception as error:  # checked in the child already; never let it stop the slot
        log.warning("job %s: a report from its handler was refused: %s", execution.job.id, error)


class ProcessPool:
    """As Executor (`run(execution) -> Outcome`), in child processes: one per slot, reused."""

    # Quick jobs claimed together come back from their children a round trip (~0.3 ms) apart:
    # waiting up to 1 ms lets one commit save them all (measured at --concurrency 4, no-op
    # jobs: 2 per commit and 1,280 jobs/s without, 4 per commit and 1,930-2,020 jobs/s with).
    linger = 0.001

    def __init__(self, apps: Sequence[str], shell: bool, size: int) -> None:
        self.apps, self.shell, self.size = list(apps), shell, size
        self._idle: list[ChildProcess] = []
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._starting = 0  # replacements on their way
        self._closed = False
        started = [ChildProcess(self.apps, shell) for _ in range(size)]
        try:
            for child in started:
                child.wait_ready()
        except BaseException:
            for child in started:
                child.kill()
            raise
        self._idle.extend(started)

    def run(self, execution: Execution) -> Outcome:
        unstarted = stopped_before_start(execution)
        if unstarted is not None:
            return unstarted
        child = self._take()
        outcome, alive = child.run(execution)
        if alive:
            self._give_back(child)
        else:
            with self._lock:
                self._starting += 1
            threading.Thread(target=self._replace, daemon=True).start()
        return outcome

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()

    def _take(self) -> ChildProcess:
        """An idle child; or the replacement on its way; or, failing that, a new one."""
        with self._lock:
            self._returned.wait_for(lambda: self._idle or not self._starting, START_TIMEOUT)
            if self._idle:
                return self._idle.pop()
        child = ChildProcess(self.apps, self.shell)
        child.wait_ready()
        return child

    def _give_back(self, child: ChildProcess) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.size:
                self._idle.append(child)
                self._returned.notify()
                return
        child.close()

    def _replace(self) -> None:
        """A fresh child for a slot whose child was killed or died, started ahead of need."""
        child: ChildProcess | None = None
        try:
            child = ChildProcess(self.apps, self.shell)
            child.wait_ready()
        except Exception as error:
            log.warning("could not start a process-pool child: %s", error)
            child = None
        with self._lock:
            self._starting -= 1
            if child is not None and not self._closed and len(self._idle) < self.size:
                self._idle.append(child)
                child = None  # kept
            self._returned.notify_all()
        if child is not None:
            child.close()
