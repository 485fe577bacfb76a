"""Runs one handler and turns whatever happens into an Outcome. Never raises; no database."""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
import traceback
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from durableq.core.jobs import ClaimedJob
from durableq.core.outcomes import Outcome, OutcomeKind, Report
from durableq.core.payloads import encode
from durableq.handlers.outcomes import Cancel, Fail, RetryIn, Snooze
from durableq.handlers.registry import JobContext, Registry, is_async
from durableq.worker.leases import FOREVER, StopSignal
from durableq.worker.reporting import Reporting

log = logging.getLogger("durableq.worker")


class StopReason(enum.StrEnum):
    CANCELED = "canceled"
    TIMED_OUT = "timed out"
    SHUTDOWN = "shutdown"
    LOST = "lost"  # the lease went to another worker: the outcome will be dropped
    LAPSED = "lease lapsed"  # not renewed in time: stop before anyone may rescue the job


LAPSED_ERROR = (
    "lease lapsed: the worker could not renew it in time (SQLite's write lock held by others "
    "for longer than the lease, or the process starved of CPU); the handler was told to stop"
)


@dataclass
class Execution:
    """One running attempt of a job, shared by its slot thread and the dispatcher.

    `lease_until(t)` moves the lease's end (a time.monotonic() value) later; once it passes,
    `cancelled` reads as set (see leases.StopSignal), whoever looks first.

    Claimed at `claimed`; a job claimed ahead (prefetch.py) waits for a slot until `begin()`,
    which starts its run time (and timeout), unless the dispatcher gave it back (`withdraw()`).
    """

    job: ClaimedJob
    claimed: float = field(default_factory=time.monotonic)
    reason: StopReason | None = None
    begun: bool = False
    withdrawn: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: StopSignal = field(init=False)
    reporting: Reporting = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.claimed
        self.cancelled = StopSignal(on_lapse=self._lapsed)
        self.reporting = Reporting(self.job.id, self.job.meta, self._lost)

    def _lost(self) -> bool:
        return self.reason is StopReason.LOST

    def begin(self) -> bool:
        """A slot starts the job now; False if the dispatcher gave it back while it waited."""
        with self._lock:
            if self.withdrawn:
                return False
            self.started = time.monotonic()
            self.begun = True
            return True

    def withdraw(self) -> bool:
        """Give back a job still waiting for a slot; False if a slot has started it."""
        with self._lock:
            if self.begun:
                return False
            self.withdrawn = True
            return True

    @property
    def deadline(self) -> float | None:
        return None if self.job.timeout is None else self.started + self.job.timeout

    @property
    def lease_deadline(self) -> float:
        return self.cancelled.deadline

    def lease_until(self, deadline: float) -> None:
        """A renewal committed: the lease now ends at `deadline` (never earlier than before)."""
        with self._lock:
            if deadline > self.cancelled.deadline or self.cancelled.deadline == FOREVER:
                self.cancelled.deadline = deadline

    def _lapsed(self) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = StopReason.LAPSED
        log.warning(
            "job %s: lease lapsed before it could be renewed; telling its handler to stop",
            self.job.id,
        )

    def stop(self, reason: StopReason) -> None:
        """Tell the handler to stop; a cancel outranks the reasons before it."""
        with self._lock:
            if self.reason is None or reason is StopReason.CANCELED:
                self.reason = reason
        self.cancelled.set()


class Runner(Protocol):
    """Runs executions: the Executor in this process's threads, or pool.ProcessPool."""

    # How long a turn may wait for quick jobs still running to finish too (dispatcher.py).
    linger: float

    def run(self, execution: Execution) -> Outcome: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """What running the handler did, before the worker's own stop reason is applied: the part
    a process-pool child sends back to its parent (pool.py)."""

    kind: OutcomeKind
    result_json: str | None = None
    error: str | None = None
    trace: str | None = None
    delay: float | None = None


