"""Single-season occupancy: the share of stations a species uses, corrected for missed detections.

Model psi(.) p(.) of MacKenzie et al. (2002): each station is occupied with probability psi; an
occupied station yields a detection on each survey occasion with probability p. A station never
detected is either unoccupied or occupied and missed, so naive occupancy (share of stations with a
detection) underestimates psi whenever p is small. Occasions without camera effort are missing
(NaN), not zeros, which is what keeps broken cameras from reading as absences.

Reference:
    MacKenzie, D. I., Nichols, J. D., Lachman, G. B., Droege, S., Royle, J. A. and Langtimm, C. A.
    (2002) Estimating site occupancy rates when detection probabilities are less than one.
    Ecology 83, 2248-2255.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from pardus.stats.effort import Event, OperationMatrix
from pardus.stats.estimates import Estimate, aicc, covariance_from_hessian, expit, from_link, numerical_hessian


class OccupancyError(ValueError):
    """Detection data an occupancy model cannot use; the message says why."""


@dataclass(frozen=True)
class OccupancyFit:
    """psi and p with SEs and logit-scale intervals, plus the naive share and the fit."""

    model: str
    psi: Estimate
    p: Estimate
    naive: float
    sites: int
    sites_detected: int
    surveys: int
    loglik: float
    aic: float
    aicc: float
    converged: bool
    note: str = ""
    reference: str = "MacKenzie et al. (2002) Ecology 83:2248-2255"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "psi": self.psi.as_dict(),
            "p": self.p.as_dict(),
            "naive": self.naive,
            "sites": self.sites,
            "sites_detected": self.sites_detected,
            "surveys": self.surveys,
            "loglik": self.loglik,
            "aic": self.aic,
            "aicc": self.aicc,
            "converged": self.converged,
            "note": self.note,
            "reference": self.reference,
        }


def occupancy_loglik(y: np.ndarray, psi: float, p: float) -> float:
    """log-likelihood of psi(.) p(.) for a sites x occasions matrix with NaN for missing surveys."""
    obs = ~np.isnan(y)
    det = np.where(obs, y, 0.0)
    k = obs.sum(axis=1)
    d = det.sum(axis=1)
    detected = d > 0
    # At the edge of the range (p or psi exactly 0 or 1, which an optimiser reaches when a species is
    # seen on every occasion) a log is -inf, never an error; 0 x log(0) counts as 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        ll_det = (np.log(psi) + np.where(d > 0, d * np.log(p), 0.0)
                  + np.where(k - d > 0, (k - d) * np.log1p(-p), 0.0))
        ll_non = np.log(psi * (1 - p) ** k + (1 - psi))
    return float(np.where(detected, ll_det, ll_non).sum())


def fit_occupancy(y: np.ndarray, level: float = 0.95) -> OccupancyFit:
    """Fit psi(.) p(.) by maximum likelihood; SEs from the Hessian on the logit scale.

    ``y`` is sites x occasions: 1 detected, 0 not detected, NaN not surveyed. Sites with no survey
    at all are dropped.
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise OccupancyError(f"detection data must be sites x occasions, got shape {y.shape}")
    if np.any((y != 0) & (y != 1) & ~np.isnan(y)):
        raise OccupancyError("detection data must be 0, 1 or missing (NaN)")
    y = y[(~np.isnan(y)).sum(axis=1) > 0]
    if len(y) == 0:
        raise OccupancyError("no station has any survey with camera effort")
    det = np.nansum(y, axis=1) > 0
    naive = float(det.mean())
    surveys = int((~np.isnan(y)).sum())
    if not det.any():
        raise OccupancyError("the species was never detected; occupancy cannot be estimated (naive occupancy 0)")

    def neg(b: np.ndarray) -> float:
        v = occupancy_loglik(y, float(expit(b[0])), float(expit(b[1])))
        return -v if np.isfinite(v) else 1e300

    p0 = float(np.nansum(y[det]) / (~np.isnan(y[det])).sum())
    start = np.array([math.log(naive / (1 - naive + 1e-3) + 1e-3), math.log(p0 / (1 - p0 + 1e-3) + 1e-3)])
    res = optimize.minimize(neg, start, method="BFGS", options={"gtol": 1e-8})
    b = np.asarray(res.x, dtype=float)
    vcv = covariance_from_hessian(numerical_hessian(neg, b, 1e-4))
    se = np.sqrt(np.diag(vcv))
    ll = -float(res.fun)
    note = ""
    if not np.all(np.isfinite(se)) or np.any(se > 3.0) or np.any(np.abs(b) > 7):
        note = (
            "estimate at the edge of its range (e.g. the species was detected at nearly every station): "
            "the interval is not informative"
        )
    return OccupancyFit(
        model="psi(.) p(.)",
        psi=from_link("psi", b[0], se[0], "logit", level),
        p=from_link("p", b[1], se[1], "logit", level),
        naive=naive,
        sites=len(y),
        sites_detected=int(det.sum()),
        surveys=surveys,
        loglik=ll,
        aic=-2 * ll + 4,
        aicc=aicc(ll, 2, len(y)),
        converged=bool(res.success),
        note=note,
    )


def detection_matrix(events: Sequence[Event], operation: OperationMatrix, species: str) -> np.ndarray:
    """Stations x occasions detection/non-detection of one species, NaN where a camera did not work."""
    y = np.where(operation.days > 0, 0.0, np.nan)
    index = {s: k for k, s in enumerate(operation.stations)}
    for e in events:
        if e.species != species or e.station not in index:
            continue
        j = operation.occasion_of(e.start)
        k = index[e.station]
        if j >= 0 and not np.isnan(y[k, j]):
            y[k, j] = 1.0
    return y
