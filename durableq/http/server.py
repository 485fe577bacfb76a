"""The API on uvicorn, in a thread of its own, with a drain phase before it stops.

uvicorn runs in a thread so that the process's main thread keeps the signals and decides the
order of a shutdown: `durableq serve` drains the API and stops; `worker start --http` drains the
API, then the workers, then stops the API. Draining refuses new submissions with 503 (so a
client knows to go elsewhere, rather than seeing its connection reset), ends long-polls, and
says not ready on /readyz; reads keep working. Stopping lets the requests in flight finish and
commits what was submitted before the server closes.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from durableq.core.errors import DurableqError

log = logging.getLogger("durableq.http")
GRACEFUL_SHUTDOWN = 30.0  # seconds requests in flight may take once the server stops


class ApiServer:
    def __init__(self, app: FastAPI, host: str, port: int, *, log_level: str = "info") -> None:
        self.app = app
        self.host, self.port = host, port
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level=log_level.lower(),
            access_log=False,
            log_config=None,  # uvicorn's loggers go to the process's own handlers and format
            timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN),
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Listen (errors such as a port in use are raised here, worded), then serve."""
        listener = _listen(self.host, self.port)
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name="durableq-http"
        )
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DurableqError(f"the HTTP API on {self.host}:{self.port} did not start")
            time.sleep(0.01)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def drain(self) -> None:
        """The app's drain, if it has one (http/app.py): quick, callable from a signal."""
        drain = getattr(self.app.state, "drain", None)
        if drain is not None:
            drain()

    def stop(self, timeout: float = GRACEFUL_SHUTDOWN + 5) -> None:
        """Drain, let requests in flight finish, commit what they submitted, close."""
        self.drain()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the HTTP API did not stop within %.0fs", timeout)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it Nagle's algorithm held every response ~40 ms (a 0-proto socket measured
    # 23 requests/s on one keep-alive connection, against ~400 with it).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        reason = error.strerror or str(error)
        raise DurableqError(
            f"cannot listen on {host}:{port}: {reason.lower()}; pick another --bind"
        ) from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener
