"""Estimates that always travel with their uncertainty, and the interval rules behind them.

Every estimator in ``pardus.stats`` returns :class:`Estimate` objects instead of bare numbers, so a
table, a CSV export and the report's headline sentence all show the same estimate, standard error
and interval, and say which interval rule produced it.

Interval rules used here (all at level ``level``, default 95%):

- ``log``: for a positive parameter estimated on the log scale, ``exp(beta ± z·SE(beta))``.
- ``logit``: for a probability estimated on the logit scale, ``expit(beta ± z·SE(beta))``.
- ``log-normal (N - M)``: for population size, the interval of Burnham et al. (1987) and Chao
  (1987) that works on the log of the *unseen* part ``f0 = N - M``, so the lower limit can never fall
  below the number of animals actually seen.
- ``log-normal``: for a derived positive quantity (e.g. density from a conditional likelihood),
  ``(x / C, x·C)`` with ``C = exp(z·sqrt(log(1 + CV²)))`` (Burnham et al. 1987).

References:
    Burnham, K. P., Anderson, D. R., White, G. C., Brownie, C. and Pollock, K. H. (1987) Design and
    analysis methods for fish survival experiments based on release-recapture. AFS Monograph 5.
    Chao, A. (1987) Estimating the population size for capture-recapture data with unequal
    catchability. Biometrics 43, 783-791.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special, stats


def z_value(level: float = 0.95) -> float:
    """The two-sided normal quantile for a confidence level (1.959964 for 95%)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


@dataclass(frozen=True)
class Estimate:
    """One estimated quantity with its standard error and confidence interval.

    ``interval`` names the rule that produced ``lcl``/``ucl`` (see the module docstring), so a
    reader of an exported table can tell a log-normal interval from a symmetric one.
    """

    name: str
    value: float
    se: float
    lcl: float
    ucl: float
    interval: str
    level: float = 0.95
    unit: str = ""

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        pct = round(self.level * 100)
        return (
            f"{self.name} = {self.value:.4g}{unit} (SE {self.se:.3g}; {pct}% CI {self.lcl:.4g}-{self.ucl:.4g}, "
            f"{self.interval})"
        )


def expit(x: np.ndarray | float) -> Any:
    return special.expit(x)


def logit(p: np.ndarray | float) -> np.ndarray | float:
    return np.log(p) - np.log1p(-p)


def from_link(name: str, beta: float, se_beta: float, link: str, level: float = 0.95, unit: str = "") -> Estimate:
    """Back-transform an estimate made on a link scale; SE by the delta method, interval on the link.

    This is how secr and MARK report real parameters: the interval is symmetric where the
    likelihood is close to quadratic (on the link scale) and never leaves the parameter's range.
    """
    z = z_value(level)
    se_beta = float(se_beta) if np.isfinite(se_beta) else math.nan
    if link == "log":
        value = math.exp(beta)
        se = value * se_beta
        lo, hi = math.exp(beta - z * se_beta), math.exp(beta + z * se_beta)
    elif link == "logit":
        value = float(expit(beta))
        se = value * (1.0 - value) * se_beta
        lo, hi = float(expit(beta - z * se_beta)), float(expit(beta + z * se_beta))
    elif link == "identity":
        value, se = float(beta), se_beta
        lo, hi = beta - z * se_beta, beta + z * se_beta
    else:
        raise ValueError(f"unknown link {link!r}; use 'log', 'logit' or 'identity'")
    return Estimate(name, value, se, lo, hi, link, level, unit)


def lognormal_positive(name: str, value: float, se: float, level: float = 0.95, unit: str = "") -> Estimate:
    """Log-normal interval for a positive derived quantity (Burnham et al. 1987)."""
    z = z_value(level)
    if value <= 0 or not np.isfinite(se):
        return Estimate(name, value, se, math.nan, math.nan, "log-normal", level, unit)
    c = math.exp(z * math.sqrt(math.log1p((se / value) ** 2)))
    return Estimate(name, value, se, value / c, value * c, "log-normal", level, unit)


def lognormal_population(
    name: str, n_hat: float, se: float, seen: int, level: float = 0.95, unit: str = "animals"
) -> Estimate:
    """Interval for population size from the log of the unseen part, ``f0 = N - M``.

    Burnham et al. (1987) and Chao (1987): ``[M + f0/C, M + f0·C]`` with
    ``C = exp(z·sqrt(log(1 + var(N)/f0²)))``. The lower limit is at least ``M``, the number of
    distinct animals caught, which is what makes the sentence "between A and B" honest.
    """
    z = z_value(level)
    f0 = n_hat - seen
    if not np.isfinite(n_hat) or not np.isfinite(se):
        return Estimate(name, n_hat, se, math.nan, math.nan, "log-normal (N - M)", level, unit)
    if f0 <= 1e-9 or se <= 0:
        return Estimate(name, n_hat, se, float(seen), n_hat, "log-normal (N - M)", level, unit)
    c = math.exp(z * math.sqrt(math.log1p(se**2 / f0**2)))
    return Estimate(name, n_hat, se, seen + f0 / c, seen + f0 * c, "log-normal (N - M)", level, unit)


def numerical_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, step: float | np.ndarray = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function, for standard errors at a maximum.

    Steps are absolute on the (link-scale) parameters, which are all of order 1; 1e-4 keeps
    truncation error near 1e-8 and round-off error of a log-likelihood of ~1e3 near 1e-5.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    h = np.broadcast_to(np.asarray(step, dtype=float), (k,))
    f0 = f(x)
    hess = np.empty((k, k))
    fp = np.empty(k)
    fm = np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        fp[i] = f(x + e)
        fm[i] = f(x - e)
        hess[i, i] = (fp[i] - 2.0 * f0 + fm[i]) / h[i] ** 2
    for i in range(k):
        for j in range(i + 1, k):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i] = h[i]
            ej[j] = h[j]
            v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4.0 * h[i] * h[j])
            hess[i, j] = hess[j, i] = v
    return hess


def covariance_from_hessian(hess_negll: np.ndarray) -> np.ndarray:
    """Invert the Hessian of the negative log-likelihood; NaNs when it is not positive definite.

    A non-invertible Hessian means some parameter is not identified by the data (e.g. no
    recaptures); reporting NaN standard errors says so instead of printing a made-up precision.
    """
    try:
        np.linalg.cholesky(hess_negll)
    except np.linalg.LinAlgError:
        return np.full_like(hess_negll, np.nan)
    return np.linalg.inv(hess_negll)


def aicc(loglik: float, npar: int, n: int) -> float:
    """AIC with the small-sample correction of Hurvich & Tsai (1989); inf when n <= npar + 1."""
    aic = -2.0 * loglik + 2.0 * npar
    if n - npar - 1 <= 0:
        return math.inf
    return aic + 2.0 * npar * (npar + 1) / (n - npar - 1)
