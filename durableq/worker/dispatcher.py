"""Claims jobs for free slots, hands them to the slot threads, and persists their outcomes.

One thread (the dispatcher's) does all the hot-path database work: it claims in batches sized to
the free slots and writes finished jobs in batches, so handler threads never touch the database
and a busy worker pays one commit for many jobs.
"""

from __future__ import annotations

import collections
import heapq
import logging
import queue
import random
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from durableq.core.config import Settings
from durableq.core.errors import DatabaseError
from durableq.core.jobs import Action, ClaimedJob
from durableq.core.outcomes import Finish, Outcome, Progress, release, resolve
from durableq.store.api import Store
from durableq.store.changes import SAFETY_RECHECK, ChangeWatcher
from durableq.worker.doorbell import Doorbell
from durableq.worker.events import Events, JobFinished, JobStarted
from durableq.worker.executor import Execution, Runner, StopReason
from durableq.worker.leases import Stamp
from durableq.worker.options import WorkerOptions
from durableq.worker.trouble import Trouble

log = logging.getLogger("durableq.worker")
T = TypeVar("T")

SHUTDOWN_GRACE = 2.0
BUSY_BACKOFF_MAX = 2.0
RETRY_MARGIN = 0.002  # wake just after a retry falls due, never just before
LINGER_WINDOW = 0.005  # a turn lingers (Runner.linger) only when every running job is this new
WAKE_FOR = frozenset({Action.RETRY_LATER, Action.SNOOZE})  # due again later: wake then


