"""How far ahead a daemon claims (worker/prefetch.py): by its jobs' measured pace."""

from __future__ import annotations

from durableq.worker.prefetch import WAIT_BUDGET, Prefetch


def test_nothing_ahead_before_a_job_has_finished_or_when_turned_off() -> None:
    assert Prefetch(16, 4).ahead() == 0
    off = Prefetch(0, 4)
    off.observe(0.0001)
    assert off.ahead() == 0


def test_quick_jobs_fill_the_limit_and_slow_ones_claim_nothing_ahead() -> None:
    pace = Prefetch(16, 1)
    pace.observe(0.0001)
    assert pace.ahead() == 16
    slow = Prefetch(16, 1)
    slow.observe(WAIT_BUDGET * 2)
    assert slow.ahead() == 0


def test_a_job_claimed_ahead_waits_about_the_budget_on_average() -> None:
    pace = Prefetch(100, 4)
    pace.observe(0.01)  # 4 slots x 50 ms / 10 ms: 20 jobs ahead, each slot 5 deep
    assert pace.ahead() == int(4 * WAIT_BUDGET / 0.01)


def test_the_mean_follows_the_newest_run_times() -> None:
    pace = Prefetch(16, 1)
    pace.observe(0.0001)
    pace.observe(1.0)  # a slow job (or a job given back after waiting 1 s for one)
    assert pace.ahead() == 0
    for _ in range(40):
        pace.observe(0.0001)
    assert pace.ahead() == 16
