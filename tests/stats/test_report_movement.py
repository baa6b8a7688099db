"""The plot-year report's "Collared animals" section, from a real Movebank track in a real store.

Leroy, an urban fisher collared in Albany NY in February-March 2009 (move-leroy in the shared data),
is imported through the real Movebank import; nine camera stations are placed on a grid over the
area he used, and he is also in the catalogue, photographed (confirmed) at one camera. The report's
numbers must be movement_report's for the same plot and local year; without telemetry, no section.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pardus.stats.report import ReportOptions, build_report
from pardus.store.models import Deployment, Individual, Location, Media, Observation
from pardus.telemetry.fixes import import_records, link_tag
from pardus.telemetry.movebank import read_movebank
from pardus.telemetry.movement import movement_report

EST = timezone(timedelta(hours=-5))
START = datetime(2009, 1, 20, tzinfo=EST)
END = datetime(2009, 4, 20, tzinfo=EST)
FISHER = "Martes pennanti"
OPTS = ReportOptions(species=FISHER, occasion_days=10.0, n_boot=20, min_events_activity=1000)
LONS = (-73.92, -73.89, -73.86)
LATS = (42.72, 42.74, 42.76)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _albany(s) -> None:
    """Nine stations of plot Albany over Leroy's area, one more (plot Far) 300 km away; Leroy (FI_074) in
    the catalogue with three confirmed photos at S5 and one machine proposal at S1; a few other animals."""
    n = 0
    for i, lat in enumerate(LATS):
        for j, lon in enumerate(LONS):
            name = f"S{3 * i + j + 1}"
            s.add(Location(id=name, name=f"station {name}", plot="Albany", latitude=lat, longitude=lon))
            s.add(Deployment(id=f"D-{name}", location_id=name, start=START, end=END, utc_offset_minutes=-300))
    s.add(Location(id="F1", name="far", plot="Far", latitude=44.9, longitude=-73.0))
    s.add(Deployment(id="D-F1", location_id="F1", start=START, end=END, utc_offset_minutes=-300))
    s.add(Individual(id="ind-leroy", code="FI_074", scientific_name=FISHER))
    s.flush()

    def obs(dep: str, species: str, when: datetime, *, individual: str | None = None, method: str = "human") -> None:
        nonlocal n
        n += 1
        s.add(Media(id=f"m{n}", deployment_id=dep, file_path=f"{dep}/{n}.JPG", file_mediatype="image/jpeg",
                    timestamp=when))
        s.add(Observation(deployment_id=dep, media_id=f"m{n}", observation_type="animal", scientific_name=species,
                          individual_id=individual, classification_method=method, count=1))

    for k in range(3):
        obs("D-S5", FISHER, datetime(2009, 2, 15 + 5 * k, 2, tzinfo=EST), individual="ind-leroy")
    obs("D-S1", FISHER, datetime(2009, 2, 20, 3, tzinfo=EST), individual="ind-leroy", method="machine")
    for k in range(12):
        obs(f"D-S{k % 9 + 1}", "Odocoileus virginianus", datetime(2009, 2, 1, 20, tzinfo=EST) + timedelta(days=5 * k))
    obs("D-F1", "Odocoileus virginianus", datetime(2009, 2, 3, 20, tzinfo=EST))
    s.flush()


def test_collared_animals_section_equals_movement_report(workspace, shared_data: Path, tmp_path: Path) -> None:
    with workspace.db.session() as s:
        _albany(s)

    # no telemetry yet: no section, no movement.csv, no JSON entry, no error
    _, paths = build_report(workspace, "Albany", 2009, tmp_path / "before", OPTS, trend=False)
    html = paths["report.html"].read_text(encoding="utf-8")
    assert 'id="movement"' not in html and "Worton" not in html
    assert "movement.csv" not in paths
    assert json.loads(paths["report.json"].read_text())["movement"] is None

    leroy = read_movebank(shared_data / "telemetry-movebank/move-leroy/leroy.csv.gz")
    with workspace.db.session() as s:
        imported = import_records(s, leroy)
        link_tag(s, "FI_074", "74", by="test")
    assert imported is not None

    rep, paths = build_report(workspace, "Albany", 2009, tmp_path / "after", OPTS, trend=False)
    y0, y1 = datetime(2009, 1, 1, tzinfo=EST), datetime(2010, 1, 1, tzinfo=EST)
    with workspace.db.session() as s:
        (want,) = movement_report(s, start=y0, end=y1, plot="Albany", near_m=500.0, utc_offset_minutes=-300)
        assert movement_report(s, start=y0, end=y1, plot="Far") == []
    assert want.individual == "FI_074" and want.fixes > 800 and want.mcp95_km2 and want.kde95_km2

    # the CSV: one row per tag, the same numbers
    (row,) = _rows(paths["movement.csv"])
    assert row["tag"] == "74" and row["individual"] == "FI_074"
    assert int(row["fixes"]) == want.fixes
    assert int(row["outliers_left_out"]) == want.outliers_left_out
    assert float(row["mcp95_km2"]) == pytest.approx(want.mcp95_km2, rel=1e-12)
    assert float(row["kde95_km2"]) == pytest.approx(want.kde95_km2, rel=1e-12)
    assert float(row["kde_bandwidth_m"]) == pytest.approx(want.bandwidth_m, rel=1e-12)
    assert "href" in row["kde_bandwidth_rule"] and "Worton 1989" in row["kde_bandwidth_rule"]
    assert float(row["mean_km_per_day"]) == pytest.approx(want.mean_daily_km, rel=1e-12)
    assert float(row["se_km_per_day"]) == pytest.approx(want.se_daily_km, rel=1e-12)
    assert int(row["days"]) == len(want.daily_distance_km)
    assert int(row["fixes_in_plot"]) == want.plots["Albany"] > 0
    assert "Far" not in row["plots_crossed"]

    # per camera: fixes near it beside the confirmed detections (the machine's proposal at S1 not counted)
    cams = {r["station"]: r for r in _rows(paths["movement_cameras.csv"])}
    assert set(cams) == {f"S{k}" for k in range(1, 10)}
    for c in want.cameras:
        assert int(cams[c["location_id"]]["fixes_near"]) == c["fixes_near"]
        assert int(cams[c["location_id"]]["detections"]) == c["detections"]
    assert int(cams["S5"]["detections"]) == 3 and int(cams["S1"]["detections"]) == 0
    assert sum(int(r["fixes_near"]) for r in cams.values()) > 0

    # JSON: the same numbers, the methods named, no positions
    mv = json.loads(paths["report.json"].read_text())["movement"]
    (tag,) = mv["tags"]
    assert tag["mcp95_km2"] == pytest.approx(want.mcp95_km2, rel=1e-12)
    assert tag["kde95_km2"] == pytest.approx(want.kde95_km2, rel=1e-12)
    assert tag["plots"] == want.plots
    assert "Mohr 1947" in mv["methods"]["mcp95"] and "Worton 1989" in mv["methods"]["kde95"]
    assert all("lon" not in c and "lat" not in c for c in tag["cameras"])

    # HTML: the section, its citations, and no fix's coordinates
    html = paths["report.html"].read_text(encoding="utf-8")
    assert 'id="movement"' in html and "Collared animals" in html
    assert "Mohr (1947)" in html and "Worton (1989)" in html and "h_ref" in html
    assert "movement.csv" in html
    first = next(r for r in leroy.records if r.latitude is not None)
    for coord in (f"{first.latitude:.4f}", f"{first.longitude:.4f}", f"{first.latitude:.3f}"):
        assert coord not in html and coord not in paths["report.json"].read_text()
    assert len(rep.movement) == 1
