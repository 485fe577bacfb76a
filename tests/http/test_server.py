"""ApiServer in-process: it listens where told (with errors worded), drains (503 for
submissions, reads go on), and its accepted connections get TCP_NODELAY."""

from __future__ import annotations

import socket

import pytest

from durableq.client import Client
from durableq.core.errors import DurableqError
from durableq.http.app import create_app
from durableq.http.server import ApiServer, _listen
from tests.e2e.test_http_server import call


def test_the_listener_says_tcp_so_asyncio_turns_nagle_off() -> None:
    # A listener made with proto 0 gave accepted sockets without TCP_NODELAY: every response
    # sat ~40 ms in Nagle's buffer (found by `durableq bench --only http`).
    listener = _listen("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()


def test_serve_drain_and_stop(client: Client) -> None:
    server = ApiServer(create_app(client), "127.0.0.1", 0, log_level="warning")
    server.start()
    try:
        base = server.url
        assert call("POST", f"{base}/api/v1/jobs", {"type": "t"})[0] == 201
        server.drain()
        status, headers, problem = call("POST", f"{base}/api/v1/jobs", {"type": "t"})
        assert (status, problem["code"], headers["retry-after"]) == (503, "draining", "1")
        assert call("GET", f"{base}/readyz")[2]["code"] == "draining"
        assert call("GET", f"{base}/api/v1/jobs")[0] == 200
    finally:
        server.stop()
    assert not server.alive()
    assert len(client.jobs()) == 1


def test_a_port_in_use_is_a_worded_error(client: Client) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ApiServer(create_app(client), "127.0.0.1", port)
        with pytest.raises(DurableqError, match="address already in use; pick another --bind"):
            server.start()
