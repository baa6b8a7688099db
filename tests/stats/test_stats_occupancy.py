"""Single-season occupancy against its analytic solution and a simulation with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from pardus.stats.occupancy import OccupancyError, fit_occupancy, occupancy_loglik


def test_mle_equals_the_closed_form_for_equal_effort():
    """With K surveys at every site, p-hat solves the zero-truncated binomial mean equation over the
    detected sites and psi-hat = (S_D / S) / (1 - (1 - p)^K) (MacKenzie et al. 2002)."""
    rng = np.random.default_rng(2)
    s, k = 80, 5
    z = rng.random(s) < 0.6
    y = ((rng.random((s, k)) < 0.3) & z[:, None]).astype(float)
    fit = fit_occupancy(y)
    det = y.sum(axis=1) > 0
    mean_det = y[det].sum(axis=1).mean()
    p = optimize.brentq(lambda p: k * p / (1 - (1 - p) ** k) - mean_det, 1e-6, 1 - 1e-9)
    psi = det.mean() / (1 - (1 - p) ** k)
    assert fit.p.value == pytest.approx(p, rel=1e-5)
    assert fit.psi.value == pytest.approx(psi, rel=1e-5)
    assert fit.naive == pytest.approx(det.mean())
    assert fit.loglik == pytest.approx(occupancy_loglik(y, psi, p), abs=1e-6)


def test_recovers_truth_with_missing_surveys():
    rng = np.random.default_rng(9)
    psi, p, s, k = 0.45, 0.25, 300, 8
    z = rng.random(s) < psi
    y = ((rng.random((s, k)) < p) & z[:, None]).astype(float)
    y[rng.random((s, k)) < 0.2] = np.nan  # broken cameras: missing, not zero
    fit = fit_occupancy(y)
    assert fit.psi.lcl < psi < fit.psi.ucl
    assert fit.p.lcl < p < fit.p.ucl
    assert fit.psi.value > fit.naive  # missed detections corrected


def test_errors():
    with pytest.raises(OccupancyError, match="never detected"):
        fit_occupancy(np.zeros((4, 3)))
    with pytest.raises(OccupancyError, match="0, 1 or missing"):
        fit_occupancy(np.full((2, 2), 2.0))


def test_a_species_seen_on_every_occasion_is_an_edge_estimate_not_a_crash():
    """Found by bench/store_scale.py: a plot where the species is detected on every survey drove p to
    exactly 1 and math.log1p(-1) raised in the middle of the plot-year report."""
    import numpy as np

    from pardus.stats.occupancy import fit_occupancy, occupancy_loglik

    y = np.ones((6, 8))
    assert occupancy_loglik(y, 1.0, 1.0) == 0.0
    assert occupancy_loglik(np.zeros((2, 3)), 0.5, 1.0) == float(np.log(0.5) * 2)
    fit = fit_occupancy(y)
    assert fit.note and "edge" in fit.note
