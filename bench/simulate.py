"""How fast the virtual park renders a season: images per second and the total time.

The claim to check: a 40-camera, 120-day season (the issue's default) finishes in under five
minutes on two cores. There is no outside peer that renders camera-trap seasons, so the
baseline printed beside Pardus is the target itself (300 s) and the single-process rate, which
shows what the process pool buys.

    python bench/simulate.py                      # 40 x 120, the real check (a few minutes)
    python bench/simulate.py --cameras 6 --days 20
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from pardus.simulate import simulate_season

TARGET_S = 300.0


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the render workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=40)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--single-days", type=int, default=10, help="days of the one-process comparison run (0 to skip)")
    ap.add_argument("--keep", type=Path, default=None, help="write the season here instead of a temp folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pardus-sim-"))
    try:
        out = args.keep or tmp / "season"
        t0 = time.perf_counter()
        cpu0 = _cpu()
        s = simulate_season(out, cameras=args.cameras, days=args.days, seed=args.seed, workers=args.workers)
        secs = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        size_mb = sum(f.stat().st_size for f in (out / "cards").rglob("*.JPG")) / 1e6
        print(
            f"season {args.cameras} cameras x {args.days} days, seed {args.seed}, frames 1280x720, "
            f"{args.workers} workers"
        )
        print(f"  images {s.images} in {s.bursts} bursts ({size_mb:.0f} MB of JPEG), content {s.content}")
        print(f"  alerts in truth {s.alerts}")
        rate = s.images / secs
        single = None
        if args.single_days:
            t1 = time.perf_counter()
            s1 = simulate_season(tmp / "single", cameras=args.cameras, days=args.single_days, seed=args.seed, workers=1)
            single = s1.images / (time.perf_counter() - t1)
        print()
        print(f"{'':24}{'target/baseline':>18}{'Pardus':>12}{'ratio':>10}")
        print(f"{'total time (s)':24}{TARGET_S:>18.0f}{secs:>12.1f}{TARGET_S / secs:>9.2f}x")
        if single:
            print(f"{'images/s (1 process)':24}{single:>18.1f}{rate:>12.1f}{rate / single:>9.2f}x")
        else:
            print(f"{'images/s':24}{'':>18}{rate:>12.1f}")
        dedicated = cpu / max(1, args.workers)
        print(
            f"{'CPU s / workers':24}{TARGET_S:>18.0f}{dedicated:>12.1f}{TARGET_S / dedicated:>9.2f}x"
            "   (the wall time on dedicated cores; the machine here is shared)"
        )
        verdict = "MET" if secs < TARGET_S else "MISSED"
        if (args.cameras, args.days) != (40, 120):
            verdict += " (for this size; the claim is about 40 x 120)"
        print(f"\n5-minute target for a {args.cameras} x {args.days} season: {verdict}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
