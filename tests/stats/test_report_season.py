"""`pardus report` on a season of the virtual park, reviewed in full: its numbers meet the truth.

The season goes the production path (deployments sheet, card import with its clock reset and
damaged file, then the plot-year report); only the identifications come from the truth, standing
for a finished manual review.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from pardus.config import Settings
from pardus.simulate import simulate_season
from pardus.simulate.load import import_season, record_reviewed_truth
from pardus.stats.report import build_report
from pardus.store import Workspace, open_workspace

LEOPARD = "Panthera pardus orientalis"


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path]:
    root = tmp_path_factory.mktemp("season-report")
    season = root / "season"
    # Denser leopards than the default so a small, fast season photographs several of them.
    simulate_season(season, cameras=12, days=40, seed=5, leopard_density_per_km2=0.04,
                    prey_rates={}, frame_size=(320, 180), workers=1)
    ws = open_workspace(Settings(data_dir=root / "data"))
    import_season(ws, season)
    assert record_reviewed_truth(ws, season) > 0
    assert record_reviewed_truth(ws, season) == 0  # a second run adds nothing
    yield ws, season
    ws.close()
    shutil.rmtree(root, ignore_errors=True)


def _truth_leopards_with_true_clock(season: Path) -> set[str]:
    """Leopards photographed by cameras whose clock told the truth (the reset card's later photos can't be dated)."""
    with (season / "truth" / "images.csv").open(newline="") as f:
        return {
            r["individual_id"]
            for r in csv.DictReader(f)
            if r["scientific_name"] == LEOPARD and r["individual_id"] and not r["exif_time"].startswith("2000")
        }


def test_individuals_seen_equal_the_truth(reviewed: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, season = reviewed
    plot = next(csv.DictReader((season / "deployments.csv").open(newline="")))["plot"]
    truth = _truth_leopards_with_true_clock(season)
    assert len(truth) >= 2, "the season should photograph several leopards"
    rep, files = build_report(ws, plot, 2024, tmp_path / "report")
    nums = json.loads(files["report.json"].read_text())
    assert nums["individuals"]["seen"] == len(truth) == nums["individuals"]["new"]
    assert set(nums["individuals"]["seen_ids"]) == truth
    # The reset card's photos dated 2000 are left out with a note, not counted as records of another year.
    assert [y["year"] for y in nums["individuals"]["by_year"]] == [2024]
    assert set(nums["individuals"]["by_year"][0]["seen_ids"]) == truth
    assert any("cannot be trusted" in n for n in nums["notes"])
    html = files["report.html"].read_text()
    assert str(len(truth)) in nums["headline"] and nums["headline"] in html


def test_report_page_renders_in_chromium(reviewed: tuple[Workspace, Path], tmp_path: Path, browser) -> None:
    ws, season = reviewed
    plot = next(csv.DictReader((season / "deployments.csv").open(newline="")))["plot"]
    _, files = build_report(ws, plot, 2024, tmp_path / "report")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.goto(files["report.html"].resolve().as_uri())
        assert "leopards" in page.locator("h1, h2, p").first.inner_text() + page.title()
        # Every plot is an <img>; each must have decoded (a broken image has naturalWidth 0).
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
        assert len(widths) >= 4 and all(w > 0 for w in widths), widths
        assert page.locator("table").count() >= 3
        shot = os.environ.get("PARDUS_DOCS_SCREENSHOT")
        if shot:  # `PARDUS_DOCS_SCREENSHOT=docs/report.png pytest -k chromium` refreshes the docs picture
            page.screenshot(path=shot, full_page=False)
    finally:
        page.close()
