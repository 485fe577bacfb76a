"""Producers killed -9 at random moments: every id they printed is stored, nothing half-written.

An id is printed only after enqueue returned, so a printed id is an acknowledged job: it must be
in the database with the payload it was given. Jobs committed just before the kill, whose id
never got printed, may be there too. Killing must never leave a broken file or a row missing a
required field or holding invalid JSON.

First `durableq enqueue` CLI processes race to create a fresh database and some are killed (maybe
mid-migration); then Python producers looping on enqueue / enqueue_many are killed mid-stream.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.battery import (
    TEST_TIMEOUT,
    Figures,
    integrity,
    jobs_by_id,
    malformed,
    seeded_rng,
    sized,
)
from tests.support.processes import DURABLEQ, REPO, environment, run_cli, wait_until

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

CLI_PROCESSES = 6
PRODUCER_MODES = ("single", "batch", "single", "batch")


def test_killed_enqueuers_lose_no_acknowledged_job(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    seed, rng = seeded_rng()
    report = figures(f"killed enqueuers (seed {seed})")
    rounds = sized(2, 10, "DURABLEQ_SOAK_ROUNDS")
    acknowledged: dict[int, tuple[str, int]] = {}  # id -> (tag, seq)
    cli_acknowledged, cli_killed = _race_cli_enqueuers(db_path, tmp_path, rng, acknowledged)
    killed = cli_killed
    for number in range(rounds):
        killed += _kill_producers(db_path, tmp_path / f"round-{number}", rng, acknowledged)

    rows = jobs_by_id(db_path)
    report["killed"], report["acknowledged"] = killed, len(acknowledged)
    report["cli_acknowledged"], report["rows"] = cli_acknowledged, len(rows)
    report["committed_unacknowledged"] = len(set(rows) - set(acknowledged))
    assert killed > 0 and len(acknowledged) > 0
    lost = sorted(set(acknowledged) - set(rows))
    assert not lost, f"{len(lost)} acknowledged job(s) lost: {lost[:20]}"
    wrong = {
        job_id: rows[job_id]["payload"]
        for job_id, (tag, seq) in acknowledged.items()
        if json.loads(rows[job_id]["payload"]) != _payload(tag, seq)
    }
    assert not wrong, f"acknowledged ids holding another job's payload: {wrong}"
    assert not (bad := [m for row in rows.values() if (m := malformed(row))]), bad[:20]
    assert integrity(db_path) == "ok"
    after = run_cli(["enqueue", "record"], db_path)
    assert after.returncode == 0, after.stderr


def _payload(tag: str, seq: int) -> dict[str, object]:
    return {"tag": tag, "seq": seq}


def _race_cli_enqueuers(
    db: Path, tmp: Path, rng: random.Random, acknowledged: dict[int, tuple[str, int]]
) -> tuple[int, int]:
    """CLI enqueues racing on a database that does not exist yet; half killed at random."""
    tmp.mkdir(exist_ok=True)
    processes = []
    for number in range(CLI_PROCESSES):
        payload = json.dumps(_payload(f"cli-{number}", 0))
        out = tmp / f"cli-{number}.out"
        with open(out, "wb") as stdout, open(tmp / f"cli-{number}.err", "wb") as stderr:
            command = [*DURABLEQ, "--db", str(db), "enqueue", "record", "--payload", payload]
            processes.append(
                (
                    subprocess.Popen(
                        command, stdout=stdout, stderr=stderr, env=environment(), cwd=REPO
                    ),
                    out,
                )
            )
    victims = rng.sample(range(CLI_PROCESSES), CLI_PROCESSES // 2)
    _kill_at_random(
        [processes[i][0] for i in victims], rng, low=0.2, high=1.5, since=time.monotonic()
    )
    for number, (process, out) in enumerate(processes):
        code = process.wait(timeout=60)
        lines = _complete_lines(out)
        for line in lines:
            acknowledged[int(line)] = (f"cli-{number}", 0)
        if number not in victims or code == 0:
            err = (tmp / f"cli-{number}.err").read_text()
            assert code == 0 and len(lines) == 1, f"enqueue #{number} exit {code}: {err}"
    return len(acknowledged), len(victims)


def _kill_producers(
    db: Path, tmp: Path, rng: random.Random, acknowledged: dict[int, tuple[str, int]]
) -> int:
    """Producers looping on enqueue, each killed -9 a random while after its first id."""
    tmp.mkdir(parents=True)
    producers = []
    for number, mode in enumerate(PRODUCER_MODES):
        out = tmp / f"producer-{number}.out"
        command = [
            sys.executable,
            "-m",
            "tests.reliability.producer",
            str(db),
            tmp.name + f"-{number}",
            mode,
        ]
        with open(out, "wb") as stdout:
            process = subprocess.Popen(
                command, stdout=stdout, stderr=subprocess.STDOUT, env=environment(), cwd=REPO
            )
        producers.append((process, out))
    try:
        outputs = [out for _, out in producers]
        wait_until(lambda: all(_complete_lines(out) for out in outputs), 60, what="first ids")
        _kill_at_random([p for p, _ in producers], rng, low=0.05, high=1.0, since=time.monotonic())
    finally:
        for process, _ in producers:
            if process.poll() is None:
                process.kill()
            process.wait()
    for process, out in producers:
        assert process.returncode == -9, out.read_text()[-2000:]
        for line in _complete_lines(out):
            job_id, tag, seq = line.split()
            acknowledged[int(job_id)] = (tag, int(seq))
    return len(producers)


def _kill_at_random(
    processes: list[subprocess.Popen[bytes]],
    rng: random.Random,
    low: float,
    high: float,
    since: float,
) -> None:
    """SIGKILL each process at its own random moment between `low` and `high` after `since`."""
    moments = sorted((rng.uniform(low, high), number) for number in range(len(processes)))
    for delay, number in moments:
        pause = since + delay - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # the random moment itself is the point: no condition to wait on
        processes[number].kill()


def _complete_lines(out: Path) -> list[str]:
    """The lines a killed process finished writing (a torn last line does not count)."""
    text = out.read_bytes().decode(errors="replace")
    return [line for line in text.split("\n")[:-1] if line.strip()]
