"""Does the interval of a habitat slope (SECR ``D ~ cover``) cover the truth, and is it unbiased?

Simulates populations whose density follows a habitat covariate over the mask (an inhomogeneous
Poisson process, ``log D = β0 + β1 cover``, cover standardised east-west gradient plus a patchy
component), samples them with the leopard-like 40-camera design of ``bench/secr_trend.py`` and fits
``pardus.stats.secr_habitat.fit_secr_habitat``. Prints coverage of the 95% intervals of the slope
β1 and of the expected N in the mask, and their relative bias, beside the issue-23 targets
(coverage 0.90-0.98, |relative bias| < 0.05).

Run: nice -n 10 python bench/secr_habitat.py [--reps 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from pardus.simulate.captures import centres_from_surface, simulate_captures
from pardus.stats.secr import Traps, grid_xy, make_mask
from pardus.stats.secr_habitat import fit_secr_habitat

XY = grid_xy(8, 5, 2000.0)
OCC, LAMBDA0, SIGMA, BUFFER, SPACING = 60, 0.05, 2500.0, 10_000.0, 1000.0
D_MEAN_KM2, SLOPE = 0.05, 0.6


def cover(mask_xy: np.ndarray) -> np.ndarray:
    """A standardised habitat covariate: an east-west gradient plus a smooth patch pattern."""
    x, y = mask_xy[:, 0], mask_xy[:, 1]
    raw = x / 10_000.0 + np.sin(x / 4000.0) * np.cos(y / 5000.0)
    return (raw - raw.mean()) / raw.std()


def one(seed: int) -> tuple[float, float, float, float, float, float, float, bool] | None:
    rng = np.random.default_rng(seed)
    mask = make_mask(XY, BUFFER, spacing=SPACING)
    z = cover(mask.xy)
    dens = D_MEAN_KM2 * np.exp(SLOPE * z) / np.mean(np.exp(SLOPE * z))
    n_exp = float(dens.sum() * SPACING**2 / 1e6)
    centres = centres_from_surface(mask.xy, SPACING, dens, seed=rng)
    data = simulate_captures(
        XY,
        density_per_km2=0.0,
        sigma_m=SIGMA,
        occasions=OCC,
        lambda0=LAMBDA0,
        centres=centres,
        buffer_m=BUFFER,
        seed=rng,
    )
    if len(data.detected) < 3:
        return None
    traps = Traps(XY, detector="proximity", usage=np.ones((len(XY), OCC)))
    fit = fit_secr_habitat(data.captures, traps, mask, {"cover": z}, detectfn="HHN")
    s, n = fit.slope("cover"), fit.expected_n
    return s.value, s.lcl, s.ucl, n.value, n.lcl, n.ucl, n_exp, fit.converged


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=31)
    args = ap.parse_args()
    t = time.perf_counter()
    jobs = [args.seed * 100_000 + i for i in range(args.reps)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            res = list(ex.map(one, jobs, chunksize=2))
    else:
        res = [one(j) for j in jobs]
    ok = np.array([r for r in res if r is not None], dtype=float)
    print(
        f"design: 40 cameras (8 x 5, 2 km), {OCC} daily occasions, HHN lambda0 {LAMBDA0}/day, sigma {SIGMA:.0f} m, "
        f"mean D {D_MEAN_KM2 * 100:.0f}/100 km², log D slope {SLOPE} per SD of cover; mask buffer {BUFFER:.0f} m, "
        f"spacing {SPACING:.0f} m"
    )
    print(
        f"{len(ok)} populations fitted ({args.reps - len(ok)} skipped: < 3 animals), {int(ok[:, 7].sum())} converged; "
        f"{time.perf_counter() - t:.0f} s"
    )
    print(f"  {'parameter':<28}{'reps':>6}{'cover':>10}{'MC se':>8}{'rel.bias':>10}{'MC se':>8}")
    passed = True
    for name, (v, lo, hi, truth) in {
        "slope of cover (log D)": (ok[:, 0], ok[:, 1], ok[:, 2], np.full(len(ok), SLOPE)),
        "N expected in the mask": (ok[:, 3], ok[:, 4], ok[:, 5], ok[:, 6]),
    }.items():
        cov = float(((lo <= truth) & (truth <= hi)).mean())
        rel = v / truth - 1
        b, b_se = float(rel.mean()), float(rel.std(ddof=1) / math.sqrt(len(rel)))
        good = 0.90 <= cov <= 0.98 and abs(b) < 0.05
        passed &= good
        print(
            f"  {name:<28}{len(ok):>6}{cov:>10.3f}{math.sqrt(cov * (1 - cov) / len(ok)):>8.3f}{b:>+10.3f}{b_se:>8.3f}"
            f"   {'PASS' if good else 'FAIL'}"
        )
    print("targets: coverage 0.90-0.98, |relative bias| < 0.05")
    print("RESULT:", "PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
