"""Who may call the API: loopback binds need nothing; any other bind needs a token (Bearer,
compared in constant time) unless the operator explicitly chose --insecure."""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from durableq.core.errors import InvalidInput
from durableq.http.problems import problem

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
OPEN_PATHS = frozenset({"/healthz"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "durableq_token"  # set by the dashboard's login form: HttpOnly, SameSite=Strict


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
    """The token on every path but /healthz (the docs and /metrics included), as middleware so
    that no route can be forgotten. Without a token it lets everything through.

    The token comes as `Authorization: Bearer <token>` (programs) or as the dashboard's login
    cookie (browsers). A browser asking for a dashboard page without either is sent to the
    login form instead of getting a 401 it cannot act on.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        open_paths: frozenset[str] = frozenset(),
        login_path: str | None = None,
    ) -> None:
        self.app = app
        self.token = None if token is None else token.encode()
        self.open_paths = OPEN_PATHS | open_paths
        self.login_path = login_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._presented(scope):
            await self.app(scope, receive, send)
            return
        if self.login_path is not None and _wants_html(scope) and scope["method"] == "GET":
            path = scope.get("root_path", "") + scope["path"]
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            location = f"{self.login_path}?{urlencode({'next': target})}"
            await RedirectResponse(location, status_code=303)(scope, receive, send)
            return
        response = problem(
            401,
            "unauthorized",
            "this API needs a token: send Authorization: Bearer <token>",
            {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def _open(self, path: str) -> bool:
        return path in self.open_paths or any(
            path.startswith(prefix) for prefix in self.open_paths if prefix.endswith("/")
        )

    def _presented(self, scope: Scope) -> bool:
        assert self.token is not None
        headers = dict(scope.get("headers") or [])
        scheme, _, credential = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token):
            return True
        cookies = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        morsel = cookies.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.token)


class CrossSiteGuard:
    """Refuses a POST, PATCH or DELETE that a browser sent from another site (403).

    A loopback server has no token, so any web page the operator visits could otherwise make
    their browser post to http://127.0.0.1:8080/api/v1/jobs/1/cancel (a "simple" request that
    CORS does not stop). Browsers say where a request comes from: Sec-Fetch-Site, or else
    Origin, which must then name this server. Programs send neither and are let through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = dict(scope.get("headers") or [])
            if _cross_site(headers):
                response = problem(
                    403,
                    "cross_site",
                    "a request from another site may not change anything here",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _cross_site(headers: dict[bytes, bytes]) -> bool:
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site not in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None or origin == b"null":
        return origin == b"null"
    host = headers.get(b"host", b"")
    return urlsplit(origin.decode("latin-1")).netloc.encode("latin-1") != host


def _wants_html(scope: Scope) -> bool:
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/html" in accept
