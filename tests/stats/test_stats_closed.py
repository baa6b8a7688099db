"""Closed-population estimators against textbook worked examples and their published equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pardus.stats.closed import (
    ClosedCRError,
    closed_population,
    huggins,
    m0,
    mb,
    mh2,
    mh_chao,
    mt,
    summarise,
)


def seber_two_sample() -> np.ndarray:
    """Seber (1982) The Estimation of Animal Abundance, p.107: 167 animals caught in both samples,
    781 only in the first, 254 only in the second (as given in the examples of the R package Rcapture,
    whose saved output, tests/Examples/Rcapture-Ex.Rout.save, prints M0 2805.6 (s.e. 164.1),
    Mt 2389.9 (130.4) and Mb 1295.0 (17.3))."""
    return np.array([[1, 1]] * 167 + [[1, 0]] * 781 + [[0, 1]] * 254)


def test_seber_1982_two_sample_example():
    x = seber_two_sample()
    e0, et, eb = m0(x), mt(x), mb(x)
    assert e0.n_hat.value == pytest.approx(2805.6, abs=0.05)
    assert et.n_hat.value == pytest.approx(2389.9, abs=0.05)
    assert eb.n_hat.value == pytest.approx(1295.0, abs=0.05)
    assert e0.n_hat.se == pytest.approx(164.1, abs=0.1)
    assert et.n_hat.se == pytest.approx(130.4, abs=0.1)
    assert eb.n_hat.se == pytest.approx(17.3, abs=0.1)
    # Mt with two samples is Petersen's n1 n2 / m2; Mb is the two-sample removal u1^2 / (u1 - u2)
    assert et.n_hat.value == pytest.approx(948 * 421 / 167, rel=1e-6)
    assert eb.n_hat.value == pytest.approx(948**2 / (948 - 254), rel=1e-6)


@pytest.fixture(scope="module")
def six_occasions() -> np.ndarray:
    rng = np.random.default_rng(42)
    p = np.array([0.2, 0.35, 0.25, 0.3, 0.15, 0.3])
    x = (rng.random((120, 6)) < p).astype(int)
    return x[x.sum(axis=1) > 0]


def test_estimates_solve_the_published_estimating_equations(six_occasions):
    """Otis et al. (1978): M0 solves (1 - n./(tN))^t = 1 - M/N; Mt solves Darroch's (1958)
    1 - M/N = prod_j (1 - n_j/N); Mb solves 1 - M/N = (1 - p)^t with p = M / (tN - sum_j M_j)."""
    x = six_occasions
    s = summarise(x)
    t, m = s.n_occasions, s.n_animals
    n = m0(x).n_hat.value
    assert (1 - s.total_captures / (t * n)) ** t == pytest.approx(1 - m / n, abs=1e-7)
    n = mt(x).n_hat.value
    assert np.prod(1 - np.array(s.n_per_occasion) / n) == pytest.approx(1 - m / n, abs=1e-7)
    n = mb(x).n_hat.value
    p = m / (t * n - sum(s.marked_before))
    assert (1 - p) ** t == pytest.approx(1 - m / n, abs=1e-7)


def test_summary_statistics_follow_otis_notation():
    x = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]])
    s = summarise(x)
    assert s.n_animals == 4 and s.n_occasions == 3
    assert s.n_per_occasion == (2, 2, 4)
    assert s.first_captures == (2, 1, 1)
    assert s.marked_before == (0, 2, 3)
    assert s.frequencies == (1, 2, 1)


def test_chao_1987_formula_and_variance():
    """f1 = 3, f2 = 2 among M = 6: N = 6 + 9/4 = 8.25; var = f2[(f1/f2)^4/4 + (f1/f2)^3 + (f1/f2)^2/2]."""
    x = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0], [1, 1, 1, 0]])
    e = mh_chao(x)
    assert e.n_hat.value == pytest.approx(8.25)
    r = 1.5
    assert e.n_hat.se == pytest.approx(math.sqrt(2 * (r**4 / 4 + r**3 + r**2 / 2)))
    assert e.n_hat.lcl >= 6  # log-normal interval on N - M never falls below the animals seen
    assert e.likelihood == "none" and e.aicc is None


def test_chao_handles_no_doubletons():
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    e = mh_chao(x)
    assert e.n_hat.value == pytest.approx(4 + 3 * 2 / 2)
    assert "bias-corrected" in e.note


def _heterogeneous(rng: np.random.Generator, n: int = 120, t: int = 8) -> np.ndarray:
    p = rng.beta(1.2, 5.0, size=n)  # mean 0.19, strongly heterogeneous
    x = (rng.random((n, t)) < p[:, None]).astype(int)
    return x[x.sum(axis=1) > 0]


def test_heterogeneity_models_reduce_the_negative_bias_of_m0():
    """Known truth N = 120 with heterogeneous p: M0 underestimates (Otis et al. 1978); Chao's
    lower-bound estimator and the Pledger mixture come closer on average over 15 populations."""
    rng = np.random.default_rng(7)
    res = {"M0": [], "Chao": [], "Mh2": []}
    for _ in range(15):
        x = _heterogeneous(rng)
        res["M0"].append(m0(x).n_hat.value)
        res["Chao"].append(mh_chao(x).n_hat.value)
        e = mh2(x)
        res["Mh2"].append(min(e.n_hat.value, 1000.0) if e.estimable else 1000.0)
    bias = {k: np.mean(v) / 120 - 1 for k, v in res.items()}
    assert bias["M0"] < -0.10
    assert abs(bias["Chao"]) < abs(bias["M0"])
    assert abs(np.median(res["Mh2"]) / 120 - 1) < abs(bias["M0"])


def test_huggins_null_model_matches_m0_and_covariates_recover_n():
    x = seber_two_sample()
    assert huggins(x).n_hat.value == pytest.approx(m0(x).n_hat.value, rel=2e-3)
    # sex-dependent capture probability, N = 200 (100 of each sex), 5 occasions
    rng = np.random.default_rng(3)
    est_cov, est_null = [], []
    for _ in range(10):
        sex = np.repeat([0.0, 1.0], 100)
        p = np.where(sex == 1, 0.4, 0.08)
        full = (rng.random((200, 5)) < p[:, None]).astype(int)
        seen = full.sum(axis=1) > 0
        fit = huggins(full[seen], {"sex": sex[seen]})
        assert fit.n_hat.lcl <= fit.n_hat.value <= fit.n_hat.ucl
        est_cov.append(fit.n_hat.value)
        est_null.append(huggins(full[seen]).n_hat.value)
    assert np.mean(est_cov) == pytest.approx(200, rel=0.08)
    assert np.mean(est_null) < np.mean(est_cov)


def test_model_selection_and_aic_table():
    rng = np.random.default_rng(1)
    x = (rng.random((60, 6)) < 0.3).astype(int)
    x = x[x.sum(axis=1) > 0]
    res = closed_population(x)
    table = res.aic_table()
    assert {r["model"] for r in table} == {"M0", "Mt", "Mb", "Mh2"}
    assert table[0]["dAICc"] == 0.0 and sum(r["weight"] for r in table) == pytest.approx(1.0)
    assert res.best is not None and res.best.model == table[0]["model"]
    assert res.best.n_hat.lcl >= res.summary.n_animals
    for e in res.estimates:
        assert e.reference  # every estimator names its source


def test_no_recaptures_is_reported_not_invented():
    x = np.eye(5, dtype=int)  # five animals, each caught once
    for fit in (m0, mt, mh2):
        e = fit(x)
        assert not e.estimable and "more than one occasion" in e.note
    res = closed_population(x)
    assert res.best is None and "more than one occasion" in res.selection
    # one recapture is enough for an estimate, if a very uncertain one
    x[0, 1] = 1
    assert closed_population(x).best is not None


def test_clear_errors():
    with pytest.raises(ClosedCRError, match="at least 2 occasions"):
        m0(np.ones((3, 1)))
    with pytest.raises(ClosedCRError, match="no animal"):
        m0(np.zeros((3, 4)))
    with pytest.raises(ClosedCRError, match="one value per animal"):
        huggins(np.ones((3, 4)), {"sex": [1, 0]})
