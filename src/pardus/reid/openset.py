"""Open set: is this a known individual, or one the catalogue has never seen?

The matcher always finds a best candidate; the question is whether its score is high enough to be
the same animal. Two steps, both fitted on labelled queries (a park's own confirmed photos, or
bench/reid.py on the snow-leopard set):

1. **Calibration** (Platt 1999): ``P(best candidate is right) = 1 / (1 + exp(-(a log(1+s) + b)))``
   with ``s`` the best candidate's score, fitted by maximum likelihood on queries whose best candidate
   is known to be right (1) or wrong, including queries of animals left out of the catalogue (0).
2. **Threshold**: the probability below which the animal is reported as "probably new", chosen to
   maximise F1 of the "new" decision on the same labelled queries (Youden's J would treat a missed
   new leopard and a false alarm alike; F1 keeps the rare "new" class in focus).

:func:`new_decision_report` gives precision and recall of that decision, to be reported with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from pardus.reid.match import Calibration


@dataclass(frozen=True)
class DecisionReport:
    """How well "previously unknown individual" was decided on labelled queries."""

    threshold: float
    true_new: int  # new animals reported new
    false_new: int  # known animals reported new
    missed_new: int  # new animals reported known
    true_known: int

    @property
    def precision(self) -> float:
        called = self.true_new + self.false_new
        return self.true_new / called if called else float("nan")

    @property
    def recall(self) -> float:
        actual = self.true_new + self.missed_new
        return self.true_new / actual if actual else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def fit_calibration(best_scores: Sequence[float], best_is_right: Sequence[bool], *, source: str = "fitted",
                    new_threshold: float = 0.5) -> Calibration:
    """Platt scaling of the best score; ``best_is_right`` is False for wrong matches and new animals."""
    x = np.log1p(np.maximum(np.asarray(best_scores, np.float64), 0.0))
    y = np.asarray(best_is_right, np.float64)
    if x.size < 4 or y.min() == y.max():
        raise ValueError("calibration needs labelled queries with both right and wrong (or new) best matches")
    # Platt's smoothed targets keep the fit finite when the classes separate perfectly
    n_pos, n_neg = y.sum(), (1 - y).sum()
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] * x + w[1]
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        val = -np.sum(t * np.log(p + eps) + (1 - t) * np.log(1 - p + eps))
        g = p - t
        return float(val), np.array([np.sum(g * x), np.sum(g)])

    res = minimize(loss, np.array([1.0, -2.0]), jac=True, method="L-BFGS-B")
    return Calibration(slope=float(res.x[0]), intercept=float(res.x[1]), new_threshold=new_threshold, source=source)


def new_decision_report(best_probability: Sequence[float], truly_new: Sequence[bool],
                        threshold: float) -> DecisionReport:
    """Counts of the decision "new when the best probability is below ``threshold``"."""
    p = np.asarray(best_probability, np.float64)
    new = np.asarray(truly_new, bool)
    called = p < threshold
    return DecisionReport(
        threshold=float(threshold),
        true_new=int(np.sum(called & new)),
        false_new=int(np.sum(called & ~new)),
        missed_new=int(np.sum(~called & new)),
        true_known=int(np.sum(~called & ~new)),
    )


def choose_threshold(best_probability: Sequence[float], truly_new: Sequence[bool]) -> DecisionReport:
    """The threshold that maximises F1 of "new" on labelled queries (ties: the lower threshold)."""
    p = np.asarray(best_probability, np.float64)
    new = np.asarray(truly_new, bool)
    if not new.any() or new.all():
        raise ValueError("choosing a threshold needs labelled queries of both known and new animals")
    cuts = np.unique(np.concatenate([p, [0.0, 1.0]]))
    mids = np.concatenate([(cuts[:-1] + cuts[1:]) / 2, [1.0 + 1e-9]])
    best: DecisionReport | None = None
    for th in mids:
        rep = new_decision_report(p, new, float(th))
        if best is None or rep.f1 > best.f1 + 1e-12:
            best = rep
    assert best is not None
    return best


def calibrate(best_scores: Sequence[float], best_is_right: Sequence[bool], truly_new: Sequence[bool], *,
              source: str = "fitted") -> tuple[Calibration, DecisionReport]:
    """Fit the probability curve, then the "new" threshold on the same labelled queries."""
    cal = fit_calibration(best_scores, best_is_right, source=source)
    probs = np.asarray(cal.probability(np.asarray(best_scores, np.float64)), np.float64)
    report = choose_threshold(probs, truly_new)
    return Calibration(cal.slope, cal.intercept, report.threshold, source), report
