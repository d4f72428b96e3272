"""The ``momlab`` command line.

``list``, ``run``, ``reproduce`` and ``report`` drive the experiment framework (see
:mod:`experiments.reproduce` for the results layout); other command groups (``theory``) are added
by the modules that own them. Invalid input ends with a one-line message on stderr and exit status
2, never a traceback; an experiment that raised gives exit status 1. ``momlab`` (or a command group
such as ``momlab theory``) without a command prints its help and exits with status 0.

Names, claims, summaries and paths are printed as plain text, never parsed as rich markup: a claim
that mentions ``[h_min, h_max]`` is shown as written.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from experiments import registry
from experiments._cli_progress import ExperimentProgress, progress_display
from experiments.record import Record

app = typer.Typer(
    name="momlab",
    help="momentum-lab: predict, measure and compare momentum methods.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from experiments.cli_sweep import sweep_app
    from experiments.cli_theory import theory_app

    for name, group in (("theory", theory_app), ("sweep", sweep_app)):
        if not any(g.name == name for g in app.registered_groups):
            app.add_typer(group, name=name)


def _console(*, stderr: bool = False) -> Console:
    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def _say(console: Console, text: str) -> None:
    """Print ``text`` as it is (no markup, no highlighting)."""
    console.print(text, markup=False, highlight=False)


def _warn_import_errors() -> None:
    for module, message in registry.import_errors().items():
        print(f"momlab: warning: {module} failed to import: {message}", file=sys.stderr)


def _tiers(exp: registry.Experiment) -> str:
    return "quick, full, gpu" if exp.has_gpu_tier else "quick, full"


@app.command("list")
def list_experiments() -> None:
    """List the experiments: name, device, tiers and title (the claim: momlab show NAME)."""
    from experiments import catalog

    found = catalog.entries()
    _warn_import_errors()
    table = Table(title=f"{len(found)} experiments", show_lines=False)
    table.add_column("name", no_wrap=True)
    table.add_column("device", no_wrap=True)
    table.add_column("tiers", no_wrap=True)
    table.add_column("title", overflow="fold")
    for e in found:
        table.add_row(*(Text(c) for c in (e.name, e.device, ", ".join(e.tiers), e.title)))
    _console().print(table)


@app.command("show")
def show_one(
    name: Annotated[str, typer.Argument(help="experiment name (see momlab list)")],
    out: Annotated[str, typer.Option(help="results directory holding its last record")] = "results",
) -> None:
    """Show one experiment: its claim, tiers, and the checks and outcome of its last record."""
    registry.discover()
    exp = registry.get(name)
    console = _console()
    _say(console, f"{exp.name}: {exp.title}")
    _say(console, f"claim: {exp.claim}")
    _say(console, f"device: {exp.device}; tiers: {_tiers(exp)}")
    try:
        record = Record.load(Path(out) / exp.name)
    except (FileNotFoundError, ValueError, KeyError, OSError):
        _say(console, f"last outcome: none (no readable record in {Path(out) / exp.name})")
        return
    tier = record.provenance.get("tier", "quick" if record.provenance.get("quick") else "full")
    _say(console, f"last outcome ({tier}): {record.verdict} - {record.summary}")
    if record.smoke:
        _say(console, f"smoke: {record.smoke}")
    if record.checks:
        table = Table(show_lines=False)
        for column in ("check", "kind", "outcome", "note"):
            table.add_column(column, overflow="fold", no_wrap=column != "note")
        for c in record.checks:
            table.add_row(*(Text(x) for x in (c.name, c.kind, c.outcome, c.note)))
        console.print(table)


def _output_dir(out: str) -> Path:
    """``reproduce.ensure_output_dir`` with errors that name the ``--out`` option."""
    from experiments import reproduce

    try:
        return reproduce.ensure_output_dir(out)
    except ValueError as err:
        raise ValueError(f"--out: {err}") from err


@app.command("run")
def run_one(
    name: Annotated[str, typer.Argument(help="experiment name (see momlab list)")],
    quick: Annotated[
        bool, typer.Option("--quick/--full", help="quick (default) or full configuration")
    ] = True,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="the paper-scale gpu tier, where the experiment has one")
    ] = False,
    seed: Annotated[int, typer.Option(min=0, max=registry.SEED_MAX, help="random seed")] = 0,
    out: Annotated[str, typer.Option(help="results directory")] = "results",
) -> None:
    """Run one experiment and write results/<name>/ (record.json, arrays.npz, figure.png/svg).

    Exit status 1 when the experiment raised (its record then has verdict "error").
    """
    registry.discover()
    _warn_import_errors()
    exp = registry.get(name)
    target = _output_dir(out)
    tier = "gpu" if gpu else ("quick" if quick else "full")
    from experiments import reproduce

    with progress_display() as progress:
        current = ExperimentProgress(progress)
        current.start(exp.name)
        record = reproduce.run_experiment(
            exp, tier=tier, seed=seed, out=target, on_progress=current.update
        )
        current.stop()
    console = _console()
    _say(console, f"{exp.name} ({tier}): {record.verdict} - {record.summary}")
    _say(console, f"written to {target / exp.name}")
    if record.verdict == "error":
        raise typer.Exit(1)


@app.command("reproduce")
def reproduce_all(
    quick: Annotated[
        bool, typer.Option("--quick/--full", help="quick (default) or full configurations")
    ] = True,
    gpu: Annotated[
        bool,
        typer.Option(
            "--gpu", help="gpu tier: paper-scale configs (automatic with --full on a GPU machine)"
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="rerun finished records too")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="run only this experiment (repeatable)")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=registry.SEED_MAX, help="random seed")] = 0,
    out: Annotated[str, typer.Option(help="results directory")] = "results",
) -> None:
    """Run every experiment that fits the machine, reuse finished records, then write the report.

    Exit status 0 when every experiment produced a record (whatever its verdict), 1 when one raised
    or an experiment module failed to import, 2 on invalid input.
    """
    from experiments import report, reproduce

    registry.discover()
    _warn_import_errors()
    for name in only or ():
        registry.get(name)
    _output_dir(out)
    console = _console()
    total = len(only) if only else len(registry.experiments())
    with progress_display() as progress:
        task = progress.add_task("reproduce", total=total)
        current = ExperimentProgress(progress)

        def started(name: str, mode: str) -> None:
            progress.update(task, description=escape(f"reproduce ({mode})"))
            current.start(name)

        def done(outcome: reproduce.Outcome) -> None:
            current.stop()
            _say(console, f"{outcome.name}: {outcome.status} ({outcome.detail})")
            if outcome.status != "error" or outcome.record is not None:
                progress.advance(task)

        outcomes = reproduce.reproduce(
            out=out,
            quick=quick,
            gpu=gpu,
            force=force,
            only=only or (),
            seed=seed,
            on_start=started,
            on_done=done,
            on_progress=current.update,
        )
    counts = {
        s: sum(o.status == s for o in outcomes) for s in ("ran", "reused", "skipped", "error")
    }
    _say(console, ", ".join(f"{n} {s}" for s, n in counts.items()))
    _say(console, f"report: {Path(out) / report.REPORT_FILE}, {Path(out) / report.SUMMARY_FILE}")
    if counts["error"]:
        raise typer.Exit(1)


@app.command("report")
def report_only(out: Annotated[str, typer.Option(help="results directory")] = "results") -> None:
    """Write results/report.html and results/summary.md from the finished records."""
    from experiments import report

    registry.discover()
    page, summary = report.write_report(out)
    _say(_console(), f"report: {page}, {summary}")


_USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, KeyError)


def _exception_families() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """Exit, abort and usage-error classes of the installed typer (and click, when typer uses it).

    typer releases that depend on click raise click's exceptions; newer ones ship their own
    copies (subclasses of ``typer.TyperException``) and no longer install click.
    """
    exits: list[type] = [typer.Exit]
    aborts: list[type] = [typer.Abort]
    errors: list[type] = []
    if hasattr(typer, "TyperException"):
        errors.append(typer.TyperException)
    try:
        import click
    except ImportError:
        pass
    else:
        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
        errors.append(click.ClickException)
    return tuple(exits), tuple(aborts), tuple(errors)


_EXIT, _ABORT, _CLICK_ERRORS = _exception_families()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid input"


def _user_message(err: Exception) -> str:
    """One line for a user error; an OS error reads ``<path>: <reason>``, not ``[Errno n] ...``."""
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror.lower()}"
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return _first_line(text) if text.strip() else type(err).__name__


def _help_request_classes() -> tuple[type, ...]:
    """The "no arguments, so show the help" exception classes (click >= 8.2) that may be raised.

    typer releases that use click raise ``click.exceptions.NoArgsIsHelpError``; newer ones raise
    their vendored copy ``typer._click.exceptions.NoArgsIsHelpError``. Either module may be absent
    (or too old to define the class); then it contributes nothing.
    """
    found: list[type] = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), "NoArgsIsHelpError", None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


_HELP_REQUESTS = _help_request_classes()


def _is_help_request(err: BaseException) -> bool:
    """Whether ``err`` is the signal to print the help and exit with status 0."""
    return isinstance(err, _HELP_REQUESTS)


def _plain_metavars(command: Any) -> None:
    """Help without type placeholders: flags show no metavar, values their name in capitals.

    typer shows ``<bool>`` beside every flag and ``<str>``/``<float>`` beside values; the help
    reads ``--seed SEED`` and ``--gpu`` instead. The help option itself is created (and cached by
    the command) here so that it gets the same treatment. Applied to every sub-command.
    """
    params = list(getattr(command, "params", []))
    with contextlib.suppress(Exception):
        ctx = command.context_class(command, info_name=command.name)
        helper = command.get_help_option(ctx)
        if helper is not None:
            params.append(helper)
    for param in params:
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = lambda ctx: None  # the NAME column says it already
            continue
        if getattr(param, "metavar", "") is not None:
            continue
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        param.metavar = "" if flag else (param.name or "value").upper()
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``momlab`` console script.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status (0 on success or when only the help was asked for, 1 when an
        experiment raised, 2 on invalid input).
    """
    _register()
    command = typer.main.get_command(app)
    _plain_metavars(command)
    try:
        status = command.main(args=argv, prog_name="momlab", standalone_mode=False)
    except _EXIT as stop:
        return int(stop.exit_code)
    except (*_ABORT, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except _CLICK_ERRORS as err:
        text = err.format_message() if hasattr(err, "format_message") else str(err)
        if _is_help_request(err):
            # The rich help formatter has printed the help already; plain click returns it here.
            if text.strip():
                print(text)
            return 0
        print(f"momlab: error: {_first_line(text)}", file=sys.stderr)
        return 2
    except _USER_ERRORS as err:
        print(f"momlab: error: {_user_message(err)}", file=sys.stderr)
        return 2
    # Without standalone mode click returns the code of a typer.Exit instead of raising it.
    return status if isinstance(status, int) else 0


INTERRUPTED = "momlab: interrupted; finished records kept"


def _on_interrupt(signum: int, frame: object) -> None:
    """SIGINT: one line, exit status 130, at once.

    Raising ``KeyboardInterrupt`` inside JAX lets it land in XLA's callbacks (where it is ignored,
    so the first Ctrl-C is swallowed) or unwind through running XLA threads at interpreter exit
    (a segmentation fault). Nothing needs unwinding: every finished record is already on disk
    (written atomically) and a half-written staging directory is swept by the next run, so the
    process ends here without running Python's shutdown.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os.write(2, (INTERRUPTED + "\n").encode())
    os._exit(130)


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status; Ctrl-C ends with status 130."""
    signal.signal(signal.SIGINT, _on_interrupt)
    sys.exit(main())


if __name__ == "__main__":
    run()
