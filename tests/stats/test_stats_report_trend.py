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
from pardus.stats.report import ReportOptions, build_report, plot_names, plot_years
from pardus.stats.secr import grid_xy

from .plot_years_rows import write_plot_years

DAYS = 30
OPTS = ReportOptions(occasion_days=6.0, n_boot=40, mask_buffer_m=4800.0, mask_spacing_m=1000.0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def fill_park(workspace) -> dict[str, dict[int, int]]:
    """North: 2022-2024, 16 stations; South: 2024 only, 12 stations. Returns animals seen per plot and year."""
    north = simulate_years(
        grid_xy(4, 4, 1500.0),
        years=[2022, 2023, 2024],
        density_per_km2=0.5,
        sigma_m=1200.0,
        occasions=DAYS,
        lambda0=0.08,
        demography=Demography(0.85, 0.35),
        seed=21,
    )
    south_xy = grid_xy(4, 3, 1500.0, origin=(30_000.0, 0.0))
    south = simulate_years(
        south_xy, years=[2024], density_per_km2=0.5, sigma_m=1200.0, occasions=DAYS, lambda0=0.08,
        demography=Demography(), seed=5,
    )
    with workspace.db.session() as s:
        seen = {
            "North": write_plot_years(s, "North", north, grid_xy(4, 4, 1500.0), days=DAYS),
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
    rep23, _ = build_report(workspace, "North", 2023, tmp_path / "n23", OPTS)
    assert rep23.trend is not None and rep23.trend.years == (2022, 2023)
    assert rep23.trend.sentence.startswith("Between 2022 and 2023")

