"""What falls due for the executions a dispatcher holds: a handler's timeout (counted from its
start, not its claim) and the give-back of a job claimed ahead that waited too long for a slot.

Deadlines: a heap of (when, job id, lease token); an entry whose execution has gone (finished,
or the job since claimed again under another token) is dropped when it comes up. Jobs waiting
for a slot: in claim order, which is the order the slots take them in, so the oldest one waiting
is at the front (a heap entry per claimed job cost 3% of a 16-slot daemon's main thread).
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Callable

from durableq.worker.executor import Execution
from durableq.worker.prefetch import HOLD_LIMIT

Lookup = Callable[[int, str], "Execution | None"]  # the running execution of (id, token)
Entry = tuple[float, int, str]


class Timers:
    def __init__(self) -> None:
        self._deadlines: list[Entry] = []
        self._waiting: collections.deque[Execution] = collections.deque()

    def track(self, execution: Execution) -> None:
        """A job was just claimed."""
        job = execution.job
        if execution.deadline is not None:  # no sooner than this: the timeout runs from begin()
            heapq.heappush(self._deadlines, (execution.deadline, job.id, job.lease_token))
        self._waiting.append(execution)

    def next_due(self) -> float | None:
        """The earliest time.monotonic() at which something may fall due."""
        while self._waiting and (self._waiting[0].begun or self._waiting[0].withdrawn):
            self._waiting.popleft()
        heads = [self._deadlines[0][0]] if self._deadlines else []
        if self._waiting:
            heads.append(self._waiting[0].claimed + HOLD_LIMIT)
        return min(heads) if heads else None

    def timed_out(self, now: float, current: Lookup) -> list[Execution]:
        """Executions whose handler has run past its timeout."""
        due = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id, token = heapq.heappop(self._deadlines)
            execution = current(job_id, token)
            if execution is None:
                continue
            deadline = execution.deadline if execution.begun else None
            if deadline is None or deadline > now:  # still waiting for a slot, or began later
                later = deadline or now + (execution.job.timeout or 0.0)
                heapq.heappush(self._deadlines, (later, job_id, token))
                continue
            due.append(execution)
        return due

    def held_too_long(self, now: float, current: Lookup, everything: bool) -> list[Execution]:
        """Jobs claimed ahead that waited HOLD_LIMIT for a slot (all that wait, with
        `everything`), now withdrawn: no slot will start them."""
        withdrawn = []
        while self._waiting:
            execution = self._waiting[0]
            job = execution.job
            held = current(job.id, job.lease_token) is execution and not execution.begun
            if held and not everything and execution.claimed + HOLD_LIMIT > now:
                break  # the oldest one waiting has not waited long enough: nor have the rest
            self._waiting.popleft()
            if held and execution.withdraw():  # (or a slot has just started it)
                withdrawn.append(execution)
        return withdrawn
