"""The pure SECR simulator follows its model: half-normal detection, Poisson density, usage.

The detection-function tests pool many simulated seasons, bin every animal-detector pair by
distance, and compare what was detected with what the model says, bin by bin, with a chi-square
statistic. The same statistic computed with a sigma 12 % off must reject, so the test has the
power to see a wrong detection function, not only to pass a right one.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pardus.simulate.captures import CaptureModelError, half_normal, simulate_captures

SIGMA = 500.0
TRAPS = np.array([(x, y) for x in range(0, 3000, 500) for y in range(0, 3000, 500)], dtype=float)
EDGES = np.linspace(0, 3.0 * SIGMA, 13)


def _pooled(detector: str, seasons: int, **model: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Distances of all animal-detector pairs and their total counts over occasions, many seasons."""
    d_all, y_all = [], []
    occasions = 5
    rng = np.random.default_rng(12345)
    for _ in range(seasons):
        data = simulate_captures(TRAPS, density_per_km2=0.7, sigma_m=SIGMA, occasions=occasions,
                                 detector=detector, seed=rng, **model)
        d_all.append(data.distances().ravel())
        y_all.append(data.counts_all.sum(axis=1).ravel())
    return np.concatenate(d_all), np.concatenate(y_all), occasions


def _chi2_bins(d: np.ndarray, y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[float, int]:
    idx = np.digitize(d, EDGES) - 1
    chi2, bins = 0.0, 0
    for b in range(len(EDGES) - 1):
        sel = idx == b
        if var[sel].sum() < 5:
            continue
        chi2 += (y[sel].sum() - mean[sel].sum()) ** 2 / var[sel].sum()
        bins += 1
    return chi2, bins


def test_proximity_detection_follows_g0_half_normal() -> None:
    g0 = 0.3
    d, y, k = _pooled("proximity", 300, g0=g0)
    assert y.max() <= k  # 0/1 per occasion
    p = half_normal(d, g0, SIGMA)
    chi2, bins = _chi2_bins(d, y, k * p, k * p * (1 - p))
    assert bins >= 10
    assert stats.chi2.sf(chi2, bins) > 0.001, f"chi2 {chi2:.1f} on {bins} bins"
    # Power: a detection function with a sigma 12 % too large is rejected by the same test.
    p_wrong = half_normal(d, g0, SIGMA * 1.12)
    chi2_wrong, _ = _chi2_bins(d, y, k * p_wrong, k * p_wrong * (1 - p_wrong))
    assert stats.chi2.sf(chi2_wrong, bins) < 1e-6, f"a wrong sigma was not rejected (chi2 {chi2_wrong:.1f})"
    # ... and so is a g0 10 % off.
    p_g = half_normal(d, g0 * 0.9, SIGMA)
    chi2_g, _ = _chi2_bins(d, y, k * p_g, k * p_g * (1 - p_g))
    assert stats.chi2.sf(chi2_g, bins) < 1e-6


def test_empirical_detection_probability_per_distance_bin_is_within_sampling_error() -> None:
    g0 = 0.25
    d, y, k = _pooled("proximity", 200, g0=g0)
    idx = np.digitize(d, EDGES) - 1
    for b in range(6):  # bins out to 1.5 sigma, where most detections are
        sel = idx == b
        trials = sel.sum() * k
        p_hat = y[sel].sum() / trials
        p_model = half_normal(d[sel], g0, SIGMA).mean()
        se = np.sqrt(p_model * (1 - p_model) / trials)
        assert abs(p_hat - p_model) < 4 * se, f"bin {b}: {p_hat:.4f} vs model {p_model:.4f} (se {se:.4f})"


def test_count_detector_follows_lambda0_hazard() -> None:
    lam = 0.4
    d, y, k = _pooled("count", 200, lambda0=lam)
    mu = k * half_normal(d, lam, SIGMA)
    chi2, bins = _chi2_bins(d, y, mu, mu)  # Poisson: variance = mean
    assert stats.chi2.sf(chi2, bins) > 0.001
    mu_wrong = k * half_normal(d, lam, SIGMA * 0.88)
    chi2_wrong, _ = _chi2_bins(d, y, mu_wrong, mu_wrong)
    assert stats.chi2.sf(chi2_wrong, bins) < 1e-6
    assert y.max() > 1  # counts, not 0/1


def test_animals_per_season_are_poisson_with_mean_density_times_mask_area() -> None:
    rng = np.random.default_rng(7)
    ns = []
    for _ in range(400):
        data = simulate_captures(TRAPS, density_per_km2=0.5, sigma_m=SIGMA, occasions=1, g0=0.1, seed=rng)
        ns.append(len(data.centres))
        c = data.centres
        assert (c[:, 0] >= data.mask.x_min).all() and (c[:, 1] <= data.mask.y_max).all()
    expected = 0.5 * data.mask.area_km2
    assert data.mask.area_km2 == pytest.approx((2500 + 4000) ** 2 / 1e6)
    assert abs(np.mean(ns) - expected) < 4 * np.sqrt(expected / len(ns))
    assert np.var(ns) == pytest.approx(expected, rel=0.25)  # Poisson: variance equals the mean


def test_usage_scales_the_hazard_and_zero_usage_catches_nothing() -> None:
    usage = np.ones((len(TRAPS), 4))
    usage[:, 2:] = 0.0
    usage[0, :2] = 0.5
    data = simulate_captures(TRAPS, density_per_km2=2.0, sigma_m=SIGMA, occasions=4, lambda0=2.0,
                             detector="count", usage=usage, seed=3)
    assert data.counts_all[:, 2:, :].sum() == 0
    assert data.counts_all[:, :2, 1:].sum() > 0
    mean = data.expected()
    full = half_normal(data.distances(), 2.0, SIGMA)
    np.testing.assert_allclose(mean[:, 0, 0], 0.5 * full[:, 0])
    # proximity with usage u: p = 1 - (1 - g)^u, as in secr
    prox = simulate_captures(TRAPS, density_per_km2=2.0, sigma_m=SIGMA, occasions=4, g0=0.4, usage=usage, seed=3)
    g = half_normal(prox.distances(), 0.4, SIGMA)
    np.testing.assert_allclose(prox.expected()[:, 0, 0], 1 - (1 - g[:, 0]) ** 0.5, rtol=1e-9, atol=1e-12)


def test_same_seed_same_season_and_captures_subset() -> None:
    a = simulate_captures(TRAPS, density_per_km2=1.0, sigma_m=SIGMA, occasions=3, g0=0.3, seed=11)
    b = simulate_captures(TRAPS, density_per_km2=1.0, sigma_m=SIGMA, occasions=3, g0=0.3, seed=11)
    np.testing.assert_array_equal(a.centres, b.centres)
    np.testing.assert_array_equal(a.counts_all, b.counts_all)
    assert a.captures.shape == (len(a.detected), 3, len(TRAPS))
    assert (a.captures.sum(axis=(1, 2)) > 0).all()
    rows = list(a.rows())
    assert sum(r[3] for r in rows) == a.counts_all.sum()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"g0": 0.2, "lambda0": 0.2}, "exactly one"),
        ({}, "exactly one"),
        ({"g0": 1.5}, "outside"),
        ({"g0": 0.2, "detector": "single"}, "detector must be"),
        ({"g0": 0.2, "sigma_m": -1.0}, "sigma"),
    ],
)
def test_bad_parameters_say_what_to_change(kwargs: dict, words: str) -> None:
    base = {"density_per_km2": 1.0, "sigma_m": SIGMA, "occasions": 2}
    base.update(kwargs)
    with pytest.raises(CaptureModelError, match=words):
        simulate_captures(TRAPS, **base)
