"""Spatially explicit capture-recapture (SECR) data with known truth, and nothing else.

Why a bare simulator: coverage studies of a density estimator need thousands of seasons in
seconds, so the model is separated from pictures. It is the standard SECR observation model
(Efford 2004; Borchers & Efford 2008, *Biometrics* 64:377-385; the ``sim.capthist`` function of
the R package ``secr``):

* activity centres form a homogeneous Poisson process of density ``D`` over the *mask*: the
  trap array's bounding box widened by a buffer (4 sigma by default, beyond which detection is
  negligible, < 0.04 % of g0);
* each animal is detected at a detector on an occasion with the half-normal function of the
  distance ``d`` between its centre and the detector:
  ``g(d) = g0 * exp(-d^2 / (2 sigma^2))`` (detectfn "HN"), or on the hazard scale
  ``lambda(d) = lambda0 * exp(-d^2 / (2 sigma^2))`` (detectfn "HHN");
* ``proximity`` detectors record 0/1 per animal, occasion and detector, independently;
  ``count`` detectors record a Poisson number of detections with mean ``lambda(d)``;
* ``usage`` (detector x occasion, 0..1, the fraction of the occasion the detector worked) scales
  the hazard as in ``secr``: a Poisson mean ``lambda * u`` and a 0/1 probability ``1 - (1-g)^u``.

Distances are in metres and density is per km^2, the units field teams report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

DETECTORS = ("proximity", "count")


class CaptureModelError(ValueError):
    """Parameters that do not define a capture model; the message says which one to change."""


def half_normal(d: np.ndarray | float, g0: float, sigma_m: float) -> np.ndarray:
    """Detection probability (or hazard, with lambda0 for g0) at distance ``d`` metres."""
    d = np.asarray(d, dtype=np.float64)
    return g0 * np.exp(-(d * d) / (2.0 * sigma_m * sigma_m))


@dataclass(frozen=True)
class Mask:
    """The region where activity centres can lie: trap bounding box plus a buffer, in metres."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @property
    def area_km2(self) -> float:
        return (self.x_max - self.x_min) * (self.y_max - self.y_min) / 1e6

    @classmethod
    def around(cls, traps: np.ndarray, buffer_m: float) -> Mask:
        lo = traps.min(axis=0) - buffer_m
        hi = traps.max(axis=0) + buffer_m
        return cls(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


@dataclass
class CaptureData:
    """One simulated season: every animal in the mask, and what the detectors recorded.

    ``counts_all`` holds every animal (detected or not), shape (N, occasions, detectors), which
    is what a test of the detection function needs; ``captures`` keeps only the detected ones,
    which is what a field season yields (the ``capthist`` of ``secr``).
    """

    traps: np.ndarray
    centres: np.ndarray
    counts_all: np.ndarray
    detector: str
    density_per_km2: float
    sigma_m: float
    g0: float | None
    lambda0: float | None
    mask: Mask
    usage: np.ndarray
    seed: int | None = None
    detector_ids: list[str] = field(default_factory=list)

    @property
    def occasions(self) -> int:
        return int(self.counts_all.shape[1])

    @property
    def detected(self) -> np.ndarray:
        """Indices (into ``centres``) of the animals caught at least once."""
        return np.flatnonzero(self.counts_all.reshape(len(self.centres), -1).sum(axis=1) > 0)

    @property
    def captures(self) -> np.ndarray:
        """(n detected, occasions, detectors) counts; 0/1 for proximity detectors."""
        return self.counts_all[self.detected]

    def distances(self) -> np.ndarray:
        """(N, detectors) distance in metres from each activity centre to each detector."""
        return np.hypot(
            self.centres[:, None, 0] - self.traps[None, :, 0], self.centres[:, None, 1] - self.traps[None, :, 1]
        )

    def expected(self) -> np.ndarray:
        """(N, occasions, detectors) the model's mean of ``counts_all``: truth for tests."""
        d = self.distances()
        u = self.usage.T[None, :, :]
        if self.lambda0 is not None:
            hazard = half_normal(d, self.lambda0, self.sigma_m)[:, None, :] * u
        else:
            assert self.g0 is not None
            g = np.minimum(half_normal(d, self.g0, self.sigma_m), 1.0)
            hazard = -np.log1p(-np.minimum(g, 1 - 1e-12))[:, None, :] * u
        return hazard if self.detector == "count" else -np.expm1(-hazard)

    def rows(self) -> Iterator[tuple[int, int, int, int]]:
        """(animal index, occasion, detector index, count) for every non-zero cell."""
        for i, s, k in zip(*np.nonzero(self.counts_all), strict=True):
            yield int(i), int(s), int(k), int(self.counts_all[i, s, k])


def _check(traps: np.ndarray, density: float, sigma: float, occasions: int, g0: float | None,
           lambda0: float | None, detector: str) -> None:
    if traps.ndim != 2 or traps.shape[1] != 2 or len(traps) == 0:
        raise CaptureModelError("traps must be an (n, 2) array of x, y in metres with at least one detector")
    if detector not in DETECTORS:
        raise CaptureModelError(f"detector must be one of {', '.join(DETECTORS)}, not {detector!r}")
    if (g0 is None) == (lambda0 is None):
        raise CaptureModelError("give exactly one of g0 (probability scale) or lambda0 (hazard scale)")
    if g0 is not None and not 0 < g0 <= 1:
        raise CaptureModelError(f"g0 is a probability per occasion: {g0} is outside (0, 1]")
    if lambda0 is not None and lambda0 <= 0:
        raise CaptureModelError(f"lambda0 is a rate per occasion and must be > 0, not {lambda0}")
    if sigma <= 0:
        raise CaptureModelError(f"sigma is a distance in metres and must be > 0, not {sigma}")
    if density < 0:
        raise CaptureModelError(f"density cannot be negative ({density} per km^2)")
    if occasions < 1:
        raise CaptureModelError(f"there must be at least one occasion, not {occasions}")


def simulate_captures(
    traps: np.ndarray,
    *,
    density_per_km2: float,
    sigma_m: float,
    occasions: int,
    g0: float | None = None,
    lambda0: float | None = None,
    detector: str = "proximity",
    buffer_m: float | None = None,
    usage: np.ndarray | None = None,
    centres: np.ndarray | None = None,
    seed: int | np.random.Generator | None = None,
) -> CaptureData:
    """Simulate one closed-population season of SECR data.

    ``centres`` (metres) replaces the Poisson draw when given, e.g. to follow one known animal.
    ``usage`` is (detectors, occasions); a camera that failed on day 40 has zeros from there on.
    """
    traps = np.asarray(traps, dtype=np.float64)
    _check(traps, density_per_km2, sigma_m, occasions, g0, lambda0, detector)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    buffer = 4.0 * sigma_m if buffer_m is None else float(buffer_m)
    mask = Mask.around(traps, buffer)
    if usage is None:
        usage = np.ones((len(traps), occasions))
    usage = np.asarray(usage, dtype=np.float64)
    if usage.shape != (len(traps), occasions):
        raise CaptureModelError(f"usage must have shape (detectors, occasions) = {(len(traps), occasions)}")
    if centres is None:
        n = rng.poisson(density_per_km2 * mask.area_km2)
        centres = np.column_stack(
            (rng.uniform(mask.x_min, mask.x_max, n), rng.uniform(mask.y_min, mask.y_max, n))
        )
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    data = CaptureData(
        traps=traps,
        centres=centres,
        counts_all=np.zeros((len(centres), occasions, len(traps)), dtype=np.int32),
        detector=detector,
        density_per_km2=density_per_km2,
        sigma_m=sigma_m,
        g0=g0,
        lambda0=lambda0,
        mask=mask,
        usage=usage,
        seed=seed if isinstance(seed, int) else None,
    )
    if len(centres):
        mean = data.expected()
        if detector == "count":
            data.counts_all = rng.poisson(mean).astype(np.int32)
        else:
            data.counts_all = (rng.random(mean.shape) < mean).astype(np.int32)
    return data


def centres_from_surface(
    cell_xy: np.ndarray, spacing_m: float, density_per_km2: np.ndarray, seed: int | np.random.Generator | None = None
) -> np.ndarray:
    """Activity centres of an inhomogeneous Poisson process with a density per square cell.

    For habitat (``D ~ covariate``) scenarios: the number in each cell of side ``spacing_m``
    centred at ``cell_xy`` is Poisson(density x cell area), placed uniformly inside the cell.
    Pass the result as ``centres`` to :func:`simulate_captures`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    cell_xy = np.asarray(cell_xy, dtype=np.float64)
    dens = np.asarray(density_per_km2, dtype=np.float64)
    if dens.shape != (len(cell_xy),) or np.any(dens < 0) or spacing_m <= 0:
        raise CaptureModelError("give one non-negative density per cell and a positive cell spacing")
    k = rng.poisson(dens * spacing_m**2 / 1e6)
    base = np.repeat(cell_xy, k, axis=0)
    return base + (rng.random(base.shape) - 0.5) * spacing_m
