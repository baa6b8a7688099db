"""Test helper: a simulated multi-year plot written into a store as a park's reviewed rows would be.

Every capture of :func:`pardus.simulate.years.simulate_years` becomes one photo with one leopard
observation identified by a person, at noon of its occasion day, at a camera of the plot deployed
for the season of each year. Used by the trend, density-map and park-summary tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from pardus.simulate.years import Demography, MultiYearPark, simulate_years
from pardus.stats.secr import grid_xy
from pardus.store.models import Deployment, Individual, Location, Media, Observation

TZ = timezone(timedelta(hours=10))
LEOPARD = "Panthera pardus orientalis"
NORTH_DAYS = 30


def north_park() -> tuple[MultiYearPark, np.ndarray]:
    """Plot North: 16 stations 1.5 km apart, a growing population over 2022-2024 (seed 21)."""
    xy = grid_xy(4, 4, 1500.0)
    park = simulate_years(xy, years=[2022, 2023, 2024], density_per_km2=0.5, sigma_m=1200.0, occasions=NORTH_DAYS,
                          lambda0=0.08, demography=Demography(0.85, 0.35), seed=21)
    return park, xy


def write_plot_years(
    session: Any, plot: str, park: MultiYearPark, xy: np.ndarray, *, days: int, prefix: str | None = None
) -> dict[int, int]:
    """Write one plot's stations, yearly deployments (1 March, ``days`` long) and confirmed captures.

    Returns the number of animals identified per year. Station, deployment, photo and animal codes
    start with ``prefix`` (default: the plot's name), so several plots fit in one store.
    """
    pre = prefix or plot
    names = [f"{pre}{k:02d}" for k in range(len(xy))]
    for name, (x, y) in zip(names, xy, strict=True):
        session.add(Location(id=name, name=name, plot=plot, x_m=float(x), y_m=float(y)))
    session.flush()
    animals: dict[int, Individual] = {}
    seen: dict[int, int] = {}
    n = 0
    for yt in park.years:
        start = datetime(yt.year, 3, 1, 10, tzinfo=TZ)
        for name in names:
            session.add(
                Deployment(id=f"D-{name}-{yt.year}", location_id=name, start=start, end=start + timedelta(days=days))
            )
        session.flush()
        rows = list(yt.captures.rows())
        fresh = {int(yt.alive[i]) for i, _, _, _ in rows} - set(animals)
        animals.update({g: Individual(code=f"{pre}_{g:03d}", scientific_name=LEOPARD) for g in sorted(fresh)})
        session.add_all([animals[g] for g in sorted(fresh)])
        seen[yt.year] = len({int(yt.alive[i]) for i, _, _, _ in rows})
        media = []
        for i, occ, k, _ in rows:
            dep = f"D-{names[k]}-{yt.year}"
            mid = f"{pre}-m{n:05d}"
            media.append((mid, dep, int(yt.alive[i])))
            session.add(
                Media(
                    id=mid,
                    deployment_id=dep,
                    file_path=f"{mid}.JPG",
                    file_mediatype="image/jpeg",
                    timestamp=start + timedelta(days=occ, hours=12),
                )
            )
            n += 1
        session.flush()  # media and individuals before the observations that point at them
        session.add_all(
            [
                Observation(
                    deployment_id=dep,
                    media_id=mid,
                    observation_type="animal",
                    scientific_name=LEOPARD,
                    individual_id=animals[g].id,
                    classification_method="human",
                    count=1,
                    observation_level="media",
                )
                for mid, dep, g in media
            ]
        )
        session.flush()
    return seen
