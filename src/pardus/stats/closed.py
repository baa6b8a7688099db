"""Closed-population capture-recapture: how many animals, seen or not, used the plot in a season.

Input is a capture-history matrix ``X`` (animals seen x occasions, 1 = detected on that occasion).
Models (notation of Otis et al. 1978):

- ``M0``  constant capture probability p (full likelihood; Otis et al. 1978 p.105).
- ``Mt``  a capture probability per occasion (Darroch 1958; Otis et al. 1978 p.106-107).
- ``Mb``  a different probability after first capture, c (trap-happy/shy; Zippin; Otis et al. 1978 p.108).
- ``Mh2`` two-class finite mixture of p, a likelihood model for heterogeneity (Pledger 2000).
- ``Mh (Chao)`` the moment estimator ``M + f1²/(2 f2)`` for heterogeneous p (Chao 1987), no likelihood.
- ``Huggins`` conditional likelihood with individual covariates (Huggins 1989); N by Horvitz-Thompson.

Full-likelihood models maximise over real-valued N (as secr's ``closedN`` does, not only integers;
``N!/(N-M)!`` in Stirling's form, see ``_log_nfact_ratio``) and share one AIC/AICc table (AICc
with n = number of animals seen, as secr). Every estimate of N carries an SE from the Hessian
(or the published variance formula) and a log-normal interval on ``N - M`` (Burnham et al. 1987,
Chao 1987), so the lower limit is never below the animals seen.

References:
    Otis, D. L., Burnham, K. P., White, G. C. and Anderson, D. R. (1978) Statistical inference from
    capture data on closed animal populations. Wildlife Monographs 62.
    Darroch, J. N. (1958) The multiple-recapture census I. Biometrika 45, 343-359.
    Chao, A. (1987) Estimating the population size for capture-recapture data with unequal
    catchability. Biometrics 43, 783-791.
    Huggins, R. M. (1989) On the statistical analysis of capture experiments. Biometrika 76, 133-140.
    Pledger, S. (2000) Unified maximum likelihood estimates for closed capture-recapture models
    using mixtures. Biometrics 56, 434-442.
    Seber, G. A. F. (1982) The Estimation of Animal Abundance, 2nd ed. Griffin, London.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
    lognormal_population,
    numerical_hessian,
)

MAX_N = 1e7
NO_RECAPTURES = "no animal was caught on more than one occasion, so N has no finite estimate"
_REF_M0 = "Otis et al. (1978) Wildl. Monogr. 62, p.105"
_REF_MT = "Darroch (1958) Biometrika 45:343-359; Otis et al. (1978) p.106-107"
_REF_MH2 = "Pledger (2000) Biometrics 56:434-442"


class ClosedCRError(ValueError):
    """Capture histories that a closed-population model cannot use; the message says why."""


@dataclass(frozen=True)
class CaptureSummary:
    """The summary statistics of Otis et al. (1978): what every closed model is computed from."""

    n_occasions: int
    n_animals: int  # M(t+1): distinct animals caught
    n_per_occasion: tuple[int, ...]  # n_j
    first_captures: tuple[int, ...]  # u_j
    marked_before: tuple[int, ...]  # M_j, marked animals at the start of occasion j
    frequencies: tuple[int, ...]  # f_k, animals caught exactly k times, k = 1..t

    @property
    def total_captures(self) -> int:
        return int(sum(self.n_per_occasion))


def summarise(x: np.ndarray) -> CaptureSummary:
    x = _as_histories(x)
    m, t = x.shape
    first = np.argmax(x, axis=1)
    u = np.bincount(first, minlength=t)
    marked_before = np.concatenate([[0], np.cumsum(u)[:-1]])
    freq = np.bincount(x.sum(axis=1), minlength=t + 1)[1:]
    return CaptureSummary(
        n_occasions=t,
        n_animals=m,
        n_per_occasion=tuple(int(v) for v in x.sum(axis=0)),
        first_captures=tuple(int(v) for v in u),
        marked_before=tuple(int(v) for v in marked_before),
        frequencies=tuple(int(v) for v in freq),
    )


def _as_histories(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ClosedCRError(f"capture histories must be a 2-D array (animals x occasions), got shape {x.shape}")
    if x.shape[1] < 2:
        raise ClosedCRError("closed capture-recapture needs at least 2 occasions; use a shorter occasion length")
    x = (x > 0).astype(np.int64)
    x = x[x.sum(axis=1) > 0]
    if len(x) == 0:
        raise ClosedCRError("no animal was caught, so population size cannot be estimated")
    return x


@dataclass(frozen=True)
class ClosedEstimate:
    """Population size from one closed-population model, with its capture probabilities and fit."""

    model: str
    description: str
    n_hat: Estimate
    probabilities: tuple[Estimate, ...]
    n_seen: int
    loglik: float | None
    npar: int
    aic: float | None
    aicc: float | None
    likelihood: str  # "full", "conditional" or "none"
    reference: str
    note: str = ""
    beta: tuple[float, ...] = field(default=(), repr=False)

    @property
    def estimable(self) -> bool:
        return bool(np.isfinite(self.n_hat.value) and np.isfinite(self.n_hat.ucl))

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "description": self.description,
            "N": self.n_hat.as_dict(),
            "probabilities": [p.as_dict() for p in self.probabilities],
            "n_seen": self.n_seen,
            "loglik": self.loglik,
            "npar": self.npar,
            "aic": self.aic,
            "aicc": self.aicc,
            "likelihood": self.likelihood,
            "reference": self.reference,
            "note": self.note,
        }


def _unestimable(
    model: str, description: str, m: int, npar: int, likelihood: str, ref: str, why: str
) -> ClosedEstimate:
    nan = math.nan
    return ClosedEstimate(
        model=model,
        description=description,
        n_hat=Estimate("N", nan, nan, float(m), nan, "log-normal (N - M)", unit="animals"),
        probabilities=(),
        n_seen=m,
        loglik=None,
        npar=npar,
        aic=None,
        aicc=None,
        likelihood=likelihood,
        reference=ref,
        note=why,
    )


def _fit_full(
    model: str,
    description: str,
    reference: str,
    m: int,
    loglik: Callable[[np.ndarray], float],
    start: np.ndarray,
    prob_names: Sequence[str],
    level: float,
) -> ClosedEstimate:
    """Maximise a full likelihood whose first parameter is log(N - M); the rest are logits."""
    upper = math.log(MAX_N)

    def neg(b: np.ndarray) -> float:
        if b[0] > upper + 1:
            return 1e300
        v = loglik(b)
        return -v if np.isfinite(v) else 1e300

    res = optimize.minimize(neg, start, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000})
    best = res
    if not res.success and len(start) <= 6:  # BFGS may stop on precision loss near the optimum: polish
        res2 = optimize.minimize(
            neg, best.x, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000}
        )
        if res2.fun < best.fun:
            best = res2
    beta = np.asarray(best.x, dtype=float)
    npar = len(beta)
    ll = -float(best.fun)
    if beta[0] > upper - 1:
        return _unestimable(
            model,
            description,
            m,
            npar,
            "full",
            reference,
            "N has no finite maximum-likelihood estimate (too few recaptures for this model)",
        )
    vcv = covariance_from_hessian(numerical_hessian(neg, beta, 1e-4))
    se = np.sqrt(np.diag(vcv))
    if not np.isfinite(se[0]):
        return _unestimable(
            model,
            description,
            m,
            npar,
            "full",
            reference,
            "the likelihood is flat in N (the data cannot tell how many animals were missed)",
        )
    f0 = math.exp(beta[0])
    n_hat = lognormal_population("N", m + f0, f0 * se[0], m, level)
    probs = tuple(from_link(name, beta[i + 1], se[i + 1], "logit", level) for i, name in enumerate(prob_names))
    return ClosedEstimate(
        model=model,
        description=description,
        n_hat=n_hat,
        probabilities=probs,
        n_seen=m,
        loglik=ll,
        npar=npar,
        aic=-2 * ll + 2 * npar,
        aicc=aicc(ll, npar, m),
        likelihood="full",
        reference=reference,
        beta=tuple(float(b) for b in beta),
    )


def _log_nfact_ratio(big_n: float, m: int) -> float:
    """log N!/(N-M)! in Stirling's form ``N log N - (N-M) log(N-M) - M``.

    Its derivative in N is exactly ``log(N/(N-M))``, so the maximum-likelihood N is the root of the
    estimating equations published by Darroch (1958) and Otis et al. (1978) (two occasions:
    Petersen's ``n1 n2 / m2``), the same estimates CAPTURE and Rcapture print. The exact
    ``lgamma`` form moves N by a fraction of an animal and would not match those worked examples.
    """
    f0 = big_n - m
    return big_n * math.log(big_n) - (f0 * math.log(f0) if f0 > 0 else 0.0) - m


def _log_p(b: float | np.ndarray) -> Any:
    """log(expit(b)) without overflow or log(0) for large |b|."""
    return -np.logaddexp(0.0, -b)


def _log_1mp(b: float | np.ndarray) -> Any:
    """log(1 - expit(b)) without overflow."""
    return -np.logaddexp(0.0, b)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _start_f0(s: CaptureSummary) -> float:
    """A start for log(N - M): the Schnabel-type moment guess, kept finite."""
    t, m = s.n_occasions, s.n_animals
    p = s.total_captures / (t * max(m, 1))
    pstar = 1 - (1 - min(p, 0.95)) ** t
    return math.log(max(m / max(pstar, 1e-3) - m, 0.5))


def m0(x: np.ndarray, level: float = 0.95) -> ClosedEstimate:
    """Model M0: every animal has the same capture probability p on every occasion.

    Full likelihood of Otis et al. (1978, p.105): ``N!/(N-M)! p^n. (1-p)^(tN-n.)``, maximised over
    real N. With two occasions it is Seber's (1982) two-sample M0 estimator.
    """
    s = summarise(x)
    t, m, nd = s.n_occasions, s.n_animals, s.total_captures
    if nd == m:
        return _unestimable("M0", "constant capture probability", m, 2, "full", _REF_M0, NO_RECAPTURES)

    def ll(b: np.ndarray) -> float:
        big_n = m + math.exp(b[0])
        return _log_nfact_ratio(big_n, m) + nd * _log_p(b[1]) + (t * big_n - nd) * _log_1mp(b[1])

    f0 = _start_f0(s)
    start = np.array([f0, _logit(nd / (t * (m + math.exp(f0))))])
    return _fit_full("M0", "constant capture probability", _REF_M0, m, ll, start, ["p"], level)


def mt(x: np.ndarray, level: float = 0.95) -> ClosedEstimate:
    """Model Mt: capture probability varies by occasion (Darroch 1958; Otis et al. 1978 p.106-107).

    With two occasions the estimate is the Lincoln-Petersen ``n1 n2 / m2``.
    """
    s = summarise(x)
    t, m = s.n_occasions, s.n_animals
    nj = np.array(s.n_per_occasion, dtype=float)
    if s.total_captures == m:
        return _unestimable("Mt", "capture probability varies by occasion", m, t + 1, "full", _REF_MT, NO_RECAPTURES)

    def ll(b: np.ndarray) -> float:
        big_n = m + math.exp(b[0])
        return _log_nfact_ratio(big_n, m) + float((nj * _log_p(b[1:]) + (big_n - nj) * _log_1mp(b[1:])).sum())

    f0 = _start_f0(s)
    start = np.concatenate([[f0], [_logit(v / (m + math.exp(f0))) for v in nj]])
    return _fit_full(
        "Mt",
        "capture probability varies by occasion",
        _REF_MT,
        m,
        ll,
        start,
        [f"p{j + 1}" for j in range(t)],
        level,
    )


def mb(x: np.ndarray, level: float = 0.95) -> ClosedEstimate:
    """Model Mb: a behavioural response, recapture probability c differs from first capture p.

    Likelihood of Otis et al. (1978, p.108); N depends only on first captures (a removal
    estimator, Zippin 1956), so a trap-shy or trap-happy response does not bias it.
    """
    s = summarise(x)
    t, m = s.n_occasions, s.n_animals
    sum_mj = float(sum(s.marked_before))
    recaps = s.total_captures - m
    if sum_mj == 0:
        raise ClosedCRError("model Mb needs animals that could be recaptured")

    def ll(b: np.ndarray) -> float:
        big_n = m + math.exp(b[0])
        unmarked_exposures = t * big_n - sum_mj
        return float(
            _log_nfact_ratio(big_n, m)
            + m * _log_p(b[1])
            + (unmarked_exposures - m) * _log_1mp(b[1])
            + recaps * _log_p(b[2])
            + (sum_mj - recaps) * _log_1mp(b[2])
        )

    f0 = _start_f0(s)
    start = np.array([f0, _logit(m / (t * (m + math.exp(f0)) - sum_mj)), _logit(recaps / sum_mj)])
    return _fit_full(
        "Mb", "behavioural response to first capture", "Otis et al. (1978) p.108", m, ll, start, ["p", "c"], level
    )


def mh2(x: np.ndarray, level: float = 0.95) -> ClosedEstimate:
    """Model Mh2: two groups of animals with different capture probabilities (Pledger 2000).

    A likelihood model for heterogeneity, so it takes part in AIC selection with M0, Mt and Mb.
    Parameters: log(N - M), logit p1, logit p2, logit pi (share of the first group).
    """
    s = summarise(x)
    t, m = s.n_occasions, s.n_animals
    if t < 3:
        raise ClosedCRError("the two-class mixture Mh2 needs at least 3 occasions")
    if s.total_captures == m:
        return _unestimable("Mh2", "two-class mixture", m, 4, "full", _REF_MH2, NO_RECAPTURES)
    k = np.arange(1, t + 1)
    fk = np.array(s.frequencies, dtype=float)

    def ll(b: np.ndarray) -> float:
        big_n = m + math.exp(b[0])
        p1, p2, pi = float(expit(b[1])), float(expit(b[2])), float(expit(b[3]))
        c1 = pi * p1**k * (1 - p1) ** (t - k)
        c2 = (1 - pi) * p2**k * (1 - p2) ** (t - k)
        unseen = pi * (1 - p1) ** t + (1 - pi) * (1 - p2) ** t
        return (
            _log_nfact_ratio(big_n, m)
            + float((fk * np.log(c1 + c2)).sum())
            + (big_n - m) * math.log(max(unseen, 1e-300))
        )

    m0fit = m0(x, level)
    f0 = math.log(max(m0fit.n_hat.value - m, 0.5)) if m0fit.estimable else _start_f0(s)
    p = s.total_captures / (t * (m + math.exp(f0)))
    start = np.array([f0 + 0.3, _logit(p * 0.5), _logit(min(p * 1.8, 0.95)), 0.0])
    return _fit_full(
        "Mh2",
        "two-class mixture of capture probabilities (heterogeneity)",
        _REF_MH2,
        m,
        ll,
        start,
        ["p1", "p2", "pi"],
        level,
    )


def mh_chao(x: np.ndarray, level: float = 0.95) -> ClosedEstimate:
    """Model Mh, Chao's (1987) moment estimator ``M + f1²/(2 f2)`` with Chao's variance.

    f1, f2 = animals caught once, twice. Var (Chao 1987): ``f2 [ (f1/f2)⁴/4 + (f1/f2)³ + (f1/f2)²/2 ]``.
    When f2 = 0 the bias-corrected form ``M + f1(f1-1)/2`` and its variance are used (Chao 2005, the
    rule EstimateS follows), and the note says so. A lower-bound estimator: robust to heterogeneity.
    """
    s = summarise(x)
    m = s.n_animals
    f1 = float(s.frequencies[0])
    f2 = float(s.frequencies[1]) if len(s.frequencies) > 1 else 0.0
    note = ""
    if f2 > 0:
        r = f1 / f2
        f0 = f1 * f1 / (2 * f2)
        var = f2 * (r**4 / 4 + r**3 + r**2 / 2)
    else:
        f0 = f1 * (f1 - 1) / 2
        var = f1 * (f1 - 1) / 2 + f1 * (2 * f1 - 1) ** 2 / 4 - f1**4 / (4 * max(m + f0, 1))
        note = "no animal was caught exactly twice: bias-corrected form f1(f1-1)/2 used"
    n_hat = lognormal_population("N", m + f0, math.sqrt(max(var, 0.0)), m, level)
    return ClosedEstimate(
        model="Mh (Chao)",
        description="heterogeneous capture probabilities, moment estimator (lower bound)",
        n_hat=n_hat,
        probabilities=(),
        n_seen=m,
        loglik=None,
        npar=0,
        aic=None,
        aicc=None,
        likelihood="none",
        reference="Chao (1987) Biometrics 43:783-791",
        note=note,
    )


def huggins(
    x: np.ndarray,
    covariates: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    *,
    time: bool = False,
    behaviour: bool = False,
    level: float = 0.95,
) -> ClosedEstimate:
    """Huggins' (1989) conditional likelihood: p from individual covariates, N by Horvitz-Thompson.

    ``logit p_ij = b0 + b·z_i (+ occasion effects if ``time``) (+ a recapture effect if
    ``behaviour``)``. The likelihood conditions on being caught at least once,
    ``Π_i Pr(ω_i) / p*_i``; ``N = Σ_i 1/p*_i`` with the variance of Huggins (1989):
    ``Σ (1-p*)/p*² + dN/dβ' V dN/dβ``. Covariates are one value per animal seen (e.g. sex as 0/1).
    """
    x = _as_histories(x)
    m, t = x.shape
    cov = {k: np.asarray(v, dtype=float) for k, v in (covariates or {}).items()}
    for k, v in cov.items():
        if v.shape != (m,):
            raise ClosedCRError(f"covariate {k!r} needs one value per animal seen ({m}), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ClosedCRError(f"covariate {k!r} has missing values; Huggins' model needs it for every animal")
    names = ["b0"] + [f"b_{k}" for k in cov] + ([f"t{j + 1}" for j in range(1, t)] if time else [])
    names += ["b_recapture"] if behaviour else []
    n_ind, n_time = 1 + len(cov), (t - 1 if time else 0)
    zi = np.column_stack([np.ones(m)] + list(cov.values()))  # (m, n_ind)
    first = np.argmax(x, axis=1)
    after_first = (np.arange(t)[None, :] > first[:, None]).astype(float)  # marked at start of occasion j

    def eta(b: np.ndarray, recap: np.ndarray | None) -> np.ndarray:
        e = (zi @ b[:n_ind])[:, None] * np.ones((1, t))
        if time:
            e = e + np.concatenate([[0.0], b[n_ind : n_ind + n_time]])[None, :]
        if behaviour and recap is not None:
            e = e + b[-1] * recap
        return e

    def pstar(b: np.ndarray) -> np.ndarray:
        p_first = expit(eta(b, None))
        return -np.expm1(np.log1p(-p_first).sum(axis=1))

    def ll(b: np.ndarray) -> float:
        e = eta(b, after_first)
        logp = -np.logaddexp(0.0, -e)
        log1mp = -np.logaddexp(0.0, e)
        ps = pstar(b)
        if np.any(ps <= 0):
            return -math.inf
        return float((x * logp + (1 - x) * log1mp).sum() - np.log(ps).sum())

    def neg(b: np.ndarray) -> float:
        v = ll(b)
        return -v if np.isfinite(v) else 1e300

    start = np.zeros(len(names))
    start[0] = _logit(x.sum() / (m * t))
    res = optimize.minimize(neg, start, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000})
    b = np.asarray(res.x, dtype=float)
    desc_bits = ["intercept"] + list(cov) + (["occasion"] if time else []) + (["behaviour"] if behaviour else [])
    model = "Huggins " + ("M0" if len(desc_bits) == 1 else "+".join(desc_bits[1:]))
    vcv = covariance_from_hessian(numerical_hessian(neg, b, 1e-4))
    ps = pstar(b)
    if np.any(ps < 1e-6) or b[0] < -15:
        return _unestimable(
            model,
            "conditional likelihood (Huggins)",
            m,
            len(b),
            "conditional",
            "Huggins (1989) Biometrika 76:133-140",
            "capture probability indistinguishable from 0; N not estimable",
        )
    n_hat = float((1 / ps).sum())
    grad = np.empty(len(b))
    for j in range(len(b)):
        e = np.zeros(len(b))
        e[j] = 1e-6
        grad[j] = ((1 / pstar(b + e)).sum() - (1 / pstar(b - e)).sum()) / 2e-6
    var = float(((1 - ps) / ps**2).sum() + grad @ vcv @ grad)
    se = np.sqrt(np.diag(vcv))
    loglik = -float(res.fun)
    probs = tuple(from_link(nm, b[i], se[i], "identity", level) for i, nm in enumerate(names))
    p_mean = from_link("p (intercept animal)", b[0], se[0], "logit", level)
    return ClosedEstimate(
        model=model,
        description="conditional likelihood (Huggins) with " + ", ".join(desc_bits),
        n_hat=lognormal_population("N", n_hat, math.sqrt(var) if var >= 0 else math.nan, m, level),
        probabilities=(p_mean, *probs),
        n_seen=m,
        loglik=loglik,
        npar=len(b),
        aic=-2 * loglik + 2 * len(b),
        aicc=aicc(loglik, len(b), m),
        likelihood="conditional",
        reference="Huggins (1989) Biometrika 76:133-140",
        beta=tuple(float(v) for v in b),
    )


@dataclass(frozen=True)
class ClosedResults:
    """All closed-population estimates for one data set, ranked, with the model chosen for the headline."""

    summary: CaptureSummary
    estimates: tuple[ClosedEstimate, ...]
    best: ClosedEstimate | None
    selection: str

    def aic_table(self) -> list[dict[str, Any]]:
        """Full-likelihood models ranked by AICc, with ΔAICc and Akaike weights (Burnham & Anderson 2002)."""
        rows = [e for e in self.estimates if e.likelihood == "full" and e.aicc is not None and math.isfinite(e.aicc)]
        if not rows:
            return []
        low = min(e.aicc for e in rows if e.aicc is not None)
        w = np.array([math.exp(-((e.aicc or 0.0) - low) / 2) for e in rows])
        w = w / w.sum()
        table = []
        for e, wi in sorted(zip(rows, w, strict=True), key=lambda r: r[0].aicc or 0.0):
            table.append(
                {
                    "model": e.model,
                    "npar": e.npar,
                    "loglik": e.loglik,
                    "AIC": e.aic,
                    "AICc": e.aicc,
                    "dAICc": (e.aicc or 0.0) - low,
                    "weight": float(wi),
                    "N": e.n_hat.value,
                    "SE": e.n_hat.se,
                    "lcl": e.n_hat.lcl,
                    "ucl": e.n_hat.ucl,
                }
            )
        return table

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary.__dict__,
            "estimates": [e.as_dict() for e in self.estimates],
            "aic_table": self.aic_table(),
            "best": self.best.model if self.best else None,
            "selection": self.selection,
        }


def closed_population(
    x: np.ndarray,
    covariates: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    level: float = 0.95,
) -> ClosedResults:
    """Fit M0, Mt, Mb, Mh2, Mh (Chao) and Huggins, and pick the best-supported estimate.

    The chosen model is the full-likelihood model (M0, Mt, Mb, Mh2) with the smallest AICc among
    those with a finite estimate; if none is estimable, Chao's Mh estimator is used. The choice and
    the reason are in ``selection`` so the report can print them beside the headline.
    """
    x = _as_histories(x)
    s = summarise(x)
    ests: list[ClosedEstimate] = []
    for fn in (m0, mt, mb, mh2):
        try:
            ests.append(fn(x, level))
        except ClosedCRError as exc:
            ests.append(_unestimable(fn.__name__.capitalize(), "", s.n_animals, 0, "full", "", str(exc)))
    ests.append(mh_chao(x, level))
    ests.append(huggins(x, covariates, level=level))
    full = [e for e in ests if e.likelihood == "full" and e.estimable and e.aicc is not None]
    if s.total_captures == s.n_animals:
        best, selection = None, "none: " + NO_RECAPTURES
    elif full:
        best = min(full, key=lambda e: e.aicc if e.aicc is not None else math.inf)
        selection = f"{best.model}: smallest AICc among the full-likelihood models (M0, Mt, Mb, Mh2)"
    else:
        chao = ests[4]
        best = chao if chao.estimable else None
        selection = (
            "Mh (Chao): no full-likelihood model gave a finite estimate" if best else "no model gave a finite estimate"
        )
    return ClosedResults(summary=s, estimates=tuple(ests), best=best, selection=selection)
