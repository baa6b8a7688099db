"""SECR reproduces the fits published with the R package secr for its demonstration data.

secrdemo.0 = secr.fit(captdata) (full likelihood) and secrdemo.CL (conditional likelihood), values in
../shared/data/secr-captdata/PROVENANCE.md. The brief asks for 1%; Pardus agrees to better than 0.01%.
"""

from __future__ import annotations

import numpy as np
import pytest

from pardus.stats.secr import Traps, fit_secr, make_mask, read_secr_text

SECRDEMO_0 = {"D": 5.4798, "g0": 0.27319, "sigma": 29.366, "loglik": -759.0257}
SECRDEMO_0_SE_BETA = (0.11761, 0.13624, 0.04442)  # log D, logit g0, log sigma
SECRDEMO_CL = {"g0": 0.27319, "sigma": 29.366, "loglik": -755.9403}


@pytest.fixture(scope="module")
def captdata(shared_data):
    d = shared_data / "secr-captdata"
    counts, xy, ids = read_secr_text(d / "capt.txt", d / "trap.txt")
    return counts, xy, ids, d


def test_captdata_reads_as_secr_does(captdata):
    counts, xy, ids, _ = captdata
    assert counts.shape == (76, 5, 100)
    assert counts.sum() == 235
    assert xy.shape == (100, 2)
    assert counts.sum(axis=2).max() == 1  # single-catch traps: once per occasion at most


def test_trapbuffer_mask_is_secrs_mask(captdata):
    _, xy, _, d = captdata
    mask = make_mask(xy, buffer=100.0)
    ref = np.loadtxt(d / "mask_secrdemo0.csv", delimiter=",", skiprows=1)
    assert len(mask) == len(ref) == 3936
    assert mask.spacing == pytest.approx(7.34375)
    ours = mask.xy[np.lexsort(mask.xy.T[::-1])]
    theirs = ref[np.lexsort(ref.T[::-1])]
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_secrdemo0_full_likelihood(captdata):
    counts, xy, _, _ = captdata
    fit = fit_secr(counts, Traps(xy, detector="single"), make_mask(xy, 100.0), likelihood="full")
    got = {"D": fit.density.value, "g0": fit.detection.value, "sigma": fit.sigma.value, "loglik": fit.loglik}
    for k, ref in SECRDEMO_0.items():
        assert got[k] == pytest.approx(ref, rel=1e-4), k  # 0.01%; the brief asks for 1%
    np.testing.assert_allclose(fit.beta_se, SECRDEMO_0_SE_BETA, rtol=2e-3)
    assert fit.converged and fit.npar == 3 and fit.n_individuals == 76
    assert fit.density.lcl < fit.density.value < fit.density.ucl
    assert fit.detector == "multi"  # single-catch traps take the multi-catch likelihood, as in secr


def test_secrdemo_cl_conditional_likelihood(captdata):
    counts, xy, _, _ = captdata
    fit = fit_secr(counts, Traps(xy, detector="single"), make_mask(xy, 100.0), likelihood="conditional")
    got = {"g0": fit.detection.value, "sigma": fit.sigma.value, "loglik": fit.loglik}
    for k, ref in SECRDEMO_CL.items():
        assert got[k] == pytest.approx(ref, rel=1e-4), k
    # the derived density is n / a(theta) and equals the full-likelihood MLE
    assert fit.density.value == pytest.approx(SECRDEMO_0["D"], rel=1e-4)
    assert fit.density.interval == "log-normal"
