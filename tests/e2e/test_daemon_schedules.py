"""A real daemon fires the schedules of its app; `durableq schedules` and `jobs show` tell."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

from tests.support.processes import run_cli, start_worker, wait_until

APP = "tests.support.scheduled:registry"


def completed_from(db: Path, schedule: str) -> int:
    try:
        with sqlite3.connect(db) as connection:
            row = connection.execute(
                "SELECT count(*) FROM jobs WHERE schedule = ? AND status = 'completed'",
                (schedule,),
            ).fetchone()
    except sqlite3.OperationalError:  # the daemon is still making the schema
        return 0
    return int(row[0])


def test_a_daemon_fires_its_schedules_and_the_cli_shows_them(tmp_path: Path) -> None:
    db = tmp_path / "durableq.db"
    log = tmp_path / "daemon.log"
    daemon = start_worker(db, "--app", APP, log_path=log)
    try:
        wait_until(
            lambda: db.exists() and completed_from(db, "every-second") >= 3,
            timeout=60,
            what="three ticks of every-second",
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    listed = json.loads(run_cli(["schedules", "--json"], db).stdout)
    by_name = {info["name"]: info for info in listed}
    assert set(by_name) == {"every-second", "every-two-seconds", "every-three-seconds"}
    second = by_name["every-second"]
    assert second["active"] is True and second["cron"] == "* * * * * *"
    assert second["description"] == "Every second"
    assert second["last_job_id"] is not None and second["next_run_at"] > second["last_tick"]
    job = json.loads(run_cli(["jobs", "show", second["last_job_id"], "--json"], db).stdout)
    assert job["schedule"] == "every-second" and job["schedule_tick"] == second["last_tick"]
    assert job["payload"] == {"schedule": "every-second"}
    table = run_cli(["schedules"], db).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "CRON", "ZONE"]
    assert "schedule every-second fired job(s)" in log.read_text()
