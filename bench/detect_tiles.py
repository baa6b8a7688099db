"""Which score a tile-only animal box must reach: full-resolution tiling against the plain pass.

Tiling (``PARDUS_DETECT_TILES=2``) finds small and distant animals the whole-frame pass misses,
but the tiles also magnify leaves and rocks into "animals" on empty photos. A box that only a tile
saw (no whole-frame box overlaps it, at any score) is labelled ``animal (tile only)``, and
``Thresholds.tile_only`` is the score it must reach. "boost" is the earlier merge, where a tile box
over a faint whole-frame box replaces it with its higher score; "add" (the default now) lets tiles
only add what the whole frame did not see. This sweeps the tile-only threshold on the real
labelled photos of bench/detect_eval.py, computing every photo's boxes once, and prints for the
plain pass and each threshold: recall of non-blank photos, blanks removed, and agreement with the
real MegaDetector v5a output on the 21 LILA photos (and how many of its animal photos are missed).

    python bench/detect_tiles.py [--shared ../shared] [--grid 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detect_eval import call, labelled, load  # noqa: E402
from pardus.models.detectors import CocoPersonVehicleDetector, YoloxAnimalDetector  # noqa: E402
from pardus.pipeline.detect import Thresholds, combine  # noqa: E402

SWEEP = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--grid", type=int, default=2)
    args = ap.parse_args()
    if not (args.shared / "data").is_dir():
        sys.exit(f"no data at {args.shared / 'data'}: give --shared")
    th = Thresholds()
    det = YoloxAnimalDetector(size=960)
    coco = CocoPersonVehicleDetector(min_score=min(th.person, th.vehicle))
    items: list[tuple[str, str, list, list, list]] = []  # set, truth, whole, tiled, people
    t0 = time.perf_counter()
    for name, photos in labelled(args.shared).items():
        for p, truth in photos:
            try:
                rgb = load(p)
            except OSError:
                continue
            items.append((name, truth, det.detect(rgb), det.tile_boxes(rgb, grid=args.grid), coco.detect(rgb)))
    lila: list[tuple[bool, list, list, list]] = []  # MD v5a found something, whole, tiled, people
    root = args.shared / "data" / "megadetector-lila-test-set"
    if root.is_dir():
        md = json.loads((root / "megadetector_v5a_output.json").read_text())
        best = {Path(i["file"]).name: max([d["conf"] for d in i.get("detections") or []] or [0.0])
                for i in md["images"]}
        for p in sorted((root / "images").iterdir()):
            rgb = load(p)
            lila.append((best[p.name] >= 0.2, det.detect(rgb), det.tile_boxes(rgb, grid=args.grid), coco.detect(rgb)))
    seconds = time.perf_counter() - t0

    sets = sorted({s for s, *_ in items})
    print(f"{len(items)} labelled photos, {len(lila)} LILA photos; grid {args.grid}x{args.grid} "
          f"({seconds:.0f} s for both passes)")
    head = f"{'setting':22}{'non-blank recall':>18}{'blanks removed':>16}{'MD v5a agree':>14}{'MD missed':>11}"
    print(head + "".join(f"{s[:14]:>16}" for s in sets))
    settings = [("plain (whole frame)", th, None)] + [
        (f"tiles boost, >={t:.2f}", replace(th, tile_only=t), True) for t in SWEEP[:1]] + [
        (f"tiles add, >={t:.2f}", replace(th, tile_only=t), False) for t in SWEEP]
    for label, thr, boost in settings:
        def decide(whole: list, tiles: list, people: list, thr: Thresholds = thr, boost: bool | None = boost) -> str:
            boxes = whole if boost is None else det.merge_tiles(whole, tiles, boost=boost)
            return call(combine(boxes, people, thr))
        calls = [(s, truth, decide(w, t, pv)) for s, truth, w, t, pv in items]
        nonblank = [(s, c) for s, truth, c in calls if truth != "blank"]
        found = sum(c != "blank" for _, c in nonblank)
        blanks = [c for _, truth, c in calls if truth == "blank"]
        agree = sum((decide(w, t, pv) != "blank") == hit for hit, w, t, pv in lila)
        missed = sum(hit and decide(w, t, pv) == "blank" for hit, w, t, pv in lila)
        per_set = [f"{sum(c == truth for s2, truth, c in calls if s2 == s)}/{sum(s2 == s for s2, *_ in calls)}"
                   for s in sets]
        recall = f"{found}/{len(nonblank)} = {found / max(len(nonblank), 1):.2f}"
        removed = f"{blanks.count('blank')}/{len(blanks)}"
        print(f"{label:22}{recall:>18}{removed:>16}{f'{agree}/{len(lila)}':>14}{missed:>11}"
              + "".join(f"{x:>16}" for x in per_set))
    print("(per-set columns: photos called right, blank/animal/person/vehicle at image level)")


if __name__ == "__main__":
    main()
