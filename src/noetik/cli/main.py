"""The ``noetik`` command: one entry point, one sub-app per stage.

User errors (:class:`~noetik.errors.NoetikError`) print one ``error:`` line on stderr and exit
with status 2, without a traceback (130 for an interrupted training, which says how to resume).
"""

from __future__ import annotations

import sys

import typer

from noetik import __version__
from noetik.cli.analyse import analyse
from noetik.cli.choices import choices_app
from noetik.cli.data import data_app
from noetik.cli.evaluate import evaluate
from noetik.cli.explain import explain
from noetik.cli.report import report
from noetik.cli.sim import sim_app
from noetik.cli.sweep import sweep
from noetik.cli.train import act, train
from noetik.errors import NoetikError

app = typer.Typer(
    name="noetik",
    help="Interpretable reinforcement learning for recommendation on KuaiRand.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(sim_app, name="sim")
app.add_typer(choices_app, name="choices")
app.command("train")(train)
app.command("act")(act)
app.command("evaluate")(evaluate)
app.command("explain")(explain)
app.command("report")(report)
app.command("analyse")(analyse)
app.command("sweep")(sweep)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"noetik {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Interpretable reinforcement learning for recommendation on KuaiRand."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user or usage error)."""
    try:
        app(args=argv, prog_name="noetik")
    except NoetikError as exc:
        typer.echo(f"error: {exc}", err=True)
        return int(getattr(exc, "exit_code", 2))
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
