"""Claims jobs for free slots, hands them to the slot threads, and persists their outcomes.

One thread (the dispatcher's) does all the hot-path database work: it claims in batches sized to
the free slots (plus, while jobs are quick, a few ahead: prefetch.py) and writes finished jobs in
batches, so handler threads never touch the database, a busy worker pays one commit for many
jobs, and a slot rarely waits for a commit.
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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from durableq.core.config import Settings
from durableq.core.errors import DatabaseError
from durableq.core.jobs import Action, ClaimedJob
from durableq.core.outcomes import Finish, Outcome, release, resolve
from durableq.store.api import Store
from durableq.store.changes import SAFETY_RECHECK, ChangeWatcher
from durableq.worker.doorbell import Doorbell
from durableq.worker.events import Events, JobFinished, JobStarted
from durableq.worker.executor import Execution, Runner, StopReason
from durableq.worker.leases import Stamp
from durableq.worker.options import WorkerOptions
from durableq.worker.prefetch import Prefetch
from durableq.worker.running import Running
from durableq.worker.timers import Timers
from durableq.worker.trouble import Trouble

log = logging.getLogger("durableq.worker")
T = TypeVar("T")

SHUTDOWN_GRACE = 2.0
BUSY_BACKOFF_MAX = 2.0
RETRY_MARGIN = 0.002  # wake just after a retry falls due, never just before
LINGER_WINDOW = 0.005  # a turn lingers (Runner.linger) only when every running job is this new
# Once a turn found the queue drained, jobs that arrive one by one and the outcomes of those
# that finish are gathered this long after it, then saved and claimed in one turn (run()).
GATHER = 0.002
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
        self.running = Running(settings.lease)
        self._unsaved: list[tuple[Finish, Outcome | None]] = []
        self._timers = Timers()
        self._prefetch = Prefetch(options.prefetch, options.concurrency)
        self._slots: list[threading.Thread] = []
        self._busy_delay = 0.0
        self._busy_until = 0.0
        self._gather_until = 0.0
        self._trouble = Trouble("worker")
        self._retries: list[float] = []  # when this worker's scheduled retries fall due
        self.processed = 0

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
            if not execution.begin():
                continue  # given back while it waited for this slot (_give_back_held)
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
                self._give_back_held()
                free = self.options.concurrency + self._prefetch.ahead() - len(self.running)
                claimed = 0
                now = time.monotonic()
                wanted = backlog or changed or now >= next_poll or self.options.burst
                # Jobs arriving one by one (a producer flat out, the queue drained at each turn)
                # cost a turn each to claim and one each to save; gathered for GATHER, one turn
                # does both for all: bench end-to-end went from 2,076 jobs/s (0.45x the
                # producer alone, a turn per job) to 3,030-3,106 (0.70-0.73x), start p99 4.4 ms.
                gathering = not backlog and not self.options.burst and now < self._gather_until
                if free > 0 and wanted and self._ready() and not gathering:
                    free += self._linger()
                    claimed, held, wake_in = self._turn(free)
                    self._gather_until = time.monotonic() + GATHER
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
                elif not gathering:
                    self._save()
                if self._retries:  # a retry this worker scheduled is due before the next poll
                    next_poll = min(next_poll, self._retries[0])
                wake_at = next_poll
                if gathering and (changed or self._unsaved):
                    wake_at = min(wake_at, self._gather_until)
                changed = self._idle_wait(watcher, wake_at, free - claimed > 0) or changed
        finally:
            self._drain()

    def _linger(self) -> int:
        """Jobs claimed together and quick to run finish close together, but not at once when
        they run in other processes: when everything still running started under
        LINGER_WINDOW ago, wait up to the runner's linger for it, so one commit saves them
        all. Returns the slots that freed meanwhile."""
        linger = self.executor.linger
        if not linger or not self._unsaved or not self.running or not self._work.empty():
            return 0  # (jobs claimed ahead wait for the slots: they need no commit to start)
        before = len(self.running)
        deadline = time.monotonic() + linger
        while self.running:
            now = time.monotonic()
            oldest = min((ex.started for ex in self.running.snapshot()), default=now)
            if now >= deadline or now - oldest > LINGER_WINDOW:
                break
            self._wakeup.wait(deadline - now)
            self._collect()
        return before - len(self.running)

    def _idle(self) -> bool:
        return not self.running and not self._done and not self._unsaved

    def _ready(self) -> bool:
        return self._busy_delay == 0.0 or time.monotonic() >= self._busy_until

    def _idle_wait(self, watcher: ChangeWatcher, next_poll: float, watch: bool) -> bool:
        """Sleep until a slot finishes, the database changes, or a poll or deadline is due.

        Returns True when the database changed (so a claim is worth trying).
        """
        limit = next_poll
        if (due := self._timers.next_due()) is not None:
            limit = min(limit, due)
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
        running = self.running.per_queue()
        return {name: limit - running[name] for name, limit in self.options.queue_limits}

    def _turn(self, free: int) -> tuple[int, bool, float | None]:
        """Save finished jobs and claim up to `free` more, in one transaction.

        While jobs run, every other turn or so also renews their leases (and this worker's
        liveness): a busy worker keeps its leases alive at no extra commit.
        """
        batch = self._unsaved
        stamp = Stamp(self.clock)  # read by the store once it holds the write lock
        renewing = False

        def renew() -> bool:
            """Asked by the store once it holds the write lock (after reading `stamp`): a turn
            that waited long for the lock renews if a renewal fell due meanwhile."""
            nonlocal renewing
            renewing = bool(self.running) and (
                stamp.mono - self.running.last_renewal >= self.settings.heartbeat_interval / 2
            )
            return renewing

        turn = self._with_db(
            lambda: self.store.finish_and_claim(
                [finish for finish, _ in batch],
                self.worker_id,
                self.options.queues,
                free,
                stamp,
                self.settings.lease,
                renew=renew,
                hurry_at=self.running.hurry_at(),
                caps=self._caps(),
            )
        )
        if turn is None:
            return 0, False, None  # outcomes stay in _unsaved for the next turn
        if renewing:
            self.running.renewed(turn.renewed, stamp.mono)
        self._unsaved = []
        self._saved(batch, turn.stale)
        # Claimed ahead, they wait in the slots' queue: in the claim's order, not the store's.
        for job in sorted(turn.claimed, key=ClaimedJob.start_order):
            self._start(job, stamp.mono)
        return len(turn.claimed), turn.held, turn.wake_in

    def _start(self, job: ClaimedJob, claimed_at: float) -> None:
        execution = Execution(job)
        # The claim wrote lease_expires_at = now + lease, with now read at `claimed_at`.
        execution.lease_until(claimed_at + self.settings.lease)
        self.running.add(execution)
        self._timers.track(execution)
        self._work.put(execution)

    def _enforce_deadlines(self) -> None:
        for execution in self._timers.timed_out(time.monotonic(), self.running.current):
            log.info("job %s: timeout of %gs passed", execution.job.id, execution.job.timeout)
            execution.stop(StopReason.TIMED_OUT)

    def _give_back_held(self, everything: bool = False) -> None:
        """Jobs claimed ahead that waited too long for a slot (the jobs before them turned out
        slow), or all that wait (`everything`, on shutdown), go back to the queue for any
        worker, attempt not counted."""
        now = time.monotonic()
        for execution in self._timers.held_too_long(now, self.running.current, everything):
            self.running.pop(execution.job.id)
            waited = now - execution.claimed
            # The jobs ahead of it ran at least this long: claim no more ahead of them.
            self._prefetch.observe(waited)
            log.info("job %s: waited %.1fs for a slot; giving it back", execution.job.id, waited)
            self._unsaved.append((release(execution.job, self.clock()), None))

    def _collect(self) -> None:
        """Turn finished executions into the guarded state changes to write next."""
        if not self._done:
            return
        now, now_mono = self.clock(), time.monotonic()
        while self._done:
            outcome = self._done.popleft()
            self.running.pop(outcome.job.id)
            started_at = None
            if outcome.started is not None:
                self._prefetch.observe(outcome.duration)
                started_at = now - timedelta(seconds=now_mono - outcome.started)
            finish = resolve(outcome, now, self.settings.backoff, self._rng, started_at)
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
        self._give_back_held(everything=True)  # not started: no reason to make them wait
        if self.running:
            log.info(
                "waiting up to %gs for %d running job(s)",
                self.options.shutdown_timeout,
                len(self.running),
            )
        self._wait_for_running(deadline)
        if self.running:
            self.running.stop_all(StopReason.SHUTDOWN)
            self._wait_for_running(time.monotonic() + SHUTDOWN_GRACE)
        if self.running:
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
        while self.running and time.monotonic() < deadline:
            self._collect()
            self._save()
            self._enforce_deadlines()
            if self.running:
                self._wakeup.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        self._collect()
        self._save()

    def _release_stuck(self) -> None:
        """Handlers that ignored ctx.cancelled: give their jobs back, attempt not counted."""
        for execution in self.running.clear():
            job = execution.job
            log.warning("job %s: handler did not stop; releasing the job", job.id)
            self._unsaved.append((release(job, self.clock()), None))


__all__ = ["Dispatcher", "WorkerOptions"]  # WorkerOptions lives in options.py; kept importable here
