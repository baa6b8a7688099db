"""CLI command of the virtual park: ``pardus simulate``.

A plain function with Typer annotations, registered by ``pardus.cli`` as
``app.command("simulate")(simulate_cmd)``; ``pardus demo`` (in the CLI, built on
:mod:`pardus.demo`) uses the same season writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)


def _run_season(out: Path, cameras: int, days: int, seed: int, **params: object):
    from pardus.simulate.season import SeasonError, simulate_season

    try:
        with _progress() as progress:
            task = progress.add_task("Rendering frames", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return simulate_season(out, cameras=cameras, days=days, seed=seed, progress=on_progress, **params)
    except SeasonError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=1) from exc


def _print_summary(s) -> None:  # noqa: ANN001 - SeasonSummary, imported lazily
    table = Table(title=f"Simulated season: {s.cameras} cameras at {s.stations} stations, {s.days} days, seed {s.seed}")
    table.add_column("what")
    table.add_column("how many", justify="right")
    table.add_row("photos (bursts)", f"{s.images} ({s.bursts})")
    for k, v in sorted(s.content.items()):
        table.add_row(f"  {k}", str(v))
    table.add_row("leopards in the area / photographed", f"{s.leopards_in_mask} / {s.leopards_photographed}")
    table.add_row("tigers in the area / photographed", f"{s.tigers_in_mask} / {s.tigers_photographed}")
    for k, v in sorted(s.alerts.items()):
        table.add_row(f"alert-worthy photos: {k}", str(v))
    console.print(table)
    console.print(f"Rendered in {s.seconds:.0f} s ({s.images_per_second:.0f} photos/s).")
    console.print(f"Memory cards:      [bold]{s.cards}[/] (one folder per deployment)")
    console.print(f"Deployment sheet:  [bold]{s.deployments_csv}[/]")
    console.print(f"Ground truth:      [bold]{s.truth}[/] (params.json, animals.csv, images.csv, captures.csv)")
    console.print(f"Card mess to find: clock reset on {s.mess['clock_reset_deployment']}, damaged file "
                  f"{s.mess['truncated_file']}, second copy {s.mess['duplicate_card']}")


def simulate_cmd(
    out: Annotated[Path, typer.Argument(help="New folder to write the season into (cards, deployments.csv, truth).")],
    cameras: Annotated[int, typer.Option(help="Number of cameras (about a third stand in facing pairs).")] = 40,
    days: Annotated[int, typer.Option(help="Length of the season in days.")] = 120,
    seed: Annotated[int, typer.Option(help="Same seed, same season, byte for byte.")] = 1,
    workers: Annotated[int, typer.Option(help="Processes rendering frames.")] = 2,
) -> None:
    """Make a virtual season of camera-trap cards with known truth (leopards, tigers, prey, alerts).

    Example: pardus simulate demo-season --cameras 40 --days 120 --seed 1
    Then: pardus deployments import demo-season/deployments.csv and pardus import-card for each card.
    """
    _print_summary(_run_season(out, cameras, days, seed, workers=workers))
