"""The ``interlock`` command: its root, error handling and sub-commands.

Exit codes: 0 done; 1 the run failed (``run --watch``) or a local failure; 2 a usage
error, or the run was cancelled (``run --watch``); 3 the API answered an error or could
not be reached; 130 interrupted.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from interlock.cli import (
    _admin,
    _artifacts,
    _auth,
    _logs,
    _notifications,
    _runs,
    _scheduler,
    _workflows,
)
from interlock.cli._output import CliError
from interlock.cli._watch import API_ERROR_EXIT
from interlock.client import ApiError, InterlockClientError, Unauthenticated


def error_line(error: BaseException) -> str:
    """An error as the one line printed to stderr."""
    if isinstance(error, ApiError):
        where = f" [HTTP {error.status}" + (
            f", request {error.request_id}]" if error.request_id else "]"
        )
        hint = (
            " Log in with `interlock login`, or set INTERLOCK_API_KEY."
            if (isinstance(error, Unauthenticated))
            else ""
        )
        return f"Error: {error.summary()}{where}{hint}"
    return "Error: " + " ".join(str(error).split())


class _Root(TyperGroup):
    """The root group: every error of every sub-command becomes one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # Typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except InterlockClientError as error:
            _fail(error_line(error), API_ERROR_EXIT)
        except CliError as error:
            _fail(error_line(error), error.exit_code)
        except OSError as error:
            _fail(error_line(error), 1)
        except KeyboardInterrupt:
            _fail("Interrupted.", 130)


def _fail(line: str, code: int) -> None:
    typer.echo(line, err=True)
    raise typer.Exit(code)


app = typer.Typer(
    cls=_Root,
    name="interlock",
    help="Interlock's workflows, runs, logs and more, from a terminal, a script or CI.",
    epilog="Start with: interlock login, then interlock apply -f workflow.yaml.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    gateway: Annotated[
        str | None,
        typer.Option(
            envvar="INTERLOCK_GATEWAY",
            help="The gateway's URL. Default: the stored login's, else http://127.0.0.1:8080.",
        ),
    ] = None,
) -> None:
    """Interlock from the command line: workflows, runs, logs, dead letters and more.

    Credentials: `interlock login` stores a session; scripts and CI set INTERLOCK_API_KEY.

    Example: interlock --gateway http://127.0.0.1:8080 runs list --status failed
    """


for module in (
    _auth,
    _workflows,
    _runs,
    _logs,
    _scheduler,
    _artifacts,
    _notifications,
    _admin,
):
    module.register(app)


def main() -> None:
    """Run the command line (the ``interlock`` script)."""
    app(prog_name="interlock")
