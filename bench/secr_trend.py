"""Do Pardus's multi-year estimates cover what really happened? D per year, λ, φ and f.

Simulates multi-year parks with known truth (``pardus.simulate.years``: a Poisson population in
year 1, yearly survival φ, per-capita recruitment f, site-faithful activity centres, the same
40-camera grid sampled every year), fits each park with

- multi-session SECR ``D ~ session, lambda0 ~ 1, sigma ~ 1`` (``pardus.stats.secr_multi``), giving
  density per year and the growth rate λ between consecutive years and from first to last year;
- Pradel's φ(.) f(.) p(t) on the yearly encounter histories of the detected animals
  (``pardus.stats.open_pop``), giving φ, f and λ = φ + f;
- the spatial open-population model φ(.) f(.) λ0(.) σ(.) (``pardus.stats.secr_open``), the same
  quantities with each animal's detection given by where it lives;

and prints, per parameter, the coverage of the 95% interval and the relative bias, beside the
targets of issue 23 (coverage 0.90-0.98, |relative bias| < 0.05), with Monte-Carlo standard errors.

Two truths for density and λ, because they answer two questions (Efford & Fewster 2013):
*expected* (the process: D_t = D_1 (φ + f)^(t-1), λ = φ + f), judged with the Poisson (full
likelihood) intervals; *realised* (the animals that were there: N in the habitat mask / its area,
λ = N_{t+1} / N_t), judged with the realised-population intervals (var(N̂) - N̂).

It also times a 3-session fit of the 40-camera plot (secr's default 64-cell-wide mask) against
three single-session fits.

Run: nice -n 10 python bench/secr_trend.py [--parks 100] [--workers 2] [--years 4]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from pardus.simulate.years import Demography, MultiYearPark, simulate_years
from pardus.stats.open_pop import fit_pradel
from pardus.stats.secr import Traps, fit_secr, grid_xy, make_mask
from pardus.stats.secr_multi import Session, fit_secr_multi
from pardus.stats.secr_open import fit_secr_open

DESIGN = {
    "xy": lambda: grid_xy(8, 5, 2000.0),  # 40 cameras, 2 km apart: 14 x 8 km
    "occasions": 60,  # daily occasions per year
    "lambda0": 0.05,  # per day, hazard halfnormal
    "sigma": 2500.0,  # m
    "D0_per_km2": 0.05,  # 5 leopards per 100 km² in the first year
    "phi": 0.8,
    "f": 0.3,
    "buffer": 10_000.0,  # 4 sigma
    "spacing": 1000.0,  # mask cells; divides the region's sides so realised counts are exact
}


def realised_in_mask(park: MultiYearPark, mask_xy: np.ndarray, spacing: float) -> np.ndarray:
    """Animals alive each year whose activity centre lies in a cell of the habitat mask."""
    lo = mask_xy.min(axis=0) - spacing / 2
    cells = {tuple(c) for c in np.floor((mask_xy - lo) / spacing).astype(int).tolist()}
    out = []
    for y in park.years:
        idx = np.floor((y.captures.centres - lo) / spacing).astype(int)
        out.append(sum(tuple(i) in cells for i in idx.tolist()))
    return np.array(out)


def one_park(args: tuple[int, int]) -> dict[str, Any] | None:
    seed, n_years = args
    d = DESIGN
    xy = d["xy"]()
    years = list(range(2025 - n_years, 2025))
    park = simulate_years(
        xy,
        years=years,
        density_per_km2=d["D0_per_km2"],
        sigma_m=d["sigma"],
        occasions=d["occasions"],
        lambda0=d["lambda0"],
        demography=Demography(d["phi"], d["f"]),
        buffer_m=d["buffer"],
        seed=seed,
    )
    traps = Traps(xy, detector="proximity", usage=np.ones((len(xy), d["occasions"])))
    mask = make_mask(xy, d["buffer"], spacing=d["spacing"])
    sessions = [Session(str(y.year), y.captures.captures, traps, mask, float(y.year)) for y in park.years]
    if any(s.counts.shape[0] < 2 for s in sessions):
        return None
    fit = fit_secr_multi(sessions, density="session", detectfn="HHN")
    n_real = realised_in_mask(park, mask.xy, d["spacing"])
    out: dict[str, Any] = {"converged": fit.converged, "n_detected": [s.counts.shape[0] for s in sessions]}
    exp_d = park.expected_density_per_km2() / 100.0  # animals per ha
    real_d = n_real / mask.area_ha
    rows = []
    for t in range(n_years):
        e, r = fit.density[t], fit.realised_density(t)
        rows.append((f"D {years[t]}", e.value, e.lcl, e.ucl, exp_d[t], r.lcl, r.ucl, real_d[t], r.lcl, r.ucl))
    lam_true = d["phi"] + d["f"]
    pairs = [(t, t + 1) for t in range(n_years - 1)] + ([(0, n_years - 1)] if n_years > 2 else [])
    for i, j in pairs:
        e, r = fit.growth(i, j), fit.growth(i, j, realised=True)
        m = len(np.intersect1d(park.years[i].detected_ids, park.years[j].detected_ids))
        r2 = fit.growth(i, j, realised=True, recaptured=m)
        real = (n_real[j] / n_real[i]) ** (1 / (j - i)) if n_real[i] > 0 else math.nan
        rows.append(
            (f"lambda {years[i]}-{years[j]}", e.value, e.lcl, e.ucl, lam_true, r.lcl, r.ucl, real, r2.lcl, r2.ucl)
        )
    out["secr"] = rows
    hist, _ = park.encounter_histories()
    try:
        pr = fit_pradel(hist, years)
        out["pradel"] = [
            ("phi (Pradel)", pr.survival.value, pr.survival.lcl, pr.survival.ucl, d["phi"]),
            ("f (Pradel)", pr.recruitment.value, pr.recruitment.lcl, pr.recruitment.ucl, d["f"]),
            ("lambda (Pradel)", pr.growth.value, pr.growth.lcl, pr.growth.ucl, lam_true),
        ]
    except ValueError:
        out["pradel"] = None
    try:
        so = fit_secr_open(sessions, [[str(a) for a in y.detected_ids] for y in park.years], detectfn="HHN")
        out["secr_open"] = [
            ("phi (spatial open)", so.survival.value, so.survival.lcl, so.survival.ucl, d["phi"]),
            ("f (spatial open)", so.recruitment.value, so.recruitment.lcl, so.recruitment.ucl, d["f"]),
            ("lambda (spatial open)", so.growth.value, so.growth.lcl, so.growth.ucl, lam_true),
        ]
    except ValueError:
        out["secr_open"] = None
    return out


def timing() -> tuple[float, float]:
    """Seconds for one 3-session fit and for three single-session fits, 40 cameras, secr's default mask."""
    d = DESIGN
    xy = d["xy"]()
    park = simulate_years(
        xy,
        years=[2022, 2023, 2024],
        density_per_km2=d["D0_per_km2"],
        sigma_m=d["sigma"],
        occasions=d["occasions"],
        lambda0=d["lambda0"],
        demography=Demography(d["phi"], d["f"]),
        buffer_m=d["buffer"],
        seed=7,
    )
    traps = Traps(xy, detector="proximity", usage=np.ones((len(xy), d["occasions"])))
    mask = make_mask(xy, d["buffer"])  # 64 cells across, as secr.make.mask
    sessions = [Session(str(y.year), y.captures.captures, traps, mask, float(y.year)) for y in park.years]
    t = time.perf_counter()
    fit_secr_multi(sessions, density="session", detectfn="HHN")
    multi = time.perf_counter() - t
    t = time.perf_counter()
    for s in sessions:
        fit_secr(s.counts, traps, mask, detectfn="HHN")
    return multi, time.perf_counter() - t


