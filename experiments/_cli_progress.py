"""Progress display of the CLI: the overall bar of ``momlab reproduce`` and the running experiment's
own bar with its ETA (fed by :func:`experiments.runtime.progress`)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_display() -> Progress:
    """A transient progress display on stderr: bar, percentage, elapsed time and ETA."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    return Progress(
        *columns, console=Console(stderr=True, soft_wrap=True, highlight=False), transient=True
    )


class ExperimentProgress:
    """The running experiment's own bar, fed by ``experiments.runtime.progress`` reports.

    Off a terminal (a log file, CI) the bar is not drawn, so each tenth of the work is printed as
    one line on stderr with the elapsed time and the estimated time left instead.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None
        self.name = ""
        self.started = 0.0
        self.logged = 0

    def start(self, name: str) -> None:
        self.stop()
        self.name, self.started, self.logged = name, time.monotonic(), 0
        self.task = self.progress.add_task(escape(name), total=1.0)

    def update(self, fraction: float, what: str) -> None:
        if self.task is None:
            return
        label = f"{self.name}: {what}" if what else self.name
        self.progress.update(self.task, completed=fraction, description=escape(label))
        tenth = int(fraction * 10)
        if not self.progress.console.is_terminal and tenth > self.logged and fraction < 1:
            self.logged = tenth
            elapsed = time.monotonic() - self.started
            left = elapsed * (1 - fraction) / max(fraction, 1e-9)
            self.progress.console.print(
                escape(f"{label}: {fraction:.0%} after {elapsed:.0f} s, about {left:.0f} s left"),
                highlight=False,
            )

    def stop(self) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
