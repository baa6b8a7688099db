"""The virtual park across years: a population that survives, breeds and receives immigrants, sampled
each year by the same camera grid, with the truth of every year kept.

Why: a trend estimate (λ between years, survival φ, recruitment f) can only be checked against a
population whose history is known. Each year is one closed season of the standard SECR observation
model (:func:`pardus.simulate.captures.simulate_captures`; Efford 2004, Borchers & Efford 2008);
between seasons the population changes as in the open-population models of Pradel (1996) and
Efford & Schofield's openCR (Glennie et al. 2019):

* each animal alive in year t survives to t+1 with probability ``survival`` (φ); a survivor keeps
  its activity centre, shifted by an isotropic normal step of ``dispersal_m`` (wrapped at the
  region's edges so the centres stay uniform);
* recruits: a Poisson number with mean ``recruitment`` × N_t (per-capita recruitment f, births that
  settle in the region), with uniform centres;
* immigrants: a Poisson number with mean ``immigration_per_km2`` × area, uniform centres.

So the expected yearly rate of change is ``λ = φ + f (+ immigrants / N)``, and year 0 is a Poisson
population of ``density_per_km2``. The region is the trap array's bounding box widened by the
buffer (4 σ by default), as in :class:`pardus.simulate.captures.Mask`.

References:
    Borchers, D. L. and Efford, M. G. (2008) Biometrics 64, 377-385.
    Efford, M. G. (2004) Density estimation in live-trapping studies. Oikos 106, 598-610.
    Glennie, R., Borchers, D. L., Murchie, M., Harmsen, B. J. and Foster, R. J. (2019) Open
    population maximum likelihood spatial capture-recapture. Biometrics 75, 1345-1355.
    Pradel, R. (1996) Utilization of capture-mark-recapture for the study of recruitment and
    population growth rate. Biometrics 52, 703-709.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pardus.simulate.captures import CaptureData, CaptureModelError, Mask, simulate_captures


@dataclass(frozen=True)
class Demography:
    """Yearly demographic rates of the simulated population (all per year)."""

    survival: float = 0.8
    recruitment: float = 0.3
    immigration_per_km2: float = 0.0
    dispersal_m: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.survival <= 1.0:
            raise CaptureModelError(f"survival is a probability per year: {self.survival} is outside [0, 1]")
        if self.recruitment < 0 or self.immigration_per_km2 < 0 or self.dispersal_m < 0:
            raise CaptureModelError("recruitment, immigration and dispersal cannot be negative")


@dataclass
class YearTruth:
    """What really happened in one year: who was alive, who was new, and the year's captures."""

    year: int
    alive: np.ndarray  # global animal ids alive this year (rows of ``captures.centres``, same order)
    births: int  # recruits that entered since last year
    immigrants: int
    deaths: int  # animals of last year that did not survive to this year
    captures: CaptureData

    @property
    def n(self) -> int:
        return len(self.alive)

    @property
    def detected_ids(self) -> np.ndarray:
        """Global ids of the animals detected this year (the identities a park would confirm)."""
        return self.alive[self.captures.detected]


@dataclass
class MultiYearPark:
    """Seasons of several years over one region, with the demographic truth behind them."""

    years: list[YearTruth]
    demography: Demography
    region: Mask
    density0_per_km2: float
    n_animals_ever: int

    @property
    def area_km2(self) -> float:
        return self.region.area_km2

    def realised_density_per_km2(self) -> np.ndarray:
        """Animals alive each year divided by the region's area."""
        return np.array([y.n for y in self.years]) / self.area_km2

    def expected_density_per_km2(self) -> np.ndarray:
        """The process's expected density each year: D_{t+1} = (φ + f) D_t + immigration."""
        d = [self.density0_per_km2]
        dem = self.demography
        for _ in self.years[1:]:
            d.append((dem.survival + dem.recruitment) * d[-1] + dem.immigration_per_km2)
        return np.array(d)

    def encounter_histories(self) -> tuple[np.ndarray, np.ndarray]:
        """(animals detected in some year x years) 0/1 matrix and the animals' global ids.

        The data of a Cormack-Jolly-Seber or Pradel analysis: a row per identified animal, a column
        per year, 1 where the animal was photographed that year.
        """
        ids = np.unique(np.concatenate([y.detected_ids for y in self.years]))
        hist = np.zeros((len(ids), len(self.years)), dtype=np.int8)
        for t, y in enumerate(self.years):
            hist[np.searchsorted(ids, y.detected_ids), t] = 1
        return hist, ids


def simulate_years(
    traps: np.ndarray,
    *,
    years: Sequence[int],
    density_per_km2: float,
    sigma_m: float,
    occasions: int,
    demography: Demography,
    lambda0: float | Sequence[float] | None = None,
    g0: float | Sequence[float] | None = None,
    detector: str = "proximity",
    buffer_m: float | None = None,
    seed: int | np.random.Generator | None = None,
) -> MultiYearPark:
    """Simulate one camera grid sampled in each of ``years`` while its population changes.

    ``lambda0`` (or ``g0``) may be one value or one per year (detection that changes between years,
    e.g. a new camera model). Every year has ``occasions`` occasions of full effort.
    """
    traps = np.asarray(traps, dtype=np.float64)
    if len(years) < 1:
        raise CaptureModelError("give at least one year")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    buffer = 4.0 * sigma_m if buffer_m is None else float(buffer_m)
    region = Mask.around(traps, buffer)
    lo = np.array([region.x_min, region.y_min])
    span = np.array([region.x_max - region.x_min, region.y_max - region.y_min])

    def per_year(v: float | Sequence[float] | None) -> list[float | None]:
        if v is None or isinstance(v, int | float):
            return [v] * len(years)  # type: ignore[list-item]
        if len(v) != len(years):
            raise CaptureModelError(f"{len(v)} detection values for {len(years)} years")
        return [float(x) for x in v]

    lam_y, g0_y = per_year(lambda0), per_year(g0)
    n0 = int(rng.poisson(density_per_km2 * region.area_km2))
    centres = lo + rng.random((n0, 2)) * span
    alive = np.arange(n0)
    next_id = n0
    out: list[YearTruth] = []
    births = immigrants = deaths = 0
    for t, year in enumerate(years):
        if t > 0:
            dem = demography
            surv = rng.random(len(alive)) < dem.survival
            deaths = int((~surv).sum())
            kept = centres[surv]
            if dem.dispersal_m > 0 and len(kept):
                kept = lo + np.mod(kept + rng.normal(0.0, dem.dispersal_m, kept.shape) - lo, span)
            births = int(rng.poisson(dem.recruitment * len(alive)))
            immigrants = int(rng.poisson(dem.immigration_per_km2 * region.area_km2))
            new = lo + rng.random((births + immigrants, 2)) * span
            alive = np.concatenate([alive[surv], np.arange(next_id, next_id + births + immigrants)])
            next_id += births + immigrants
            centres = np.vstack([kept, new])
        cap = simulate_captures(
            traps,
            density_per_km2=density_per_km2,
            sigma_m=sigma_m,
            occasions=occasions,
            g0=g0_y[t],
            lambda0=lam_y[t],
            detector=detector,
            buffer_m=buffer,
            centres=centres,
            seed=rng,
        )
        out.append(YearTruth(int(year), alive.copy(), births, immigrants, deaths, cap))
    return MultiYearPark(out, demography, region, float(density_per_km2), next_id)
