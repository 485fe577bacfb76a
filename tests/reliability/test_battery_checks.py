"""The battery's own judges can fail: overlap and half-written-row detection on made-up data.

The soak passes only if these checks find nothing, so they must be shown to find something.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.battery import executions, malformed, overlaps


def _killed_at(pid: int, at: float) -> float | None:
    """Daemon 100 was killed at 5.0; every other one lived on."""
    return 5.0 if pid == 100 and at <= 5.0 else None


def _write(record: Path, *lines: tuple[str, int, int, int, float]) -> None:
    record.write_text(
        "".join(
            json.dumps({"event": e, "job": j, "pid": p, "attempt": a, "t": t}) + "\n"
            for e, j, p, a, t in lines
        )
    )


def test_a_killed_execution_runs_until_the_kill(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    _write(
        record,
        ("start", 1, 100, 1, 1.0),  # killed at 5.0 with no end line
        ("start", 1, 200, 2, 6.0),
        ("end", 1, 200, 2, 7.0),
        ("start", 2, 100, 1, 1.0),  # also killed at 5.0 ...
        ("start", 2, 200, 2, 4.0),  # ... but rerun before that: an overlap
        ("end", 2, 200, 2, 4.5),
    )
    runs = executions(record, _killed_at)
    assert [(r.pid, r.how, r.end) for r in runs[1]] == [(100, "killed", 5.0), (200, "end", 7.0)]
    found = overlaps(runs)
    assert len(found) == 1 and found[0].startswith("job 2:")


def test_an_execution_that_never_ended_overlaps_everything_after_it(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    _write(record, ("start", 3, 300, 1, 1.0), ("start", 3, 200, 2, 60.0))
    assert overlaps(executions(record, _killed_at))


def test_half_written_rows_are_named() -> None:
    row = {
        "id": 1,
        "queue": "default",
        "type": "record",
        "payload": "{}",
        "status": "pending",
        "priority": 0,
        "attempts": 0,
        "max_attempts": 10,
        "run_at": "t",
        "created_at": "t",
        "updated_at": "t",
        "cancel_requested": 0,
    }
    assert malformed(row) is None
    assert "NULL" in str(malformed({**row, "run_at": None}))
    assert "not JSON" in str(malformed({**row, "payload": '{"a": '}))
    assert "not an object" in str(malformed({**row, "payload": "[1]"}))
