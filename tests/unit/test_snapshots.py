"""Snapshot: the first read waits, later ones get the kept value at once, an old value is
refreshed in the background (one refresh at a time), a slow read is kept longer."""

from __future__ import annotations

import threading
import time

from durableq.snapshots import Snapshot


def test_stale_values_are_served_while_one_refresh_runs() -> None:
    calls: list[int] = []
    release = threading.Event()

    def read() -> int:
        calls.append(len(calls))
        if len(calls) > 1:
            release.wait(5)
        return len(calls)

    snapshot = Snapshot(read, fresh=0.05, share=0.0, cheap=0.0)
    assert snapshot.get() == 1  # the first read is made in the caller
    time.sleep(0.06)
    started = time.monotonic()
    assert [snapshot.get() for _ in range(20)] == [1] * 20  # old value, at once
    assert time.monotonic() - started < 1
    assert len(calls) == 2  # and only one refresh started for all twenty
    release.set()
    deadline = time.monotonic() + 5
    while snapshot.get() != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert snapshot.get() == 2


def test_a_slow_read_is_kept_share_times_as_long() -> None:
    snapshot = Snapshot(lambda: time.sleep(0.05) or 1, fresh=0.001, share=10)
    snapshot.get()
    assert snapshot._keep >= 0.5


def test_a_failing_refresh_keeps_the_old_value() -> None:
    results: list[object] = [1, RuntimeError("database away")]

    def read() -> object:
        value = results.pop(0) if results else 3
        if isinstance(value, Exception):
            raise value
        return value

    snapshot = Snapshot(read, fresh=0.01, share=0.0, cheap=0.0)
    assert snapshot.get() == 1
    time.sleep(0.02)
    assert snapshot.get() == 1  # the refresh fails behind the scenes
    time.sleep(0.05)
    assert snapshot.get() in (1, 3)


def test_warming_reads_once_behind_the_scenes_and_a_caller_joins_that_read() -> None:
    calls: list[float] = []
    release = threading.Event()

    def read() -> int:
        calls.append(time.monotonic())
        release.wait(5)
        return 7

    snapshot = Snapshot(read, fresh=60)
    snapshot.warm()
    snapshot.warm()  # a second warm starts nothing
    got: list[int] = []
    caller = threading.Thread(target=lambda: got.append(snapshot.get()))
    caller.start()
    time.sleep(0.05)
    assert not got  # waiting for the warming read, not starting its own
    release.set()
    caller.join(5)
    assert got == [7] and len(calls) == 1


def test_a_failed_warm_read_leaves_the_first_get_to_read() -> None:
    results: list[object] = [RuntimeError("database away"), 5]

    def read() -> object:
        value = results.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    snapshot = Snapshot(read, fresh=60)
    snapshot.warm()
    assert snapshot.get() == 5


def test_a_cheap_read_is_made_again_rather_than_served_stale() -> None:
    values = iter(range(1, 100))
    snapshot = Snapshot(lambda: next(values), fresh=0.02)  # reads take microseconds: cheap
    assert snapshot.get() == 1
    assert snapshot.get() == 1  # still fresh
    time.sleep(0.03)
    assert snapshot.get() == 2  # old and cheap: read again, at once
