"""Multi-session SECR: one session is today's fit (secr's captdata), and the sessions combine as they must.

secr's published multi-session examples are not in ../shared/data, so beyond captdata the checks are
the model's own identities: two identical sessions with D~1 give the single-session D with SE/√2, and
D~session with per-session detection on independent sessions equals the separate fits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pardus.stats.secr import Traps, fit_secr, grid_xy, make_mask, read_secr_text, simulate_captures
from pardus.stats.secr_multi import Session, fit_secr_multi

SECRDEMO_0 = {"D": 5.4798, "g0": 0.27319, "sigma": 29.366, "loglik": -759.0257}


@pytest.fixture(scope="module")
def captdata(shared_data):
    d = shared_data / "secr-captdata"
    counts, xy, _ = read_secr_text(d / "capt.txt", d / "trap.txt")
    return counts, Traps(xy, detector="single"), make_mask(xy, 100.0)


@pytest.fixture(scope="module")
def small_sessions() -> list[Session]:
    """Two small independent simulated seasons (6 x 6 proximity grid), fast to fit."""
    xy = grid_xy(6, 6, 30.0)
    traps = Traps(xy, detector="proximity", usage=np.ones((36, 4)))
    mask = make_mask(xy, 100.0, spacing=10.0)
    out = []
    for i, dens in enumerate((4.0, 7.0)):
        counts, _ = simulate_captures(traps, density=dens, detection=0.2, sigma=25.0, rng=np.random.default_rng(11 + i))
        out.append(Session(f"20{22 + i}", counts, traps, mask, time=2022.0 + i))
    return out


def test_one_session_is_todays_fit_of_captdata(captdata):
    counts, traps, mask = captdata
    single = fit_secr(counts, traps, mask, likelihood="full")
    multi = fit_secr_multi([Session("captdata", counts, traps, mask)], density="1")
    got = {
        "D": multi.density[0].value,
        "g0": multi.detection[0].value,
        "sigma": multi.sigma[0].value,
        "loglik": multi.loglik,
    }
    for k, ref in SECRDEMO_0.items():
        assert got[k] == pytest.approx(ref, rel=1e-4), k
    np.testing.assert_allclose(multi.beta, single.beta, rtol=1e-12)
    np.testing.assert_allclose(multi.beta_se, single.beta_se, rtol=1e-9)
    assert multi.loglik == pytest.approx(single.loglik, rel=1e-13)
    assert multi.npar == 3 and multi.converged
    assert multi.density[0].lcl == pytest.approx(single.density.lcl, rel=1e-9)


def test_two_identical_sessions_with_shared_density_give_the_single_density(small_sessions):
    s = small_sessions[0]
    one = fit_secr_multi([s], density="1")
    two = fit_secr_multi([s, Session("copy", s.counts, s.traps, s.mask, time=s.time + 1)], density="1")
    assert two.density[0].value == pytest.approx(one.density[0].value, rel=1e-6)
    assert two.sigma[1].value == pytest.approx(one.sigma[0].value, rel=1e-6)
    assert two.loglik == pytest.approx(2 * one.loglik, rel=1e-9)
    np.testing.assert_allclose(np.array(two.beta_se), np.array(one.beta_se) / math.sqrt(2), rtol=1e-3)


def test_density_by_session_on_independent_sessions_equals_separate_fits(small_sessions):
    joint = fit_secr_multi(small_sessions, density="session", detection="session", sigma="session")
    assert joint.npar == 6
    ll = 0.0
    for i, s in enumerate(small_sessions):
        sep = fit_secr(s.counts, s.traps, s.mask)
        ll += sep.loglik
        assert joint.density[i].value == pytest.approx(sep.density.value, rel=1e-5)
        assert joint.density[i].se == pytest.approx(sep.density.se, rel=2e-3)
        assert joint.detection[i].value == pytest.approx(sep.detection.value, rel=1e-5)
        assert joint.sigma[i].value == pytest.approx(sep.sigma.value, rel=1e-5)
    assert joint.loglik == pytest.approx(ll, rel=1e-9)
    # independent sessions: var(log λ) is the sum of the two log-D variances
    lam = joint.growth(0, 1)
    se = math.hypot(joint.density[0].se / joint.density[0].value, joint.density[1].se / joint.density[1].value)
    assert lam.value == pytest.approx(joint.density[1].value / joint.density[0].value, rel=1e-12)
    assert lam.se / lam.value == pytest.approx(se, rel=1e-3)
    assert lam.lcl < lam.value < lam.ucl


def test_shared_detection_trend_and_realised_variance(small_sessions):
    by_session = fit_secr_multi(small_sessions, density="session")
    trend = fit_secr_multi(small_sessions, density="trend")
    assert by_session.npar == trend.npar == 4
    # with two sessions the log-linear trend is a reparameterisation of D~session
    assert trend.loglik == pytest.approx(by_session.loglik, abs=1e-5)
    assert trend.trend().value == pytest.approx(by_session.growth(0, 1).value, rel=1e-4)
    assert trend.trend().se == pytest.approx(by_session.growth(0, 1).se, rel=1e-2)
    real = by_session.realised_density(0)
    assert real.value == by_session.density[0].value and real.se < by_session.density[0].se
    assert by_session.growth(0, 1, realised=True).se < by_session.growth(0, 1).se
    # animals identified in both years share their activity centres: their covariance narrows λ
    assert by_session.shared_animals_cov(0, 1, 0) == 0.0
    cov = by_session.shared_animals_cov(0, 1, 5)
    assert cov > 0 and by_session.shared_animals_cov(0, 1, 10) == pytest.approx(2 * cov)
    shared = by_session.growth(0, 1, realised=True, recaptured=5)
    assert shared.se < by_session.growth(0, 1, realised=True).se and shared.value == by_session.growth(0, 1).value
    assert {r["session"] for r in by_session.table()} == {"2022", "2023"}
    assert len(by_session.as_dict()["growth"]) == 1
