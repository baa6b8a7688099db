"""Multi-session SECR: several plots or years fitted together, parameters shared or per session.

Why: a park reports change, and change is a difference between sessions. Fitting the sessions
together lets them share what does not change (the scale of movement ``sigma``, often the
detection rate) while density differs by session, so each year's density borrows precision from
the others and the covariance between years' densities is known, which the interval of the growth
rate λ needs.

Model: sessions are independent; the log-likelihood is the sum of the single-session full
likelihoods of :mod:`pardus.stats.secr` (Borchers & Efford 2008; Efford 2004), each evaluated at the
session's own real parameters, which are linear on the link scale in a shared coefficient vector
β. This is how ``secr.fit`` treats a multi-session capthist (Efford, R package secr, "multi-session
models"). Formulas offered here, per parameter (D on the log link, g0 on the logit or λ0 on the log
link, σ on the log link):

- ``"1"``: one value for all sessions (secr's ``D ~ 1``);
- ``"session"``: one value per session (secr's ``D ~ session``; coded as one coefficient per session
  rather than secr's intercept + contrasts, which is the same model and the same real estimates);
- ``"trend"`` (density only): log-linear trend ``log D_s = β0 + β1 (t_s - t_0)`` with ``t_s`` the
  session's time (years), so ``exp(β1)`` is the constant yearly rate of change λ (secr's
  ``D ~ Session``).

Fitting: for ``D ~ 1`` and ``D ~ session`` density is profiled out exactly (``D_s = n_s / a_s(θ)``,
or ``Σn / Σa`` when shared), and the detection coefficients are found by BFGS on the profile with its
analytic gradient, exactly as :func:`pardus.stats.secr.fit_secr` does for one session; a single
session therefore gives today's fit to the last digit. The ``trend`` model starts there and
maximises the full likelihood over all coefficients. Standard errors come from the Hessian of the
full log-likelihood (central differences of the analytic gradient).

Growth: ``λ_t = D_{t+1} / D_t``; its SE is by the delta method on the log scale,
``var(log λ) = c' V c`` with ``c`` the difference of the two sessions' rows of the density design,
and its interval is ``exp(log λ ± z SE)``. Per-year rates between sessions ``Δt`` years apart are
``λ^(1/Δt)``.

Realised versus expected density (Efford & Fewster 2013): the full likelihood treats the number
of animals as Poisson, so the SE of D includes the Poisson variation of the population; for the
animals that were actually there (the realised population of the mask) the variance of
``N̂ = D̂ A`` is approximately ``var(N̂) - N̂``. :meth:`SecrMultiFit.realised_density` and the
``realised`` option of :meth:`SecrMultiFit.growth` use it; which one a study wants depends on its
question (the process, or this population).

References:
    Borchers, D. L. and Efford, M. G. (2008) Spatially explicit maximum likelihood methods for
    capture-recapture studies. Biometrics 64, 377-385.
    Efford, M. G. (2004) Density estimation in live-trapping studies. Oikos 106, 598-610.
    Efford, M. G. and Fewster, R. M. (2013) Estimating population size by spatially explicit
    capture-recapture. Oikos 122, 918-928.
    Efford, M. G. secr: Spatially explicit capture-recapture models. R package (multi-session
    models, ``D ~ session``, ``D ~ Session``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import optimize

from pardus.stats.estimates import Estimate, aicc, covariance_from_hessian, from_link
from pardus.stats.secr import (
    DETECTFN_NAMES,
    DetectFn,
    Mask,
    SecrError,
    Traps,
    _hessian_from_gradient,
    _Prepared,
    _start_theta,
)

Formula = Literal["1", "session"]
DensityFormula = Literal["1", "session", "trend"]


@dataclass(frozen=True, eq=False)
class Session:
    """One session's data: capture counts (animals x occasions x detectors), detectors and mask.

    ``time`` (years, e.g. 2022.0) orders the sessions for growth rates and the ``trend`` model;
    sessions of different plots in one year may share it.
    """

    name: str
    counts: np.ndarray
    traps: Traps
    mask: Mask
    time: float = 0.0


def _design(formula: str, n_sessions: int, times: np.ndarray) -> np.ndarray:
    if formula == "1":
        return np.ones((n_sessions, 1))
    if formula == "session":
        return np.eye(n_sessions)
    if formula == "trend":
        if n_sessions < 2 or np.ptp(times) == 0:
            raise SecrError("a density trend needs at least two sessions at different times")
        return np.column_stack([np.ones(n_sessions), times - times[0]])
    raise SecrError(f"unknown formula {formula!r}; use '1', 'session' (or 'trend' for density)")


@dataclass(frozen=True)
class SecrMultiFit:
    """A fitted multi-session SECR model: per-session estimates, coefficients and their covariance."""

    model: str
    detectfn: str
    sessions: tuple[str, ...]
    times: tuple[float, ...]
    density: tuple[Estimate, ...]
    detection: tuple[Estimate, ...]
    sigma: tuple[Estimate, ...]
    loglik: float
    npar: int
    aic: float
    aicc: float
    n_individuals: tuple[int, ...]
    n_detections: tuple[int, ...]
    mask_area_ha: tuple[float, ...]
    esa_ha: tuple[float, ...]
    beta: tuple[float, ...]
    beta_names: tuple[str, ...]
    beta_se: tuple[float, ...]
    converged: bool
    message: str
    seconds: float
    level: float
    design_density: np.ndarray = field(repr=False, compare=False)
    vcv: np.ndarray = field(repr=False, compare=False)
    pdot: tuple[np.ndarray, ...] = field(default=(), repr=False, compare=False)
    same_mask: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool), repr=False, compare=False)
    references: tuple[str, ...] = (
        "Borchers & Efford (2008) Biometrics 64:377-385",
        "Efford (2004) Oikos 106:598-610",
        "Efford & Fewster (2013) Oikos 122:918-928",
    )

    def _density_log_var(self, realised: bool) -> np.ndarray:
        """Covariance of log D across sessions; ``realised`` removes the Poisson part (Efford & Fewster 2013)."""
        x = self.design_density
        p = x.shape[1]
        v = x @ self.vcv[:p, :p] @ x.T
        if realised:
            n_hat = np.array([d.value for d in self.density]) * np.array(self.mask_area_ha)
            v = v - np.diag(1.0 / n_hat)
        return v

    def realised_density(self, i: int) -> Estimate:
        """Density of the animals actually present on session ``i``'s mask, with a log-scale interval.

        Same point estimate; variance of log D̂ reduced by ``1/N̂`` (var(N̂) - N̂ for N̂ = D̂·A),
        floored at zero: the approximation of Efford & Fewster (2013) for realised N.
        """
        d = self.density[i]
        var = float(self._density_log_var(True)[i, i])
        se_log = math.sqrt(max(var, 0.0)) if np.isfinite(var) else math.nan
        e = from_link("D (realised)", math.log(d.value), se_log, "log", self.level, d.unit)
        return e

    def shared_animals_cov(self, i: int, j: int, recaptured: int) -> float:
        """Covariance of log N̂_i and log N̂_j that animals present in both sessions bring.

        The sessions' likelihoods are independent, but the realised populations of two years share
        the animals that survived, at the same activity centres: where they live (near the cameras or
        not) moves both years' estimates the same way. For ``S`` shared animals with centres ``x_k``
        this covariance of ``n_i`` and ``n_j`` is ``Σ_k (p_i(x_k) - p̄_i)(p_j(x_k) - p̄_j)``, whose
        expectation ``S (∫p_i p_j / A - p̄_i p̄_j)`` is estimated from ``m``, the animals identified
        in both sessions (``E m = S ∫p_i p_j / A``): ``m (1 - a_i a_j / (A ∫p_i p_j)) / (n_i n_j)``
        on the log scale, ``p`` being each session's p.(x) at the fitted detection. Needs the same
        mask in both sessions; 0 otherwise. A moment estimator written for Pardus (not from secr).
        """
        if not self.pdot or not self.same_mask[i, j] or recaptured <= 0:
            return 0.0
        pi, pj = self.pdot[i], self.pdot[j]
        spp = float((pi * pj).sum())
        if spp <= 0:
            return 0.0
        frac = 1.0 - float(pi.sum()) * float(pj.sum()) / (len(pi) * spp)
        return recaptured * frac / (self.n_individuals[i] * self.n_individuals[j])

    def growth(
        self, i: int, j: int, *, per_year: bool = True, realised: bool = False, recaptured: int | None = None
    ) -> Estimate:
        """Rate of change of density from session ``i`` to ``j``: ``D_j / D_i``, per year if asked.

        Delta method on the log scale: ``var(log λ) = c' V c`` with ``c`` the difference of the two
        sessions' density design rows; interval ``exp(log λ ± z SE)``. ``per_year`` takes the
        ``Δt``-th root (``Δt`` from the session times), the geometric mean yearly rate.
        ``realised`` gives the interval for the animals that were there (Efford & Fewster 2013);
        with it, ``recaptured`` (animals identified in both sessions) adds the covariance that
        animals present in both years bring (:meth:`shared_animals_cov`).
        """
        v = self._density_log_var(realised)
        log_l = math.log(self.density[j].value) - math.log(self.density[i].value)
        var = float(v[i, i] + v[j, j] - 2.0 * v[i, j])
        if realised and recaptured is not None:
            var -= 2.0 * self.shared_animals_cov(i, j, recaptured)
        dt = 1.0
        if per_year:
            dt = self.times[j] - self.times[i]
            if dt <= 0:
                raise SecrError(f"session {self.sessions[j]!r} is not later than {self.sessions[i]!r}")
        se_log = math.sqrt(max(var, 0.0)) / dt if np.isfinite(var) else math.nan
        name = f"lambda {self.sessions[i]}->{self.sessions[j]}" + (" per year" if per_year else "")
        return from_link(name, log_l / dt, se_log, "log", self.level, "")

    def trend(self) -> Estimate:
        """The constant yearly rate λ = exp(β1) of a ``D ~ trend`` model, with its log-scale interval."""
        if self.design_density.shape[1] != 2 or "D:trend per year" not in self.beta_names:
            raise SecrError("this fit has no density trend; fit with density='trend'")
        k = self.beta_names.index("D:trend per year")
        return from_link("lambda (trend) per year", self.beta[k], self.beta_se[k], "log", self.level, "")

    def growth_rates(self, *, realised: bool = False) -> list[Estimate]:
        """λ between each session and the next (sessions in the order given), per year."""
        return [self.growth(i, i + 1, realised=realised) for i in range(len(self.sessions) - 1)]

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for i, s in enumerate(self.sessions):
            for e in (self.density[i], self.detection[i], self.sigma[i]):
                rows.append(dict(e.as_dict(), session=s))
        return rows

    def as_dict(self) -> dict[str, Any]:
        keys = (
            "model",
            "detectfn",
            "sessions",
            "times",
            "loglik",
            "npar",
            "aic",
            "aicc",
            "n_individuals",
            "n_detections",
            "mask_area_ha",
            "esa_ha",
            "converged",
            "message",
            "seconds",
        )
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        out["beta"] = dict(zip(self.beta_names, self.beta, strict=True))
        out["beta_se"] = dict(zip(self.beta_names, self.beta_se, strict=True))
        out["estimates"] = self.table()
        if len(self.sessions) > 1:
            out["growth"] = [e.as_dict() for e in self.growth_rates()]
        out["references"] = list(self.references)
        return out


class _MultiLik:
    """Sum of per-session full log-likelihoods at coefficients mapped through the design matrices."""

    def __init__(self, preps: list[_Prepared], xd: np.ndarray, xg: np.ndarray, xs: np.ndarray) -> None:
        self.preps = preps
        self.xd, self.xg, self.xs = xd, xg, xs
        self.pd, self.pg = xd.shape[1], xg.shape[1]

    def theta(self, b_det: np.ndarray, s: int) -> np.ndarray:
        bg, bs = b_det[: self.pg], b_det[self.pg :]
        return np.array([self.xg[s] @ bg, self.xs[s] @ bs])

    def _chain(self, grads: list[np.ndarray]) -> np.ndarray:
        """Per-session gradients with respect to (θ1, θ2) -> gradient with respect to the detection β."""
        gg = sum(g[0] * self.xg[s] for s, g in enumerate(grads))
        gs = sum(g[1] * self.xs[s] for s, g in enumerate(grads))
        return np.concatenate([np.atleast_1d(gg), np.atleast_1d(gs)])

    def profile(self, b_det: np.ndarray, shared_d: bool) -> tuple[float, np.ndarray]:
        """Full log-likelihood with D at its MLE given detection (D~1 or D~session), and its gradient."""
        parts = [p.parts(self.theta(b_det, s), grad=True) for s, p in enumerate(self.preps)]
        if any(not np.isfinite(q[0]) or not q[1] > 0 for q in parts):
            return -math.inf, np.zeros_like(b_det)
        ns = np.array([p.n for p in self.preps], dtype=float)
        a = np.array([q[1] for q in parts])
        d = np.full(len(ns), ns.sum() / a.sum()) if shared_d else ns / a
        ll = float(
            sum(
                n * math.log(dd) - dd * aa + q[0] - p.log_mult
                for n, dd, aa, q, p in zip(ns, d, a, parts, self.preps, strict=True)
            )
        )
        grads = [q[2] - dd * q[3] for dd, q in zip(d, parts, strict=True)]
        return ll, self._chain(grads)

    def full(self, beta: np.ndarray) -> tuple[float, np.ndarray]:
        bd, b_det = beta[: self.pd], beta[self.pd :]
        ll = 0.0
        gd = np.zeros(self.pd)
        grads = []
        for s, p in enumerate(self.preps):
            bs = np.concatenate([[self.xd[s] @ bd], self.theta(b_det, s)])
            v, g = p.loglik_full(bs, grad=True)
            if not np.isfinite(v):
                return -math.inf, np.zeros_like(beta)
            ll += v
            gd += g[0] * self.xd[s]
            grads.append(g[1:])
        return ll, np.concatenate([gd, self._chain(grads)])


def fit_secr_multi(
    sessions: Sequence[Session],
    *,
    density: DensityFormula = "session",
    detection: Formula = "1",
    sigma: Formula = "1",
    detectfn: DetectFn = "HN",
    level: float = 0.95,
) -> SecrMultiFit:
    """Fit a multi-session SECR model by maximum likelihood (full likelihood, Poisson density).

    ``density``, ``detection`` and ``sigma`` choose each parameter's formula ("1", "session";
    "trend" for density). One session with the defaults is exactly :func:`fit_secr` with
    ``likelihood="full"``. Sessions must share the detector type; they may differ in detectors,
    occasions, effort and mask.
    """
    t0 = time.perf_counter()
    if not sessions:
        raise SecrError("give at least one session")
    names = tuple(s.name for s in sessions)
    if len(set(names)) != len(names):
        raise SecrError(f"session names must be distinct: {names}")
    preps = [_Prepared(np.asarray(s.counts), s.traps, s.mask, detectfn) for s in sessions]
    kinds = {p.detector for p in preps}
    if len(kinds) > 1:
        raise SecrError(f"sessions mix detector types {sorted(kinds)}; fit them separately")
    times = np.array([s.time for s in sessions], dtype=float)
    ns = len(sessions)
    xd = _design(density, ns, times)
    xg = _design(detection, ns, times)
    xs = _design(sigma, ns, times)
    lik = _MultiLik(preps, xd, xg, xs)
    starts = np.array([_start_theta(p, s.traps, np.asarray(s.counts)) for p, s in zip(preps, sessions, strict=True)])
    b0 = np.concatenate(
        [np.linalg.lstsq(xg, starts[:, 0], rcond=None)[0], np.linalg.lstsq(xs, starts[:, 1], rcond=None)[0]]
    )
    shared_d = density == "1"

    def negprof(b: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = lik.profile(b, shared_d)
        if not np.isfinite(v):
            return 1e300, np.zeros_like(b)
        return -v, -g

    res = optimize.minimize(negprof, b0, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 500})
    b_det = np.asarray(res.x, dtype=float)
    grad_norm = float(np.max(np.abs(res.jac))) if res.jac is not None else math.inf
    converged = bool(res.success) or grad_norm < 1e-3
    message = str(res.message)
    a = np.array([p.parts(lik.theta(b_det, s))[1] for s, p in enumerate(preps)])
    n = np.array([p.n for p in preps], dtype=float)
    if density == "1":
        bd = np.array([math.log(n.sum() / a.sum())])
    else:
        bd = np.log(n / a)
        if density == "trend":
            bd = np.linalg.lstsq(xd, bd, rcond=None)[0]
    beta = np.concatenate([bd, b_det])
    if density == "trend":

        def negfull(b: np.ndarray) -> tuple[float, np.ndarray]:
            v, g = lik.full(b)
            if not np.isfinite(v):
                return 1e300, np.zeros_like(b)
            return -v, -g

        res = optimize.minimize(negfull, beta, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 1000})
        beta = np.asarray(res.x, dtype=float)
        grad_norm = float(np.max(np.abs(res.jac))) if res.jac is not None else math.inf
        converged = bool(res.success) or grad_norm < 1e-3
        message = str(res.message)
    hess = _hessian_from_gradient(lambda b: -lik.full(b)[1], beta)
    vcv = covariance_from_hessian(hess)
    loglik = lik.full(beta)[0]
    det_name = "g0" if detectfn in ("HN", "EX") else "lambda0"
    det_link = "logit" if detectfn in ("HN", "EX") else "log"
    pd, pg = xd.shape[1], xg.shape[1]
    z = np.zeros
    dens, dets, sigs, esa, pdots = [], [], [], [], []
    for s, p in enumerate(preps):
        rows = {
            "D": np.concatenate([xd[s], z(pg), z(xs.shape[1])]),
            det_name: np.concatenate([z(pd), xg[s], z(xs.shape[1])]),
            "sigma": np.concatenate([z(pd), z(pg), xs[s]]),
        }
        est = {}
        for nm, c in rows.items():
            val = float(c @ beta)
            se = math.sqrt(float(c @ vcv @ c)) if np.all(np.isfinite(vcv)) else math.nan
            link = det_link if nm == det_name else "log"
            unit = {"D": "animals/ha", "sigma": "m"}.get(nm, "")
            est[nm] = from_link(nm, val, se, link, level, unit)
        dens.append(est["D"])
        dets.append(est[det_name])
        sigs.append(est["sigma"])
        esa.append(float(p.parts(lik.theta(beta[pd:], s))[1]))
        h, _, _ = p.hazard(lik.theta(beta[pd:], s), grad=False)
        pdots.append(-np.expm1(-(p.U @ h)))
    bnames = _names("D", density, names) + _names(det_name, detection, names) + _names("sigma", sigma, names)
    npar = len(beta)
    se_beta = np.sqrt(np.diag(vcv))
    model = (
        f"SECR multi-session D~{density} {det_name}~{detection} sigma~{sigma}; "
        f"{DETECTFN_NAMES[detectfn]} detection; {preps[0].detector} detectors; full likelihood; "
        f"{ns} session{'s' if ns > 1 else ''}"
    )
    return SecrMultiFit(
        model=model,
        detectfn=detectfn,
        sessions=names,
        times=tuple(float(t) for t in times),
        density=tuple(dens),
        detection=tuple(dets),
        sigma=tuple(sigs),
        loglik=float(loglik),
        npar=npar,
        aic=float(-2 * loglik + 2 * npar),
        aicc=aicc(loglik, npar, int(n.sum())),
        n_individuals=tuple(int(p.n) for p in preps),
        n_detections=tuple(int(p.n_detections) for p in preps),
        mask_area_ha=tuple(float(s.mask.area_ha) for s in sessions),
        esa_ha=tuple(esa),
        beta=tuple(float(b) for b in beta),
        beta_names=bnames,
        beta_se=tuple(float(v) for v in se_beta),
        converged=converged,
        message=message,
        seconds=time.perf_counter() - t0,
        level=level,
        design_density=xd,
        vcv=vcv,
        pdot=tuple(pdots),
        same_mask=np.array(
            [
                [a.mask.spacing == b.mask.spacing and np.array_equal(a.mask.xy, b.mask.xy) for b in sessions]
                for a in sessions
            ]
        ),
    )


def _names(par: str, formula: str, sessions: tuple[str, ...]) -> tuple[str, ...]:
    if formula == "1":
        return (par,)
    if formula == "trend":
        return (f"{par}:intercept", f"{par}:trend per year")
    return tuple(f"{par}:{s}" for s in sessions)
