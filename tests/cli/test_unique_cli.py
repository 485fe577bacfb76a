"""`durableq enqueue --unique ... / --idempotency-key`: what users type and what they see."""

from __future__ import annotations

import json
from pathlib import Path

from durableq.core.errors import IdempotencyConflict
from tests.cli.conftest import Invoke


def test_unique_prints_the_twins_id(invoke: Invoke, seeded: Path) -> None:
    args = ["enqueue", "mail", "--payload", '{"to": "ada", "n": 1}', "--unique"]
    first = invoke(args, db=seeded).output.strip()
    reordered = ["enqueue", "mail", "--payload", '{"n": 1, "to": "ada"}', "--unique"]
    assert invoke(reordered, db=seeded).output.strip() == first
    other = invoke(["enqueue", "mail", "--payload", '{"to": "bob"}', "--unique"], db=seeded)
    assert other.output.strip() != first
    shown = json.loads(invoke(["jobs", "show", first, "--json"], db=seeded).output)
    assert len(shown["unique_key"]) == 64 and shown["idempotency_key"] is None


def test_unique_keys_and_replace(invoke: Invoke, seeded: Path) -> None:
    base = ["enqueue", "sync", "--unique-keys", "user", "--on-conflict", "replace"]
    first = invoke([*base, "--payload", '{"user": 1, "v": 1}'], db=seeded).output.strip()
    again = invoke([*base, "--payload", '{"user": 1, "v": 2}'], db=seeded).output.strip()
    assert again == first
    shown = json.loads(invoke(["jobs", "show", first, "--json"], db=seeded).output)
    assert shown["payload"] == {"user": 1, "v": 2}


def test_an_idempotency_key_prints_the_first_id_and_refuses_another_payload(
    invoke: Invoke, seeded: Path
) -> None:
    args = ["enqueue", "charge", "--payload", '{"order": 42}', "--idempotency-key", "order-42"]
    first = invoke(args, db=seeded).output.strip()
    assert invoke(args, db=seeded).output.strip() == first
    other = ["enqueue", "charge", "--payload", '{"order": 43}', "--idempotency-key", "order-42"]
    refused = invoke(other, db=seeded, fails=True).exception
    assert isinstance(refused, IdempotencyConflict) and refused.exit_code == 2
    assert f'idempotency key "order-42" belongs to job {first}' in str(refused)
    listed = json.loads(invoke(["jobs", "list", "--type", "charge", "--json"], db=seeded).output)
    assert [job["id"] for job in listed] == [first]
    assert listed[0]["idempotency_key"] == "order-42"


def test_a_batch_with_unique_lines(invoke: Invoke, seeded: Path, tmp_path: Path) -> None:
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(
        '{"type": "a", "unique": true}\n'
        '{"type": "a", "unique": true}\n'
        '{"type": "b", "unique": {"period": "1h", "states": ["pending", "running"]}}\n'
    )
    assert invoke(["enqueue", "--batch", str(batch)], db=seeded).output.strip() == "3"
    listed = json.loads(invoke(["jobs", "list", "--type", "a", "--json"], db=seeded).output)
    assert len(listed) == 1


def test_schedules_with_none_declared(invoke: Invoke, seeded: Path) -> None:
    assert "no schedules yet" in invoke(["schedules"], db=seeded).output
    assert json.loads(invoke(["schedules", "--json"], db=seeded).output) == []
