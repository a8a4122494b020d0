"""The ``ivr`` command. Each group of commands lives in its own module and registers
itself on ``app``; this module only holds the shared ``--home`` option."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ivr.home import Home
from ivr.logs import configure_logging

app = typer.Typer(
    name="ivr",
    help="12345 citizen hotline engine: one number for the whole city, on Asterisk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _home_option(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            envvar="IVR_HOME",
            help="Deployment folder holding config/, dialplans/ and routing/ (default: .).",
        ),
    ] = None,
) -> None:
    ctx.obj = Home.resolve(home)


def home_of(ctx: typer.Context) -> Home:
    """The Home chosen with --home / IVR_HOME for the running command."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Home) else Home.resolve()


def _register_commands() -> None:
    from ivr.tickets.cli import tickets_app

    app.add_typer(
        tickets_app, name="tickets", help="Tickets: list, show and drive their lifecycle."
    )
    # Imported for their side effect of adding commands to ``app``.
    import ivr.cli.admin
    import ivr.cli.agents
    import ivr.cli.recordings
    import ivr.cli.report
    import ivr.cli.stack  # noqa: F401


def main() -> None:
    # Logs go to stderr so that --json output on stdout stays clean.
    configure_logging(json=True, level=os.environ.get("IVR_LOG_LEVEL", "WARNING"))
    _register_commands()
    app()
