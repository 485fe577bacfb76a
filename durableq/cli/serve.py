"""`durableq serve`: the HTTP API (FastAPI on uvicorn) on --db, without running jobs."""

from __future__ import annotations

import logging
import signal

import click

from durableq.cli.app import app, db_option
from durableq.core.errors import DurableqError, InvalidInput

log = logging.getLogger("durableq.http")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@click.command()
@click.option(
    "--bind",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen. Another host than loopback needs --token (or --insecure).",
)
@click.option(
    "--token",
    envvar="DURABLEQ_API_TOKEN",
    metavar="TOKEN",
    help="Require Authorization: Bearer TOKEN on every route but /healthz "
    "[env DURABLEQ_API_TOKEN].",
)
@click.option(
    "--insecure", is_flag=True, help="Allow a non-loopback bind without a token (logs a warning)."
)
@click.option(
    "--max-body",
    type=click.IntRange(1024, 1024**3),
    default=1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Largest request body accepted; larger ones get 413.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@db_option
@click.pass_context
def serve(
    ctx: click.Context,
    bind: str,
    token: str | None,
    insecure: bool,
    max_body: int,
    log_level: str,
) -> None:
    """Serve the HTTP API on --db: submit, follow and manage jobs (OpenAPI at /docs).

    SIGTERM or SIGINT: stop accepting connections, finish the requests in flight, exit 0.
    """
    try:
        import uvicorn

        from durableq.http.app import create_app
        from durableq.http.security import check_bind, parse_bind
    except ImportError as error:
        raise DurableqError(
            f"the HTTP API needs the http extra ({error.name} is missing): "
            "pip install 'durableq[http]'"
        ) from None
    if token is not None and not token.strip():
        raise InvalidInput("--token is empty: give a secret, e.g. from `openssl rand -hex 32`")
    host, port = parse_bind(bind)
    check_bind(host, token, insecure)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    if token is None and insecure:
        log.warning(
            "serving on %s without a token (--insecure): anyone who reaches it may act", bind
        )
    client = app(ctx).client(create=True)
    api = create_app(client, token=token, max_body=max_body)
    where = client.engine.url.render_as_string(hide_password=True)
    log.info("durableq API on http://%s:%d (docs at /docs), database %s", host, port, where)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again into the
    # handler it found: this one, so that a clean stop exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    uvicorn.run(api, host=host, port=port, log_level=log_level.lower(), access_log=False)
    log.info("durableq API stopped")
