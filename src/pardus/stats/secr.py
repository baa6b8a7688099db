"""Spatially explicit capture-recapture (SECR) by maximum likelihood, on NumPy arrays.

Model: animals' activity centres form a homogeneous Poisson process of density ``D`` over a
habitat mask; an animal with centre ``x`` is detected at detector ``k`` with a probability (or
expected count) that falls with distance, ``g(d)`` or ``lambda(d)``. The likelihood integrates
each animal's capture history over the unknown centre, summed over the mask's cells (Borchers &
Efford 2008). This is the model of ``secr.fit`` in the R package secr (Efford), with D~1 g0~1
sigma~1, and it reproduces secr's published fits of ``captdata`` (``secrdemo.0``, ``secrdemo.CL``)
to better than 0.01% (see tests/stats/test_stats_secr_captdata.py).

Detection functions (``detectfn``), parameterised as secr does:

- ``HN`` halfnormal ``g(d) = g0 exp(-d²/2σ²)``
- ``EX`` exponential ``g(d) = g0 exp(-d/σ)``
- ``HHN`` hazard halfnormal ``λ(d) = λ0 exp(-d²/2σ²)``, ``g = 1 - exp(-λ)``
- ``HEX`` hazard exponential ``λ(d) = λ0 exp(-d/σ)``

Internally everything is a hazard ``h(d) = -log(1 - g(d))`` per unit of effort, which makes effort
(``usage``) enter all detector types the same way: an occasion with usage ``u`` has detection
probability ``1 - exp(-u·h)``.

Detector types (``Traps.detector``):

- ``proximity``: binary detection per detector and occasion, independent across detectors (camera
  traps: one animal can be photographed at several stations on one occasion).
- ``count``: Poisson number of detections per detector and occasion, mean ``u·h``.
- ``multi``: an animal is caught at most once per occasion, in competing traps (hazards add; the
  trap is chosen with probability ``h_k / Σh``). Single-catch traps (``single``) are analysed with
  this likelihood, as secr does for ``captdata``.

Likelihoods: ``full`` maximises over (log D, link(g0|λ0), log σ); ``conditional`` conditions on the
number detected ``n`` and estimates D afterwards as ``n / a(θ)`` with the variance of Borchers &
Efford (2008, eq. 12; Poisson distribution of n). Both give the same detection parameters.

References:
    Borchers, D. L. and Efford, M. G. (2008) Spatially explicit maximum likelihood methods for
    capture-recapture studies. Biometrics 64, 377-385.
    Efford, M. G., Borchers, D. L. and Byrom, A. E. (2009) Density estimation by spatially explicit
    capture-recapture: likelihood-based methods. In Modeling Demographic Processes in Marked
    Populations (eds Thomson, Cooch, Conroy), 255-269. Springer.
    Efford, M. G. secr: Spatially explicit capture-recapture models. R package (GitHub
    MurrayEfford/secr); the make.mask "trapbuffer" rule and the captdata fits reproduced here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import optimize, sparse
from scipy.spatial import cKDTree
from scipy.special import gammaln

from pardus.stats.estimates import (
    Estimate,
    aicc,
    covariance_from_hessian,
    expit,
    from_link,
    logit,
    lognormal_positive,
)

DetectFn = Literal["HN", "EX", "HHN", "HEX"]
DetectorType = Literal["proximity", "count", "multi", "single"]
DETECTFN_NAMES = {
    "HN": "halfnormal",
    "EX": "exponential",
    "HHN": "hazard halfnormal",
    "HEX": "hazard exponential",
}
_TINY = 1e-300
_LOG_TINY = math.log(_TINY)


class SecrError(ValueError):
    """Data or settings that an SECR fit cannot use; the message says what to change."""


@dataclass(frozen=True, eq=False)
class Traps:
    """Detector positions (metres), their type, and effort per occasion.

    ``usage`` is (detectors x occasions): 1 for a full occasion of operation, 0 when the camera
    was not working, a fraction for part of an occasion. ``None`` means every detector worked on
    every occasion (then ``n_occasions`` of the capture data decides how many there were).
    """

    xy: np.ndarray
    detector: DetectorType = "proximity"
    usage: np.ndarray | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy, dtype=float)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
            raise SecrError(f"detector coordinates must be an (n, 2) array of x, y in metres, got shape {xy.shape}")
        if not np.all(np.isfinite(xy)):
            raise SecrError("some detector coordinates are missing or not numbers; give every station x and y")
        if self.detector not in ("proximity", "count", "multi", "single"):
            raise SecrError(f"unknown detector type {self.detector!r}; use proximity, count, multi or single")
        object.__setattr__(self, "xy", xy)
        if self.usage is not None:
            usage = np.asarray(self.usage, dtype=float)
            if usage.ndim != 2 or usage.shape[0] != len(xy):
                raise SecrError(f"usage must be (detectors x occasions) = ({len(xy)}, S), got {usage.shape}")
            if np.any(usage < 0) or not np.all(np.isfinite(usage)):
                raise SecrError("usage (effort) must be zero or positive for every detector and occasion")
            object.__setattr__(self, "usage", usage)
        if self.ids and len(self.ids) != len(xy):
            raise SecrError(f"{len(self.ids)} detector ids for {len(xy)} detectors")

    @property
    def n_detectors(self) -> int:
        return len(self.xy)

    def usage_matrix(self, n_occasions: int) -> np.ndarray:
        if self.usage is None:
            return np.ones((self.n_detectors, n_occasions))
        if self.usage.shape[1] != n_occasions:
            raise SecrError(
                f"usage has {self.usage.shape[1]} occasions but the capture data have {n_occasions}; "
                "build both with the same occasion length"
            )
        return self.usage


@dataclass(frozen=True, eq=False)
class Mask:
    """Habitat mask: centres of square cells (metres) over which activity centres are integrated."""

    xy: np.ndarray
    spacing: float
    buffer: float

    @property
    def cell_area_ha(self) -> float:
        return self.spacing**2 / 1e4

    @property
    def area_ha(self) -> float:
        return len(self.xy) * self.cell_area_ha

    def __len__(self) -> int:
        return len(self.xy)


def make_mask(traps_xy: np.ndarray, buffer: float, spacing: float | None = None, nx: int = 64) -> Mask:
    """Grid of cell centres within ``buffer`` metres of some detector (secr's "trapbuffer" mask).

    The grid covers the detectors' bounding box widened by ``buffer`` on every side. With no
    ``spacing`` it has ``nx`` cells across that width, as secr's ``make.mask`` does by default (for
    captdata, 100 m buffer: 7.34375 m cells, 3,936 points kept). A buffer of about 4 sigma makes
    the density estimate insensitive to the buffer (Efford's rule of thumb).
    """
    xy = np.asarray(traps_xy, dtype=float)
    if buffer <= 0:
        raise SecrError(f"mask buffer must be positive (metres), got {buffer}")
    lo = xy.min(axis=0) - buffer
    hi = xy.max(axis=0) + buffer
    if spacing is None:
        spacing = float(hi[0] - lo[0]) / nx
    if spacing <= 0:
        raise SecrError(f"mask spacing must be positive (metres), got {spacing}")
    nxc = int(math.ceil((hi[0] - lo[0]) / spacing - 1e-9))
    nyc = int(math.ceil((hi[1] - lo[1]) / spacing - 1e-9))
    if nxc * nyc > 2_000_000:
        raise SecrError(f"a mask of {nxc} x {nyc} cells is too fine; use a larger spacing (now {spacing:.4g} m)")
    gx = lo[0] + spacing * (np.arange(nxc) + 0.5)
    gy = lo[1] + spacing * (np.arange(nyc) + 0.5)
    mx, my = np.meshgrid(gx, gy)  # rows vary in y, so x runs fastest (secr's order)
    pts = np.column_stack([mx.ravel(), my.ravel()])
    dist, _ = cKDTree(xy).query(pts)
    keep = dist <= buffer * (1 + 1e-12)
    return Mask(xy=pts[keep], spacing=float(spacing), buffer=float(buffer))


def rpsv(counts: np.ndarray, traps_xy: np.ndarray) -> float:
    """Root pooled spatial variance of detection locations: a quick sigma for start values.

    Computed over animals detected at least twice (each detection counted); NaN if nobody was.
    """
    num = 0.0
    den = 0
    for i in range(counts.shape[0]):
        per_trap = counts[i].sum(axis=0)
        k = np.nonzero(per_trap)[0]
        w = per_trap[k].astype(float)
        if w.sum() < 2:
            continue
        pts = traps_xy[k]
        mean = (w[:, None] * pts).sum(axis=0) / w.sum()
        num += float((w * ((pts - mean) ** 2).sum(axis=1)).sum())
        den += int(w.sum()) - 1
    if den == 0:
        return math.nan
    return math.sqrt(num / den / 2.0)


@dataclass(frozen=True)
class SecrFit:
    """A fitted SECR model: estimates with SEs and intervals, likelihood and the fit's facts."""

    model: str
    detectfn: str
    detector: str
    likelihood: str
    density: Estimate
    detection: Estimate
    sigma: Estimate
    loglik: float
    npar: int
    aic: float
    aicc: float
    n_individuals: int
    n_detections: int
    n_occasions: int
    n_detectors: int
    mask_points: int
    mask_spacing_m: float
    mask_buffer_m: float
    esa_ha: float
    beta: tuple[float, ...]
    beta_names: tuple[str, ...]
    beta_se: tuple[float, ...]
    converged: bool
    message: str
    seconds: float
    vcv: np.ndarray = field(repr=False, compare=False)
    references: tuple[str, ...] = (
        "Borchers & Efford (2008) Biometrics 64:377-385",
        "Efford, Borchers & Byrom (2009) in Modeling Demographic Processes in Marked Populations, 255-269",
    )

    def density_per_100km2(self) -> Estimate:
        """Density in animals per 100 km² (1 animal/ha = 10,000 per 100 km²), the unit big-cat work uses."""
        f = 1e4
        d = self.density
        return Estimate("D", d.value * f, d.se * f, d.lcl * f, d.ucl * f, d.interval, d.level, "animals/100 km²")

    def table(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in (self.density, self.detection, self.sigma)]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "model",
                "detectfn",
                "detector",
                "likelihood",
                "loglik",
                "npar",
                "aic",
                "aicc",
                "n_individuals",
                "n_detections",
                "n_occasions",
                "n_detectors",
                "mask_points",
                "mask_spacing_m",
                "mask_buffer_m",
                "esa_ha",
                "converged",
                "message",
                "seconds",
            )
        }
        out["beta"] = dict(zip(self.beta_names, self.beta, strict=True))
        out["beta_se"] = dict(zip(self.beta_names, self.beta_se, strict=True))
        out["estimates"] = self.table()
        out["density_per_100km2"] = self.density_per_100km2().as_dict()
        out["references"] = list(self.references)
        return out


