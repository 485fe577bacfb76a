"""`worker start --queue mail=1 --queue other`: the daemon's own per-queue limit, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import executions
from tests.reliability.test_queue_limits import most_at_once
from tests.support.daemons import Daemons


@pytest.mark.timeout(120)
def test_a_daemon_runs_at_most_its_limit_of_a_queue_and_fills_the_rest(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    mail = client.enqueue_many(
        [{"type": "record", "queue": "mail", "payload": {"seconds": 0.1}}] * 8
    )
    other = client.enqueue_many(
        [{"type": "record", "queue": "other", "payload": {"seconds": 0.1}}] * 12
    )
    worker = daemons.start(
        db_path, "--concurrency", "4", "--queue", "mail=1", "--queue", "other", "--burst"
    )
    assert worker.wait(timeout=60) == 0, daemons.log(worker)
    runs = executions(daemons.record, lambda pid, t: None)
    mail_runs = [run for job in mail for run in runs[job]]
    other_runs = [run for job in other for run in runs[job]]
    assert most_at_once(mail_runs) == 1
    assert most_at_once(mail_runs + other_runs) == 4  # the other slots were not left idle
    assert all(client.get(job).status.value == "completed" for job in mail + other)
