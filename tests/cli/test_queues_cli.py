"""`durableq queues`, `durableq queue pause|resume|set`: what users type and what they see."""

from __future__ import annotations

import json
from pathlib import Path

from durableq.core.errors import QueueFull
from tests.cli.conftest import Invoke


def test_queues_lists_every_queue_with_counts_and_limits(invoke: Invoke, seeded: Path) -> None:
    listed = json.loads(invoke(["queues", "--json"], db=seeded).output)
    by_name = {q["name"]: q for q in listed}
    assert by_name["default"]["pending"] == 1 and by_name["default"]["paused"] is False
    held = [q for q in listed if q["running"] == 1]
    assert len(held) == 1 and held[0]["concurrency"] is None and held[0]["rate"] is None
    table = invoke(["queues"], db=seeded).output.splitlines()
    assert table[0].split()[:4] == ["QUEUE", "PAUSED", "PENDING", "RUNNING"]
    assert any(line.split()[:3] == ["default", "no", "1"] for line in table[1:])


def test_pause_set_and_resume_show_the_queue_as_it_now_is(invoke: Invoke, seeded: Path) -> None:
    out = invoke(["queue", "pause", "mail"], db=seeded).output
    assert out.startswith("queue mail: paused; 0 pending, 0 running;")
    out = invoke(
        ["queue", "set", "mail", "--concurrency", "3", "--rate", "10/1m:2", "--max-pending", "50"],
        db=seeded,
    ).output
    assert "concurrency 3, max pending 50, rate 10/1m:2" in out
    out = invoke(["queue", "set", "mail", "--concurrency", "none"], db=seeded).output
    assert "concurrency -, max pending 50, rate 10/1m:2" in out  # the others are kept
    mail = next(
        q for q in json.loads(invoke(["queues", "--json"], db=seeded).output) if q["name"] == "mail"
    )
    assert mail["paused"] is True and mail["paused_at"].endswith("Z")
    assert mail["rate"] == {"count": 10, "period_seconds": 60.0, "burst": 2}
    assert invoke(["queue", "resume", "mail"], db=seeded).output.startswith("queue mail: active")


def test_enqueue_into_a_full_queue_says_so_and_writes_nothing(invoke: Invoke, seeded: Path) -> None:
    invoke(["queue", "set", "default", "--max-pending", "2"], db=seeded)
    invoke(["enqueue", "echo"], db=seeded)
    failed = invoke(["enqueue", "echo"], db=seeded, fails=True)
    assert isinstance(failed.exception, QueueFull) and failed.exception.exit_code == 1
    assert str(failed.exception) == 'queue "default" is full: 2 pending, max 2; retry later'
    assert failed.stdout == ""
    listed = json.loads(invoke(["queues", "--json"], db=seeded).output)
    assert next(q for q in listed if q["name"] == "default")["pending"] == 2
    invoke(["queue", "set", "default", "--max-pending", "none"], db=seeded)
    invoke(["enqueue", "echo"], db=seeded)
