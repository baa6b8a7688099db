"""Activity patterns: when in the day a species is active, and how much two species overlap.

Times of day are angles (0..2π for 00:00..24:00). Densities are von Mises kernel densities on the
circle with the bandwidth rule of Ridout & Linkie (2009), after Taylor (2008): fit a von Mises
concentration κ to the data by trigonometric moments (the largest of the estimates from the first
``kmax`` moments, which keeps two-peaked patterns from being oversmoothed), then use the kernel
concentration ``ν = [3 n κ² I₂(2κ) / (4 √π I₀(κ)²)]^(2/5)``, multiplied by ``adjust``.

Overlap between two activity densities (coefficient of overlapping Δ = ∫ min(f, g)):
``Dhat1`` (numerical integral on a grid, adjust 0.8) for small samples and ``Dhat4`` (adjust 1)
otherwise; following Meredith & Ridout's recommendation, Dhat4 when the smaller sample has more
than 75 records. Intervals come from a smoothed bootstrap (resampling the fitted kernel densities) with the
"basic0" interval (Meredith & Ridout, package overlap: percentile interval shifted by the bootstrap
bias so it is centred on the estimate).

Sun time: near the Land of the Leopard the night lasts from 7 to 16 hours over a year, so clock
time smears nocturnal activity. ``solar_times`` maps each record's sunrise to π/2 and sunset to
3π/2, linearly in between (double anchoring, Nouvellet et al. 2012; Vazquez et al. 2019), with
sunrise and sunset from the NOAA solar-position equations for the station's latitude, longitude
and date.

References:
    Ridout, M. S. and Linkie, M. (2009) Estimating overlap of daily activity patterns from camera
    trap data. JABES 14, 322-337.
    Taylor, C. C. (2008) Automatic bandwidth selection for circular density estimation.
    Computational Statistics & Data Analysis 52, 3493-3500.
    Meredith, M. and Ridout, M. overlap: Estimates of coefficient of overlapping for animal activity
    patterns. R package (vignette "overlap": choice of Dhat1/Dhat4, bootstrap intervals).
    Nouvellet, P., Rasmussen, G. S. A., Macdonald, D. W. and Courchamp, F. (2012) Noisy clocks and
    silent sunrises: measurement methods of daily activity pattern. J. Zoology 286, 179-184.
    Vazquez, C. et al. (2019) Comparing diel activity patterns of wildlife across latitudes and
    seasons: time transformations using day length. Methods Ecol. Evol. 10, 2057-2066.
    NOAA Global Monitoring Laboratory, "General Solar Position Calculations" (equation of time,
    declination, hour angle with the 90.833° zenith for sunrise/sunset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
from scipy.special import ive

from pardus.stats.estimates import Estimate

TWO_PI = 2.0 * math.pi
DHAT4_MIN_SAMPLE = 75


class ActivityError(ValueError):
    """Times an activity analysis cannot use; the message says what is wrong."""


def _check_radians(x: np.ndarray, what: str = "times") -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    if x.size < 2:
        raise ActivityError(f"{what}: at least 2 records are needed for an activity density, got {x.size}")
    if np.any(~np.isfinite(x)):
        raise ActivityError(f"{what}: some times are missing")
    return np.mod(x, TWO_PI)


_KAPPA = np.geomspace(1e-4, 345.0, 20_000)
_A_TABLE = {k: ive(k, _KAPPA) / ive(0, _KAPPA) for k in range(1, 9)}  # A_k(κ) = I_k(κ)/I_0(κ), increasing


def _bandwidths(x: np.ndarray, kmax: int = 3) -> np.ndarray:
    """Kernel concentrations for each row of ``x`` (samples x observations); NaN where no κ exists.

    κ is solved from ``A_k(κ) = R̄_k`` (mean resultant length of the k-th trigonometric moment about
    the mean direction) by inverting a fine table of ``A_k`` (relative error below 1e-6), and the
    largest of the k = 1..kmax solutions is used, as Ridout & Linkie (2009) do.
    """
    if not 1 <= kmax <= 8:
        raise ActivityError("kmax must be between 1 and 8")
    x = np.atleast_2d(x)
    n = x.shape[1]
    mu = np.arctan2(np.sin(x).sum(axis=1), np.cos(x).sum(axis=1))[:, None]
    moments = []
    for k in range(1, kmax + 1):
        d = k * (x - mu)
        moments.append(np.hypot(np.sin(d).mean(axis=1), np.cos(d).mean(axis=1)))
    return _bandwidths_from_moments(moments, np.full(x.shape[0], float(n)))


def _bandwidths_from_moments(moments: list[np.ndarray], n: np.ndarray) -> np.ndarray:
    """The kernel concentration from the mean resultant lengths R̄_1..R̄_kmax of each sample (rows).

    Why a separate step: R̄_k does not depend on the mean direction, so the binned bootstrap reads
    it straight off the FFT of its bin counts instead of from every record."""
    kap = np.full(n.shape[0], np.nan)
    for k, rk in enumerate(moments, start=1):
        table = _A_TABLE[k]
        ok = (rk >= table[0]) & (rk <= table[-1])
        est = np.where(ok, np.interp(rk, table, _KAPPA), np.nan)
        kap = np.fmax(kap, est)
    ratio = ive(2, 2 * kap) / ive(0, kap) ** 2  # I2(2κ)/I0(κ)²: the exponential factors cancel
    return (3 * n * kap**2 * ratio / (4 * math.sqrt(math.pi))) ** 0.4


def bandwidth(x: np.ndarray, kmax: int = 3) -> float:
    """Kernel concentration for von Mises KDE (Ridout & Linkie 2009, after Taylor 2008)."""
    bw = float(_bandwidths(_check_radians(x)[None, :], kmax)[0])
    if not np.isfinite(bw):
        raise ActivityError("could not estimate the activity bandwidth (times too spread or too few)")
    return bw


def _kde(x: np.ndarray, at: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Batched von Mises KDE: x (B, n), at (B, m) or (m,), c (B,) -> densities (B, m)."""
    at = np.broadcast_to(at, (x.shape[0], at.shape[-1]))
    k = np.exp(c[:, None, None] * (np.cos(at[:, :, None] - x[:, None, :]) - 1.0))
    return k.mean(axis=2) / (TWO_PI * ive(0, c))[:, None]