class Executor:
    # Quick jobs in threads finish together anyway: a turn never waits for them.
    linger = 0.0

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()

    def run(self, execution: Execution) -> Outcome:
        unstarted = stopped_before_start(execution)
        return unstarted or outcome_of(execution, self.attempt(execution))

    def close(self) -> None:
        """Nothing to release: the handlers ran in this process's threads."""

    def attempt(self, execution: Execution) -> Attempt:
        job = execution.job
        handler = self.registry.get(job.type)
        if handler is None:
            return Attempt(
                OutcomeKind.RAISED,
                error=(
                    f"no handler for job type {job.type!r}; register one with "
                    f"@registry.handler({job.type!r}) and start the worker with --app"
                ),
            )
        context = JobContext(
            job_id=job.id,
            type=job.type,
            queue=job.queue,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            logger=log.getChild(job.type),
            timeout=job.timeout,
            cancelled=execution.cancelled,
            reporter=execution.reporting,
        )
        try:
            if is_async(handler):
                value = self._run_async(handler, context, job.payload, execution)
            else:
                value = handler(context, job.payload)
        except (Snooze, RetryIn, Fail, Cancel) as told:
            return _told(execution, told)
        except BaseException as error:  # a handler's SystemExit must not stop the worker
            return raised(error)
        try:
            result_json = None if value is None else encode(value)
        except (TypeError, ValueError, RecursionError) as error:
            return Attempt(
                OutcomeKind.RAISED,
                error=f"the handler returned a result that is not JSON-serialisable: {error}",
            )
        return Attempt(OutcomeKind.SUCCEEDED, result_json=result_json)

    def _run_async(
        self, handler: Any, context: JobContext, payload: dict[str, Any], execution: Execution
    ) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(
            handler(context, payload), self._event_loop()
        )
        # Returns the moment the coroutine finishes; looks at ctx.cancelled every 20 ms.
        while not futures.wait([future], timeout=0.02).done:
            if execution.cancelled.is_set():
                future.cancel()  # real cancellation: CancelledError inside the coroutine
                break
        return future.result()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="durableq-async", daemon=True
                ).start()
                self._loop = loop
            return self._loop


def stopped_before_start(execution: Execution) -> Outcome | None:
    """Claimed, but stopped before a slot could start it: never start a handler then.

    A lapsed lease (a starved process) gives the job back, attempt not counted; so does a
    shutdown or a lost lease; a cancel cancels it. A job claimed ahead (prefetch.py) waits for
    a slot, so this is no rare race: a cancel may well arrive first.
    """
    if execution.cancelled.lapsed():
        log.warning(
            "job %s: lease lapsed before its handler started; giving it back", execution.job.id
        )
        return Outcome(job=execution.job, kind=OutcomeKind.INTERRUPTED, duration=0.0)
    if execution.reason is None:
        return None
    log.info("job %s: %s before its handler started", execution.job.id, execution.reason.value)
    return replace(
        outcome_of(execution, Attempt(OutcomeKind.INTERRUPTED)), duration=0.0, started=None
    )


def _told(execution: Execution, told: Snooze | RetryIn | Fail | Cancel) -> Attempt:
    """The handler chose how its attempt ends (handlers/outcomes.py)."""
    if isinstance(told, Snooze):
        execution.reporting.count("snoozes")
        return Attempt(OutcomeKind.SNOOZED, delay=told.seconds)
    if isinstance(told, RetryIn):
        return Attempt(OutcomeKind.RETRY_IN, error=str(told), delay=told.seconds)
    if isinstance(told, Cancel):
        if told.reason:
            execution.reporting.note("cancel_reason", told.reason)
        return Attempt(OutcomeKind.CANCELED)
    kind = OutcomeKind.RAISED if told.retry else OutcomeKind.GAVE_UP
    return Attempt(kind, error=f"Fail: {told.reason}")


def raised(error: BaseException) -> Attempt:
    return Attempt(
        OutcomeKind.RAISED,
        error=f"{type(error).__name__}: {error}",
        trace="".join(traceback.format_exception(error)),
    )


def outcome_of(execution: Execution, attempt: Attempt, report: Report | None = None) -> Outcome:
    """The outcome of an attempt, given why the worker stopped it (if it did): a cancel, a
    shutdown, a lapsed lease or a timeout outranks what the handler did."""
    kind, error, trace = attempt.kind, attempt.error, attempt.trace
    reason = execution.reason
    if reason is StopReason.CANCELED:
        kind, error, trace = OutcomeKind.CANCELED, None, None
    elif reason is StopReason.SHUTDOWN:
        kind, error, trace = OutcomeKind.INTERRUPTED, None, None
    elif reason is StopReason.LAPSED and kind is not OutcomeKind.SUCCEEDED:
        kind, error, trace = OutcomeKind.LAPSED, LAPSED_ERROR, None
    elif reason is StopReason.TIMED_OUT:
        kind = OutcomeKind.TIMED_OUT
        error = f"timed out after {execution.job.timeout:g}s" + (f" ({error})" if error else "")
    return Outcome(
        job=execution.job,
        kind=kind,
        duration=time.monotonic() - execution.started,
        result_json=attempt.result_json,
        error=_storable(error),
        traceback=_storable(trace),
        delay=attempt.delay,
        report=execution.reporting.final() if report is None else report,
        started=execution.started if execution.begun else None,
    )


def _storable(text: str | None) -> str | None:
    """Text a database can store: a lone surrogate (say, from undecodable bytes in an
    exception message) has no UTF-8 form and would make saving the outcome fail."""
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")