def _line(name: str, cov: np.ndarray, rel: np.ndarray) -> str:
    c = float(cov.mean())
    c_se = math.sqrt(c * (1 - c) / len(cov))
    b = float(rel.mean())
    b_se = float(rel.std(ddof=1) / math.sqrt(len(rel)))
    ok = "PASS" if 0.90 <= c <= 0.98 and abs(b) < 0.05 else "FAIL"
    return f"  {name:<28}{len(cov):>6}{c:>10.3f}{c_se:>8.3f}{b:>+10.3f}{b_se:>8.3f}   {ok}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parks", type=int, default=100)
    ap.add_argument("--years", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    d = DESIGN
    print(
        f"design: 40 cameras (8 x 5, 2 km), {d['occasions']} daily occasions a year, {args.years} years, "
        f"HHN lambda0 {d['lambda0']}/day, sigma {d['sigma']:.0f} m, D1 {d['D0_per_km2'] * 100:.0f}/100 km², "
        f"phi {d['phi']}, f {d['f']} (lambda {d['phi'] + d['f']:.2f}); mask buffer {d['buffer']:.0f} m, "
        f"spacing {d['spacing']:.0f} m"
    )
    t = time.perf_counter()
    jobs = [(args.seed * 100_000 + i, args.years) for i in range(args.parks)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            res = list(ex.map(one_park, jobs, chunksize=2))
    else:
        res = [one_park(j) for j in jobs]
    ok = [r for r in res if r is not None]
    conv = sum(r["converged"] for r in ok)
    n_det = np.array([r["n_detected"] for r in ok])
    print(
        f"{len(ok)} parks fitted ({args.parks - len(ok)} skipped: a year with < 2 animals), {conv} converged; "
        f"animals detected per year: mean {n_det.mean():.1f}, range {n_det.min()}-{n_det.max()}; "
        f"{time.perf_counter() - t:.0f} s"
    )
    head = f"  {'parameter':<28}{'parks':>6}{'cover':>10}{'MC se':>8}{'rel.bias':>10}{'MC se':>8}"
    all_pass = True
    names = [row[0] for row in ok[0]["secr"]]
    print("\nmulti-session SECR D~session lambda0~1 sigma~1, EXPECTED truth (process), Poisson intervals")
    print(head)
    for k, name in enumerate(names):
        a = np.array([r["secr"][k][1:5] for r in ok], dtype=float)
        line = _line(name, (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2]), a[:, 0] / a[:, 3] - 1)
        all_pass &= line.endswith("PASS")
        print(line)
    print("\nmulti-session SECR, REALISED truth (animals in the mask), realised intervals (Efford & Fewster 2013)")
    print(head)
    for k, name in enumerate(names):
        a = np.array([(r["secr"][k][1], *r["secr"][k][5:8]) for r in ok], dtype=float)
        a = a[np.isfinite(a[:, 3])]
        line = _line(name, (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2]), a[:, 0] / a[:, 3] - 1)
        all_pass &= line.endswith("PASS")
        print(line)
    print("\nλ, REALISED truth, realised intervals with the covariance of animals present in both years")
    print(head)
    for k, name in enumerate(names):
        if not name.startswith("lambda"):
            continue
        a = np.array([(r["secr"][k][1], r["secr"][k][8], r["secr"][k][9], r["secr"][k][7]) for r in ok], dtype=float)
        a = a[np.isfinite(a[:, 3])]
        line = _line(name, (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2]), a[:, 0] / a[:, 3] - 1)
        all_pass &= line.endswith("PASS")
        print(line)
    pr = [r["pradel"] for r in ok if r["pradel"] is not None]
    print(f"\nPradel phi(.) f(.) p(t) on yearly encounter histories ({len(ok) - len(pr)} parks failed to fit)")
    print(head)
    for k in range(3):
        a = np.array([p[k][1:5] for p in pr], dtype=float)
        line = _line(pr[0][k][0], (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2]), a[:, 0] / a[:, 3] - 1)
        all_pass &= line.endswith("PASS")
        print(line)
    so = [r["secr_open"] for r in ok if r["secr_open"] is not None]
    print(f"\nspatial open population phi(.) f(.) lambda0(.) sigma(.) ({len(ok) - len(so)} parks failed to fit)")
    print(head)
    for k in range(3):
        a = np.array([p[k][1:5] for p in so], dtype=float)
        line = _line(so[0][k][0], (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2]), a[:, 0] / a[:, 3] - 1)
        all_pass &= line.endswith("PASS")
        print(line)
    if not args.no_timing:
        multi, singles = timing()
        print(
            f"\nfit time, 3 sessions of the 40-camera plot (secr's default mask): {multi:.1f} s; "
            f"3 single-session fits {singles:.1f} s; ratio {multi / singles:.2f}; target < 60 s -> "
            f"{'PASS' if multi < 60 else 'FAIL'}"
        )
    print("\ntargets: coverage 0.90-0.98, |relative bias| < 0.05 per parameter")
    print("RESULT:", "PASS" if all_pass else "FAIL (see the lines marked FAIL)")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
