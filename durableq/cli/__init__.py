"""The `durableq` command: a click group. Errors become one stderr line at a single boundary."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from durableq import __version__
from durableq.cli.app import App, db_option
from durableq.core.errors import DurableqError

F = TypeVar("F", bound=Callable[..., Any])


# Each command's module is imported only when that command runs: `durableq enqueue` on a ready
# SQLite file then never imports SQLAlchemy, which is most of a call's start-up time.
COMMANDS = {
    "enqueue": "durableq.cli.enqueue:enqueue",
    "jobs": "durableq.cli.jobs:jobs",
    "cancel": "durableq.cli.jobs:cancel",
    "retry": "durableq.cli.jobs:retry",
    "wait": "durableq.cli.jobs:wait",
    "stats": "durableq.cli.jobs:stats",
    "purge": "durableq.cli.jobs:purge",
    "queues": "durableq.cli.queues:queues",
    "queue": "durableq.cli.queues:queue",
    "schedules": "durableq.cli.schedules:schedules",
    "serve": "durableq.cli.serve:serve",
    "worker": "durableq.cli.worker:worker",
    "workers": "durableq.cli.worker:workers",
    "db": "durableq.cli.db:db",
    "bench": "durableq.cli.bench:bench",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, _, attribute = spec.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="durableq")
@db_option
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """durableq: a durable job queue persisted in SQLite (or PostgreSQL).

    The database is --db (a path or URL), else $DURABLEQ_DATABASE, else ./durableq.db.
    """
    ctx.obj = App(db)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error ends here as one line on stderr and an exit code."""
    try:
        # Outside standalone mode click returns a command's `ctx.exit(code)` instead of exiting.
        code = cli.main(args=argv, prog_name="durableq", standalone_mode=False)
    except DurableqError as error:
        _fail(str(error), error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        _fail("aborted", 130)
    except click.ClickException as error:
        _fail(_usage_message(error), error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # Reading end closed (e.g. `| head`): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:
        if os.environ.get("DURABLEQ_DEBUG"):
            raise
        _fail(
            f"internal error: {type(error).__name__}: {error} (set DURABLEQ_DEBUG=1 for a "
            "traceback and report it)",
            1,
        )
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


def _usage_message(error: click.ClickException) -> str:
    message = error.format_message()
    context = getattr(error, "ctx", None)
    if isinstance(error, click.UsageError) and context is not None:
        return f"{message} (see `{context.command_path} --help`)"
    return message


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"durableq: error: {message}", err=True)
    sys.exit(code)
