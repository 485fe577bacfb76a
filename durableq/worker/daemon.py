"""The worker daemon: wiring, registration, signals (first: drain; second: stop now)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from durableq.client import Client
from durableq.core.builder import utc_now
from durableq.handlers.registry import Registry
from durableq.store.api import WorkerInfo
from durableq.worker.dispatcher import Dispatcher, WorkerOptions
from durableq.worker.events import Draining, Events
from durableq.worker.executor import Executor, Runner
from durableq.worker.job_log import log_event
from durableq.worker.maintenance import Maintenance

log = logging.getLogger("durableq.worker")


class Worker:
    """One daemon process's worker. `run()` blocks until it is told to stop or the burst ends."""

    def __init__(
        self,
        client: Client,
        registry: Registry,
        options: WorkerOptions,
        clock: Callable[[], datetime] = utc_now,
        runner: Runner | None = None,
    ) -> None:
        """`runner`: where handlers run; this process's threads unless given (a ProcessPool)."""
        self.client = client
        self.runner = runner or Executor(registry)
        self.options = options
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # What happens in the worker reaches logging (and later metrics) through this hook.
        self.events = Events()
        self.events.subscribe(log_event)
        self.dispatcher = Dispatcher(
            client.store,
            self.runner,
            client.settings,
            options,
            self.id,
            clock,
            self.events,
        )
        self.maintenance = Maintenance(
            client.store,
            self.dispatcher,
            client.settings,
            clock,
            self.events,
            schedules=registry.schedules(),
        )
        self.clock = clock
        self._signals = 0

    def run(self) -> None:
        store = self.client.store
        now = self.clock()
        store.register_worker(
            WorkerInfo(
                id=self.id,
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=self.options.described_queues(),
                concurrency=self.options.concurrency,
                started_at=now,
                heartbeat_at=now,
                lease=self.client.settings.lease,
            )
        )
        log.info(
            "worker %s started: concurrency %d, queues %s%s",
            self.id,
            self.options.concurrency,
            ",".join(self.options.described_queues()) or "all",
            ", burst" if self.options.burst else "",
        )
        warning = self.client.settings.lease_warning()
        if warning and self.client.store.dialect == "sqlite":
            log.warning("%s", warning)
        self.maintenance.start()
        watcher = store.change_watcher()
        try:
            self.dispatcher.run(watcher)
        finally:
            watcher.close()
            self.maintenance.stop()
            self.runner.close()
            try:
                store.unregister_worker(self.id)
            except Exception as error:  # the row is pruned later anyway
                log.warning("could not unregister worker %s: %s", self.id, error)
            log.info("worker %s stopped after %d job(s)", self.id, self.dispatcher.processed)

    def stop(self) -> None:
        self.dispatcher.request_stop()

    def install_signal_handlers(self) -> None:
        # SIGHUP too: a closed terminal sends it, and it used to kill the daemon at once (no
        # drain; its jobs waited for their leases). Now it drains, as SIGTERM does.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            # Running jobs keep their leases; another daemon rescues them when those expire.
            log.warning("%s again: exiting now", name)
            logging.shutdown()
            os._exit(128 + signum)
        log.info(
            "%s: finishing running jobs (up to %gs); send it again to exit at once",
            name,
            self.options.shutdown_timeout,
        )
        self.events.emit(Draining(self.id))
        # The handler runs in the main thread: never block it, just flag the stop.
        threading.Thread(target=self.stop, daemon=True).start()
