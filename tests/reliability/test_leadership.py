"""kill -9 the leader: another daemon takes the lead within one lease, under a new term.

Three daemons with a 3 s lease (the lead lasts 2 s and is renewed every second). The leader is
killed three times (a replacement daemon started each time); each takeover is timed from the
kill, and the daemons' logs must show each term led by exactly one daemon.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import TEST_TIMEOUT, Figures, fleet, problem_lines, wait_registered
from tests.support.processes import wait_until

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

LEASE = 3.0


def test_a_killed_leader_is_replaced_within_one_lease(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("leader kill -9, 3 daemons, 3 s lease")
    Client.open(str(db_path)).close()
    takeovers: list[float] = []
    args = ("--lease", f"{LEASE:g}s", "--log-level", "info")
    with fleet(db_path, tmp_path, *args) as daemons, Client.open(str(db_path)) as client:
        for _ in range(3):
            daemons.start()
        wait_registered(db_path, 3)
        for _ in range(3):
            lead = wait_until(client.leader, timeout=30, what="a leader")
            pids = {w.id: w.pid for w in client.workers()}
            victim = next(d for d in daemons.alive() if d.pid == pids[lead.holder])
            killed = daemons.kill(victim)
            new = wait_until(
                lambda old=lead.holder: (
                    (found := client.leader()) and found.holder != old and found
                ),
                timeout=30,
                interval=0.02,
                what="a new leader",
            )
            takeovers.append(time.time() - killed)
            assert new.term > lead.term
            fresh = daemons.start()
            wait_until(
                lambda pid=fresh.pid: pid in {w.pid for w in client.workers()},
                timeout=30,
                what="the replacement daemon to register",
            )
        codes = daemons.stop_all()
        assert client.leader() is None  # the last leader resigned on its way out
    report["takeover_s"] = ", ".join(f"{t:.2f}" for t in takeovers)
    assert max(takeovers) <= LEASE + 0.3, f"takeovers took {takeovers} s (lease {LEASE} s)"
    leaders_of_term: dict[int, set[int]] = defaultdict(set)
    for daemon in daemons.daemons:
        for term in re.findall(r"leads \(term (\d+)\)", daemon.log_text()):
            leaders_of_term[int(term)].add(daemon.pid)
    assert len(leaders_of_term) >= 4
    assert all(len(pids) == 1 for pids in leaders_of_term.values()), leaders_of_term
    assert set(codes.values()) == {0}
    assert not (bad := problem_lines(daemons.combined_logs())), "\n".join(bad[:20])
