"""Long-polls without a thread each: one watcher thread wakes every waiting request.

`GET /jobs/{id}/result?wait=30s` may wait a minute. Waiting in a worker thread would hold one
of the server's 40 for all that time; instead each waiting request awaits an asyncio event,
and one thread (started with the first waiter) sleeps on the store's change watcher (inotify
and data_version on SQLite, LISTEN on PostgreSQL) and sets every event when the database
changes. The request then reads its job again and either answers or waits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from durableq.core.errors import DurableqError
from durableq.store.api import Store
from durableq.store.changes import wait_for_change

log = logging.getLogger("durableq.http")
T = TypeVar("T")
WATCH_STEP = 1.0  # how often the thread looks at whether it should stop


class ChangeBroadcast:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    async def wait_until(
        self, read: Callable[[], T], finished: Callable[[T], bool], timeout: float
    ) -> T:
        """Call `read` (in a thread: it reads the database) until `finished` says yes of what
        it returned or `timeout` passes; returns what it returned last."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        self._add(entry)
        deadline = time.monotonic() + timeout
        try:
            while True:
                event.clear()  # cleared before reading: a commit after the read sets it again
                value = await asyncio.to_thread(read)
                remaining = deadline - time.monotonic()
                if finished(value) or remaining <= 0 or self._stopping.is_set():
                    return value
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                self._waiters.discard(entry)

    def open(self) -> None:
        """Watch again after a close (an app's lifespan may run more than once)."""
        if self._thread is not None:
            self._thread.join(WATCH_STEP * 2)
        self._stopping.clear()
        self._thread = None

    def stop(self) -> None:
        """End every wait now (each answers with what it last read) and watch no more."""
        self._stopping.set()
        self._wake_all()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(WATCH_STEP * 2)

    def _add(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.add(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="durableq-result-waiters", daemon=True
                )
                self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                watcher = self._store.change_watcher()
            except DurableqError as error:  # the database is away: waiters poll on their own
                log.warning("cannot watch the database for changes: %s", error)
                self._wake_all()
                self._stopping.wait(WATCH_STEP)
                continue
            try:
                while not self._stopping.is_set():
                    if wait_for_change(watcher, WATCH_STEP):
                        self._wake_all()
            except Exception as error:  # keep the thread: waiters would otherwise only time out
                log.warning("watching the database for changes failed: %s", error)
                self._wake_all()
                self._stopping.wait(WATCH_STEP)
            finally:
                watcher.close()

    def _wake_all(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)
