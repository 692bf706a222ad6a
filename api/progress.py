"""The command line's one progress bar (rich), for the demo, the views rebuild and the audit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress

Report = Callable[[int, int | None], None]
"""``report(done, total)``: how far the work is (total None while unknown)."""


@contextmanager
def progress_bar(
    description: str,
    *,
    total: int | None = None,
    console: Console | None = None,
    transient: bool = True,
    terminal_only: bool = False,
) -> Iterator[Report]:
    """A bar for the work of the ``with`` block, fed by the `Report` it yields. `terminal_only`: shows
    nothing (and reports go nowhere) unless standard error is a terminal."""
    if terminal_only and not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with Progress(console=console or Console(stderr=True), transient=transient) as progress:
        task = progress.add_task(description, total=total)

        def report(done: int, total: int | None = total) -> None:
            progress.update(task, completed=done, total=total or None)

        yield report
