"""`durableq bench`: a reproducible workload on fresh SQLite databases in a temporary directory.

Daemons and producers run as real subprocesses, and every rate or latency is computed from the
timestamps durableq itself stores (created_at, started_at, finished_at), so the figures describe
what a user of the queue would see, not what a stopwatch around a function call would.
"""

from __future__ import annotations

from durableq.benchmark.report import Report
from durableq.benchmark.runner import SECTIONS, BenchOptions, run_benchmark

__all__ = ["SECTIONS", "BenchOptions", "Report", "run_benchmark"]
