"""Trend across years: the multi-year virtual park keeps its books, Pradel's likelihood is a
probability distribution and recovers φ and f (multi-session λ on a growing park:
test_stats_trend_report.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pardus.simulate.captures import CaptureModelError
from pardus.simulate.years import Demography, simulate_years
from pardus.stats.open_pop import OpenPopulationError, _loglik, fit_pradel
from pardus.stats.secr import grid_xy

XY = grid_xy(5, 5, 1000.0)


def test_multi_year_park_keeps_its_books():
    park = simulate_years(
        XY,
        years=[2022, 2023, 2024, 2025],
        density_per_km2=2.0,
        sigma_m=600.0,
        occasions=10,
        lambda0=0.1,
        demography=Demography(0.7, 0.4, immigration_per_km2=0.1, dispersal_m=200.0),
        seed=5,
    )
    ys = park.years
    for prev, cur in zip(ys, ys[1:], strict=False):
        assert cur.n == prev.n - cur.deaths + cur.births + cur.immigrants
        survivors = np.intersect1d(prev.alive, cur.alive)
        assert len(survivors) == prev.n - cur.deaths
        assert cur.alive.max() < park.n_animals_ever and len(np.unique(cur.alive)) == cur.n
    hist, ids = park.encounter_histories()
    assert hist.shape == (len(ids), 4) and hist.sum(axis=0).tolist() == [len(y.detected_ids) for y in ys]
    exp = park.expected_density_per_km2()
    assert exp[1] == pytest.approx(2.0 * 1.1 + 0.1)
    assert np.all(ys[2].captures.centres >= [park.region.x_min, park.region.y_min])
    with pytest.raises(CaptureModelError):
        Demography(survival=1.5)


def test_closed_park_is_the_same_animals_every_year():
    park = simulate_years(
        XY,
        years=[1, 2, 3],
        density_per_km2=1.0,
        sigma_m=500.0,
        occasions=3,
        lambda0=0.2,
        demography=Demography(1.0, 0.0),
        seed=2,
    )
    c0 = park.years[0].captures.centres
    for y in park.years:
        assert np.array_equal(y.alive, park.years[0].alive)
        np.testing.assert_array_equal(y.captures.centres, c0)


def test_pradel_likelihood_is_a_distribution_over_histories():
    beta = np.array([0.7, math.log(0.35), 0.2, -0.4, 0.9, -1.1])
    hs = np.array([h for h in itertools.product([0, 1], repeat=4) if any(h)], dtype=float)
    probs = [math.exp(_loglik(beta, h[None, :], np.array([h.argmax()]), np.array([3 - h[::-1].argmax()]))) for h in hs]
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    mix = np.concatenate([beta, [1.3, -0.5]])  # two detection classes (Pledger 2000)
    probs = [math.exp(_loglik(mix, h[None, :], np.array([h.argmax()]), np.array([3 - h[::-1].argmax()]))) for h in hs]
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)


def _pradel_data(rng: np.random.Generator, n0: int, phi: float, f: float, p: list[float]) -> np.ndarray:
    alive = np.arange(n0)
    rows: dict[int, np.ndarray] = {}
    nxt = n0
    for t, pt in enumerate(p):
        if t:
            births = rng.poisson(f * len(alive))
            alive = np.concatenate([alive[rng.random(len(alive)) < phi], np.arange(nxt, nxt + births)])
            nxt += births
        for i in alive[rng.random(len(alive)) < pt]:
            rows.setdefault(int(i), np.zeros(len(p)))[t] = 1
    return np.array(list(rows.values()))


def test_pradel_recovers_survival_and_recruitment():
    hist = _pradel_data(np.random.default_rng(4), 3000, 0.75, 0.35, [0.5, 0.3, 0.6, 0.45])
    fit = fit_pradel(hist, [2021, 2022, 2023, 2024])
    assert fit.survival.lcl < 0.75 < fit.survival.ucl
    assert fit.recruitment.lcl < 0.35 < fit.recruitment.ucl
    assert fit.growth.value == pytest.approx(fit.survival.value + fit.recruitment.value)
    assert fit.growth.lcl < 1.1 < fit.growth.ucl
    assert fit.detection[1].lcl < 0.3 < fit.detection[1].ucl
    assert fit.npar == 6 and len(fit.table()) == 7
    assert fit_pradel(hist[:400], heterogeneity=True).npar == 8
    with pytest.raises(OpenPopulationError):
        fit_pradel(hist[:, :2])


def test_pradel_gives_standard_errors_when_a_year_saw_every_animal():
    # 60 days of cameras: animals inside the grid are seen every year, so some p_t reach 1
    park = simulate_years(
        grid_xy(8, 5, 2000.0),
        years=[2021, 2022, 2023, 2024],
        density_per_km2=0.05,
        sigma_m=2500.0,
        occasions=60,
        lambda0=0.05,
        demography=Demography(0.8, 0.3),
        buffer_m=10_000.0,
        seed=3,
    )
    fit = fit_pradel(park.encounter_histories()[0])
    assert max(d.value for d in fit.detection) > 0.999
    assert 0 < fit.survival.se < 0.2 and 0 < fit.recruitment.se < 0.3
    assert fit.growth.lcl < fit.growth.value < fit.growth.ucl


def test_spatial_open_population_recovers_survival():
    from pardus.stats.secr import Traps, make_mask
    from pardus.stats.secr_multi import Session
    from pardus.stats.secr_open import fit_secr_open

    xy = grid_xy(5, 5, 1000.0)
    park = simulate_years(
        xy,
        years=[2021, 2022, 2023, 2024],
        density_per_km2=3.0,
        sigma_m=600.0,
        occasions=10,
        lambda0=0.1,
        demography=Demography(0.75, 0.35),
        buffer_m=2400.0,
        seed=13,
    )
    traps = Traps(xy, detector="proximity", usage=np.ones((25, 10)))
    mask = make_mask(xy, 2400.0, spacing=600.0)
    sessions = [Session(str(y.year), y.captures.captures, traps, mask, y.year) for y in park.years]
    fit = fit_secr_open(sessions, [[str(a) for a in y.detected_ids] for y in park.years])
    assert fit.survival.lcl < 0.75 < fit.survival.ucl
    assert fit.recruitment.lcl < 0.35 < fit.recruitment.ucl
    assert fit.sigma.lcl < 600.0 < fit.sigma.ucl and fit.detection.lcl < 0.1 < fit.detection.ucl
    assert fit.growth.value == pytest.approx(fit.survival.value + fit.recruitment.value)
    with pytest.raises(OpenPopulationError):
        fit_secr_open(sessions[:2], [[], []])
