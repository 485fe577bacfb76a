"""Errors as RFC 9457 problem+json: a stable `code` per kind, the CLI's one-line wording as the
`detail`, and never a stack trace."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from durableq.core.errors import (
    DatabaseBusy,
    DatabaseError,
    DurableqError,
    HandlerNotFound,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    QueueFull,
    UniqueConflict,
)
from durableq.group_commit import WriterClosed

log = logging.getLogger("durableq.http")

PROBLEM = "application/problem+json"
RETRY_AFTER_FULL = "1"  # seconds: a queue at max_pending drains at the workers' pace

# Most specific first: the first class an error is an instance of decides.
_KINDS: tuple[tuple[type[DurableqError], int, str], ...] = (
    (JobNotFound, 404, "job_not_found"),
    (InvalidTransition, 409, "invalid_transition"),
    (UniqueConflict, 409, "unique_conflict"),
    (IdempotencyConflict, 422, "idempotency_conflict"),
    (InvalidInput, 422, "invalid_input"),
    (HandlerNotFound, 422, "invalid_input"),
    (QueueFull, 429, "queue_full"),
    (WriterClosed, 503, "draining"),
    (DatabaseBusy, 503, "database_busy"),
    (DatabaseError, 503, "database_unavailable"),
)
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiProblem(Exception):
    """An error of the HTTP layer itself (auth, draining, ...), raised from a route."""

    def __init__(
        self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers or {})


def problem(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {
        "type": f"urn:durableq:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM)


def classify(error: DurableqError) -> tuple[int, str]:
    for kind, status, code in _KINDS:
        if isinstance(error, kind):
            return status, code
    return 500, "internal"


def install(app: FastAPI) -> None:
    """Register the handlers that make every error a problem+json response."""

    async def durableq_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, DurableqError)
        status, code = classify(error)
        if _for_a_browser(request):
            return request.app.state.html_error(request, status, str(error))  # type: ignore[no-any-return]
        headers = {"Retry-After": RETRY_AFTER_FULL} if status in (429, 503) else {}
        return problem(status, code, str(error), headers)

    async def api_problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiProblem)
        if _for_a_browser(request):
            return request.app.state.html_error(request, error.status, error.detail)  # type: ignore[no-any-return]
        return problem(error.status, error.code, error.detail, error.headers)

    async def invalid_request(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem(422, "invalid_input", _first_error(error.errors()))

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        detail = str(error.detail)
        if error.status_code == 400 and "parsing the body" in detail:
            code, detail = "invalid_json", "the body is not valid JSON: send a JSON object"
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = allowed_methods(request.app, request.url.path)
        return problem(error.status_code, code, detail, headers)

    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.error("unexpected error: %s: %s", type(error).__name__, error, exc_info=error)
        return problem(500, "internal", "internal error; the server log has the details")

    app.add_exception_handler(DurableqError, durableq_error)
    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _for_a_browser(request: Request) -> bool:
    """A dashboard page asked for by a browser: answer with an HTML page. The routing knows
    which route failed, so no rule about paths can drift from the routes themselves."""
    pages: frozenset[object] = getattr(request.app.state, "html_endpoints", frozenset())
    return request.scope.get("endpoint") in pages and "text/html" in request.headers.get(
        "accept", ""
    )


def _first_error(errors: Any) -> str:
    """Pydantic's first complaint, worded as one line: where, and what is wrong."""
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "is not valid"))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'the body'}: {message}{more}"


def allowed_methods(app: FastAPI, path: str) -> str:
    """Every method the API documents for a path. Starlette's own Allow names only the first
    route that matched the path, so OPTIONS /api/v1/jobs would say POST and forget GET."""
    matches = [(p, m) for p, m in _path_patterns(app) if p.fullmatch(path)]
    # A literal path (/api/v1/jobs/batch) wins over a template it also fits (/jobs/{job_id}).
    literal = [(p, m) for p, m in matches if "[^/]+" not in p.pattern]
    allowed: set[str] = set()
    for _pattern, methods in literal or matches:
        allowed |= methods
    return ", ".join(sorted(allowed))


def _path_patterns(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    patterns: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        app.state, "path_patterns", None
    )
    if patterns is None:
        patterns = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            patterns.append((re.compile(regex), {method.upper() for method in operations}))
        app.state.path_patterns = patterns
    return patterns
