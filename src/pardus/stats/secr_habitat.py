"""Density over habitat: SECR with density a log-linear function of mask covariates (``D ~ cover``).

Why: a plot is not uniform; leopards use forest more than fields, and a park wants the density map
and the strength of the habitat effect with its interval, not one number. The model is the
inhomogeneous-Poisson SECR likelihood of Borchers & Efford (2008, section 4) and Efford's secr
(``D ~ covariate`` with covariates attached to the mask):

    log L = Σ_i log ∫ D(x) Pr(ω_i | x) dx - ∫ D(x) p.(x) dx,   log D(x) = β0 + Σ_k β_k z_k(x),

integrated over the habitat mask's cells. With no covariate it is the homogeneous model of
:func:`pardus.stats.secr.fit_secr` (``n log D - D a + Σ log ∫ Pr``), whose detection part this module
reuses (``_Prepared.hazard`` and ``_Prepared.log_pr``). The covariates are values per mask cell
(from a raster or a CSV of cells the park provides); they are used as given, so centre and scale
them if the slope should read "per standard deviation". Maximised by BFGS from the homogeneous fit
with the analytic gradient; SEs from the Hessian (central differences of the gradient).

References:
    Borchers, D. L. and Efford, M. G. (2008) Spatially explicit maximum likelihood methods for
    capture-recapture studies. Biometrics 64, 377-385.
    Efford, M. G. secr: Spatially explicit capture-recapture models. R package (density surfaces,
    ``D ~ cov``, ``predictDsurface``).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

from pardus.stats.estimates import Estimate, aicc, covariance_from_hessian, from_link, lognormal_positive
from pardus.stats.secr import (
    DETECTFN_NAMES,
    DetectFn,
    Mask,
    SecrError,
    Traps,
    _hessian_from_gradient,
    _Prepared,
    fit_secr,
)


@dataclass(frozen=True)
class SecrHabitatFit:
    """SECR with density over habitat: coefficients, detection, the density surface and expected N."""

    model: str
    covariates: tuple[str, ...]
    coefficients: tuple[Estimate, ...]  # link scale: intercept (log D at z = 0), then one slope per covariate
    detection: Estimate
    sigma: Estimate
    expected_n: Estimate  # animals whose centres lie in the mask
    loglik: float
    npar: int
    aic: float
    aicc: float
    n_individuals: int
    converged: bool
    seconds: float
    mask_xy: np.ndarray = field(repr=False, compare=False)
    density_surface: np.ndarray = field(repr=False, compare=False)  # animals/ha per mask cell
    density_se: np.ndarray = field(repr=False, compare=False)
    vcv: np.ndarray = field(repr=False, compare=False)

    def slope(self, name: str) -> Estimate:
        """The coefficient of covariate ``name`` (change in log density per unit of the covariate)."""
        return self.coefficients[1 + self.covariates.index(name)]

    def surface_rows(self) -> list[dict[str, float]]:
        """Density map rows: cell centre x, y (m), density and its SE (animals/ha and per 100 km²)."""
        return [
            {"x": float(x), "y": float(y), "D_per_ha": float(d), "se_per_ha": float(s), "D_per_100km2": float(d * 1e4)}
            for (x, y), d, s in zip(self.mask_xy, self.density_surface, self.density_se, strict=True)
        ]


def fit_secr_habitat(
    counts: np.ndarray,
    traps: Traps,
    mask: Mask,
    covariates: dict[str, np.ndarray],
    *,
    detectfn: DetectFn = "HN",
    level: float = 0.95,
) -> SecrHabitatFit:
    """Fit SECR with ``log D = β0 + Σ β_k z_k`` over the mask (``covariates``: name -> value per mask cell)."""
    t0 = time.perf_counter()
    names = tuple(covariates)
    z = np.column_stack([np.ones(len(mask))] + [np.asarray(covariates[k], dtype=float) for k in names])
    if z.shape[0] != len(mask):
        raise SecrError(f"covariates need one value per mask cell ({len(mask)}), got {z.shape[0]}")
    if not np.all(np.isfinite(z)):
        raise SecrError("some mask cells have no covariate value; fill or drop those cells from the mask")
    prep = _Prepared(np.asarray(counts), traps, mask, detectfn)
    cell = mask.cell_area_ha
    k = z.shape[1]

    def loglik(beta: np.ndarray, grad: bool = True) -> tuple[float, np.ndarray]:
        bd, theta = beta[:k], beta[k:]
        det, _ = prep.split(theta)
        if detectfn in ("HN", "EX") and det >= 1.0:
            return -math.inf, np.zeros_like(beta)
        logd = z @ bd
        h, dh, rel = prep.hazard(theta, True)
        lp, dlp = prep.log_pr(h, dh, rel)
        lpd = lp + logd[None, :]
        mx = lpd.max(axis=1, keepdims=True)
        w = np.exp(lpd - mx)
        tot = w.sum(axis=1)
        s = float((mx[:, 0] + np.log(tot)).sum()) + prep.n * math.log(cell)
        d = np.exp(logd)
        cum = prep.U @ h
        pdot = -np.expm1(-cum)
        ll = s - float((d * pdot).sum() * cell) - prep.log_mult
        w /= tot[:, None]
        g_d = w.sum(axis=0) @ z - (d * pdot * cell) @ z
        surv = np.exp(-cum)
        g_t = [
            float((w * g).sum()) - float((d * surv * (prep.U @ dd)).sum() * cell) for g, dd in zip(dlp, dh, strict=True)
        ]
        return ll, np.concatenate([g_d, g_t])

    start = fit_secr(counts, traps, mask, detectfn=detectfn)
    b0 = np.concatenate([[start.beta[0]], np.zeros(k - 1), start.beta[1:]])

    def neg(b: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = loglik(b)
        if not np.isfinite(v):
            return 1e300, np.zeros_like(b)
        return -v, -g

    res = optimize.minimize(neg, b0, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 1000})
    beta = np.asarray(res.x, dtype=float)
    converged = bool(res.success) or float(np.max(np.abs(res.jac))) < 1e-3
    vcv = covariance_from_hessian(_hessian_from_gradient(lambda b: -loglik(b)[1], beta))
    se = np.sqrt(np.diag(vcv))
    coefs = (from_link("log D intercept", beta[0], se[0], "identity", level),) + tuple(
        from_link(f"slope {nm}", beta[1 + j], se[1 + j], "identity", level) for j, nm in enumerate(names)
    )
    det_name = "g0" if detectfn in ("HN", "EX") else "lambda0"
    det = from_link(det_name, beta[k], se[k], "logit" if detectfn in ("HN", "EX") else "log", level)
    sig = from_link("sigma", beta[k + 1], se[k + 1], "log", level, "m")
    logd = z @ beta[:k]
    surface = np.exp(logd)
    vd = vcv[:k, :k]
    surface_se = surface * np.sqrt(np.maximum(np.einsum("mi,ij,mj->m", z, vd, z), 0.0))
    n_exp = float(surface.sum() * cell)
    grad_n = (surface * cell) @ z  # d N / d β_D
    se_n = math.sqrt(max(float(grad_n @ vd @ grad_n), 0.0))
    loglik_value = loglik(beta)[0]
    npar = len(beta)
    model = (
        f"SECR D~{' + '.join(names) or '1'} {det_name}~1 sigma~1; {DETECTFN_NAMES[detectfn]} detection; "
        f"{prep.detector} detectors; full likelihood, inhomogeneous Poisson density"
    )
    return SecrHabitatFit(
        model=model,
        covariates=names,
        coefficients=coefs,
        detection=det,
        sigma=sig,
        expected_n=lognormal_positive("N (expected, mask)", n_exp, se_n, level, "animals"),
        loglik=float(loglik_value),
        npar=npar,
        aic=float(-2 * loglik_value + 2 * npar),
        aicc=aicc(loglik_value, npar, prep.n),
        n_individuals=prep.n,
        converged=converged,
        seconds=time.perf_counter() - t0,
        mask_xy=mask.xy,
        density_surface=surface,
        density_se=surface_se,
        vcv=vcv,
    )


def read_cell_covariates(path: str | Path, mask: Mask, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Covariates per mask cell from a CSV of cells (``x, y`` in metres and one column per covariate).

    Each mask cell takes the values of the nearest CSV cell (the park's raster exported as cell
    centres, at the mask's spacing or finer). A cell farther than one mask spacing from any CSV row
    is an error, not a silent zero.
    """
    from scipy.spatial import cKDTree

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"x", "y"} <= set(rows[0]):
        raise SecrError(f"{path}: expected a header with x, y and covariate columns")
    cols = list(columns) if columns else [c for c in rows[0] if c not in ("x", "y")]
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    dist, idx = cKDTree(xy).query(mask.xy)
    if np.any(dist > mask.spacing * 1.0001):
        raise SecrError(
            f"{path}: {int((dist > mask.spacing).sum())} mask cells have no covariate cell within {mask.spacing:.0f} m"
        )
    return {c: np.array([float(rows[i][c]) for i in idx]) for c in cols}


def write_density_map(fit: SecrHabitatFit, out_dir: Path, spacing: float) -> dict[str, Path]:
    """Write the density surface as ``density_map.csv`` and ``density_map.png`` (cells coloured by D)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = fit.surface_rows()
    p_csv = out_dir / "density_map.csv"
    with p_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 5))
    cells_across = float(np.ptp(fit.mask_xy[:, 0])) / spacing + 1.0
    size = (72.0 * 4.5 / cells_across) ** 2  # points² so that the squares about tile a 4.5-inch-wide map
    sc = ax.scatter(
        fit.mask_xy[:, 0], fit.mask_xy[:, 1], c=fit.density_surface * 1e4, marker="s", s=size, cmap="viridis"
    )
    fig.colorbar(sc, ax=ax, label="animals per 100 km²")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(fit.model.split(";")[0])
    p_png = out_dir / "density_map.png"
    fig.savefig(p_png, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {"density_map.csv": p_csv, "density_map.png": p_png}


def table(fit: SecrHabitatFit) -> list[dict[str, Any]]:
    """Coefficients, detection, sigma and expected N as rows for a CSV."""
    return [e.as_dict() for e in (*fit.coefficients, fit.detection, fit.sigma, fit.expected_n)]
