"""The wall clock steps (NTP, a resumed VM) while jobs run: every lease and every owner's
liveness, written in the old time, looks expired at once. A rescuer that noticed no step would
take every running job from its live owner (each would run twice); one that notices (its wall
and monotonic clocks disagree) holds rescues for a lease, the owners renew in the new time, and
only a really dead owner's job is rescued. In-process, with both clocks injected."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.config import Settings, database_url
from durableq.core.jobs import JobStatus
from durableq.store.api import WorkerInfo
from durableq.worker.clock_steps import ClockSteps
from durableq.worker.maintenance import Rescuer, clock_steps_for
from tests.support.factories import T0, at, insert_job

LEASE = 3.0


class Mono:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(db_path: Path) -> tuple[Client, Settings]:
    settings = Settings(database=database_url(str(db_path)), lease=LEASE)
    return Client.open(settings), settings


def _running(client: Client, owner: str) -> int:
    client.store.register_worker(WorkerInfo(owner, "host", 1, (), 1, T0, T0, LEASE))
    return insert_job(
        client.engine,
        JobStatus.RUNNING,
        worker_id=owner,
        lease_token=f"token-{owner}",
        created_at=T0,
        lease_expires_at=T0 + timedelta(seconds=LEASE),
    )


@pytest.mark.parametrize("noticed", [False, True], ids=["without the fix", "with it"])
def test_a_forward_step_does_not_rescue_live_owners(
    setup: tuple[Client, Settings], noticed: bool
) -> None:
    client, settings = setup
    live = [_running(client, f"live-{n}") for n in range(3)]
    dead = _running(client, "dead")
    mono = Mono()
    steps = clock_steps_for(settings) if noticed else ClockSteps(math.inf, 0.0)
    rescuer = Rescuer(client.store, settings, steps, monotonic=mono)
    assert rescuer.run_once(at(0.5)).total == 0  # all fresh
    # The wall clock jumps two minutes ahead; half a second passes.
    mono.now += 0.5
    jumped = rescuer.run_once(at(121))
    wrongly = [i for i in jumped.requeued if i in live]
    if not noticed:
        assert sorted(wrongly) == sorted(live)  # every live owner's job would run again
        return
    assert jumped.total == 0 and steps.steps == 1
    # The live owners renew in the new time (their heartbeats come every lease/3).
    mono.now += 1.0
    for n, job_id in enumerate(live):
        report = client.store.heartbeat(f"live-{n}", {job_id: f"token-live-{n}"}, at(122), LEASE)
        assert report.renewed == frozenset({job_id})
    # A lease later the hold ends: only the dead owner's job is rescued.
    mono.now += LEASE
    after = rescuer.run_once(at(122 + LEASE))
    assert after.requeued == [dead]
    assert {client.get(i).status for i in live} == {JobStatus.RUNNING}
    client.close()


def test_a_daemon_elected_by_the_step_knows_of_it(setup: tuple[Client, Settings]) -> None:
    """The step made the old leader's lease look lapsed, so another daemon leads now; its
    heartbeat had been watching the clocks, so its first rescue holds too."""
    client, settings = setup
    live = _running(client, "live")
    mono = Mono()
    steps = clock_steps_for(settings)
    steps.observe(at(0.5), mono.now)  # this daemon's heartbeat, before the step
    mono.now += 0.4
    steps.observe(at(120.9), mono.now)  # ... and after it
    mono.now += 0.1
    newly_leading = Rescuer(client.store, settings, steps, monotonic=mono)
    assert newly_leading.run_once(at(121)).total == 0
    assert client.get(live).status is JobStatus.RUNNING
    client.close()


def test_a_backward_step_holds_nothing_and_renewals_go_on(
    setup: tuple[Client, Settings],
) -> None:
    client, settings = setup
    live = _running(client, "live")
    mono = Mono()
    rescuer = Rescuer(client.store, settings, monotonic=mono)
    rescuer.run_once(at(0.5))
    mono.now += 1.0
    report = client.store.heartbeat("live", {live: "token-live"}, at(-118), LEASE)
    assert report.renewed == frozenset({live}) and not report.lost
    assert rescuer.run_once(at(-118)).total == 0
    assert client.get(live).status is JobStatus.RUNNING
    client.close()


def test_small_drift_is_not_a_step() -> None:
    steps = ClockSteps(margin=0.5, hold=LEASE)
    for n in range(100):  # NTP slewing: wall and monotonic part by 1 ms a second
        assert not steps.holding(at(n * 1.001), 1000.0 + n)
    assert steps.steps == 0
