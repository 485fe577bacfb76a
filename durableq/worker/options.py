"""How a worker daemon runs: its slots, its queues and their per-daemon limits, its drain."""

from __future__ import annotations

from dataclasses import dataclass

from durableq.worker import prefetch


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 4
    queues: tuple[str, ...] = ()
    shutdown_timeout: float = 30.0
    burst: bool = False
    # `--queue mail=4`: at most that many of the queue's jobs at once in this daemon.
    queue_limits: tuple[tuple[str, int], ...] = ()
    # The most jobs claimed ahead of the free slots while jobs are quick (prefetch.py); 0: none.
    prefetch: int = prefetch.DEFAULT

    def described_queues(self) -> tuple[str, ...]:
        """The queues as `--queue` took them: `mail=4` where this daemon limits one."""
        limits = dict(self.queue_limits)
        return tuple(f"{q}={limits[q]}" if q in limits else q for q in self.queues)
