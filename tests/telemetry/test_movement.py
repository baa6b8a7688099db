"""Home ranges and distances checked against independent computations, on a real fisher track."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pardus.store import open_workspace
from pardus.store.models import Deployment, Individual, Location, Observation
from pardus.telemetry.fixes import import_records, link_tag
from pardus.telemetry.movebank import parse_movebank, read_movebank
from pardus.telemetry.movement import (
    LocalPlane,
    distance_per_day,
    fixes_in_plots,
    href,
    kernel_density,
    kernel_home_range,
    mcp,
    movement_report,
)


def _shoelace_hull_area(pts: list[tuple[float, float]]) -> float:
    """Andrew's monotone chain and the shoelace formula: no scipy, so an independent check."""
    pts = sorted(set(pts))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    upper: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return abs(sum(hull[i][0] * hull[(i + 1) % len(hull)][1] - hull[(i + 1) % len(hull)][0] * hull[i][1]
                   for i in range(len(hull)))) / 2


@pytest.fixture(scope="module")
def fisher_f1(shared_data: Path) -> np.ndarray:
    f = read_movebank(shared_data / "telemetry-movebank/move2-fishers/fishers.csv.gz")
    recs = [r for r in f.records if r.animal == "F1" and r.latitude is not None]
    assert len(recs) == 1349
    lons, lats = [r.longitude for r in recs], [r.latitude for r in recs]
    return LocalPlane.about(lons, lats).xy(lons, lats)


def test_mcp95_equals_plain_hull_of_the_nearest_95_percent(fisher_f1: np.ndarray) -> None:
    xy = fisher_f1
    cx, cy = sum(p[0] for p in xy) / len(xy), sum(p[1] for p in xy) / len(xy)
    d = sorted(math.hypot(p[0] - cx, p[1] - cy) for p in xy)
    # R's type-7 quantile by hand
    h = (len(d) - 1) * 0.95
    q = d[int(h)] + (h - int(h)) * (d[int(h) + 1] - d[int(h)])
    kept = [(float(p[0]), float(p[1])) for p in xy if math.hypot(p[0] - cx, p[1] - cy) <= q]
    assert len(kept) == math.ceil(0.95 * len(xy)) or abs(len(kept) - 0.95 * len(xy)) <= 1
    area, hull = mcp(xy)
    assert area == pytest.approx(_shoelace_hull_area(kept), rel=1e-9)
    assert 0.5e6 < area < 50e6  # a fisher in the Albany suburbs: a few km²
    assert mcp(xy, 100)[0] >= area


def test_kernel_density_against_direct_evaluation() -> None:
    rng = np.random.default_rng(7)
    xy = rng.normal(0, 300, size=(40, 2))
    h = 150.0
    gx, gy = np.linspace(-900, 900, 13), np.linspace(-600, 600, 9)
    got = kernel_density(xy, h, gx, gy)
    for j, y in enumerate(gy):
        for i, x in enumerate(gx):
            direct = sum(math.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * h * h)) for px, py in xy)
            assert got[j, i] == pytest.approx(direct / (len(xy) * 2 * math.pi * h * h), rel=1e-9)


def test_kernel_95_area_of_a_normal_cloud_matches_theory() -> None:
    # a kernel estimate of N(0, s²I) data with bandwidth h is close to N(0, (s²+h²)I), whose 95%
    # isopleth is a disc of area 2π(s²+h²)·ln 20
    rng = np.random.default_rng(3)
    s = 1000.0
    xy = rng.normal(0, s, size=(4000, 2))
    kr = kernel_home_range(xy)
    assert kr.bandwidth_m == pytest.approx(href(xy))
    assert kr.bandwidth_m == pytest.approx(s * 4000 ** (-1 / 6), rel=0.05)
    theory = 2 * math.pi * (s * s + kr.bandwidth_m ** 2) * math.log(20)
    assert kr.area_m2 == pytest.approx(theory, rel=0.05)
    assert kr.mass_on_grid == pytest.approx(1.0, abs=1e-3)


