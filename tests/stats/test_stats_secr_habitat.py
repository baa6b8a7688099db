"""Density over habitat: with no covariate it is today's SECR fit; with one it finds the slope that made
the simulated population, and writes the density map."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from pardus.simulate.captures import centres_from_surface, simulate_captures
from pardus.stats.secr import SecrError, Traps, fit_secr, grid_xy, make_mask
from pardus.stats.secr_habitat import fit_secr_habitat, read_cell_covariates, table, write_density_map

XY = grid_xy(6, 6, 500.0)
OCC = 8


@pytest.fixture(scope="module")
def habitat_data():
    traps = Traps(XY, detector="proximity", usage=np.ones((36, OCC)))
    mask = make_mask(XY, 1600.0, spacing=200.0)
    cover = (mask.xy[:, 0] - mask.xy[:, 0].mean()) / mask.xy[:, 0].std()
    dens_km2 = np.exp(np.log(8.0) + 0.8 * cover)
    centres = centres_from_surface(mask.xy, mask.spacing, dens_km2, seed=3)
    data = simulate_captures(
        XY, density_per_km2=0.0, sigma_m=400.0, occasions=OCC, lambda0=0.15, centres=centres, buffer_m=1600.0, seed=4
    )
    return data.captures, traps, mask, cover, len(centres)


def test_no_covariate_is_todays_fit(habitat_data):
    counts, traps, mask, _, _ = habitat_data
    plain = fit_secr(counts, traps, mask, detectfn="HHN")
    hab = fit_secr_habitat(counts, traps, mask, {}, detectfn="HHN")
    assert hab.coefficients[0].value == pytest.approx(plain.beta[0], abs=1e-7)
    assert hab.loglik == pytest.approx(plain.loglik, rel=1e-10)
    assert hab.sigma.value == pytest.approx(plain.sigma.value, rel=1e-6)


def test_slope_of_a_habitat_gradient_is_found(habitat_data, tmp_path):
    counts, traps, mask, cover, n_true = habitat_data
    fit = fit_secr_habitat(counts, traps, mask, {"cover": cover}, detectfn="HHN")
    slope = fit.slope("cover")
    assert slope.lcl < 0.8 < slope.ucl and slope.lcl > 0
    assert fit.expected_n.lcl < n_true < fit.expected_n.ucl
    assert fit.npar == 4 and fit.converged and len(table(fit)) == 5
    paths = write_density_map(fit, tmp_path, mask.spacing)
    rows = list(csv.DictReader(paths["density_map.csv"].open()))
    assert len(rows) == len(mask) and paths["density_map.png"].stat().st_size > 1000
    east = float(rows[int(np.argmax(mask.xy[:, 0]))]["D_per_100km2"])
    west = float(rows[int(np.argmin(mask.xy[:, 0]))]["D_per_100km2"])
    assert east > west


def test_covariates_from_a_csv_of_cells(habitat_data, tmp_path):
    _, _, mask, cover, _ = habitat_data
    p = tmp_path / "cells.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "cover"])
        w.writerows([[x, y, c] for (x, y), c in zip(mask.xy, cover, strict=True)])
    got = read_cell_covariates(p, mask)
    np.testing.assert_allclose(got["cover"], cover)
    far = make_mask(XY + 50_000.0, 1600.0, spacing=200.0)
    with pytest.raises(SecrError):
        read_cell_covariates(p, far)
