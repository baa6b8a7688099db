"""The report's density maps: the D~1 fit's map (secr's fxTotal), D ~ habitat from a park's CSV or
GeoTIFF, and the files beside the HTML (CSV cells that add up to the fitted numbers, GeoTIFF).

One plot-year of a population whose density rises eastward (log D slope 0.8 per SD of "cover"),
written to a SQLite store as reviewed photos; the report is asked for D ~ cover.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform

from pardus.config import Settings
from pardus.simulate.captures import Mask as Region
from pardus.simulate.captures import centres_from_surface, simulate_captures
from pardus.simulate.years import Demography, MultiYearPark, YearTruth
from pardus.stats.density_map import local_crs, write_geotiff
from pardus.stats.report import ReportOptions, Station, analyse, build_report, collect, station_coordinates
from pardus.stats.secr import grid_xy, make_mask
from pardus.store import open_workspace

from .plot_years_rows import write_plot_years

XY = grid_xy(6, 6, 500.0)
DAYS = 8
SLOPE = 0.8
OPTS = ReportOptions(occasion_days=1.0, n_boot=40, mask_buffer_m=1600.0, mask_spacing_m=200.0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def east_plot(tmp_path_factory: pytest.TempPathFactory):
    """A store with plot East (2024 only) and the park's habitat files: cover as CSV of cells and as GeoTIFF."""
    root = tmp_path_factory.mktemp("maps")
    mask = make_mask(XY, 1600.0, spacing=200.0)  # the report's mask for OPTS
    mu, sd = mask.xy[:, 0].mean(), mask.xy[:, 0].std()
    surface = np.exp(np.log(8.0) + SLOPE * (mask.xy[:, 0] - mu) / sd)  # animals per km²
    centres = centres_from_surface(mask.xy, mask.spacing, surface, seed=3)
    cap = simulate_captures(
        XY, density_per_km2=0.0, sigma_m=400.0, occasions=DAYS, lambda0=0.15, centres=centres, buffer_m=1600.0, seed=4
    )
    park = MultiYearPark(
        [YearTruth(2024, np.arange(len(centres)), 0, 0, 0, cap)], Demography(), Region.around(XY, 1600.0), 8.0,
        len(centres),
    )
    # the park's habitat: cover = x in km, well beyond the mask (a slope per SD is unit-free); as a CSV of
    # 100 m cells and as a GeoTIFF of 200 m pixels, both with a cell centred on every mask cell
    xs = np.arange(-3000.0, 6000.0, 100.0)
    with (root / "cover.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "cover"])
        w.writerows([x, y, x / 1000.0] for y in xs for x in xs)
    px = np.arange(-3000.0, 6000.0, 200.0) + 100.0  # pixel centres, west to east
    grid = np.tile(px / 1000.0, (len(px), 1))  # every row alike, so north-first order does not matter
    profile = dict(driver="GTiff", height=len(px), width=len(px), count=1, dtype="float64",
                   transform=Affine(200.0, 0.0, -3000.0, 0.0, -200.0, 6000.0), crs="EPSG:32653")
    with rasterio.open(root / "forest.tif", "w", **profile) as dst:
        dst.write(grid, 1)
    ws = open_workspace(Settings(data_dir=root / "data"))
    with ws.db.session() as s:
        seen = write_plot_years(s, "East", park, XY, days=DAYS)
    yield ws, root, seen[2024]
    ws.close()


def test_density_map_averages_to_the_fitted_density(east_plot, tmp_path: Path):
    ws, _, seen = east_plot
    rep, paths = build_report(ws, "East", 2024, tmp_path, OPTS, trend=False)
    assert rep.secr is not None and rep.secr.n_individuals == seen and rep.density_map is not None
    d100 = rep.secr.density_per_100km2().value
    rows = _rows(paths["density_map.csv"])
    assert len(rows) == rep.secr.mask_points
    cells = np.array([float(r["density_per_100km2"]) for r in rows])
    assert cells.mean() == pytest.approx(d100, rel=1e-10)  # redistributes the fitted density, adds none
    assert all(r["se_per_100km2"] == "" for r in rows)  # no SE per cell for fxTotal: left empty, not invented
    east = np.array([float(r["x"]) for r in rows]) > 1250.0
    assert cells[east].mean() > cells[~east].mean()  # more animals were caught in the east, the map shows it
    with rasterio.open(paths["density_map.tif"]) as src:
        band = src.read(1)
        assert src.crs is None and src.res == (200.0, 200.0)
        assert int(np.isfinite(band).sum()) == len(rows)
        assert float(np.nanmean(band)) == pytest.approx(d100, rel=1e-6)  # float32
        # the cell under a CSV row's centre holds that row's value
        r0 = rows[len(rows) // 2]
        row, col = src.index(float(r0["x"]), float(r0["y"]))
        assert float(band[row, col]) == pytest.approx(float(r0["density_per_100km2"]), rel=1e-6)
    nums = json.loads(paths["report.json"].read_text())
    assert nums["density_map"]["mean_density_per_100km2"] == pytest.approx(d100, rel=1e-10)
    assert "density_map.csv and density_map.tif" in paths["report.html"].read_text()


def test_density_over_habitat_from_the_parks_csv_and_geotiff(east_plot, tmp_path: Path):
    ws, root, _ = east_plot
    rep, paths = build_report(
        ws, "East", 2024, tmp_path / "csv", ReportOptions(**{**OPTS.__dict__, "habitat": str(root / "cover.csv")}),
        trend=False,
    )
    hab = rep.habitat
    assert hab is not None and hab.converged and hab.covariates == ("cover",)
    slope = hab.slope("cover")
    assert slope.lcl < SLOPE < slope.ucl and slope.lcl > 0  # per SD of cover: the simulated slope
    assert rep.habitat_scale["cover"][1] == pytest.approx(rep.density_map.xy[:, 0].std() / 1000.0, rel=1e-9)
    rows = _rows(paths["habitat_map.csv"])
    cell_ha = 200.0**2 / 1e4
    assert sum(float(r["density_per_ha"]) for r in rows) * cell_ha == pytest.approx(hab.expected_n.value, rel=1e-10)
    assert all(float(r["se_per_100km2"]) > 0 for r in rows)
    table = {r["name"]: r for r in _rows(paths["habitat.csv"])}
    assert float(table["slope cover"]["slope_per_unit"]) == pytest.approx(
        slope.value / rep.habitat_scale["cover"][1], rel=1e-12
    )
    with rasterio.open(paths["habitat_map.tif"]) as src:
        assert src.count == 2  # density and its SE
    html = paths["report.html"].read_text()
    assert "Density over habitat: D ~ cover" in html and "habitat explains density better" in html

    # the same covariate from the park's GeoTIFF (with a CRS; the stations are given in it); the
    # analysis alone, as build_report runs it, without drawing the figures again
    opts = ReportOptions(**{**OPTS.__dict__, "habitat": str(root / "forest.tif"), "crs": "EPSG:32653"})
    with ws.db.session() as s:
        rep2 = analyse(collect(s, "East", 2024), opts)
    assert rep2.habitat is not None and rep2.habitat.covariates == ("forest",)
    assert rep2.habitat.slope("forest").value == pytest.approx(slope.value, rel=1e-6)
    assert rep2.crs == "EPSG:32653"
    with rasterio.open(write_geotiff(rep2.density_map, tmp_path / "crs.tif", rep2.crs)) as src:
        assert src.crs.to_epsg() == 32653


def test_a_habitat_file_that_misses_the_mask_is_a_note_not_a_crash(east_plot):
    ws, root, _ = east_plot
    bad = root / "small.csv"
    bad.write_text("x,y,cover\n0,0,1\n500,0,2\n")
    with ws.db.session() as s:
        rep = analyse(collect(s, "East", 2024), ReportOptions(**{**OPTS.__dict__, "habitat": str(bad)}))
    assert rep.habitat is None and rep.secr is not None
    assert any(m.startswith("Density over habitat (small.csv):") and "mask cells" in m for m in rep.messages)


def test_local_projection_is_a_real_crs():
    """Stations given by latitude/longitude: the GeoTIFF's CRS maps them back onto the report's metres."""
    lat, lon = 43.1 + np.array([0.0, 0.05, 0.1]), 131.3 + np.array([0.0, 0.08, -0.04])
    st = [
        Station(str(k), str(k), None, None, float(a), float(b)) for k, (a, b) in enumerate(zip(lat, lon, strict=True))
    ]
    coords = station_coordinates(st)
    assert coords is not None and coords[1].startswith("latitude")
    x, y = warp_transform("EPSG:4326", local_crs(float(lat.mean()), float(lon.mean())), lon.tolist(), lat.tolist())
    np.testing.assert_allclose(np.column_stack([x, y]), coords[0], atol=1e-6)
