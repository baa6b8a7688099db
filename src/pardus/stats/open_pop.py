"""Open-population capture-recapture across years: survival φ, per-capita recruitment f, λ = φ + f.

Why: density by year says *whether* a population changes; survival and recruitment say *why*
(animals dying or leaving, cubs and immigrants settling). This module fits Pradel's (1996)
temporal-symmetry model to yearly encounter histories of identified animals (one row per animal,
one column per year, 1 when the animal was confirmed on the plot that year). It is the
non-spatial, first step the issue allows; the spatial open model of Glennie et al. (2019) and
Efford's openCR is not implemented here.

Model (Pradel 1996; written as the conditional Jolly-Seber likelihood of Link & Barker 2005, which
is the same likelihood): the population alive in year 1 is ``N_1``; each year an animal alive
survives (and stays) with probability φ, and ``f N_t`` recruits enter (births that settle and
immigrants), so ``N_{t+1} = (φ + f) N_t`` and λ = φ + f. An animal alive in year t is detected with
probability ``p_t``. With entry proportions ``β_1 ∝ N_1``, ``β_t ∝ f N_{t-1}``, the probability of
an encounter history first seen in year a and last seen in year b is

    ψ_a · Π_{t=a}^{b-1} φ · Π_{t=a}^{b} p_t^{h_t} (1 - p_t)^{1 - h_t} · χ_b,

with ``ψ_1 = β_1``, ``ψ_t = ψ_{t-1} (1 - p_{t-1}) φ + β_t`` (alive and not yet seen), and
``χ_T = 1``, ``χ_t = 1 - φ + φ (1 - p_{t+1}) χ_{t+1}`` (never seen again). The likelihood conditions
on being seen at least once (divides by ``Σ_t ψ_t p_t``), so N never enters it. Parameters: φ(.) on
the logit link, f(.) on the log link, p(t) on the logit link; SEs from the numerical Hessian; λ = φ +
f by the delta method with a log-scale interval.

Caveats a reader must know: φ is *apparent* survival (death and permanent emigration are one);
unmodelled individual heterogeneity in detection (animals living at the edge of the camera grid are
seen less) biases f and λ; that is what the spatial open models remove.

References:
    Pledger, S. (2000) Unified maximum likelihood estimates for closed capture-recapture models
    using mixtures. Biometrics 56, 434-442.
    Pradel, R. (1996) Utilization of capture-mark-recapture for the study of recruitment and
    population growth rate. Biometrics 52, 703-709.
    Link, W. A. and Barker, R. J. (2005) Modeling association among demographic parameters in
    analysis of open population capture-recapture data. Biometrics 61, 46-54.
    Glennie, R., Borchers, D. L., Murchie, M., Harmsen, B. J. and Foster, R. J. (2019) Open
    population maximum likelihood spatial capture-recapture. Biometrics 75, 1345-1355.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from pardus.stats.estimates import (
    Estimate,
    aicc,
    covariance_from_hessian,
    expit,
    from_link,
    numerical_hessian,
    z_value,
)


class OpenPopulationError(ValueError):
    """Encounter histories an open-population model cannot use; the message says what to change."""


@dataclass(frozen=True)
class PradelFit:
    """Pradel φ(.) f(.) p(t): apparent survival, recruitment, growth and yearly detection."""

    model: str
    years: tuple[str, ...]
    survival: Estimate
    recruitment: Estimate
    growth: Estimate
    detection: tuple[Estimate, ...]
    loglik: float
    npar: int
    aic: float
    aicc: float
    n_animals: int
    beta: tuple[float, ...]
    beta_names: tuple[str, ...]
    converged: bool
    seconds: float
    vcv: np.ndarray = field(repr=False, compare=False)
    references: tuple[str, ...] = (
        "Pradel (1996) Biometrics 52:703-709",
        "Link & Barker (2005) Biometrics 61:46-54",
    )

    def table(self) -> list[dict[str, Any]]:
        rows = [dict(e.as_dict(), year="all") for e in (self.survival, self.recruitment, self.growth)]
        return rows + [dict(e.as_dict(), year=y) for e, y in zip(self.detection, self.years, strict=True)]


def _class_loglik(
    phi: float, b: np.ndarray, p: np.ndarray, hist: np.ndarray, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, float]:
    """log Pr(history of each animal) for one detection class, and Pr(seen at least once)."""
    t_max = len(p)
    psi = np.empty(t_max)
    psi[0] = b[0]
    for t in range(1, t_max):
        psi[t] = psi[t - 1] * (1 - p[t - 1]) * phi + b[t]
    chi = np.empty(t_max)
    chi[-1] = 1.0
    for t in range(t_max - 2, -1, -1):
        chi[t] = 1 - phi + phi * (1 - p[t + 1]) * chi[t + 1]
    seen = float((psi * p).sum())
    logp, log1p_ = np.log(p), np.log1p(-p)
    # per animal: log ψ_a + (b - a) log φ + Σ_{a..b} (h log p + (1-h) log(1-p)) + log χ_b
    t_idx = np.arange(t_max)[None, :]
    inside = (t_idx >= first[:, None]) & (t_idx <= last[:, None])
    det = np.where(inside, hist * logp[None, :] + (1 - hist) * log1p_[None, :], 0.0).sum(axis=1)
    return np.log(psi[first]) + (last - first) * math.log(phi) + det + np.log(chi[last]), seen


def _loglik(beta: np.ndarray, hist: np.ndarray, first: np.ndarray, last: np.ndarray) -> float:
    """Conditional log-likelihood; ``beta`` = (logit φ, log f, logit p_t ...[, δ, logit π]).

    With the two extra coefficients, detection is a two-class finite mixture (Pledger 2000):
    ``logit p_{t,2} = logit p_t + δ``, class 2 has proportion π; the classes share φ and f.
    """
    n, t_max = hist.shape
    phi = float(expit(beta[0]))
    f = math.exp(beta[1])
    lp = np.asarray(beta[2 : 2 + t_max], dtype=float)
    classes = [(1.0, np.asarray(expit(lp), dtype=float))]
    if len(beta) == t_max + 4:
        pi = float(expit(beta[-1]))
        classes = [(1.0 - pi, classes[0][1]), (pi, np.asarray(expit(lp + beta[-2]), dtype=float))]
    if not (0 < phi < 1) or any(not np.all((p > 0) & (p < 1)) for _, p in classes):
        return -math.inf
    # entry proportions (unnormalised: they cancel in the conditional likelihood)
    n_t = (phi + f) ** np.arange(t_max)
    b = np.concatenate([[1.0], f * n_t[:-1]])
    per = [(w, *_class_loglik(phi, b, p, hist, first, last)) for w, p in classes]
    if len(per) == 1:
        return float(per[0][1].sum() - n * math.log(per[0][2]))
    logs = np.stack([math.log(w) + lh for w, lh, _ in per if w > 0])
    mx = logs.max(axis=0)
    seen = sum(w * sn for w, _, sn in per)
    return float((mx + np.log(np.exp(logs - mx).sum(axis=0))).sum() - n * math.log(seen))


def _boundary_aware_vcv(negll: Any, beta: np.ndarray, t_max: int) -> np.ndarray:
    """Covariance from the Hessian, holding detection probabilities at a boundary fixed.

    With long camera seasons an animal living inside the grid is seen every year, so some ``p_t``
    reach 1 (logit beyond ±7) and the Hessian is singular along them. As MARK does, such
    parameters are treated as fixed: the covariance of the others is the inverse of their block
    of the Hessian, and the boundary ones get no SE (NaN).
    """
    hess = numerical_hessian(negll, beta)
    vcv = covariance_from_hessian(hess)
    if np.all(np.isfinite(vcv)):
        return vcv
    free = np.ones(len(beta), dtype=bool)
    free[2 : 2 + t_max] = np.abs(beta[2 : 2 + t_max]) < 7.0
    out = np.full_like(hess, np.nan)
    out[np.ix_(free, free)] = covariance_from_hessian(hess[np.ix_(free, free)])
    return out


def fit_pradel(
    histories: np.ndarray,
    years: Sequence[str | int] | None = None,
    level: float = 0.95,
    *,
    heterogeneity: bool = False,
) -> PradelFit:
    """Fit Pradel's φ(.) f(.) p(t) model to (animals x years) 0/1 encounter histories.

    Rows with no encounter are dropped. At least three years are needed (with two, φ and p are not
    separately identifiable). ``heterogeneity`` adds a two-class mixture on detection (p(t + h2),
    Pledger 2000), for animals seen more or less often than others (e.g. living at the grid's edge);
    it is fitted starting from the p(t) fit.
    """
    t0 = time.perf_counter()
    hist = (np.asarray(histories) > 0).astype(float)
    if hist.ndim != 2:
        raise OpenPopulationError(f"encounter histories must be (animals x years), got shape {hist.shape}")
    hist = hist[hist.sum(axis=1) > 0]
    n, t_max = hist.shape
    if t_max < 3:
        raise OpenPopulationError(f"an open-population model needs at least three years, got {t_max}")
    if n < 2:
        raise OpenPopulationError("fewer than two animals were identified; nothing to estimate")
    names_years = tuple(str(y) for y in (years if years is not None else range(1, t_max + 1)))
    if len(names_years) != t_max:
        raise OpenPopulationError(f"{len(names_years)} year names for {t_max} years of histories")
    first = hist.argmax(axis=1)
    last = t_max - 1 - hist[:, ::-1].argmax(axis=1)
    p0 = np.clip(hist.mean(axis=0) * 1.5, 0.05, 0.95)
    x0 = np.concatenate([[math.log(0.8 / 0.2), math.log(0.2)], np.log(p0 / (1 - p0))])

    def negll(x: np.ndarray) -> float:
        v = _loglik(x, hist, first, last)
        return -v if np.isfinite(v) else 1e300

    res = optimize.minimize(negll, x0, method="BFGS", options={"gtol": 1e-6, "maxiter": 2000})
    if heterogeneity:
        x1 = np.concatenate([res.x, [-1.5, 0.0]])
        res = optimize.minimize(negll, x1, method="BFGS", options={"gtol": 1e-6, "maxiter": 4000})
    beta = np.asarray(res.x, dtype=float)
    vcv = _boundary_aware_vcv(lambda x: -_loglik(x, hist, first, last), beta, t_max)
    # a link-scale SE above 50 means "not estimable" (a boundary); cap it so the interval stays finite
    se = np.minimum(np.sqrt(np.diag(vcv)), 50.0)
    surv = from_link("phi", beta[0], se[0], "logit", level)
    rec = from_link("f", beta[1], se[1], "log", level, "per year")
    lam = surv.value + rec.value
    # delta method: dλ/d logit φ = φ(1-φ), dλ/d log f = f
    grad = np.array([surv.value * (1 - surv.value), rec.value])
    var_lam = float(grad @ vcv[:2, :2] @ grad)
    se_log = math.sqrt(var_lam) / lam if np.isfinite(var_lam) and var_lam >= 0 else math.nan
    z = z_value(level)
    growth = Estimate(
        "lambda", lam, se_log * lam, lam * math.exp(-z * se_log), lam * math.exp(z * se_log), "log", level, "per year"
    )
    cls = " (class 1)" if heterogeneity else ""
    dets = tuple(from_link(f"p {y}{cls}", beta[2 + i], se[2 + i], "logit", level) for i, y in enumerate(names_years))
    loglik = -float(res.fun)
    npar = len(beta)
    return PradelFit(
        model=f"Pradel phi(.) f(.) p({'t + h2' if heterogeneity else 't'}), conditional likelihood",
        years=names_years,
        survival=surv,
        recruitment=rec,
        growth=growth,
        detection=dets,
        loglik=loglik,
        npar=npar,
        aic=-2 * loglik + 2 * npar,
        aicc=aicc(loglik, npar, n),
        n_animals=n,
        beta=tuple(float(b) for b in beta),
        beta_names=("logit phi", "log f")
        + tuple(f"logit p {y}" for y in names_years)
        + (("h2 delta", "logit pi h2") if heterogeneity else ()),
        converged=bool(res.success) or bool(np.all(np.isfinite(se))),
        seconds=time.perf_counter() - t0,
        vcv=vcv,
    )