class _Prepared:
    """Everything about the data that does not change while the optimiser moves the parameters."""

    def __init__(self, counts: np.ndarray, traps: Traps, mask: Mask, detectfn: str) -> None:
        counts = np.asarray(counts)
        if counts.ndim != 3:
            raise SecrError(f"capture data must be (individuals x occasions x detectors), got shape {counts.shape}")
        n, s, k = counts.shape
        if k != traps.n_detectors:
            raise SecrError(f"capture data have {k} detectors but {traps.n_detectors} detector positions were given")
        if np.any(counts < 0):
            raise SecrError("capture counts cannot be negative")
        if n == 0:
            raise SecrError("no animal was detected, so there is nothing to estimate")
        if detectfn not in DETECTFN_NAMES:
            raise SecrError(f"unknown detection function {detectfn!r}; use one of {', '.join(DETECTFN_NAMES)}")
        usage = traps.usage_matrix(s)
        if np.any((counts > 0) & (usage.T[None, :, :] == 0)):
            raise SecrError("a detection is recorded at a detector and occasion with zero effort (usage)")
        keep = counts.reshape(n, -1).sum(axis=1) > 0
        counts = counts[keep]
        n = counts.shape[0]
        self.n = n
        self.n_occasions = s
        self.n_detectors = k
        self.detector = "multi" if traps.detector == "single" else traps.detector
        self.detectfn = detectfn
        self.cell_area = mask.cell_area_ha
        self.mask = mask
        diff = traps.xy[:, None, :] - mask.xy[None, :, :]
        self.d2 = (diff**2).sum(axis=2)  # (K, M) squared distances
        self.d = np.sqrt(self.d2) if detectfn in ("EX", "HEX") else None
        self.usage = usage  # (K, S)
        self.U = usage.sum(axis=1)  # (K,)
        if self.detector == "proximity":
            y = (counts > 0).astype(float)  # (n, S, K)
            self.n_detections = int(y.sum())
            uk = usage.T[None, :, :]  # (1, S, K)
            self.W = sparse.csr_matrix((y * uk).sum(axis=1))
            self.groups: list[tuple[float, sparse.csr_matrix]] = []
            for v in np.unique(np.broadcast_to(uk, y.shape)[y > 0]):
                yv = ((y > 0) & (np.isclose(uk, v))).sum(axis=1)
                self.groups.append((float(v), sparse.csr_matrix(yv.astype(float))))
            self.const = np.zeros(n)
            hist = y
        elif self.detector == "count":
            self.n_detections = int(counts.sum())
            self.Y = sparse.csr_matrix(counts.sum(axis=1).astype(float))
            with np.errstate(divide="ignore"):
                logu = np.where(usage.T[None] > 0, np.log(usage.T[None]), 0.0)
            self.const = (counts * logu).sum(axis=(1, 2)) - gammaln(counts + 1).sum(axis=(1, 2))
            hist = counts
        else:  # multi-catch
            per_occ = counts.sum(axis=2)
            if np.any(per_occ > 1):
                raise SecrError(
                    "a multi-catch or single-catch trap can hold an animal only once per occasion; "
                    "some animals were caught more than once on one occasion (use detector='proximity' or 'count')"
                )
            self.n_detections = int(counts.sum())
            self.Y = sparse.csr_matrix(counts.sum(axis=1).astype(float))
            with np.errstate(divide="ignore"):
                logu = np.where(usage.T[None] > 0, np.log(usage.T[None]), 0.0)
            self.const = (counts * logu).sum(axis=(1, 2))
            active = usage.sum(axis=0) > 0
            self.caught = per_occ[:, active].astype(float)  # (n, S_active)
            self.occ_usage = usage[:, active].T  # (S_active, K)
            self.uniform = bool(np.all(self.occ_usage == self.occ_usage[:1]))
            hist = counts
        # multinomial coefficient of identical capture histories: - sum log(n_w!)
        _, mult = np.unique(hist.reshape(n, -1), axis=0, return_counts=True)
        self.log_mult = float(gammaln(mult + 1).sum())
        self.log_n_fact = float(gammaln(n + 1))

    def split(self, theta: np.ndarray) -> tuple[float, float]:
        det = float(expit(theta[0])) if self.detectfn in ("HN", "EX") else math.exp(theta[0])
        return det, math.exp(theta[1])

    def hazard(self, theta: np.ndarray, grad: bool) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Hazard per unit effort (K, M) and, if asked, its derivatives and relative derivatives.

        Returns ``h``, ``[dh/dθ1, dh/dθ2]`` and ``[dh/dθ1 / h, dh/dθ2 / h]`` for θ on the link scale
        (logit g0 or log λ0, log σ).
        """
        det, sigma = self.split(theta)
        if self.detectfn in ("HN", "HHN"):
            r = self.d2 / (sigma * sigma)  # d log e / d log σ for the halfnormal
            e = np.exp(-0.5 * r)
        else:
            r = self.d / sigma
            e = np.exp(-r)
        if self.detectfn in ("HN", "EX"):
            g = det * e
            h = -np.log1p(-g)
            if not grad:
                return np.maximum(h, _TINY), [], []
            q = g / (1.0 - g)  # dh/d log g
            dh1 = q * (1.0 - det)
            dh2 = q * r
        else:
            h = det * e
            if not grad:
                return np.maximum(h, _TINY), [], []
            dh1 = h
            dh2 = h * r
        hc = np.maximum(h, _TINY)
        return hc, [dh1, dh2], [dh1 / hc, dh2 / hc]

    def log_pr(self, h: np.ndarray, dh: list[np.ndarray], rel: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """log Pr(history of each animal | centre at each mask point), (n, M), and its derivatives."""
        grads: list[np.ndarray] = []
        if self.detector == "proximity":
            out = self.W @ h - (self.U @ h)[None, :]
            for j in range(len(dh)):
                grads.append(self.W @ dh[j] - (self.U @ dh[j])[None, :])
            for v, yv in self.groups:
                em = -np.expm1(-v * h)
                out += yv @ np.maximum(np.log(em), _LOG_TINY)
                if dh:
                    fac = v * np.exp(-v * h) / np.maximum(em, _TINY)
                    for j in range(len(dh)):
                        grads[j] += yv @ (fac * dh[j])
            return out, grads
        if self.detector == "count":
            out = self.Y @ np.log(h) - (self.U @ h)[None, :] + self.const[:, None]
            for j in range(len(dh)):
                grads.append(self.Y @ rel[j] - (self.U @ dh[j])[None, :])
            return out, grads
        logh = np.log(h)
        if self.uniform:
            u = self.occ_usage[0]
            H = np.maximum(u @ h, _TINY)  # (M,)
            A = np.log(-np.expm1(-H)) - np.log(H) + H
            ncaught = self.caught.sum(axis=1)
            s = self.caught.shape[1]
            out = ncaught[:, None] * A[None, :] - s * H[None, :]
            if dh:
                dA = 1.0 / np.expm1(H) - 1.0 / H + 1.0
                for j in range(len(dh)):
                    dH = u @ dh[j]
                    grads.append(ncaught[:, None] * (dA * dH)[None, :] - s * dH[None, :] + self.Y @ rel[j])
        else:
            H = np.maximum(self.occ_usage @ h, _TINY)  # (S, M)
            A = np.log(-np.expm1(-H)) - np.log(H) + H
            out = self.caught @ A - H.sum(axis=0)[None, :]
            if dh:
                dA = 1.0 / np.expm1(H) - 1.0 / H + 1.0
                for j in range(len(dh)):
                    dH = self.occ_usage @ dh[j]
                    grads.append(self.caught @ (dA * dH) - dH.sum(axis=0)[None, :] + self.Y @ rel[j])
        return out + self.Y @ logh + self.const[:, None], grads

    def parts(self, theta: np.ndarray, grad: bool = False) -> tuple[float, float, np.ndarray, np.ndarray]:
        """S = Σ_i log ∫ Pr(ω_i|x) dx and a(θ) = ∫ p.(x) dx, with dS/dθ and da/dθ when ``grad``."""
        det, _ = self.split(theta)
        nan2 = np.full(2, np.nan)
        if self.detectfn in ("HN", "EX") and det >= 1.0:
            return -math.inf, math.nan, nan2, nan2
        h, dh, rel = self.hazard(theta, grad)
        lp, dlp = self.log_pr(h, dh, rel)
        mx = lp.max(axis=1, keepdims=True)
        w = np.exp(lp - mx)
        tot = w.sum(axis=1)
        s = float((mx[:, 0] + np.log(tot)).sum()) + self.n * math.log(self.cell_area)
        cum = self.U @ h
        a = float(-np.expm1(-cum).sum() * self.cell_area)
        if not grad:
            return s, a, nan2, nan2
        w /= tot[:, None]
        surv = np.exp(-cum)
        ds = np.array([float((w * g).sum()) for g in dlp])
        da = np.array([float((surv * (self.U @ d)).sum() * self.cell_area) for d in dh])
        return s, a, ds, da

    def loglik_conditional(self, theta: np.ndarray, grad: bool = False) -> Any:
        s, a, ds, da = self.parts(theta, grad)
        if not np.isfinite(s) or not a > 0:
            return (-math.inf, np.zeros(2)) if grad else -math.inf
        ll = s - self.n * math.log(a) + self.log_n_fact - self.log_mult
        if grad:
            return ll, ds - self.n / a * da
        return ll

    def loglik_full(self, beta: np.ndarray, grad: bool = False) -> Any:
        s, a, ds, da = self.parts(beta[1:], grad)
        if not np.isfinite(s) or not a > 0:
            return (-math.inf, np.zeros(3)) if grad else -math.inf
        d = math.exp(beta[0])
        ll = self.n * beta[0] - d * a + s - self.log_mult
        if grad:
            return ll, np.concatenate([[self.n - d * a], ds - d * da])
        return ll


def _hessian_from_gradient(grad: Any, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian by central differences of an analytic gradient, symmetrised."""
    k = x.size
    hess = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        hess[:, j] = (grad(x + e) - grad(x - e)) / (2.0 * step)
    return 0.5 * (hess + hess.T)


