"""The login form: a browser trades the API token for an HttpOnly, SameSite=Strict cookie
(checked by http.security.TokenGuard like a Bearer header). Only when a token is set."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from durableq.dashboard.render import page
from durableq.http.security import COOKIE

router = APIRouter(include_in_schema=False)
WEEK = 7 * 24 * 3600


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "", failed: str = "") -> HTMLResponse:
    return page(request, "login.html", "Sign in", "", next=_safe_next(request, next), failed=failed)


@router.post("/login")
async def login(request: Request) -> Response:
    settings = request.app.state.dashboard
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    given = (form.get("token") or [""])[0]
    target = _safe_next(request, (form.get("next") or [""])[0])
    token = settings.token or ""
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        again = urlencode({"failed": "1", "next": target})
        return RedirectResponse(f"{settings.prefix}/login?{again}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=WEEK,
        path=settings.prefix or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    settings = request.app.state.dashboard
    response = RedirectResponse(f"{settings.prefix}/login", status_code=303)
    response.delete_cookie(COOKIE, path=settings.prefix or "/")
    return response


def _safe_next(request: Request, target: str) -> str:
    """Only a path on this server: never an open redirect to another site."""
    prefix = request.app.state.dashboard.prefix
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{prefix}/"
