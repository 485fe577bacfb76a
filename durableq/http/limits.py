"""A bound on request bodies (default 1 MiB), checked before the body is read into memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from durableq.http.problems import problem

DEFAULT_MAX_BODY = 1024 * 1024


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes; send less per request"


class BodyLimit:
    """Refuses a declared Content-Length over the limit at once (413). A body without one that
    grows past the limit while it streams in is cut off: the client gets the 413, and the
    application sees a disconnect and writes nothing."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Built only when needed: rendering it on every request cost ~5% of a submit.
        await problem(413, "body_too_large", too_large(self.limit))(scope, receive, send)
