"""`durableq enqueue`: every way to give a payload, the options, durations, instants, batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.errors import InvalidInput
from durableq.core.jobs import Job
from tests.cli.conftest import Invoke
from tests.support.seeded import content_hash


def stored(db: Path, job_id: int) -> Job:
    with Client.open(str(db), create=False) as client:
        return client.get(job_id)


def count(db: Path) -> int:
    with Client.open(str(db), create=False) as client:
        return sum(sum(per.values()) for per in client.stats().counts.values())


def test_prints_the_new_id_alone_and_stores_every_option(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = invoke(
        [
            "enqueue",
            "email.send",
            "--payload",
            '{"to": "ada@example.com", "tags": ["a", "é"]}',
            "--queue",
            "mail",
            "--priority",
            "-5",
            "--max-attempts",
            "3",
            "--timeout",
            "1m30s",
        ],
        db,
    )
    assert (result.stdout, result.stderr) == ("1\n", "")
    job = stored(db, 1)
    assert (job.type, job.queue, job.priority, job.max_attempts, job.timeout) == (
        "email.send",
        "mail",
        -5,
        3,
        90.0,
    )
    assert job.payload == {"to": "ada@example.com", "tags": ["a", "é"]}
    assert (job.status.value, job.attempts, job.run_at) == ("pending", 0, job.created_at)


def test_ids_count_up_and_defaults_apply(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    assert [invoke(["enqueue", "noop"], db).stdout for _ in range(3)] == ["1\n", "2\n", "3\n"]
    job = stored(db, 3)
    assert (job.payload, job.queue, job.priority, job.max_attempts, job.timeout) == (
        {},
        "default",
        0,
        10,
        None,
    )


def test_payload_from_stdin(invoke: Invoke, seeded: Path) -> None:
    result = invoke(["enqueue", "echo", "--payload", "-"], seeded, input='{"from": "stdin"}\n')
    assert stored(seeded, int(result.stdout)).payload == {"from": "stdin"}


def test_payload_from_a_file_with_or_without_a_byte_order_mark(
    invoke: Invoke, seeded: Path, tmp_path: Path
) -> None:
    plain, marked = tmp_path / "plain.json", tmp_path / "marked.json"
    plain.write_text('{"from": "file", "n": [1, 2.5, null, true]}', encoding="utf-8")
    marked.write_bytes(b'\xef\xbb\xbf{"from": "notepad"}')
    first = invoke(["enqueue", "echo", "--payload-file", str(plain)], seeded)
    second = invoke(["enqueue", "echo", "--payload-file", str(marked)], seeded)
    assert stored(seeded, int(first.stdout)).payload == {"from": "file", "n": [1, 2.5, None, True]}
    assert stored(seeded, int(second.stdout)).payload == {"from": "notepad"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("45", 45)],
)
def test_durations(invoke: Invoke, seeded: Path, text: str, seconds: float) -> None:
    result = invoke(["enqueue", "echo", "--timeout", text, "--delay", text], seeded)
    job = stored(seeded, int(result.stdout))
    assert job.timeout == seconds
    assert (job.run_at - job.created_at).total_seconds() == pytest.approx(seconds, abs=2)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2030-01-31T09:30:00Z", datetime(2030, 1, 31, 9, 30, tzinfo=UTC)),
        ("2030-01-31T09:30:00+02:00", datetime(2030, 1, 31, 7, 30, tzinfo=UTC)),
        ("2030-01-31T09:30:00", datetime(2030, 1, 31, 9, 30, tzinfo=UTC)),  # no offset: UTC
        ("2030-01-31", datetime(2030, 1, 31, tzinfo=UTC)),
    ],
)
def test_at_an_instant(invoke: Invoke, seeded: Path, given: str, expected: datetime) -> None:
    result = invoke(["enqueue", "echo", "--at", given], seeded)
    assert stored(seeded, int(result.stdout)).run_at == expected


def test_a_delay_is_counted_from_now(invoke: Invoke, seeded: Path) -> None:
    before = datetime.now(UTC)
    result = invoke(["enqueue", "echo", "--delay", "2h"], seeded)
    run_at = stored(seeded, int(result.stdout)).run_at
    assert before + timedelta(hours=2) <= run_at <= datetime.now(UTC) + timedelta(hours=2)


def batch_lines() -> str:
    lines = [
        {"type": "echo", "payload": {"n": 1}},
        {"type": "mail.send", "queue": "mail", "priority": 3, "max_attempts": 2},
        {"type": "echo", "delay": "1h", "timeout": "30s"},
        {"type": "echo", "run_at": "2030-01-31T09:30:00Z", "timeout": 5},
    ]
    return (
        "\n".join(json.dumps(line) for line in lines[:2])
        + "\n\n"
        + "\n".join(json.dumps(line) for line in lines[2:])
    )


def test_batch_from_a_file_prints_the_count_and_keeps_each_lines_options(
    invoke: Invoke, tmp_path: Path
) -> None:
    db, source = tmp_path / "b.db", tmp_path / "jobs.jsonl"
    source.write_text(batch_lines() + "\n")
    result = invoke(["enqueue", "--batch", str(source)], db)
    assert (result.stdout, result.stderr) == ("4\n", "")
    jobs = [stored(db, job_id) for job_id in (1, 2, 3, 4)]
    assert [job.type for job in jobs] == ["echo", "mail.send", "echo", "echo"]
    assert jobs[0].payload == {"n": 1}
    assert (jobs[1].queue, jobs[1].priority, jobs[1].max_attempts) == ("mail", 3, 2)
    assert (jobs[2].run_at - jobs[2].created_at).total_seconds() == pytest.approx(3600, abs=2)
    assert (jobs[2].timeout, jobs[3].timeout) == (30.0, 5.0)
    assert jobs[3].run_at == datetime(2030, 1, 31, 9, 30, tzinfo=UTC)


def test_batch_from_stdin(invoke: Invoke, seeded: Path) -> None:
    result = invoke(["enqueue", "--batch", "-"], seeded, input=batch_lines())
    assert result.stdout == "4\n"
    assert count(seeded) == 5 + 4


def test_a_big_batch_shows_no_progress_bar_when_not_on_a_terminal(
    invoke: Invoke, seeded: Path
) -> None:
    lines = "".join(json.dumps({"type": "noop", "payload": {"i": i}}) + "\n" for i in range(1500))
    result = invoke(["enqueue", "--batch", "-"], seeded, input=lines)
    assert (result.stdout, result.stderr) == ("1500\n", "")
    assert count(seeded) == 5 + 1500


def test_one_bad_line_rejects_the_whole_batch_and_is_named(invoke: Invoke, seeded: Path) -> None:
    before = content_hash(seeded)
    lines = '{"type": "echo"}\n{"type": "echo"}\n\n{"type": "echo", "priority": "high"}\n'
    result = invoke(["enqueue", "--batch", "-"], seeded, input=lines, fails=True)
    assert isinstance(result.exception, InvalidInput)
    assert str(result.exception).startswith("line 4 of the batch: priority must be a whole number")
    assert result.stdout == ""
    assert content_hash(seeded) == before


def test_no_database_is_created_for_bad_input(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    invoke(["enqueue", "bad type"], db, fails=True)
    invoke(["enqueue", "--batch", "-"], db, input='{"type": "echo", "x": 1}\n', fails=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == []
