"""`pardus review ...`: the review queue from the terminal (the review desk itself is a web page)."""

from __future__ import annotations

import typer
from rich.table import Table

from pardus.console import console, make_progress, workspace_cmd

review_app = typer.Typer(help="The review desk's queue: fill it, see who reviewed how much.", no_args_is_help=True)


@review_app.command("refresh")
def review_refresh() -> None:
    """Bring the review queue up to date with the photos and the machine's latest calls.

    `pardus process` does this after its stages; people's decisions are kept."""
    from pardus.review.queue import refresh

    with workspace_cmd() as ws, make_progress() as progress:
        task = progress.add_task("review queue", total=None)
        with ws.db.session() as s:
            n = refresh(s, progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"Review queue: {n} sequences. Open /review in `pardus serve` to review them.")


@review_app.command("progress")
def review_progress() -> None:
    """Sequences reviewed per reviewer and per day."""
    from pardus.review.decide import progress

    with workspace_cmd() as ws, ws.db.session() as s:
        rows = progress(s)
    table = Table(title="Sequences reviewed")
    for col in ("day (UTC)", "reviewer", "sequences"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.day, r.by, str(r.sequences))
    console.print(table if rows else "No decisions yet.")
