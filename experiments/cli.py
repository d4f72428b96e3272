"""The ``momlab`` command line.

Command groups are added by the modules that own them; invalid input ends with a one-line message on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

app = typer.Typer(
    name="momlab",
    help="momentum-lab: predict, measure and compare momentum methods.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from experiments.cli_theory import theory_app

    app.add_typer(theory_app, name="theory")


_USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, KeyError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``momlab`` console script.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status (0 on success, 2 on invalid input).
    """
    _register()
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="momlab", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return int(stop.exit_code)
    except click.exceptions.Abort:
        print("momlab: aborted", file=sys.stderr)
        return 130
    except click.ClickException as err:
        print(f"momlab: error: {err.format_message()}", file=sys.stderr)
        return 2
    except _USER_ERRORS as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"momlab: error: {message}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
