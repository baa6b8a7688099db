"""The trend section: the park's sentence, its tables and JSON, from a simulated growing plot."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pardus.simulate.years import Demography, simulate_years
from pardus.stats.secr import Traps, grid_xy, make_mask
from pardus.stats.secr_multi import Session
from pardus.stats.trend import analyse_trend, trend_sentence, write_trend

XY = grid_xy(5, 5, 1000.0)


@pytest.fixture(scope="module")
def growing_plot():
    park = simulate_years(
        XY,
        years=[2022, 2023, 2024],
        density_per_km2=6.0,
        sigma_m=500.0,
        occasions=6,
        lambda0=0.15,
        demography=Demography(0.9, 0.4),
        buffer_m=2000.0,
        seed=8,
    )
    traps = Traps(XY, detector="proximity", usage=np.ones((25, 6)))
    mask = make_mask(XY, 2000.0, spacing=400.0)
    sessions = [Session(str(y.year), y.captures.captures, traps, mask, y.year) for y in park.years]
    identities = [(f"L{a}", y.year) for y in park.years for a in y.detected_ids]
    both = len(np.intersect1d(park.years[0].detected_ids, park.years[2].detected_ids))
    # the realised population of the mask: animals whose centre is within the 2 km buffer of a camera
    in_mask = [int((cKDTree(XY).query(y.captures.centres)[0] <= 2000.0).sum()) for y in park.years]
    return analyse_trend("North", sessions, identities=identities), in_mask, both


def test_trend_sentence_says_growth_with_its_interval(growing_plot):
    rep, n, both = growing_plot
    lam = rep.secr.growth(0, 2, realised=True, recaptured=both)  # the realised interval, as the sentence
    assert lam.se < rep.secr.growth(0, 2).se
    assert lam.lcl > 1  # 1.3 a year is seen as growth
    assert lam.lcl < (n[2] / n[0]) ** 0.5 < lam.ucl
    pct = round((lam.value - 1) * 100)
    assert rep.sentence.startswith(f"Between 2022 and 2024 the number of leopards on plot North grew by {pct}% a year")
    assert "(95% interval +" in rep.sentence and "per 100 km²" in rep.sentence
    assert trend_sentence("Panthera pardus", "North", rep.secr, 0, 1).startswith("Between 2022 and 2023")
    assert rep.growth[0].se < rep.secr.growth(0, 1).se  # realised with the animals seen in both years
    assert len(rep.growth) == 2 and rep.pradel is not None and rep.years == (2022, 2023, 2024)


def test_trend_tables_and_json(growing_plot, tmp_path):
    rep, _, _ = growing_plot
    paths = write_trend(rep, tmp_path)
    assert set(paths) == {"trend_density.csv", "trend_growth.csv", "trend_demography.csv", "trend.json", "trend.png"}
    rows = list(csv.DictReader(paths["trend_density.csv"].open()))
    assert [r["year"] for r in rows] == ["2022", "2023", "2024"]
    doc = json.loads(paths["trend.json"].read_text())
    assert doc["sentence"] == rep.sentence and len(doc["secr"]["growth"]) == 2


def test_one_year_gives_no_trend_but_says_so():
    rep = analyse_trend("South", [])
    assert rep.secr is None and "no trend is estimated" in rep.sentence
