"""Backoff: exponential, capped, jittered within bounds, reproducible, never overflowing."""

from __future__ import annotations

import math
import random

import pytest

from durableq.core.retry import Backoff


def test_delays_grow_exponentially_without_jitter() -> None:
    backoff = Backoff(base=0.5, factor=3, cap=1000, jitter=0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 13.5, 40.5]


def test_attempt_zero_or_negative_waits_the_base() -> None:
    backoff = Backoff(base=2, factor=2, cap=100, jitter=0)
    assert backoff.delay(0) == 2
    assert backoff.delay(-5) == 2


def test_delays_are_capped() -> None:
    backoff = Backoff(base=1, factor=2, cap=10, jitter=0)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 10, 10, 10]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("attempt", [1_000, 10**6, 10**18])
def test_huge_attempt_numbers_do_not_overflow(attempt: int) -> None:
    backoff = Backoff(base=1, factor=2, cap=3600, jitter=0.2)
    delay = backoff.delay(attempt, random.Random(1))
    assert math.isfinite(delay)
    assert 0 <= delay <= 3600


def test_huge_factor_does_not_overflow_below_the_exponent_cutoff() -> None:
    backoff = Backoff(base=1, factor=1e6, cap=60, jitter=0)
    assert backoff.delay(60) == 60


def test_jitter_stays_within_its_bounds() -> None:
    backoff = Backoff(base=10, factor=2, cap=10_000, jitter=0.25)
    rng = random.Random(42)
    for attempt in range(1, 8):
        raw = 10 * 2 ** (attempt - 1)
        delays = [backoff.delay(attempt, rng) for _ in range(300)]
        assert all(raw * 0.75 <= d <= raw * 1.25 for d in delays), attempt
        # The jitter really spreads the delays instead of always picking one value.
        assert max(delays) - min(delays) > raw * 0.3


def test_jitter_never_exceeds_the_cap() -> None:
    backoff = Backoff(base=1, factor=2, cap=5, jitter=1.0)
    rng = random.Random(3)
    assert all(0 <= backoff.delay(10, rng) <= 5 for _ in range(500))


def test_seeded_random_makes_delays_reproducible() -> None:
    backoff = Backoff(base=1, factor=2, cap=100, jitter=0.5)
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 10)]
    second = [backoff.delay(n, random.Random(7)) for n in range(1, 10)]
    other = [backoff.delay(n, random.Random(8)) for n in range(1, 10)]
    assert first == second
    assert first != other


@pytest.mark.parametrize(
    "kwargs",
    [{"base": -1}, {"cap": -1}, {"factor": 0.5}, {"jitter": -0.1}, {"jitter": 1.5}],
    ids=str,
)
def test_nonsense_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)


def test_factor_one_is_a_constant_delay_however_many_attempts() -> None:
    backoff = Backoff(base=3, factor=1, cap=3600, jitter=0)
    assert {backoff.delay(n) for n in (1, 2, 200, 201, 202, 1000, 10**9)} == {3}


def test_zero_base_never_waits() -> None:
    backoff = Backoff(base=0, factor=2, cap=3600, jitter=0)
    assert {backoff.delay(n) for n in (1, 10, 202, 1000, 10**9)} == {0}
