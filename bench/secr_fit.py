"""How fast and how exactly Pardus fits SECR models.

1. secr's demonstration data (captdata, ../shared/data/secr-captdata): Pardus's fit of secrdemo.0
   (full likelihood) and secrdemo.CL (conditional) beside the values published with the R package
   secr, with the ratio Pardus / secr for every number, and the time each fit took.
2. A camera-trap season of 40 cameras (8 x 5 grid, 2 km apart) over 100 daily occasions, simulated
   directly from the SECR model (proximity detectors, hazard halfnormal, 6 cameras with outages),
   fitted on a 4-sigma mask: time against the 5-second target.

The R package itself cannot be installed on these machines (CRAN is not reachable), so the peer's
side is its published fit (PROVENANCE.md) and the peer's time is not measured.

Run: python bench/secr_fit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from pardus.stats.secr import Traps, fit_secr, grid_xy, make_mask, read_secr_text, simulate_captures

SHARED = Path(os.environ.get("PARDUS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
CAPTDATA = SHARED / "data" / "secr-captdata"
TARGET_S = 5.0

# Published with secr (PROVENANCE.md): secrdemo.0 and secrdemo.CL
PUBLISHED = {
    "full": {"D": 5.4798, "g0": 0.27319, "sigma": 29.366, "loglik": -759.0257},
    "conditional": {"g0": 0.27319, "sigma": 29.366, "loglik": -755.9403},
}
PUBLISHED_SE_BETA = {"D": 0.11761, "g0": 0.13624, "sigma": 0.04442}


def best_time(fn, repeats: int):  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times), float(np.median(times))


def captdata(repeats: int) -> bool:
    if not CAPTDATA.is_dir():
        print(f"captdata not found at {CAPTDATA}; skipping part 1")
        return True
    counts, xy, _ = read_secr_text(CAPTDATA / "capt.txt", CAPTDATA / "trap.txt")
    traps = Traps(xy, detector="single")
    mask = make_mask(xy, buffer=100.0)
    print(
        f"captdata: {counts.shape[0]} animals, {counts.sum()} captures, {counts.shape[1]} occasions, "
        f"{len(xy)} traps; mask {len(mask)} points ({mask.spacing} m)"
    )
    ok = True
    print(f"{'fit':<14}{'quantity':<10}{'secr (published)':>18}{'Pardus':>14}{'Pardus/secr':>13}")
    for lik, name in (("full", "secrdemo.0"), ("conditional", "secrdemo.CL")):
        fit, t_best, t_med = best_time(lambda lik=lik: fit_secr(counts, traps, mask, likelihood=lik), repeats)
        got = {"D": fit.density.value, "g0": fit.detection.value, "sigma": fit.sigma.value, "loglik": fit.loglik}
        for q, ref in PUBLISHED[lik].items():
            ratio = got[q] / ref
            ok &= abs(ratio - 1) < 0.01
            print(f"{name:<14}{q:<10}{ref:>18.5f}{got[q]:>14.5f}{ratio:>13.6f}")
        if lik == "full":
            for q, se in zip(("D", "g0", "sigma"), fit.beta_se, strict=True):
                ref = PUBLISHED_SE_BETA[q]
                print(f"{name:<14}{'SE ' + q:<10}{ref:>18.5f}{se:>14.5f}{se / ref:>13.6f}")
        print(
            f"{name:<14}{'time (s)':<10}{'(not run)':>18}{t_best:>14.3f}   median {t_med:.3f} s, "
            f"target {TARGET_S:.0f} s: {t_best / TARGET_S:.2f} of target"
        )
        ok &= t_best < TARGET_S
    return ok


def camera_season(repeats: int, seed: int = 7) -> bool:
    rng = np.random.default_rng(seed)
    xy = grid_xy(8, 5, 2000.0)
    usage = np.ones((40, 100))
    for k in rng.choice(40, 6, replace=False):  # six cameras with an outage of 5-30 days
        a = int(rng.integers(0, 90))
        usage[k, a : a + int(rng.integers(5, 30))] = 0.0
    traps = Traps(xy, detector="proximity", usage=usage)
    truth = {"D": 5e-4, "lambda0": 0.05, "sigma": 2500.0}
    counts, n_pop = simulate_captures(
        traps, density=truth["D"], detection=truth["lambda0"], sigma=truth["sigma"], detectfn="HHN", rng=rng
    )
    mask = make_mask(xy, buffer=4 * truth["sigma"])
    fit, t_best, t_med = best_time(lambda: fit_secr(counts, traps, mask, detectfn="HHN"), repeats)
    print(
        f"\ncamera season: 40 cameras x 100 days, {n_pop} animals in the region, {counts.shape[0]} detected, "
        f"{int((counts > 0).sum())} detections; mask {len(mask)} points ({mask.spacing:.0f} m)"
    )
    print(f"  {fit.density_per_100km2()}  (true 5 per 100 km²)")
    print(f"  {fit.detection}   {fit.sigma}")
    print(f"  fit time {t_best:.3f} s (median {t_med:.3f}); target {TARGET_S:.0f} s: {t_best / TARGET_S:.2f} of target")
    return t_best < TARGET_S and fit.converged


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="fits per case; the best time is reported")
    args = ap.parse_args()
    print(f"cores available: {os.cpu_count()}")
    ok = captdata(args.repeats)
    ok &= camera_season(args.repeats)
    print("\nRESULT:", "PASS" if ok else "FAIL", "(captdata within 1% of secr; each fit under 5 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
