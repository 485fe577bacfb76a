"""Who may call the API: loopback binds need nothing; any other bind needs a token (Bearer,
compared in constant time) unless the operator explicitly chose --insecure."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from durableq.core.errors import InvalidInput
from durableq.http.problems import problem

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
OPEN_PATHS = {"/healthz"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to expose an open API to other hosts by accident."""
    if token is None and not insecure and not is_loopback(host):
        raise InvalidInput(
            f"binding to {host} exposes the API to other hosts: give --token (or "
            "DURABLEQ_API_TOKEN), or --insecure to allow anyone who can reach it"
        )


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput(f"invalid --bind {value!r}: use HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port_text)


class TokenGuard:
    """Bearer auth on every path but /healthz (the docs and /metrics included), as middleware
    so that no route can be forgotten. Without a token it lets everything through."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, credential = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token):
            await self.app(scope, receive, send)
            return
        response = problem(
            401,
            "unauthorized",
            "this API needs a token: send Authorization: Bearer <token>",
            {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)