FINE_BINS = 16384  # binning step 2π/16384 (5 s of the day): far below any activity bandwidth
BINNED_FROM = 512  # records per sample from which the grid densities are computed by FFT


def _kde_on_grid(x: np.ndarray, n_grid: int, c: np.ndarray) -> np.ndarray:
    """``_kde(x, grid, c)`` on the even grid j·2π/n_grid, for large samples: the records are counted
    into FINE_BINS bins and the counts convolved with the von Mises kernel by FFT, so the cost no
    longer grows with the number of records (the direct sum was 95% of a plot-year report at
    100,000 photos: bench/store_scale.py). Each record moves at most half a fine bin (0.0002 rad);
    the densities agree with the direct sum to 1e-3 relative (tests/stats/test_stats_activity.py)."""
    if FINE_BINS % n_grid:
        return _kde(x, np.arange(n_grid) * TWO_PI / n_grid, c)
    b, n = x.shape
    idx = np.rint(np.mod(x, TWO_PI) / TWO_PI * FINE_BINS).astype(np.int64) % FINE_BINS
    flat = (idx + np.arange(b)[:, None] * FINE_BINS).ravel()
    counts = np.bincount(flat, minlength=b * FINE_BINS).astype(float).reshape(b, FINE_BINS)
    offsets = np.arange(FINE_BINS) * TWO_PI / FINE_BINS
    kernel = np.exp(c[:, None] * (np.cos(offsets)[None, :] - 1.0))
    dens = np.fft.irfft(np.fft.rfft(counts, axis=1) * np.fft.rfft(kernel, axis=1), n=FINE_BINS, axis=1)
    return dens[:, :: FINE_BINS // n_grid] / (n * TWO_PI * ive(0, c))[:, None]


def _grid_density(x: np.ndarray, n_grid: int, c: np.ndarray) -> np.ndarray:
    if x.shape[1] >= BINNED_FROM:
        return _kde_on_grid(x, n_grid, c)
    return _kde(x, np.arange(n_grid) * TWO_PI / n_grid, c)


def kernel_density(x: np.ndarray, at: np.ndarray, concentration: float) -> np.ndarray:
    """von Mises kernel density of the sample ``x`` evaluated at angles ``at`` (integrates to 1)."""
    x = np.asarray(x, dtype=float).ravel()
    at = np.asarray(at, dtype=float)
    return _kde(x[None, :], at.ravel()[None, :], np.array([concentration]))[0].reshape(at.shape)


@dataclass(frozen=True)
class ActivityDensity:
    """A fitted activity density on a grid, for plots and tables."""

    grid: np.ndarray
    density: np.ndarray
    concentration: float
    n: int


def activity_density(x: np.ndarray, n_grid: int = 256, adjust: float = 1.0, kmax: int = 3) -> ActivityDensity:
    x = _check_radians(x)
    bw = bandwidth(x, kmax) * adjust
    grid = np.linspace(0, TWO_PI, n_grid)
    return ActivityDensity(grid, kernel_density(x, grid, bw), bw, x.size)


def _dhat1_batch(a: np.ndarray, b: np.ndarray, adjust: float = 0.8, n_grid: int = 128, kmax: int = 3) -> np.ndarray:
    fa = _grid_density(a, n_grid, _bandwidths(a, kmax) * adjust)
    fb = _grid_density(b, n_grid, _bandwidths(b, kmax) * adjust)
    return np.minimum(fa / fa.sum(axis=1, keepdims=True), fb / fb.sum(axis=1, keepdims=True)).sum(axis=1)


def _interp_periodic(f_grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of densities given on an even grid of [0, 2π) at angles x, row by row."""
    g = f_grid.shape[1]
    pos = x / TWO_PI * g
    i0 = np.floor(pos).astype(np.int64) % g
    w = pos - np.floor(pos)
    rows = np.arange(x.shape[0])[:, None]
    return (1 - w) * f_grid[rows, i0] + w * f_grid[rows, (i0 + 1) % g]


BOOT_BINS = 4096  # the bootstrap's bins: 21 s of the day, still far below any activity bandwidth


def _bin_grid(bins: int) -> np.ndarray:
    return np.arange(bins) * TWO_PI / bins


def _bin_counts(x: np.ndarray, bins: int = BOOT_BINS) -> np.ndarray:
    """Counts of the records of one sample in ``bins`` bins centred on ``_bin_grid(bins)``."""
    idx = np.rint(np.mod(x, TWO_PI) / TWO_PI * bins).astype(np.int64) % bins
    return np.bincount(idx, minlength=bins).astype(float)


def _kernel_fft(c: np.ndarray, bins: int) -> np.ndarray:
    return np.fft.rfft(np.exp(c[:, None] * (np.cos(_bin_grid(bins))[None, :] - 1.0)), axis=1)


def _grid_to_bins(grid: np.ndarray, bins: int) -> np.ndarray:
    """Densities on the n-point grid, linearly interpolated at the centres of ``bins`` bins (a
    multiple of n): the same as ``_interp_periodic`` at those points, by broadcasting."""
    b, n = grid.shape
    w = np.arange(bins // n) / (bins // n)
    nxt = np.roll(grid, -1, axis=1)
    return (grid[:, :, None] * (1 - w) + nxt[:, :, None] * w).reshape(b, bins)


def _binned_dhat4(counts_a: np.ndarray, counts_b: np.ndarray, kmax: int = 3, n_grid: int = 128) -> np.ndarray:
    """Δ̂4 of samples given as bin counts (rows): the large-sample path of ``_dhat4_batch`` with each
    record at its bin centre, at a cost that does not grow with the number of records.

    Bandwidths come from the trigonometric moments (the FFT of the counts), densities from the
    FFT convolution on the 128-point grid, interpolated at the bin centres and weighted by counts."""
    bins = counts_a.shape[1]
    dens = []
    for counts in (counts_a, counts_b):
        n = counts.sum(axis=1)
        spec = np.fft.rfft(counts, axis=1)
        moments = [np.abs(spec[:, k]) / n for k in range(1, kmax + 1)]
        c = _bandwidths_from_moments(moments, n)
        fine = np.fft.irfft(spec * _kernel_fft(np.nan_to_num(c, nan=1.0), bins), n=bins, axis=1)
        grid = fine[:, :: bins // n_grid] / (n * TWO_PI * ive(0, c))[:, None]
        dens.append((_grid_to_bins(grid, bins), n))
    (fa, na), (fb, nb) = dens
    with np.errstate(divide="ignore", invalid="ignore"):
        part_a = np.where(counts_a > 0, counts_a * np.minimum(1, fb / fa), 0.0).sum(axis=1) / na
        part_b = np.where(counts_b > 0, counts_b * np.minimum(1, fa / fb), 0.0).sum(axis=1) / nb
    return 0.5 * (part_a + part_b)


def _binned_resample(x: np.ndarray, concentration: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``_smoothed_resample`` drawn as bin counts: a multinomial draw of len(x) records from the kernel
    density's mass in each bin, the same distribution as drawing each record and then binning it,
    without ever holding n_boot x len(x) times (a million-photo plot has 10^5 records a species)."""
    spec = np.fft.rfft(_bin_counts(x, BOOT_BINS)) * _kernel_fft(np.array([concentration]), BOOT_BINS)[0]
    p = np.maximum(np.fft.irfft(spec, n=BOOT_BINS), 0.0)
    return rng.multinomial(x.size, p / p.sum(), size=n_boot).astype(float)


def _dhat4_batch(a: np.ndarray, b: np.ndarray, adjust: float = 1.0, kmax: int = 3, n_grid: int = 128) -> np.ndarray:
    ca, cb = _bandwidths(a, kmax) * adjust, _bandwidths(b, kmax) * adjust
    if a.shape[1] + b.shape[1] > 1.1 * n_grid:
        # large samples: densities on a grid, interpolated at the records (as package overlap does)
        ga, gb = _grid_density(a, n_grid, ca), _grid_density(b, n_grid, cb)
        fa_a, fb_a = _interp_periodic(ga, a), _interp_periodic(gb, a)
        fa_b, fb_b = _interp_periodic(ga, b), _interp_periodic(gb, b)
    else:
        fa_a, fb_a = _kde(a, a, ca), _kde(b, a, cb)
        fa_b, fb_b = _kde(a, b, ca), _kde(b, b, cb)
    return 0.5 * (np.minimum(1, fb_a / fa_a).mean(axis=1) + np.minimum(1, fa_b / fb_b).mean(axis=1))


def dhat1(a: np.ndarray, b: np.ndarray, adjust: float = 0.8, n_grid: int = 128, kmax: int = 3) -> float:
    """Δ̂1: ∫ min(f̂, ĝ) on an even grid of the circle (Ridout & Linkie 2009), kernel adjust 0.8."""
    a, b = _check_radians(a, "species A"), _check_radians(b, "species B")
    return float(_dhat1_batch(a[None, :], b[None, :], adjust, n_grid, kmax)[0])


def dhat4(a: np.ndarray, b: np.ndarray, adjust: float = 1.0, kmax: int = 3) -> float:
    """Δ̂4: ½[mean over A of min(1, ĝ/f̂) + mean over B of min(1, f̂/ĝ)] (Ridout & Linkie 2009)."""
    a, b = _check_radians(a, "species A"), _check_radians(b, "species B")
    return float(_dhat4_batch(a[None, :], b[None, :], adjust, kmax)[0])


def _smoothed_resample(x: np.ndarray, concentration: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Draw n_boot samples of len(x) from the kernel density of x (data point + von Mises noise).

    This is the parametric ("smoothed") bootstrap Meredith & Ridout recommend over resampling the
    data alone, which can never produce a time outside the observed range.
    """
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return np.mod(x[idx] + rng.vonmises(0.0, concentration, size=idx.shape), TWO_PI)


@dataclass(frozen=True)
class Overlap:
    """Coefficient of overlapping between two species' activity, with bootstrap interval."""

    species_a: str
    species_b: str
    n_a: int
    n_b: int
    estimator: str
    estimate: Estimate
    n_boot: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "species_a": self.species_a,
            "species_b": self.species_b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "estimator": self.estimator,
            "estimate": self.estimate.as_dict(),
            "n_boot": self.n_boot,
        }


def overlap(
    a: np.ndarray,
    b: np.ndarray,
    *,
    species_a: str = "A",
    species_b: str = "B",
    estimator: Literal["auto", "Dhat1", "Dhat4"] = "auto",
    n_boot: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> Overlap:
    """Overlap Δ of two activity patterns with a smoothed-bootstrap "basic0" interval.

    ``auto`` follows Meredith & Ridout: Dhat4 if the smaller sample has more than 75 records,
    otherwise Dhat1. At least 1000 resamples are recommended there; the interval is the percentile
    interval shifted by the bootstrap bias, so it is centred on the estimate ("basic0").
    """
    a, b = _check_radians(a, species_a), _check_radians(b, species_b)
    if estimator == "auto":
        estimator = "Dhat4" if min(a.size, b.size) > DHAT4_MIN_SAMPLE else "Dhat1"
    batch = _dhat4_batch if estimator == "Dhat4" else _dhat1_batch
    t0 = float(batch(a[None, :], b[None, :])[0])
    if not np.isfinite(t0):
        raise ActivityError("could not estimate the activity bandwidth (times too spread or too few)")
    if n_boot < 40:
        raise ActivityError("at least 40 bootstrap samples are needed for a 95% interval")
    rng = rng or np.random.default_rng(0)
    if estimator == "Dhat4" and a.size + b.size >= 2 * BINNED_FROM:
        # big samples: resample and estimate on bin counts, a cost independent of the records
        bt = np.concatenate([
            _binned_dhat4(_binned_resample(a, bandwidth(a), m, rng), _binned_resample(b, bandwidth(b), m, rng))
            for m in [min(100, n_boot - i) for i in range(0, n_boot, 100)]
        ])
    else:
        ba = _smoothed_resample(a, bandwidth(a), n_boot, rng)
        bb = _smoothed_resample(b, bandwidth(b), n_boot, rng)
        chunk = max(1, int(4e6 // (max(a.size, b.size) * max(a.size, b.size, 128))))
        bt = np.concatenate([batch(ba[i : i + chunk], bb[i : i + chunk]) for i in range(0, n_boot, chunk)])
    arr = bt[np.isfinite(bt)]
    if arr.size < 40:
        raise ActivityError("too few bootstrap samples gave an estimate; the activity data are too sparse")
    alpha = 1 - level
    shift = float(arr.mean()) - t0
    lo, hi = np.quantile(arr, [alpha / 2, 1 - alpha / 2]) - shift
    est = Estimate(
        f"overlap {estimator}",
        t0,
        float(arr.std(ddof=1)),
        float(min(max(lo, 0.0), 1.0)),
        float(min(max(hi, 0.0), 1.0)),
        f"smoothed bootstrap basic0 ({arr.size} resamples)",
        level,
    )
    return Overlap(species_a, species_b, a.size, b.size, estimator, est, int(arr.size))


# --- time of day and sun time -------------------------------------------------------------------


def clock_radians(times: Sequence[datetime], utc_offset_minutes: int | Sequence[int]) -> np.ndarray:
    """Local clock time of day as an angle, from aware instants and the local UTC offset."""
    offs = [utc_offset_minutes] * len(times) if isinstance(utc_offset_minutes, int) else list(utc_offset_minutes)
    out = np.empty(len(times))
    for i, (t, off) in enumerate(zip(times, offs, strict=True)):
        if t.tzinfo is None:
            raise ActivityError(f"time {t} has no time zone")
        local = t.astimezone(UTC) + timedelta(minutes=off)
        sec = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        out[i] = sec / 86400.0 * TWO_PI
    return out


def _noaa_sun(day: date, lat: float, lon: float) -> tuple[float | None, float | None]:
    """Sunrise and sunset in minutes after 00:00 UTC of ``day`` (None in polar day or night).

    NOAA "General Solar Position Calculations": fractional year γ at local solar noon, equation of
    time and declination by Fourier series, hour angle for the 90.833° zenith (refraction and the
    sun's radius). Accurate to about a minute at mid-latitudes.
    """
    doy = day.timetuple().tm_yday
    days_in_year = 366 if (day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)) else 365
    noon_utc_hour = 12.0 - lon / 15.0
    g = TWO_PI / days_in_year * (doy - 1 + (noon_utc_hour - 12.0) / 24.0)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    phi = math.radians(lat)
    cos_ha = math.cos(math.radians(90.833)) / (math.cos(phi) * math.cos(decl)) - math.tan(phi) * math.tan(decl)
    if cos_ha > 1 or cos_ha < -1:
        return None, None
    ha = math.degrees(math.acos(cos_ha))
    return 720.0 - 4.0 * (lon + ha) - eqtime, 720.0 - 4.0 * (lon - ha) - eqtime


def sunrise_sunset(day: date, lat: float, lon: float) -> tuple[datetime | None, datetime | None]:
    """Sunrise and sunset (UTC) at a place on a date (the date at that longitude)."""
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ActivityError(f"latitude {lat} / longitude {lon} out of range")
    sr, ss = _noaa_sun(day, lat, lon)
    if sr is None or ss is None:
        return None, None
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return base + timedelta(minutes=sr), base + timedelta(minutes=ss)


def solar_times(times: Sequence[datetime], lat: float | Sequence[float], lon: float | Sequence[float]) -> np.ndarray:
    """Sun time of day as an angle: sunrise → π/2, sunset → 3π/2, linear in between (double anchoring).

    Polar day or night (no sunrise or sunset) falls back to local mean solar time for that record.
    """
    n = len(times)
    lats = [lat] * n if isinstance(lat, (int, float)) else list(lat)
    lons = [lon] * n if isinstance(lon, (int, float)) else list(lon)
    out = np.empty(n)
    for i, t in enumerate(times):
        if t.tzinfo is None:
            raise ActivityError(f"time {t} has no time zone")
        la, lo = lats[i], lons[i]
        tu = t.astimezone(UTC)
        mean_solar = tu + timedelta(hours=lo / 15.0)
        d = mean_solar.date()
        evs = []
        for dd in (d - timedelta(days=1), d, d + timedelta(days=1)):
            sr, ss = sunrise_sunset(dd, la, lo)
            if sr is None or ss is None:
                evs = []
                break
            evs += [(sr, "rise"), (ss, "set")]
        if not evs:
            sec = (mean_solar - datetime(d.year, d.month, d.day, tzinfo=UTC)).total_seconds()
            out[i] = sec / 86400.0 * TWO_PI
            continue
        evs.sort()
        for (t0, k0), (t1, _) in zip(evs[:-1], evs[1:], strict=True):
            if t0 <= tu < t1:
                frac = (tu - t0).total_seconds() / (t1 - t0).total_seconds()
                start = math.pi / 2 if k0 == "rise" else 3 * math.pi / 2
                out[i] = (start + math.pi * frac) % TWO_PI
                break
        else:  # pragma: no cover - three days of events always bracket an instant of the middle day
            raise ActivityError(f"could not place {t} between sunrise and sunset")
    return out
