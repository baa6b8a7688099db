"""Density maps: where the animals of a plot live, per habitat-mask cell, as an image, CSV and GeoTIFF.

Why: a park manager reads a map before a number. Two surfaces are mapped:

* **From the plot-year's SECR fit (D~1)** the fitted density is the same in every cell, which says
  nothing about where the animals are. The map is instead secr's ``fxTotal`` surface (Efford, R
  package secr; Borchers & Efford 2008): for every detected animal the posterior distribution of
  its activity centre given its capture history, ``Pr(ω_i | x) / Σ_x Pr(ω_i | x)``, summed over the
  animals, plus the density of the animals that were not detected, ``D̂ (1 - p.(x))``. Its integral
  over the mask is ``n + D̂ (A - a) = D̂ A`` (since ``D̂ = n / a``), so the mean over the cells is
  exactly the fitted density: the map redistributes the reported density, it adds none.
  No per-cell SE is given for it (secr gives none either).
* **From a density-over-habitat fit (D~cover)**, :mod:`pardus.stats.secr_habitat`, the fitted
  surface ``D(x) = exp(β0 + Σ β_k z_k(x))`` with its delta-method SE per cell; its sum over the
  cells times the cell area is the expected number of animals in the mask.

Files: ``rows`` feed a CSV (``x, y`` in the stations' metres, density per ha and per 100 km², SE),
:func:`map_png` the report's figure, and :func:`write_geotiff` a one- or two-band GeoTIFF through
rasterio (cells outside the mask are nodata). Habitat covariates come in the same way, from a CSV of
cell centres or from a raster the park already has (:func:`read_habitat`).

References:
    Borchers, D. L. and Efford, M. G. (2008) Spatially explicit maximum likelihood methods for
    capture-recapture studies. Biometrics 64, 377-385.
    Efford, M. G. secr: Spatially explicit capture-recapture models. R package (``fxTotal``,
    ``predictDsurface``, ``addCovariates``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pardus.stats.secr import Mask, SecrError, SecrFit, Traps, _Prepared
from pardus.stats.secr_habitat import SecrHabitatFit, read_cell_covariates

PER_100KM2 = 1e4  # 1 animal/ha = 10,000 animals per 100 km²
EARTH_RADIUS_M = 6_371_008.8  # the radius the report's local projection uses (report.station_coordinates)


@dataclass(frozen=True)
class DensityMap:
    """Density per mask cell (animals/ha), the cells' centres (m) and, when the model gives it, SE per cell."""

    kind: str  # "centres" (fxTotal of a D~1 fit) or "habitat" (fitted D~covariate surface)
    title: str
    model: str
    xy: np.ndarray = field(repr=False)
    spacing: float
    density: np.ndarray = field(repr=False)  # animals/ha per cell
    se: np.ndarray | None = field(default=None, repr=False)

    @property
    def cell_area_ha(self) -> float:
        return self.spacing**2 / 1e4

    @property
    def expected_n(self) -> float:
        """Animals whose activity centres lie in the mask: the surface summed over the cells."""
        return float(self.density.sum() * self.cell_area_ha)

    @property
    def mean_density(self) -> float:
        """Mean density over the mask's cells (animals/ha); for a D~1 fit it is the fitted D."""
        return float(self.density.mean())

    def rows(self) -> list[dict[str, float | str]]:
        """One CSV row per cell: x, y (m), density per ha and per 100 km², SE (empty when not estimated)."""
        se = self.se if self.se is not None else [None] * len(self.density)
        return [
            {
                "x": float(x),
                "y": float(y),
                "density_per_ha": float(d),
                "density_per_100km2": float(d * PER_100KM2),
                "se_per_100km2": "" if s is None else float(s * PER_100KM2),
            }
            for (x, y), d, s in zip(self.xy, self.density, se, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "model": self.model,
            "cells": len(self.density),
            "spacing_m": self.spacing,
            "mean_density_per_100km2": self.mean_density * PER_100KM2,
            "max_density_per_100km2": float(self.density.max() * PER_100KM2),
            "expected_n_in_mask": self.expected_n,
        }

    def grid(self) -> tuple[np.ndarray, np.ndarray | None, float, float]:
        """The cells on their regular lattice, north row first: (density, se, west edge, north edge).

        Cells of the lattice outside the mask are NaN. Mask cells are centres ``lo + spacing (i + 1/2)``
        (:func:`pardus.stats.secr.make_mask`), so rounding recovers each cell's row and column.
        """
        x0, y1 = float(self.xy[:, 0].min()), float(self.xy[:, 1].max())
        col = np.rint((self.xy[:, 0] - x0) / self.spacing).astype(int)
        row = np.rint((y1 - self.xy[:, 1]) / self.spacing).astype(int)
        shape = (int(row.max()) + 1, int(col.max()) + 1)
        dens = np.full(shape, np.nan)
        dens[row, col] = self.density
        se = None
        if self.se is not None:
            se = np.full(shape, np.nan)
            se[row, col] = self.se
        return dens, se, x0 - self.spacing / 2, y1 + self.spacing / 2


def centres_map(counts: np.ndarray, traps: Traps, mask: Mask, fit: SecrFit) -> DensityMap:
    """secr's ``fxTotal`` for a D~1 fit: detected animals' centre distributions plus the undetected.

    ``counts``, ``traps`` and ``mask`` must be those of ``fit``; the detection parameters are the
    fit's last two link-scale coefficients (g0 or λ0, σ) under both the full and the conditional
    likelihood. The mean over the cells equals ``fit.density`` (to rounding).
    """
    prep = _Prepared(np.asarray(counts), traps, mask, fit.detectfn)
    theta = np.array(fit.beta[-2:], dtype=float)
    h, _, _ = prep.hazard(theta, False)
    lp, _ = prep.log_pr(h, [], [])
    lp = lp - lp.max(axis=1, keepdims=True)
    post = np.exp(lp)
    post /= post.sum(axis=1, keepdims=True)  # each detected animal's centre: a distribution over the cells
    undetected = fit.density.value * np.exp(-(prep.U @ h))  # D (1 - p.(x)), animals/ha
    dens = post.sum(axis=0) / mask.cell_area_ha + undetected
    return DensityMap(
        kind="centres",
        title="Activity centres of the detected animals and the expected undetected ones (secr fxTotal)",
        model=fit.model,
        xy=mask.xy,
        spacing=mask.spacing,
        density=dens,
    )


def habitat_map(fit: SecrHabitatFit, spacing: float) -> DensityMap:
    """The fitted density surface of a D~covariate model, with its SE per cell."""
    names = " + ".join(fit.covariates) or "1"
    return DensityMap(
        kind="habitat",
        title=f"Density over habitat (D ~ {names})",
        model=fit.model,
        xy=fit.mask_xy,
        spacing=spacing,
        density=np.asarray(fit.density_surface, dtype=float),
        se=np.asarray(fit.density_se, dtype=float),
    )


def map_png(dm: DensityMap, stations_xy: np.ndarray | None = None, species: str = "animals") -> bytes:
    """The map as PNG bytes: cells coloured by density per 100 km², stations as triangles, km axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dens, _, west, north = dm.grid()
    rows, cols = dens.shape
    extent = (west / 1e3, (west + cols * dm.spacing) / 1e3, (north - rows * dm.spacing) / 1e3, north / 1e3)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(dens * PER_100KM2, extent=extent, origin="upper", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label=f"{species} per 100 km²", shrink=0.85)
    if stations_xy is not None and len(stations_xy):
        xy = np.asarray(stations_xy, dtype=float) / 1e3
        ax.scatter(xy[:, 0], xy[:, 1], marker="^", s=22, color="white", edgecolor="black", lw=0.6, label="camera")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_aspect("equal")
    ax.set_title(dm.title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def rasterio_available() -> bool:
    """Whether GeoTIFF can be written and read (rasterio is a dependency, but a slim install may lack it)."""
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


def local_crs(latitude: float, longitude: float) -> str:
    """PROJ string of the report's local projection about (latitude, longitude) (report.station_coordinates).

    That projection is ``x = R cos(φ0) (λ - λ0)``, ``y = R (φ - φ0)``: PROJ's equidistant
    cylindrical with true scale at φ0, origin at (φ0, λ0), on a sphere of radius R.
    """
    return (
        f"+proj=eqc +lat_ts={latitude!r} +lat_0={latitude!r} +lon_0={longitude!r} "
        f"+x_0=0 +y_0=0 +R={EARTH_RADIUS_M!r} +units=m +no_defs"
    )


def check_crs(crs: str) -> str:
    """The CRS as rasterio reads it (e.g. ``EPSG:32653``), or a SecrError that says what is wrong."""
    if not rasterio_available():
        raise SecrError("a coordinate system is only used for GeoTIFF, which needs rasterio")
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(crs).to_string()
    except CRSError as exc:
        raise SecrError(f"{crs!r} is not a coordinate system rasterio knows (e.g. EPSG:32653): {exc}") from exc


def write_geotiff(dm: DensityMap, path: Path, crs: str | None = None) -> Path:
    """Write the map as a float32 GeoTIFF: band 1 density per 100 km², band 2 its SE when estimated.

    ``crs`` (e.g. ``EPSG:32653`` or a PROJ string) georeferences the file; without it the grid is
    in the stations' own metres and a GIS needs to be told the system. Cells outside the mask are
    nodata (NaN).
    """
    import rasterio
    from rasterio.transform import Affine

    dens, se, west, north = dm.grid()
    bands = [dens * PER_100KM2] + ([se * PER_100KM2] if se is not None else [])
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": dens.shape[0],
        "width": dens.shape[1],
        "count": len(bands),
        "dtype": "float32",
        "nodata": float("nan"),
        # north-up: x = west + spacing * col, y = north - spacing * row (rasterio's from_origin, written
        # out because from_origin multiplies Affines with *, which affine 3 deprecates)
        "transform": Affine(dm.spacing, 0.0, west, 0.0, -dm.spacing, north),
        "compress": "deflate",
    }
    if crs:
        profile["crs"] = crs
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        for k, band in enumerate(bands, start=1):
            dst.write(band.astype("float32"), k)
        dst.set_band_description(1, "density per 100 km2")
        if len(bands) > 1:
            dst.set_band_description(2, "SE of density per 100 km2")
        dst.update_tags(model=dm.model, kind=dm.kind, units="animals per 100 km2")
    return path


def read_raster_covariates(
    path: str | Path, mask: Mask, crs: str | None = None, names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Covariates per mask cell sampled from a raster (GeoTIFF or any format GDAL reads), one per band.

    Each mask cell takes the value of the raster cell under its centre. ``crs`` is the system of the
    stations' coordinates; when both it and the raster's are known and differ, the cell centres are
    transformed to the raster's system first; otherwise the raster is taken to be in the stations'
    metres. Names are ``names``, else the band descriptions, else the file name (one band) or
    ``band1, band2, ...``. A mask cell off the raster or on nodata is an error, not a silent zero.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_transform

    p = Path(path)
    with rasterio.open(p) as src:
        xs, ys = mask.xy[:, 0].tolist(), mask.xy[:, 1].tolist()
        if crs and src.crs is not None and CRS.from_user_input(crs) != src.crs:
            xs, ys = warp_transform(crs, src.crs, xs, ys)
        values = np.array(
            [v.filled(np.nan) for v in src.sample(zip(xs, ys, strict=True), masked=True)], dtype=float
        )  # (cells, bands)
        desc = list(src.descriptions)
        count = src.count
    if names is None:
        if all(desc):
            names = [str(d) for d in desc]
        elif count == 1:
            names = [p.stem]
        else:
            names = [f"band{k + 1}" for k in range(count)]
    if len(names) != count:
        raise SecrError(f"{p}: {count} bands but {len(names)} names")
    missing = ~np.isfinite(values).all(axis=1)
    if missing.any():
        raise SecrError(
            f"{p}: {int(missing.sum())} of {len(mask)} mask cells fall off the raster or on nodata; "
            "give a raster covering every station's surroundings (the mask buffer), in the stations' coordinates"
        )
    return {str(nm): values[:, k] for k, nm in enumerate(names)}


def read_habitat(path: str | Path, mask: Mask, crs: str | None = None) -> dict[str, np.ndarray]:
    """Habitat covariates per mask cell from a CSV of cells (``x, y`` and columns) or a raster file."""
    p = Path(path)
    if not p.is_file():
        raise SecrError(f"habitat file {p} not found")
    if p.suffix.lower() in (".csv", ".txt"):
        return read_cell_covariates(p, mask)
    if not rasterio_available():
        raise SecrError(
            f"{p}: reading rasters needs rasterio; export the raster's cell centres to a CSV of x, y, value"
        )
    return read_raster_covariates(p, mask, crs)


def standardise(covariates: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Covariates centred and scaled over the mask, and each one's (mean, SD) to read slopes back.

    Why: a slope per standard deviation compares covariates in different units (% cover, metres of
    elevation) and keeps the optimiser's scale sane; the report gives the SD so a slope per unit
    is one division away. A covariate constant over the mask cannot be fitted and is an error.
    """
    out: dict[str, np.ndarray] = {}
    scale: dict[str, tuple[float, float]] = {}
    for name, v in covariates.items():
        v = np.asarray(v, dtype=float)
        mu, sd = float(v.mean()), float(v.std())
        if not math.isfinite(sd) or sd <= 0:
            raise SecrError(
                f"habitat covariate {name!r} has the same value in every mask cell; it cannot explain density"
            )
        out[name] = (v - mu) / sd
        scale[name] = (mu, sd)
    return out, scale
