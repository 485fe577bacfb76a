"""ctx.cancelled reads as set once the lease's end passes, by the owner's own clock."""

from __future__ import annotations

import threading
import time

from durableq.core.jobs import ClaimedJob
from durableq.worker.executor import Execution, StopReason
from durableq.worker.leases import StopSignal


def _execution() -> Execution:
    job = ClaimedJob(1, "default", "noop", {}, 1, 3, None, "token")
    return Execution(job)


def test_a_signal_with_no_deadline_is_a_plain_event() -> None:
    signal = StopSignal()
    assert not signal.is_set()
    assert signal.wait(0.01) is False
    signal.set()
    assert signal.is_set() and signal.wait(0)


def test_a_lapsed_deadline_reads_as_set_and_calls_back_once() -> None:
    calls: list[int] = []
    signal = StopSignal(on_lapse=lambda: calls.append(1))
    signal.deadline = time.monotonic() - 0.001
    assert signal.is_set() and signal.is_set()
    assert calls == [1]


def test_wait_returns_at_the_deadline_not_at_the_timeout() -> None:
    signal = StopSignal()
    signal.deadline = time.monotonic() + 0.05
    began = time.monotonic()
    assert signal.wait(5) is True
    assert 0.04 <= time.monotonic() - began < 1


def test_a_renewal_during_a_wait_keeps_the_handler_going() -> None:
    execution = _execution()
    execution.lease_until(time.monotonic() + 0.05)
    renewer = threading.Timer(0.02, lambda: execution.lease_until(time.monotonic() + 5))
    renewer.start()
    assert execution.cancelled.wait(0.2) is False
    renewer.join()
    assert execution.reason is None


def test_a_lapse_stops_the_execution_with_its_own_reason() -> None:
    execution = _execution()
    execution.lease_until(time.monotonic() - 1)
    assert execution.cancelled.wait(1)
    assert execution.reason is StopReason.LAPSED


def test_a_lease_never_moves_earlier() -> None:
    execution = _execution()
    execution.lease_until(100.0)
    execution.lease_until(50.0)
    assert execution.lease_deadline == 100.0


def test_a_cancel_outranks_a_lapse() -> None:
    execution = _execution()
    execution.lease_until(time.monotonic() - 1)
    execution.cancelled.is_set()
    execution.stop(StopReason.CANCELED)
    assert execution.reason is StopReason.CANCELED


def test_a_handler_is_never_started_on_a_lapsed_lease() -> None:
    from durableq.core.outcomes import OutcomeKind
    from durableq.handlers.registry import Registry
    from durableq.worker.executor import Executor

    ran: list[int] = []
    registry = Registry()
    registry.register("noop", lambda ctx, payload: ran.append(1))
    execution = _execution()
    execution.lease_until(time.monotonic() - 0.001)
    outcome = Executor(registry).run(execution)
    assert outcome.kind is OutcomeKind.INTERRUPTED and ran == []


def test_many_threads_waiting_on_a_fresh_signal_all_wake_when_it_is_set() -> None:
    """The signal's Condition is made on first use: threads that race to make it must still
    share one, or a set() would wake only some of them."""
    for _ in range(50):
        signal = StopSignal()
        woke: list[bool] = []
        start = threading.Barrier(9)

        def wait(
            signal: StopSignal = signal, woke: list[bool] = woke, start: threading.Barrier = start
        ) -> None:
            start.wait()
            woke.append(signal.wait(5))

        threads = [threading.Thread(target=wait) for _ in range(8)]
        for thread in threads:
            thread.start()
        start.wait()
        signal.set()
        for thread in threads:
            thread.join(10)
        assert woke == [True] * 8
        assert isinstance(signal, threading.Event) and signal.is_set()


def test_a_lapse_on_a_signal_nobody_waited_on_sets_it() -> None:
    lapses: list[int] = []
    signal = StopSignal(on_lapse=lambda: lapses.append(1))
    signal.deadline = time.monotonic() - 1
    assert signal.is_set() and signal.wait(0) and lapses == [1]
