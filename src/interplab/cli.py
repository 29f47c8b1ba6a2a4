"""`interplab <command>`: the command-line entry point.

Each command lives in its own module under `interplab.commands` and exposes `register(app)`;
they are discovered here so a new capability adds a file, not an edit to a central list.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console
from rich.markup import escape

from interplab import commands
from interplab.common import InterplabError, configure_logging

app = typer.Typer(
    name="interplab",
    help="Interpretability workbench: capture activations, train SAEs, probe, steer, browse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Interpretability workbench: capture activations, train SAEs, probe, steer, browse."""
    # A callback keeps `interplab <command>` a group even when only one command is registered
    # (typer otherwise collapses a single-command app and the subcommand name stops working).


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"interplab.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    """Run the CLI; user-fixable errors print one red line and exit 2 instead of a traceback."""
    configure_logging()
    try:
        app()
    except InterplabError as exc:
        # escaped: a fix such as pip install 'psycopg[binary]' is text, not rich markup
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
