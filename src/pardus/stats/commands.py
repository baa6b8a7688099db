"""``pardus report``: the yearly plot report from the command line.

Register in cli.py with ``app.command("report")(pardus.stats.commands.report)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from pardus.console import console, fail, workspace_cmd

# Camera traps exist since the 1890s; a year outside these bounds is a typo, and 0 or 9999
# would overflow the calendar arithmetic of the report.
FIRST_YEAR = 1890
LAST_YEAR = 2999
MAX_OCCASION_DAYS = 366.0
MAX_THRESHOLD_MINUTES = 1440.0
MIN_BOOTSTRAP = 40
MAX_BOOTSTRAP = 100_000
MAX_MASK_METRES = 1_000_000.0  # a SECR mask of 1,000 km is already far beyond any plot


def report(
    year: Annotated[
        int,
        typer.Option(
            "--year", "-y", min=FIRST_YEAR, max=LAST_YEAR, help="Calendar year (local time of the cameras)."
        ),
    ],
    plot: Annotated[
        str | None, typer.Option("--plot", "-p", help="Monitoring plot, as written on the locations.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Folder for the report (default: <data>/reports/<plot>-<year>, or park-<year>)."
        ),
    ] = None,
    all_plots: Annotated[
        bool, typer.Option("--all-plots", help="One summary page across every plot with cameras that year.")
    ] = False,
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
    habitat: Annotated[
        Path | None,
        typer.Option(
            help="Habitat covariates for density over habitat (D ~ covariate): a CSV of cells (x, y, one column "
            "per covariate, in the stations' metres) or a raster such as a GeoTIFF (one covariate per band)."
        ),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(help="Coordinate system of the stations' x_m/y_m, e.g. EPSG:32653 (GeoTIFF maps in and out)."),
    ] = None,
    with_trend: Annotated[
        bool,
        typer.Option("--trend/--no-trend", help="Add the trend over the earlier years the store holds for the plot."),
    ] = True,
) -> None:
    """Write the yearly report of one plot: individuals, population size, density and its map, the trend
    across years, effort, activity. With --all-plots, one summary page across the park's plots instead.

    The headline is the park's sentence, e.g. "Between seven and nine individual leopards used
    plot 3 in 2024", with the tables and plots behind it (report.html) and the same numbers as
    report.json and CSV files.

    Examples: pardus report --plot "Plot 3" --year 2024;  pardus report --all-plots --year 2024
    """
    from pardus.stats.report import ReportError, ReportOptions, build_report

    if all_plots == (plot is not None):
        raise fail("give either --plot P for one plot's report or --all-plots for the park summary.")
    if habitat is not None and not habitat.is_file():
        raise fail(f"--habitat {habitat}: no such file.")
    if crs is not None:
        from pardus.stats.density_map import check_crs
        from pardus.stats.secr import SecrError

        try:
            check_crs(crs)
        except SecrError as exc:
            raise fail(f"--crs: {exc}") from exc

    if detectfn not in ("HN", "HHN", "EX", "HEX"):
        raise fail(f"unknown detection function {detectfn!r}; use HN, HHN, EX or HEX.")
    # NaN compares false with everything, so each number is checked for being finite first.
    if not (math.isfinite(occasion_days) and 0 < occasion_days <= MAX_OCCASION_DAYS):
        raise fail(f"--occasion-days must be more than 0 and at most {MAX_OCCASION_DAYS:g} (a year).")
    if not (math.isfinite(threshold) and 0 <= threshold <= MAX_THRESHOLD_MINUTES):
        raise fail(f"--threshold must be from 0 to {MAX_THRESHOLD_MINUTES:g} minutes (a day).")
    if not MIN_BOOTSTRAP <= bootstrap <= MAX_BOOTSTRAP:
        raise fail(f"--bootstrap must be from {MIN_BOOTSTRAP} to {MAX_BOOTSTRAP:,} resamples.")
    for option, value in (("--mask-buffer", mask_buffer), ("--mask-spacing", mask_spacing)):
        if value is not None and not (math.isfinite(value) and 0 < value <= MAX_MASK_METRES):
            raise fail(f"{option} must be more than 0 and at most {MAX_MASK_METRES:,.0f} metres.")
    opts = ReportOptions(
        species=species,
        threshold_minutes=threshold,
        occasion_days=occasion_days,
        detectfn=detectfn,
        mask_buffer_m=mask_buffer,
        mask_spacing_m=mask_spacing,
        n_boot=bootstrap,
        habitat=str(habitat) if habitat else None,
        crs=crs,
    )
    if plot is None:
        _park(year, out, opts, with_trend)
        return
    with workspace_cmd(ReportError) as ws:
        target = out or ws.settings.data_dir / "reports" / f"{_safe(plot)}-{year}"
        with console.status(f"Analysing plot {plot}, {year} ..."):
            rep, paths = build_report(ws, plot, year, target, opts, trend=with_trend)
    console.print(f"[bold]{rep.headline}[/]")
    if rep.trend is not None:
        console.print(rep.trend.sentence)
    elif rep.trend_note:
        console.print(rep.trend_note)
    for m in rep.messages + rep.data.notes:
        console.print(f"[yellow]Note:[/] {m}")
    console.print(f"Report: {paths['report.html'].resolve()}")
    console.print(
        f"Numbers: {paths['report.json'].resolve()} and {len([p for p in paths if p.endswith('.csv')])} CSV files"
    )


def _park(year: int, out: Path | None, opts: Any, with_trend: bool) -> None:
    """``pardus report --all-plots``: the park summary page, its CSV and JSON."""
    from pardus.stats.park import build_park_summary
    from pardus.stats.report import ReportError

    with workspace_cmd(ReportError) as ws:
        target = out or ws.settings.data_dir / "reports" / f"park-{year}"
        with console.status(f"Analysing every plot of {year} ..."):
            summary, paths = build_park_summary(ws, year, target, opts, trend=with_trend)
    console.print(f"[bold]{summary.headline}[/]")
    for line in summary.plots:
        d = f"{line.density.value:.3g} per 100 km²" if line.density else "density not estimated"
        console.print(f"  {line.plot}: {line.seen} identified, {d}; {line.trend}")
    console.print(f"Summary: {paths['park.html'].resolve()}")
    console.print(f"Numbers: {paths['park.csv'].resolve()} and {paths['park.json'].resolve()}")


def trend(
    plot: Annotated[str, typer.Option("--plot", "-p", help="Monitoring plot, as written on the locations.")],
    first: Annotated[int, typer.Option("--from", min=FIRST_YEAR, max=LAST_YEAR, help="First year.")],
    last: Annotated[int, typer.Option("--to", min=FIRST_YEAR, max=LAST_YEAR, help="Last year.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the tables (default: <data>/reports/<plot>-trend).")
    ] = None,
    species: Annotated[str, typer.Option(help="Scientific name of the focus species.")] = "Panthera pardus",
    occasion_days: Annotated[float, typer.Option(help="Length of a capture occasion in days.")] = 7.0,
    mask_buffer: Annotated[float | None, typer.Option(help="SECR mask buffer in metres.")] = None,
    mask_spacing: Annotated[float | None, typer.Option(help="SECR mask cell size in metres.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for each year's activity intervals.")] = 1000,
) -> None:
    """How a plot's population changed across years: density per year (multi-session SECR), growth
    per year with its interval, and survival and recruitment from the confirmed individuals.

    Example: pardus trend --plot North --from 2022 --to 2024
    """
    from pardus.stats.report import ReportError, ReportOptions
    from pardus.stats.trend import build_trend

    if last <= first:
        raise fail(f"--to ({last}) must come after --from ({first}): a trend needs two years or more.")
    if last - first > 50:
        raise fail("at most 50 years at once.")
    if not (math.isfinite(occasion_days) and 0 < occasion_days <= MAX_OCCASION_DAYS):
        raise fail(f"--occasion-days must be more than 0 and at most {MAX_OCCASION_DAYS:g} (a year).")
    if not MIN_BOOTSTRAP <= bootstrap <= MAX_BOOTSTRAP:
        raise fail(f"--bootstrap must be from {MIN_BOOTSTRAP} to {MAX_BOOTSTRAP:,} resamples.")
    for option, value in (("--mask-buffer", mask_buffer), ("--mask-spacing", mask_spacing)):
        if value is not None and not (math.isfinite(value) and 0 < value <= MAX_MASK_METRES):
            raise fail(f"{option} must be more than 0 and at most {MAX_MASK_METRES:,.0f} metres.")
    opts = ReportOptions(species=species, occasion_days=occasion_days, mask_buffer_m=mask_buffer,
                         mask_spacing_m=mask_spacing, n_boot=bootstrap)
    with workspace_cmd(ReportError) as ws:
        target = out or ws.settings.data_dir / "reports" / f"{_safe(plot)}-trend"
        with console.status(f"Fitting {first}-{last} of plot {plot} ..."):
            rep, paths = build_trend(ws, plot, range(first, last + 1), target, opts)
    console.print(f"[bold]{rep.sentence}[/]")
    for m in rep.messages:
        console.print(f"[yellow]Note:[/] {m}")
    console.print(f"Tables: {', '.join(str(p.resolve()) for p in paths.values())}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "plot"
