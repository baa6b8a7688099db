"""The plot-year report's trend section and density map, from simulated years written to a real store.

Plot North has three years (2022-2024) of a growing population on 16 cameras; plot South only 2024.
The numbers the report prints are checked against the fits they come from: the sentence's percentage
is the tabulated λ, the map's cells average to the fitted density.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pardus.simulate.years import Demography, simulate_years
from pardus.stats.park import build_park_summary
from pardus.stats.report import ReportError, ReportOptions, analyse, build_report, collect, plot_names, plot_years
from pardus.stats.secr import grid_xy
from pardus.stats.trend import trend_for_report

from .plot_years_rows import NORTH_DAYS, north_park, write_plot_years

DAYS = NORTH_DAYS
OPTS = ReportOptions(occasion_days=6.0, n_boot=40, mask_buffer_m=4800.0, mask_spacing_m=1000.0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def fill_park(workspace) -> dict[str, dict[int, int]]:
    """North: 2022-2024, 16 stations; South: 2024 only, 12 stations. Returns animals seen per plot and year."""
    north, north_xy = north_park()
    south_xy = grid_xy(4, 3, 1500.0, origin=(30_000.0, 0.0))
    south = simulate_years(
        south_xy, years=[2024], density_per_km2=0.5, sigma_m=1200.0, occasions=DAYS, lambda0=0.08,
        demography=Demography(), seed=5,
    )
    with workspace.db.session() as s:
        seen = {
            "North": write_plot_years(s, "North", north, north_xy, days=DAYS),
            "South": write_plot_years(s, "South", south, south_xy, days=DAYS),
        }
    return seen


def test_trend_section_prints_the_lambda_it_tabulates(workspace, tmp_path: Path):
    seen = fill_park(workspace)
    with workspace.db.session() as s:
        assert plot_years(s, "North") == [2022, 2023, 2024] and plot_years(s, "South") == [2024]
        assert plot_names(s) == ["North", "South"] and plot_names(s, 2023) == ["North"]

    rep, paths = build_report(workspace, "North", 2024, tmp_path / "north", OPTS)
    t = rep.trend
    assert t is not None and t.secr is not None and t.years == (2022, 2023, 2024)
    assert t.secr.n_individuals == tuple(seen["North"][y] for y in (2022, 2023, 2024))
    lam = t.overall
    assert lam is not None and lam.name == "lambda 2022->2024 per year"
    # the sentence's percentage is the tabulated λ, and "grew"/"fell" follows its interval
    pct = round(abs(lam.value - 1) * 100)
    verb = "grew" if lam.value >= 1 else "fell"
    assert t.sentence.startswith(f"Between 2022 and 2024 the number of leopards on plot North {verb} by {pct}% a year")
    assert f"{(lam.lcl - 1) * 100:+.0f}% to {(lam.ucl - 1) * 100:+.0f}% a year" in t.sentence
    # λ over the span is the geometric mean of the yearly λs (same densities)
    assert lam.value == pytest.approx(np.sqrt(t.growth[0].value * t.growth[1].value), rel=1e-12)
    growth = _rows(paths["trend_growth.csv"])
    assert [(r["from_year"], r["to_year"]) for r in growth] == [("2022", "2023"), ("2023", "2024"), ("2022", "2024")]
    assert float(growth[-1]["value"]) == pytest.approx(lam.value, rel=1e-12)
    dens = _rows(paths["trend_density.csv"])
    assert [r["year"] for r in dens] == ["2022", "2023", "2024"]
    for r, d in zip(dens, t.secr.density, strict=True):
        assert float(r["D_per_100km2"]) == pytest.approx(d.value * 1e4, rel=1e-12)
        assert int(r["animals_identified"]) == seen["North"][int(r["year"])]
    assert t.pradel is not None and t.secr_open is not None  # three years, same stations: both open models
    assert {"trend_demography.csv", "trend_demography_spatial.csv", "trend.png"} <= set(paths)
    html = paths["report.html"].read_text()
    assert 'id="trend-sentence">' + t.sentence in html and "trend.png" not in html  # the figure is embedded
    assert html.count("data:image/png;base64") >= 4
    doc = json.loads(paths["report.json"].read_text())
    assert doc["trend"]["sentence"] == t.sentence and doc["trend"]["growth_per_year"]["value"] == lam.value

    # one year only: said plainly, no trend tables
    rep1, paths1 = build_report(workspace, "South", 2024, tmp_path / "south", OPTS)
    assert rep1.trend is None and rep1.trend_note.startswith("A trend needs two or more years")
    assert not any(p.startswith("trend") for p in paths1)
    assert "A trend needs two or more years" in paths1["report.html"].read_text()
    assert json.loads(paths1["report.json"].read_text())["trend"] == {"note": rep1.trend_note}

    # a report of an earlier year looks back, never forward
    with workspace.db.session() as s:
        rep23 = analyse(collect(s, "North", 2023), OPTS, population_only=True)
    t23, _ = trend_for_report(workspace, rep23)
    assert t23 is not None and t23.years == (2022, 2023) and t23.sentence.startswith("Between 2022 and 2023")


def test_park_summary_across_plots(workspace, tmp_path: Path):
    seen = fill_park(workspace)
    summary, paths = build_park_summary(workspace, 2024, tmp_path, OPTS)
    assert [p.plot for p in summary.plots] == ["North", "South"]
    north, south = summary.plots
    assert north.seen == seen["North"][2024] and south.seen == seen["South"][2024]
    assert summary.animals == north.seen + south.seen and summary.on_several_plots == 0  # codes differ by plot
    assert summary.headline.startswith(f"In 2024, {summary.animals} individual leopards were identified on two")
    # each line is the plot's own report: same density, same λ as the trend section prints
    rep, _ = build_report(workspace, "North", 2024, tmp_path / "north", OPTS)
    assert north.density.value == pytest.approx(rep.secr.density_per_100km2().value, rel=1e-12)
    assert north.growth.value == pytest.approx(rep.trend.overall.value, rel=1e-12)
    assert north.trend == rep.trend.sentence and north.trend_years == (2022, 2023, 2024)
    assert south.growth is None and south.trend.startswith("A trend needs two or more years")
    rows = _rows(paths["park.csv"])
    assert [r["plot"] for r in rows] == ["North", "South"]
    assert float(rows[0]["lambda_per_year"]) == pytest.approx(north.growth.value, rel=1e-12)
    assert float(rows[1]["D_per_100km2"]) == pytest.approx(south.density.value, rel=1e-12)
    assert rows[1]["lambda_per_year"] == "" and rows[1]["trend_from"] == ""
    assert json.loads(paths["park.json"].read_text())["animals_identified_in_park"] == summary.animals
    html = paths["park.html"].read_text()
    assert summary.headline in html and north.trend in html and "data:image/png;base64" in html
    with pytest.raises(ReportError, match="no plot had a camera deployed in 2019"):
        build_park_summary(workspace, 2019, tmp_path / "none", OPTS)


def test_report_command_all_plots_and_trend(env: Path):
    """`pardus report --all-plots` writes the park page; `--plot` prints the trend sentence; bad input exits 1."""
    from typer.testing import CliRunner

    from pardus.cli import app
    from pardus.config import get_settings
    from pardus.store import open_workspace

    with open_workspace(get_settings()) as ws:
        fill_park(ws)
    common = ["--year", "2024", "--occasion-days", "6", "--bootstrap", "40", "--mask-buffer", "4800",
              "--mask-spacing", "1000"]
    run = CliRunner().invoke(app, ["report", "--all-plots", *common], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())
    assert "individual leopards were identified on two monitoring plots" in text
    assert "South: " in text and "A trend needs two or more years" in text
    assert (env / "data" / "reports" / "park-2024" / "park.html").is_file()
    run = CliRunner().invoke(app, ["report", "--plot", "North", *common], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    assert "Between 2022 and 2024 the number of leopards on plot North" in " ".join(run.output.split())
    assert (env / "data" / "reports" / "North-2024" / "trend_growth.csv").is_file()
    both = CliRunner().invoke(app, ["report", "--plot", "North", "--all-plots", "--year", "2024"])
    assert both.exit_code == 1 and "either --plot" in both.output
    neither = CliRunner().invoke(app, ["report", "--year", "2024"])
    assert neither.exit_code == 1 and "either --plot" in neither.output
    bad = CliRunner().invoke(app, ["report", "--plot", "North", "--year", "2024", "--crs", "EPSG:99999999"])
    assert bad.exit_code == 1 and "--crs" in bad.output