def _start_theta(prep: _Prepared, traps: Traps, counts: np.ndarray) -> np.ndarray:
    """Start values: sigma from the spread of recaptures, g0 (λ0) from a short 1-D search."""
    sig = rpsv(counts, traps.xy)
    if not np.isfinite(sig) or sig <= 0:
        if traps.n_detectors > 1:
            dd, _ = cKDTree(traps.xy).query(traps.xy, k=2)
            sig = float(np.median(dd[:, 1]))
        else:
            sig = prep.mask.buffer / 4.0
    sig = max(sig, prep.mask.spacing)
    best = None
    for g in (0.005, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7):
        t0 = logit(g) if prep.detectfn in ("HN", "EX") else math.log(-math.log1p(-g))
        theta = np.array([t0, math.log(sig)])
        ll = prep.loglik_conditional(theta)
        if np.isfinite(ll) and (best is None or ll > best[0]):
            best = (ll, theta)
    if best is None:
        raise SecrError("could not find a starting point for the SECR fit; check detector coordinates and the mask")
    return best[1]


def fit_secr(
    counts: np.ndarray,
    traps: Traps,
    mask: Mask,
    *,
    detectfn: DetectFn = "HN",
    likelihood: Literal["full", "conditional"] = "full",
    level: float = 0.95,
    start: np.ndarray | None = None,
) -> SecrFit:
    """Fit the SECR model D~1, g0~1 (or λ0~1), sigma~1 by maximum likelihood.

    ``counts`` is (individuals x occasions x detectors): number of detections (for proximity
    detectors anything above 0 counts as detected). SEs come from the numerical Hessian of the
    log-likelihood on the link scale (log D, logit g0 or log λ0, log σ); real-scale intervals are
    back-transformed from the link scale, as in secr. Under the conditional likelihood D is derived
    as ``n / a(θ)`` with a log-normal interval.
    """
    t_start = time.perf_counter()
    counts = np.asarray(counts)
    prep = _Prepared(counts, traps, mask, detectfn)
    theta0 = np.asarray(start, dtype=float) if start is not None else _start_theta(prep, traps, counts)

    def negll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = prep.loglik_conditional(theta, grad=True)
        if not np.isfinite(v):
            return 1e300, np.zeros_like(theta)
        return -v, -g

    res = optimize.minimize(negll, theta0, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 500})
    theta = np.asarray(res.x, dtype=float)
    grad_norm = float(np.max(np.abs(res.jac))) if res.jac is not None else math.inf
    converged = bool(res.success) or grad_norm < 1e-3
    _, a, _, da = prep.parts(theta, grad=True)
    n = prep.n
    det_name = "g0" if detectfn in ("HN", "EX") else "lambda0"
    det_link = "logit" if detectfn in ("HN", "EX") else "log"
    if likelihood == "full":
        beta = np.concatenate([[math.log(n / a)], theta])
        hess = _hessian_from_gradient(lambda b: -prep.loglik_full(b, grad=True)[1], beta)
        vcv = covariance_from_hessian(hess)
        se = np.sqrt(np.diag(vcv))
        loglik = prep.loglik_full(beta)
        density = from_link("D", beta[0], se[0], "log", level, "animals/ha")
        det = from_link(det_name, beta[1], se[1], det_link, level)
        sig = from_link("sigma", beta[2], se[2], "log", level, "m")
        names: tuple[str, ...] = ("D", det_name, "sigma")
        npar = 3
    elif likelihood == "conditional":
        beta = theta
        hess = _hessian_from_gradient(lambda b: -prep.loglik_conditional(b, grad=True)[1], beta)
        vcv = covariance_from_hessian(hess)
        se = np.sqrt(np.diag(vcv))
        loglik = prep.loglik_conditional(beta)
        det = from_link(det_name, beta[0], se[0], det_link, level)
        sig = from_link("sigma", beta[1], se[1], "log", level, "m")
        # Borchers & Efford (2008): var(D) = var(n)/a² + D² (∂a/∂θ)' V (∂a/∂θ) / a², var(n) = n (Poisson)
        d_hat = n / a
        var_d = n / a**2 + d_hat**2 * float(da @ vcv @ da) / a**2
        density = lognormal_positive("D", d_hat, math.sqrt(var_d) if var_d >= 0 else math.nan, level, "animals/ha")
        names = (det_name, "sigma")
        npar = 2
    else:
        raise SecrError(f"unknown likelihood {likelihood!r}; use 'full' or 'conditional'")
    model = (
        f"SECR D~1 {det_name}~1 sigma~1; {DETECTFN_NAMES[detectfn]} detection; {prep.detector} detectors; "
        f"{likelihood} likelihood"
    )
    return SecrFit(
        model=model,
        detectfn=detectfn,
        detector=prep.detector,
        likelihood=likelihood,
        density=density,
        detection=det,
        sigma=sig,
        loglik=float(loglik),
        npar=npar,
        aic=float(-2 * loglik + 2 * npar),
        aicc=aicc(loglik, npar, n),
        n_individuals=n,
        n_detections=prep.n_detections,
        n_occasions=prep.n_occasions,
        n_detectors=prep.n_detectors,
        mask_points=len(mask),
        mask_spacing_m=mask.spacing,
        mask_buffer_m=mask.buffer,
        esa_ha=float(a),
        beta=tuple(float(b) for b in beta),
        beta_names=names,
        beta_se=tuple(float(s) for s in se),
        converged=converged,
        message=str(res.message),
        seconds=time.perf_counter() - t_start,
        vcv=vcv,
    )


