"""How many jobs a daemon claims ahead of its free slots.

A slot that finishes a job would otherwise wait for the commit that saves the outcome and
claims its next job (measured: at one slot, the commit and the two thread hand-offs around it
were the whole cost of a quick job). With jobs claimed ahead, the slot starts the next one at
once while the dispatcher commits; outcomes that pile up meanwhile share one commit.

Claimed ahead, a job is `running` in the database (its lease ticking and renewed like the
others') but waits in the daemon. So claim ahead only as far as the jobs are quick: the measured
mean run time of this daemon's jobs sets how many may wait so that one waits WAIT_BUDGET on
average; none until a job has finished, none once jobs are slow. A job that still waits after
HOLD_LIMIT (the jobs turned slow) goes back to the queue, its attempt not counted.
"""

from __future__ import annotations

DEFAULT = 64  # `worker start --prefetch`: the most jobs claimed ahead
WAIT_BUDGET = 0.05  # the mean time a job claimed ahead may wait for a slot, in seconds
HOLD_LIMIT = 1.0  # a job claimed ahead and not started after this is given back
SMOOTHING = 0.2  # weight of the newest run time in the running mean


class Prefetch:
    def __init__(self, limit: int, slots: int) -> None:
        self.limit = limit
        self.slots = slots
        self.mean: float | None = None  # seconds a job of this daemon runs, smoothed

    def observe(self, duration: float) -> None:
        """A job ran for `duration` seconds."""
        if self.mean is None:
            self.mean = duration
        else:
            self.mean += SMOOTHING * (duration - self.mean)

    def ahead(self) -> int:
        """How many jobs to claim beyond the free slots now."""
        if not self.limit or self.mean is None:
            return 0
        quick_enough = self.slots * WAIT_BUDGET / max(self.mean, 1e-6)
        return min(self.limit, int(quick_enough))
