"""How MegaDetector v6's image-level calls change with its threshold: a sensitivity table, not a tuning.

bench/detect_eval.py measures MDv6 at 0.2, fixed before any result was seen. This script runs the
model once per photo on the same held-out sets (camtrap-dp-example, the weight-scale fit set, left
out) and prints, for several thresholds, the non-blank recall, the blanks removed, and the
agreement with MegaDetector v5a on the LILA photos. Choosing the threshold from this table would
be choosing it on the evaluation photos: whoever picks one should say so, or measure it elsewhere.

    python bench/mdv6_thresholds.py [--shared ../shared] [--mdv6 PATH_TO_TFLITE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detect_eval import MDV6_FILE, MDV6_FIT_SETS, call, labelled, load
from pardus.models.mdv6 import MegaDetectorV6, recover_first_layer

THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--mdv6", type=Path, default=None)
    args = ap.parse_args()
    path = args.mdv6 or args.shared / MDV6_FILE
    if not path.is_file():
        sys.exit(f"no MegaDetector v6 file at {path}")
    det = MegaDetectorV6(path, recover_first_layer(path), min_score=min(THRESHOLDS))
    photos = []  # (truth, boxes)
    for name, items in labelled(args.shared).items():
        if name in MDV6_FIT_SETS:
            continue
        for p, truth in items:
            try:
                photos.append((truth, det.detect(load(p))))
            except OSError:
                continue
    root = args.shared / "data" / "megadetector-lila-test-set"
    md = json.loads((root / "megadetector_v5a_output.json").read_text())
    md_best = {Path(i["file"]).name: max([d["conf"] for d in i.get("detections") or []] or [0.0])
               for i in md["images"]}
    lila = [(md_best[p.name] >= 0.2, det.detect(load(p))) for p in sorted((root / "images").iterdir())]
    nonblank = sum(t != "blank" for t, _ in photos)
    blanks = len(photos) - nonblank
    print(f"{len(photos)} labelled photos ({nonblank} non-blank, {blanks} blank); {len(lila)} LILA photos")
    print(f"{'threshold':>9}  {'correct':>8}  {'non-blank recall':>16}  {'blanks removed':>14}  "
          f"{'LILA agreement':>14}  {'misses':>6}  {'MD-empty called non-blank':>25}")
    for th in THRESHOLDS:
        calls = [(t, call([b for b in boxes if b.score >= th])) for t, boxes in photos]
        correct = sum(t == c for t, c in calls)
        found = sum(t != "blank" and c != "blank" for t, c in calls)
        removed = sum(t == "blank" and c == "blank" for t, c in calls)
        hits = [(m, any(b.score >= th for b in boxes)) for m, boxes in lila]
        agree = sum(m == h for m, h in hits)
        print(f"{th:9.2f}  {correct:4d}/{len(photos):<3d}  {found:9d}/{nonblank:<3d} {found / nonblank:.2f}  "
              f"{removed:10d}/{blanks:<3d}  {agree:10d}/{len(lila):<3d}  {sum(m and not h for m, h in hits):6d}  "
              f"{sum(h and not m for m, h in hits):25d}")


if __name__ == "__main__":
    main()