def suggest_buffer(counts: np.ndarray, traps: Traps, multiple: float = 4.0, fallback: float | None = None) -> float:
    """A mask buffer of ``multiple`` x sigma, sigma estimated from the spread of recaptures (RPSV).

    Efford's advice is a buffer of about 4 sigma for the halfnormal; with no spatial recaptures
    the detectors' median nearest-neighbour spacing stands in for sigma unless ``fallback`` is given.
    """
    sig = rpsv(np.asarray(counts), traps.xy)
    if not np.isfinite(sig) or sig <= 0:
        if fallback is not None:
            return fallback
        if traps.n_detectors > 1:
            dd, _ = cKDTree(traps.xy).query(traps.xy, k=2)
            sig = float(np.median(dd[:, 1]))
        else:
            raise SecrError("one detector and no recaptures: give the mask buffer in metres")
    return multiple * sig


def simulate_captures(
    traps: Traps,
    *,
    density: float,
    detection: float,
    sigma: float,
    detectfn: DetectFn = "HN",
    n_occasions: int | None = None,
    buffer: float | None = None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Simulate one season of SECR data directly from the model; returns (counts, N in region).

    Activity centres: Poisson(D x area) uniform on the detectors' bounding box widened by
    ``buffer`` (default 5 sigma, beyond which detection is negligible for HN). Detections follow
    the detector type of ``traps`` with effort ``traps.usage``. ``density`` is animals per hectare.
    Used by the coverage benchmark and its small version in the test suite.
    """
    if traps.usage is None and n_occasions is None:
        raise SecrError("give n_occasions or traps.usage")
    s = n_occasions if traps.usage is None else traps.usage.shape[1]
    usage = traps.usage_matrix(s)
    buf = 5.0 * sigma if buffer is None else buffer
    lo = traps.xy.min(axis=0) - buf
    hi = traps.xy.max(axis=0) + buf
    area_ha = float(np.prod(hi - lo)) / 1e4
    n_pop = int(rng.poisson(density * area_ha))
    centres = lo + rng.random((n_pop, 2)) * (hi - lo)
    d2 = ((centres[:, None, :] - traps.xy[None, :, :]) ** 2).sum(axis=2)  # (N, K)
    if detectfn == "HN":
        h = -np.log1p(-detection * np.exp(-d2 / (2 * sigma**2)))
    elif detectfn == "EX":
        h = -np.log1p(-detection * np.exp(-np.sqrt(d2) / sigma))
    elif detectfn == "HHN":
        h = detection * np.exp(-d2 / (2 * sigma**2))
    elif detectfn == "HEX":
        h = detection * np.exp(-np.sqrt(d2) / sigma)
    else:
        raise SecrError(f"unknown detection function {detectfn!r}")
    k = traps.n_detectors
    kind = "multi" if traps.detector == "single" else traps.detector
    lam = h[:, None, :] * usage.T[None, :, :]  # (N, S, K) cumulative hazard per occasion
    if kind == "proximity":
        counts = (rng.random(lam.shape) < -np.expm1(-lam)).astype(np.int64)
    elif kind == "count":
        counts = rng.poisson(lam).astype(np.int64)
    else:
        tot = lam.sum(axis=2)  # (N, S)
        caught = rng.random(tot.shape) < -np.expm1(-tot)
        counts = np.zeros((n_pop, s, k), dtype=np.int64)
        idx = np.argwhere(caught)
        for i, j in idx:
            p = lam[i, j] / tot[i, j]
            counts[i, j, rng.choice(k, p=p)] = 1
    seen = counts.reshape(n_pop, -1).sum(axis=1) > 0
    return counts[seen], n_pop


def _secr_lines(path: str | Any) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a secr text file: blank lines and '#' comments skipped, and what
    follows '/' on a trap line (usage, covariates) cut off as secr's read.traps does."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecrError(f"cannot read {path} as text ({exc})") from None
    for line_no, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split("/", 1)[0].split()
        if parts:
            yield line_no, parts


def _number(text: str, where: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise SecrError(f"{where}: {what} {text!r} is not a number") from None
    if not np.isfinite(v):
        raise SecrError(f"{where}: {what} {text!r} is not a finite number")
    return v


def read_secr_text(
    capt_path: str | Any, trap_path: str | Any, fmt: str = "auto"
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read secr's text input: a trap file (``trapID x y``) and a capture file in either of
    ``read.capthist``'s forms.

    ``fmt="XY"``: capture lines ``Session ID Occasion X Y``, X Y the detecting trap's coordinates;
    ``fmt="trapID"``: ``Session ID Occasion Detector``, the detector named as in the trap file (trap
    ids may be text, e.g. ``A1``); ``"auto"`` tells them apart per file (XY when every line's 4th and
    5th fields are a trap's coordinates). Further columns are ignored (individual covariates). Every
    problem ends in a ``SecrError`` naming the file and line. Returns (counts (animals x occasions x
    traps), trap coordinates (K, 2), animal ids in sorted order).
    """
    if fmt not in ("auto", "XY", "trapID"):
        raise SecrError(f"fmt must be 'auto', 'XY' or 'trapID', not {fmt!r}")
    trap_ids: list[str] = []
    coords: list[tuple[float, float]] = []
    for line_no, parts in _secr_lines(trap_path):
        where = f"{trap_path} line {line_no}"
        if len(parts) < 3:
            raise SecrError(f"{where}: expected 'trapID x y'")
        if parts[0] in trap_ids:
            raise SecrError(f"{where}: trap {parts[0]!r} appears twice")
        trap_ids.append(parts[0])
        coords.append((_number(parts[1], where, "x"), _number(parts[2], where, "y")))
    if not coords:
        raise SecrError(f"{trap_path}: no traps (expected 'trapID x y' on each line)")
    xy = np.array(coords, dtype=float)
    by_id = {t: k for k, t in enumerate(trap_ids)}
    by_xy: dict[tuple[float, float], list[int]] = {}
    for k, c in enumerate(coords):
        by_xy.setdefault(c, []).append(k)
    lines = list(_secr_lines(capt_path))
    if not lines:
        raise SecrError(f"{capt_path}: no captures")

    def at_trap(parts: list[str]) -> bool:
        if len(parts) < 5:
            return False
        try:
            return len(by_xy.get((float(parts[3]), float(parts[4])), [])) == 1
        except ValueError:
            return False

    if fmt == "auto":
        fmt = "XY" if all(at_trap(p) for _, p in lines) else "trapID"
    rows: list[tuple[str, int, int]] = []
    for line_no, parts in lines:
        where = f"{capt_path} line {line_no}"
        need = 5 if fmt == "XY" else 4
        if len(parts) < need:
            form = "Session ID Occasion X Y" if fmt == "XY" else "Session ID Occasion Detector"
            raise SecrError(f"{where}: expected '{form}'")
        occ_text = parts[2]
        if not occ_text.isdigit() or int(occ_text) < 1 or int(occ_text) > 100_000:
            raise SecrError(f"{where}: occasion {occ_text!r} is not a whole number from 1")
        if fmt == "XY":
            x, y = _number(parts[3], where, "X"), _number(parts[4], where, "Y")
            ks = by_xy.get((x, y), [])
            if len(ks) != 1:
                raise SecrError(f"{where}: capture at ({x}, {y}) does not match exactly one trap")
            k = ks[0]
        else:
            if parts[3] not in by_id:
                raise SecrError(f"{where}: detector {parts[3]!r} is not in the trap file {trap_path}")
            k = by_id[parts[3]]
        rows.append((parts[1], int(occ_text), k))
    ids = tuple(sorted({r[0] for r in rows}, key=lambda s: (len(s), s)))
    index = {s: i for i, s in enumerate(ids)}
    n_occ = max(r[1] for r in rows)
    counts = np.zeros((len(ids), n_occ, len(xy)), dtype=np.int64)
    for animal, occ, k in rows:
        counts[index[animal], occ - 1, k] += 1
    return counts, xy, ids


def grid_xy(nx: int, ny: int, spacing: float, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Detector coordinates of an nx x ny grid with ``spacing`` metres (secr's ``make.grid``), x fastest."""
    gx, gy = np.meshgrid(origin[0] + spacing * np.arange(nx), origin[1] + spacing * np.arange(ny))
    return np.column_stack([gx.ravel(), gy.ravel()])
