"""Open-set decision: calibration and threshold fitted on labelled queries, reported honestly."""

from __future__ import annotations

import numpy as np
import pytest

from pardus.reid.openset import calibrate, choose_threshold, fit_calibration, new_decision_report


def test_calibration_is_monotone_and_separates_right_from_wrong() -> None:
    rng = np.random.default_rng(3)
    right = rng.gamma(6.0, 4.0, 60)  # verified scores of right matches: tens
    wrong = rng.gamma(1.0, 0.6, 60)  # wrong or new: below a few
    cal = fit_calibration(np.r_[right, wrong], [True] * 60 + [False] * 60)
    assert cal.slope > 0
    p = np.asarray(cal.probability(np.array([0.0, 1.0, 5.0, 20.0, 80.0])))
    assert np.all(np.diff(p) > 0) and p[0] < 0.2 and p[-1] > 0.9


def test_threshold_maximises_f1_of_new_and_reports_precision_recall() -> None:
    probs = [0.05, 0.1, 0.2, 0.3, 0.8, 0.9, 0.95, 0.35]
    new = [True, True, True, False, False, False, False, True]
    rep = choose_threshold(probs, new)
    # every new one is below 0.36 and the one known at 0.3 is the price: P 4/5, R 4/4
    assert (rep.true_new, rep.false_new, rep.missed_new, rep.true_known) == (4, 1, 0, 3)
    assert rep.precision == pytest.approx(0.8) and rep.recall == 1.0
    again = new_decision_report(probs, new, rep.threshold)
    assert again == rep


def test_calibrate_needs_both_kinds_of_query() -> None:
    with pytest.raises(ValueError, match="both"):
        calibrate([1.0, 2.0, 3.0, 4.0], [True] * 4, [False] * 4)
    cal, rep = calibrate([30.0, 25.0, 40.0, 0.5, 1.0, 0.2], [True, True, True, False, False, False],
                         [False, False, False, True, True, True])
    assert rep.precision == 1.0 and rep.recall == 1.0
    assert cal.probability(0.5) < cal.new_threshold < cal.probability(25.0)