def test_kernel_on_the_real_track_is_sane(fisher_f1: np.ndarray) -> None:
    kr = kernel_home_range(fisher_f1)
    assert kr.mass_on_grid == pytest.approx(1.0, abs=1e-3)
    assert 0.3 * mcp(fisher_f1)[0] < kr.area_m2 < 5 * mcp(fisher_f1)[0]


def test_distance_per_day_by_hand() -> None:
    t0 = datetime(2024, 5, 1, 22, 0, tzinfo=UTC)
    times = [t0 + timedelta(hours=i) for i in range(4)]  # 22:00, 23:00, 00:00, 01:00 UTC
    lats = [0.0, 0.0, 0.0, 0.0]
    lons = [0.0, 0.01, 0.02, 0.04]
    dd = distance_per_day(times, lons, lats)
    deg = 2 * math.pi * 6_371_008.8 / 360
    assert dd.days["2024-05-01"] == (pytest.approx(0.01 * deg, abs=0.2), 2)
    assert dd.days["2024-05-02"] == (pytest.approx(0.03 * deg, abs=0.2), 2)
    local = distance_per_day(times, lons, lats, utc_offset_minutes=600)  # all on 2 May in Vladivostok
    assert list(local.days) == ["2024-05-02"] and math.isnan(local.se_m)


def test_plots_entered() -> None:
    plane = LocalPlane(43.0, 131.0)
    square = plane.xy([131.0, 131.1, 131.1, 131.0, 131.05], [43.0, 43.0, 43.1, 43.1, 43.05])
    track = plane.xy([131.05, 131.2, 131.101], [43.05, 43.05, 43.05])
    assert fixes_in_plots(track, {"A": square}) == {"A": 1}
    assert fixes_in_plots(track, {"A": square}, buffer_m=200) == {"A": 2}


def test_movement_report_for_a_collared_and_photographed_leopard(sqlite_settings) -> None:
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    rows = []
    rng = np.random.default_rng(1)
    for i in range(60):
        lon, lat = 131.30 + rng.normal(0, 0.01), 43.10 + rng.normal(0, 0.01)
        rows.append(f"{(t0 + timedelta(hours=4 * i)):%Y-%m-%d %H:%M:%S},{lon},{lat},TAG123,collar,gps")
    text = "timestamp,location-long,location-lat,tag-local-identifier,individual-local-identifier,sensor-type\n"
    with open_workspace(sqlite_settings) as ws, ws.db.session() as s:
        import_records(s, parse_movebank(text + "\n".join(rows)))
        s.add(Individual(id="ind1", code="LEO_001", scientific_name="Panthera pardus"))
        for i, (lon, lat) in enumerate([(131.30, 43.10), (131.32, 43.11), (131.31, 43.08), (131.60, 43.40)]):
            s.add(Location(id=f"L{i}", plot="SW-1" if i < 3 else "NE-2", latitude=lat, longitude=lon))
            s.add(Deployment(id=f"D{i}", location_id=f"L{i}"))
        s.flush()
        for k in range(3):
            s.add(Observation(deployment_id="D0", observation_type="animal", individual_id="ind1",
                              classification_method="human", event_start=t0 + timedelta(days=k)))
        s.add(Observation(deployment_id="D3", observation_type="animal", individual_id="ind1",
                          classification_method="machine", event_start=t0))
        link_tag(s, "LEO_001", "TAG123", by="test")
        s.flush()
        (summ,) = movement_report(s, start=t0, end=t0 + timedelta(days=30), plot="SW-1")
        assert movement_report(s, start=t0, end=t0 + timedelta(days=30), plot="NE-2") == []
    assert summ.individual == "LEO_001" and summ.fixes == 60
    assert summ.mcp95_km2 and summ.kde95_km2 and summ.kde95_km2 > 0
    assert summ.bandwidth_rule and "Worton" in summ.bandwidth_rule
    assert "SW-1" in summ.plots and "NE-2" not in summ.plots
    at = {c["location_id"]: c for c in summ.cameras}
    assert at["L0"]["detections"] == 3 and at["L0"]["fixes_near"] > 0
    assert set(at) == {"L0", "L1", "L2"}
    assert len(summ.daily_distance_km) == 10 and summ.se_daily_km is not None
