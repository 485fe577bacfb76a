"""The executions a daemon holds: running, or claimed ahead and waiting for a slot.

The dispatcher's thread adds and removes them; the services' threads (the heartbeat, the progress
saver) renew their leases, read what they reported and stop them. One lock guards the map; an
execution's own state has its own (executor.Execution).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping, Sequence

from durableq.core.outcomes import Progress
from durableq.worker.executor import Execution, StopReason

log = logging.getLogger("durableq.worker")


class Running:
    def __init__(self, lease: float) -> None:
        self.lease = lease
        self._executions: dict[int, Execution] = {}
        self._lock = threading.Lock()
        self.last_renewal = time.monotonic()  # when the last committed renewal read the time

    # -- the dispatcher's side -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._executions)

    def add(self, execution: Execution) -> None:
        with self._lock:
            self._executions[execution.job.id] = execution

    def pop(self, job_id: int) -> Execution | None:
        with self._lock:
            return self._executions.pop(job_id, None)

    def current(self, job_id: int, token: str) -> Execution | None:
        """The execution of this job under this lease token, if it is still held."""
        execution = self._executions.get(job_id)
        return execution if execution is not None and execution.job.lease_token == token else None

    def snapshot(self) -> list[Execution]:
        with self._lock:
            return list(self._executions.values())

    def clear(self) -> list[Execution]:
        with self._lock:
            executions = list(self._executions.values())
            self._executions.clear()
        return executions

    def per_queue(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(ex.job.queue for ex in self._executions.values())

    # -- what other threads may ask --------------------------------------------------------

    def tokens(self) -> dict[int, str]:
        with self._lock:
            return {job_id: ex.job.lease_token for job_id, ex in self._executions.items()}

    def renewed(self, tokens: Mapping[int, str], at_mono: float) -> None:
        """A renewal that read the time at `at_mono` committed for these jobs (id -> token)."""
        until = at_mono + self.lease
        with self._lock:
            executions = [
                ex
                for job_id, ex in self._executions.items()
                if tokens.get(job_id) == ex.job.lease_token
            ]
        for execution in executions:
            execution.lease_until(until)
        self.last_renewal = max(self.last_renewal, at_mono)

    def reports_due(self, now_mono: float) -> list[Progress]:
        """What running handlers reported since their last save, for the progress saver."""
        due = []
        for execution in self.snapshot():
            report = execution.reporting.due(now_mono)
            if report is not None:
                due.append(Progress(execution.job.id, execution.job.lease_token, report))
        return due

    def reports_unsaved(self, updates: Sequence[Progress]) -> None:
        with self._lock:
            executions = [self._executions.get(update.job_id) for update in updates]
        for execution in executions:
            if execution is not None:
                execution.reporting.unsaved()

    def hurry_at(self) -> float | None:
        """From when a renewal should wait for the write lock ahead of everyone else: once the
        earliest running lease is within half a lease of its end."""
        with self._lock:
            ends = [ex.lease_deadline for ex in self._executions.values()]
        return min(ends) - self.lease / 2 if ends else None

    def stop_all(self, reason: StopReason) -> None:
        with self._lock:
            job_ids = list(self._executions)
        self.stop(job_ids, reason)

    def stop(self, job_ids: Sequence[int] | frozenset[int], reason: StopReason) -> None:
        with self._lock:
            executions = [self._executions[i] for i in job_ids if i in self._executions]
        for execution in executions:
            if execution.reason is not reason:
                log.info("job %s: stopping its handler (%s)", execution.job.id, reason.value)
            execution.stop(reason)
