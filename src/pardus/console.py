"""The shared CLI helpers: the terminal every command writes to, the one way a command fails, the
progress bar and the data folder's workspace.

Each room's ``commands.py`` is imported by ``pardus.cli``, so they cannot import from it; this
small module is what they share instead, so every error and every bar looks the same to a ranger.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from pardus.store import Workspace

console = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (``raise fail(...)``)."""
    err.print(f"[bold red]Error:[/] {message}")
    return typer.Exit(code=1)


class RateColumn(ProgressColumn):
    """Files per second, the number a person uses to judge how long a card will take."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} files/s" if speed else "  ... files/s", style="cyan")


def make_progress() -> Progress:
    """The progress bar every long command shows: count, files per second, elapsed and ETA."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def open_cli_workspace() -> Workspace:
    """The workspace of the data folder the settings name (``PARDUS_DATA_DIR``, ``PARDUS_DATABASE_URL``)."""
    # Imported here so `pardus --help` does not load the database layer.
    from pardus.config import get_settings
    from pardus.store import open_workspace

    return open_workspace(get_settings())


@contextmanager
def workspace_cmd(*errors: type[Exception]) -> Iterator[Workspace]:
    """The data folder's workspace for one command, always closed; the listed errors become a
    clear message and exit 1 (``with workspace_cmd(CardError) as ws: ...``)."""
    with open_cli_workspace() as ws:
        try:
            yield ws
        except errors as exc:
            raise fail(str(exc)) from exc
