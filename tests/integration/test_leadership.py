"""Leadership: one lease row with a term, on both stores; and this daemon's belief in it."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from durableq.client import Client
from durableq.core.config import Settings
from durableq.worker.services.leader import Leadership
from durableq.worker.services.runner import ServiceRunner

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_lead_is_kept_by_its_holder_and_taken_only_once_it_expired(
    any_client: Client,
) -> None:
    repo = any_client.store
    assert repo.take_lead("a", at(0), 10) == 1
    assert repo.take_lead("a", at(5), 10) == 1  # a renewal keeps the term
    assert repo.take_lead("b", at(14), 10) is None  # a's lease runs to 15
    assert repo.leader(at(14)).holder == "a"  # type: ignore[union-attr]
    assert repo.take_lead("b", at(15.5), 10) == 2  # expired: a new term
    assert repo.take_lead("a", at(16), 10) is None
    assert repo.resign_lead("b") and repo.leader(at(16)) is None
    assert repo.take_lead("a", at(16), 10) == 3  # at once after a resignation
    assert not repo.resign_lead("b")


def test_racing_takers_elect_exactly_one(any_client: Client) -> None:
    repo = any_client.store
    holders: list[str] = []
    term = 0
    for round_number in range(5):
        now = at(100 * round_number)
        won: list[int] = []
        start = threading.Barrier(6)

        def take(name: str, when: datetime, barrier: threading.Barrier, winners: list[int]) -> None:
            barrier.wait()
            term = repo.take_lead(name, when, 50)
            if term is not None:
                winners.append(term)
                holders.append(name)

        threads = [threading.Thread(target=take, args=(f"w{n}", now, start, won)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won
        # A new holder gets the next term; the previous one winning again keeps its term.
        kept = len(holders) > 1 and holders[-1] == holders[-2]
        term = term if kept else term + 1
        assert won == [term], (won, holders)


def test_two_daemons_never_both_believe_they_lead(tmp_path: Path) -> None:
    """Four would-be leaders on a 0.4 s lead; each stalls at random (as a paused process would)
    for longer than the lead; a checker samples every belief all the while."""
    settings = replace(Settings(database=f"sqlite:///{tmp_path / 'lead.db'}"), lease=0.6)
    client = Client.open(settings)
    rivals = [Leadership(client.store, f"w{n}", settings, client.clock) for n in range(4)]
    stop = threading.Event()
    both: list[list[str]] = []
    terms: list[tuple[str, int]] = []

    def campaign(rival: Leadership, seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            term = rival.run_once(client.clock())
            if term is not None:
                terms.append((rival.worker_id, term))
            time.sleep(rng.choice((0.05, 0.1, 0.1, 0.6)))  # 0.6 s: a stall past the lead

    def check() -> None:
        while not stop.is_set():
            leading = [r.worker_id for r in rivals if r.leads()]
            if len(leading) > 1:
                both.append(leading)
            time.sleep(0.0005)

    threads = [threading.Thread(target=campaign, args=(r, n)) for n, r in enumerate(rivals)]
    threads.append(threading.Thread(target=check))
    for thread in threads:
        thread.start()
    time.sleep(6)
    stop.set()
    for thread in threads:
        thread.join()
    client.close()
    assert not both, both[:5]
    holders_by_term: dict[int, set[str]] = {}
    for holder, term in terms:
        holders_by_term.setdefault(term, set()).add(holder)
    assert all(len(h) == 1 for h in holders_by_term.values()), holders_by_term
    assert len(holders_by_term) >= 3, "the lead never changed hands: the test proves nothing"


def test_leader_only_services_run_only_while_leading(tmp_path: Path) -> None:
    settings = Settings(database=f"sqlite:///{tmp_path / 'svc.db'}")
    client = Client.open(settings)
    ran: list[str] = []

    class Duty:
        name, interval, leader_only = "duty", 0.01, True

        def run_once(self, now: datetime) -> None:
            ran.append("duty")

    class Broken:
        name, interval, leader_only = "broken", 0.01, False

        def run_once(self, now: datetime) -> None:
            raise RuntimeError("a bug")

    leading = {"now": False}
    runner = ServiceRunner("test", [Broken(), Duty()], client.clock, lambda: leading["now"])
    reports = runner.run_due()
    assert ran == [] and isinstance(reports["broken"], RuntimeError)  # isolated, not raised
    leading["now"] = True
    time.sleep(0.6)  # a follower looks again within LEADER_RECHECK
    runner.run_due()
    assert ran == ["duty"]
    client.close()