class Dispatcher:
    def __init__(
        self,
        store: Store,
        executor: Runner,
        settings: Settings,
        options: WorkerOptions,
        worker_id: str,
        clock: Callable[[], datetime],
        events: Events | None = None,
    ) -> None:
        self.events = events or Events()
        self.store = store
        self.executor = executor
        self.settings = settings
        self.options = options
        self.worker_id = worker_id
        self.clock = clock
        self.stopping = threading.Event()
        self._rng = random.Random()
        self._work: queue.SimpleQueue[Execution | None] = queue.SimpleQueue()
        self._done: collections.deque[Outcome] = collections.deque()
        self._wakeup = Doorbell()
        self._running: dict[int, Execution] = {}
        self._running_lock = threading.Lock()
        self._unsaved: list[tuple[Finish, Outcome | None]] = []
        self._deadlines: list[tuple[float, int, str]] = []
        self._slots: list[threading.Thread] = []
        self._busy_delay = 0.0
        self._busy_until = 0.0
        self._trouble = Trouble("worker")
        self._retries: list[float] = []  # when this worker's scheduled retries fall due
        self.last_renewal = time.monotonic()  # when the last committed renewal read the time
        self.processed = 0

    # -- what other threads may ask -------------------------------------------------------

    def running_tokens(self) -> dict[int, str]:
        with self._running_lock:
            return {job_id: ex.job.lease_token for job_id, ex in self._running.items()}

    def renewed(self, tokens: Mapping[int, str], at_mono: float) -> None:
        """A renewal that read the time at `at_mono` committed for these jobs (id -> token)."""
        until = at_mono + self.settings.lease
        with self._running_lock:
            executions = [
                ex
                for job_id, ex in self._running.items()
                if tokens.get(job_id) == ex.job.lease_token
            ]
        for execution in executions:
            execution.lease_until(until)
        self.last_renewal = max(self.last_renewal, at_mono)

    def reports_due(self, now_mono: float) -> list[Progress]:
        """What running handlers reported since their last save, for the progress saver."""
        with self._running_lock:
            executions = list(self._running.values())
        due = []
        for execution in executions:
            report = execution.reporting.due(now_mono)
            if report is not None:
                due.append(Progress(execution.job.id, execution.job.lease_token, report))
        return due

    def reports_unsaved(self, updates: Sequence[Progress]) -> None:
        with self._running_lock:
            executions = [self._running.get(update.job_id) for update in updates]
        for execution in executions:
            if execution is not None:
                execution.reporting.unsaved()

    def hurry_at(self) -> float | None:
        """From when a renewal should wait for the write lock ahead of everyone else: once the
        earliest running lease is within half a lease of its end."""
        with self._running_lock:
            ends = [ex.lease_deadline for ex in self._running.values()]
        return min(ends) - self.settings.lease / 2 if ends else None

    def stop_jobs(self, job_ids: Sequence[int] | frozenset[int], reason: StopReason) -> None:
        with self._running_lock:
            executions = [self._running[i] for i in job_ids if i in self._running]
        for execution in executions:
            if execution.reason is not reason:
                log.info("job %s: stopping its handler (%s)", execution.job.id, reason.value)
            execution.stop(reason)

    def request_stop(self) -> None:
        self.stopping.set()
        self._wakeup.ring()

    # -- the slot threads ------------------------------------------------------------------

    def _start_slots(self) -> None:
        for number in range(self.options.concurrency):
            thread = threading.Thread(
                target=self._slot, name=f"durableq-slot-{number}", daemon=True
            )
            thread.start()
            self._slots.append(thread)

    def _slot(self) -> None:
        while (execution := self._work.get()) is not None:
            self.events.emit(JobStarted(execution.job))
            self._done.append(self.executor.run(execution))
            self._wakeup.ring()

    # -- the loop -------------------------------------------------------------------------

    def run(self, watcher: ChangeWatcher) -> None:
        """Work until asked to stop (or, in burst mode, until nothing is due), then drain."""
        self._start_slots()
        next_poll = 0.0
        backlog = True  # the last claim filled every free slot: more may be due
        changed = False
        try:
            while not self.stopping.is_set():
                self._collect()
                self._enforce_deadlines()
                free = self.options.concurrency - len(self._running)
                claimed = 0
                now = time.monotonic()
                wanted = backlog or changed or now >= next_poll or self.options.burst
                if free > 0 and wanted and self._ready():
                    free += self._linger()
                    claimed, held, wake_in = self._turn(free)
                    next_poll = now + self.settings.poll_interval
                    if wake_in is not None:  # a rate limit frees a start before the poll
                        next_poll = min(next_poll, now + wake_in + RETRY_MARGIN)
                    while self._retries and self._retries[0] <= now:
                        heapq.heappop(self._retries)
                    # Held back by a concurrency limit: a job finishing may let more start.
                    backlog, changed = claimed == free or held, False
                    waiting = wake_in is not None  # due jobs a rate limit holds back
                    if self.options.burst and claimed == 0 and self._idle() and not waiting:
                        break
                else:
                    self._save()
                if self._retries:  # a retry this worker scheduled is due before the next poll
                    next_poll = min(next_poll, self._retries[0])
                changed = self._idle_wait(watcher, next_poll, free - claimed > 0) or changed
        finally:
            self._drain()

    def _linger(self) -> int:
        """Jobs claimed together and quick to run finish close together, but not at once when
        they run in other processes: when everything still running started under
        LINGER_WINDOW ago, wait up to the runner's linger for it, so one commit saves them
        all. Returns the slots that freed meanwhile."""
        linger = self.executor.linger
        if not linger or not self._unsaved or not self._running:
            return 0
        before = len(self._running)
        deadline = time.monotonic() + linger
        while self._running:
            now = time.monotonic()
            with self._running_lock:
                oldest = min((ex.started for ex in self._running.values()), default=now)
            if now >= deadline or now - oldest > LINGER_WINDOW:
                break
            self._wakeup.wait(deadline - now)
            self._collect()
        return before - len(self._running)

    def _idle(self) -> bool:
        return not self._running and not self._done and not self._unsaved

    def _ready(self) -> bool:
        return self._busy_delay == 0.0 or time.monotonic() >= self._busy_until

    def _idle_wait(self, watcher: ChangeWatcher, next_poll: float, watch: bool) -> bool:
        """Sleep until a slot finishes, the database changes, or a poll or deadline is due.

        Returns True when the database changed (so a claim is worth trying).
        """
        limit = next_poll
        if self._deadlines:
            limit = min(limit, self._deadlines[0][0])
        if not self._ready():  # retry a failed turn when its back-off ends, not at the poll
            limit = min(limit, self._busy_until)
        descriptors = [self._wakeup.fileno()]
        watched = watcher.fileno() if watch else None
        if watched is not None:
            descriptors.append(watched)
        while not self.stopping.is_set():
            remaining = limit - time.monotonic()
            if remaining <= 0:
                return False
            step = watcher.next_check() if watch else SAFETY_RECHECK
            readable, _, _ = select.select(descriptors, [], [], min(step, remaining))
            if self._wakeup.fileno() in readable:
                self._wakeup.clear()
                return False
            if watch and watcher.changed():
                return True
        return False

    def _caps(self) -> dict[str, int]:
        """What this daemon may still start of each queue it limits (`--queue NAME=N`)."""
        if not self.options.queue_limits:
            return {}
        with self._running_lock:
            running = collections.Counter(ex.job.queue for ex in self._running.values())
        return {name: limit - running[name] for name, limit in self.options.queue_limits}

    def _turn(self, free: int) -> tuple[int, bool, float | None]:
        """Save finished jobs and claim up to `free` more, in one transaction.

        While jobs run, every other turn or so also renews their leases (and this worker's
        liveness): a busy worker keeps its leases alive at no extra commit.
        """
        batch = self._unsaved
        stamp = Stamp(self.clock)  # read by the store once it holds the write lock
        renew = bool(self._running) and (
            stamp.mono - self.last_renewal >= self.settings.heartbeat_interval / 2
        )
        turn = self._with_db(
            lambda: self.store.finish_and_claim(
                [finish for finish, _ in batch],
                self.worker_id,
                self.options.queues,
                free,
                stamp,
                self.settings.lease,
                renew=renew,
                hurry_at=self.hurry_at() if renew else None,
                caps=self._caps(),
            )
        )
        if turn is None:
            return 0, False, None  # outcomes stay in _unsaved for the next turn
        if renew:
            self.renewed(turn.renewed, stamp.mono)
        self._unsaved = []
        self._saved(batch, turn.stale)
        for job in turn.claimed:
            self._start(job, stamp.mono)
        return len(turn.claimed), turn.held, turn.wake_in

    def _start(self, job: ClaimedJob, claimed_at: float) -> None:
        execution = Execution(job)
        # The claim wrote lease_expires_at = now + lease, with now read at `claimed_at`.
        execution.lease_until(claimed_at + self.settings.lease)
        with self._running_lock:
            self._running[job.id] = execution
        if execution.deadline is not None:
            heapq.heappush(self._deadlines, (execution.deadline, job.id, job.lease_token))
        self._work.put(execution)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id, token = heapq.heappop(self._deadlines)
            execution = self._running.get(job_id)
            if execution is not None and execution.job.lease_token == token:
                log.info("job %s: timeout of %gs passed", job_id, execution.job.timeout)
                execution.stop(StopReason.TIMED_OUT)

    def _collect(self) -> None:
        """Turn finished executions into the guarded state changes to write next."""
        if not self._done:
            return
        now = self.clock()
        while self._done:
            outcome = self._done.popleft()
            with self._running_lock:
                self._running.pop(outcome.job.id, None)
            finish = resolve(outcome, now, self.settings.backoff, self._rng)
            self._unsaved.append((finish, outcome))

    def _save(self) -> None:
        if not self._unsaved or not self._ready():
            return
        batch = self._unsaved
        stale = self._with_db(lambda: self.store.finish([f for f, _ in batch], self.clock()))
        if stale is None:
            return  # kept in _unsaved; retried on the next turn of the loop
        self._unsaved = []
        self._saved(batch, stale)

    def _saved(self, batch: list[tuple[Finish, Outcome | None]], stale: list[int]) -> None:
        stale_ids = set(stale)
        now, now_mono = self.clock(), time.monotonic()
        for finish, _ in batch:
            if finish.action in WAKE_FOR and finish.run_at is not None:
                wait = max(0.0, (finish.run_at - now).total_seconds())
                heapq.heappush(self._retries, now_mono + wait + RETRY_MARGIN)
        for finish, outcome in batch:
            self.events.emit(JobFinished(finish, outcome, finish.job_id in stale_ids, now))
        self.processed += sum(
            1 for finish, outcome in batch if outcome and finish.job_id not in stale_ids
        )

    def _with_db(self, operation: Callable[[], T]) -> T | None:
        """Run a database operation; on a locked or failing database back off instead of dying."""
        try:
            result = operation()
        except DatabaseError as error:
            self._busy_delay = min(BUSY_BACKOFF_MAX, max(0.05, self._busy_delay * 2))
            self._busy_until = time.monotonic() + self._busy_delay
            self._trouble.failed(error)
            return None
        self._busy_delay = 0.0
        self._trouble.recovered()
        return result

    # -- shutting down --------------------------------------------------------------------

    def _drain(self) -> None:
        """Let running jobs finish up to the shutdown timeout, then stop them and give them back."""
        deadline = time.monotonic() + self.options.shutdown_timeout
        if self._running:
            log.info(
                "waiting up to %gs for %d running job(s)",
                self.options.shutdown_timeout,
                len(self._running),
            )
        self._wait_for_running(deadline)
        if self._running:
            self.stop_jobs(list(self._running), StopReason.SHUTDOWN)
            self._wait_for_running(time.monotonic() + SHUTDOWN_GRACE)
        if self._running:
            self._release_stuck()
        for _ in self._slots:
            self._work.put(None)
        deadline = time.monotonic() + 10
        while self._unsaved and time.monotonic() < deadline:
            self._save()
            if self._unsaved:
                time.sleep(0.1)
        if self._unsaved:
            log.error("could not save %d outcome(s); their leases will expire", len(self._unsaved))

    def _wait_for_running(self, deadline: float) -> None:
        while self._running and time.monotonic() < deadline:
            self._collect()
            self._save()
            self._enforce_deadlines()
            if self._running:
                self._wakeup.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        self._collect()
        self._save()

    def _release_stuck(self) -> None:
        """Handlers that ignored ctx.cancelled: give their jobs back, attempt not counted."""
        with self._running_lock:
            stuck = list(self._running.values())
            self._running.clear()
        for execution in stuck:
            job = execution.job
            log.warning("job %s: handler did not stop; releasing the job", job.id)
            self._unsaved.append((release(job, self.clock()), None))


__all__ = ["Dispatcher", "WorkerOptions"]  # WorkerOptions lives in options.py; kept importable here
