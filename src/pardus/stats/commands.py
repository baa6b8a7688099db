"""``pardus report``: the yearly plot report from the command line.

Register in cli.py with ``app.command("report")(pardus.stats.commands.report)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pardus.console import console, fail, workspace_cmd


def report(
    plot: Annotated[str, typer.Option("--plot", "-p", help="Monitoring plot, as written on the locations.")],
    year: Annotated[int, typer.Option("--year", "-y", help="Calendar year (local time of the cameras).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the report (default: <data>/reports/<plot>-<year>).")
    ] = None,
    species: Annotated[str, typer.Option(help="Scientific name of the focus species.")] = "Panthera pardus",
    occasion_days: Annotated[
        float, typer.Option(help="Length of a capture occasion in days (capture-recapture and occupancy).")
    ] = 7.0,
    threshold: Annotated[
        float, typer.Option(help="Minutes between records of a species at a station that start a new event.")
    ] = 30.0,
    detectfn: Annotated[str, typer.Option(help="SECR detection function: HN, HHN, EX or HEX.")] = "HHN",
    mask_buffer: Annotated[
        float | None, typer.Option(help="SECR mask buffer in metres (default 4 x sigma from the data).")
    ] = None,
    mask_spacing: Annotated[float | None, typer.Option(help="SECR mask cell size in metres.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for activity-overlap intervals.")] = 1000,
) -> None:
    """Write the yearly report of one plot: individuals, population size, density, effort, activity.

    The headline is the park's sentence, e.g. "Between seven and nine individual leopards used
    plot 3 in 2024", with the tables and plots behind it (report.html) and the same numbers as
    report.json and CSV files.

    Example: pardus report --plot "Plot 3" --year 2024
    """
    from pardus.stats.report import ReportError, ReportOptions, build_report

    if detectfn not in ("HN", "HHN", "EX", "HEX"):
        raise fail(f"unknown detection function {detectfn!r}; use HN, HHN, EX or HEX.")
    if occasion_days <= 0 or threshold < 0 or bootstrap < 40:
        raise fail("occasion days must be positive, threshold not negative, bootstrap at least 40.")
    opts = ReportOptions(
        species=species,
        threshold_minutes=threshold,
        occasion_days=occasion_days,
        detectfn=detectfn,
        mask_buffer_m=mask_buffer,
        mask_spacing_m=mask_spacing,
        n_boot=bootstrap,
    )
    with workspace_cmd(ReportError) as ws:
        target = out or ws.settings.data_dir / "reports" / f"{_safe(plot)}-{year}"
        with console.status(f"Analysing plot {plot}, {year} ..."):
            rep, paths = build_report(ws, plot, year, target, opts)
    console.print(f"[bold]{rep.headline}[/]")
    for m in rep.messages + rep.data.notes:
        console.print(f"[yellow]Note:[/] {m}")
    console.print(f"Report: {paths['report.html'].resolve()}")
    console.print(
        f"Numbers: {paths['report.json'].resolve()} and {len([p for p in paths if p.endswith('.csv')])} CSV files"
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "plot"
