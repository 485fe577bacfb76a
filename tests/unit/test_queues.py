"""The queue controls' pure parts: parsing limits and rates, the GCRA limiter, the claim plan."""

from __future__ import annotations

import random

import pytest

from durableq.core.errors import InvalidInput
from durableq.core.queues import (
    QueueControls,
    Rate,
    parse_limit,
    parse_rate,
    parse_worker_queue,
    plan_claim,
)

NOW = 1_790_000_000.123  # Unix seconds near today's: the limiter must not lose precision here


def test_rates_parse_with_and_without_a_burst() -> None:
    assert parse_rate("5/1s") == Rate(5, 1.0, 5)
    assert parse_rate("100/1m:20") == Rate(100, 60.0, 20)
    assert parse_rate(" 3 / 500ms : 1 ") == Rate(3, 0.5, 1)
    assert str(parse_rate("100/1m:20")) == "100/1m:20"
    for bad in ("5", "5/", "/1s", "five/1s", "5/1s:", "0/1s", "5/0s", "5/1s:0", "5/1s:x"):
        with pytest.raises(InvalidInput, match="invalid rate"):
            parse_rate(bad)


def test_limits_and_worker_queues_parse() -> None:
    assert parse_limit("7", "--concurrency") == 7
    assert parse_limit("None", "--concurrency") is None
    for bad in ("0", "-1", "1.5", "x", ""):
        with pytest.raises(InvalidInput, match="--concurrency"):
            parse_limit(bad, "--concurrency")
    assert parse_worker_queue("mail") == ("mail", None)
    assert parse_worker_queue("mail=4") == ("mail", 4)
    for bad in ("mail=0", "mail=", "=4", "a b=2", "mail=x"):
        with pytest.raises(InvalidInput):
            parse_worker_queue(bad)


def test_the_limiter_allows_a_burst_then_one_start_per_interval() -> None:
    rate = Rate(5, 1.0, 3)
    assert rate.allowance(None, NOW) == 3
    tat = rate.advance(None, NOW, 3)
    assert rate.allowance(tat, NOW) == 0
    assert rate.wait(tat, NOW) == pytest.approx(0.2)
    assert rate.allowance(tat, NOW + 0.199) == 0
    assert rate.allowance(tat, NOW + 0.2) == 1
    assert rate.allowance(tat, NOW + 10) == 3  # never more than the burst, however long idle
    # Over any long run the starts stay at the rate: 5/s plus the burst.
    tat, now, started = None, NOW, 0
    while now < NOW + 10:
        allowed = rate.allowance(tat, now)
        tat, started = rate.advance(tat, now, allowed), started + allowed
        now += 0.013
    assert started <= 5 * 10 + 3


def test_the_plan_shares_slots_among_capped_and_free_queues() -> None:
    controls = [
        QueueControls("paused", paused=True),
        QueueControls("two", concurrency=2),
        QueueControls("rated", rate=Rate(1, 1.0, 1), rate_tat=NOW + 5),
    ]
    plan = plan_claim(controls, {"two": 1}, (), {"mine": 3}, NOW, random.Random(1))
    assert sorted(plan.capped) == [("mine", 3), ("two", 1)]
    assert plan.excluded == ("mine", "paused", "rated", "two") and plan.only is None
    assert plan.wake_in == pytest.approx(5.0)
    assert plan.held({"two": 1}) and not plan.held({"two": 0, "mine": 2})
    listened = plan_claim(controls, {}, ("two", "other"), {}, NOW)
    assert listened.capped == [("two", 2)] and listened.only == ("other",)
    only_capped = plan_claim(controls, {}, ("paused",), {}, NOW)
    assert only_capped.capped == [] and not only_capped.rest
