"""The offline detector pair against MegaDetector v6-c on a virtual-park season, by true content.

Every photo of a simulated season (`make run` writes ./demo/season; or give --season) goes through
the detect stage's decision with each detector: zamba YOLOX-tiny + COCO SSD (the offline default)
and MegaDetector v6-c recovered from its Edge TPU file (`pardus models fit-mdv6`, weights from
../shared/models). Printed per true content (animal, human, vehicle, blank, smoke, fire, and the
animals at night): photos, how many each called non-blank and how many each called the right
category, with the ratio. The rendered animals are drawings, so this says how the detectors treat
the park's rendering, not how they treat real photos (bench/detect_eval.py does that).

    python bench/detect_park.py [--season demo/season] [--models DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

from pardus.models.registry import ModelUnavailableError
from pardus.pipeline.decode import decode_bytes
from pardus.pipeline.detect import DetectionStage

WANT = {"animal": "animal", "human": "person", "vehicle": "vehicle"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--season", type=Path, default=Path("demo/season"))
    ap.add_argument("--models", type=Path, default=Path("demo/pardus-data/models"),
                    help="where `pardus models fit-mdv6` put MDv6 (the data folder's models/)")
    args = ap.parse_args()
    rows_path = args.season / "truth" / "images.csv"
    if not rows_path.is_file():
        sys.exit(f"no season at {args.season}: run `make run` (or `pardus simulate DIR`) first")
    offline = DetectionStage()
    mdv6 = DetectionStage(detector="megadetector-v6-yolov10-c", models_dir=args.models)
    try:
        sides = {"offline": (offline, *offline._models()), "mdv6": (mdv6, *mdv6._models())}
    except ModelUnavailableError as exc:
        sys.exit(f"{exc}\n(run `pardus models fit-mdv6 PATH` with PARDUS_DATA_DIR whose models/ is --models)")
    counts: dict[str, dict[str, list[int]]] = {s: defaultdict(lambda: [0, 0, 0]) for s in sides}
    seconds = dict.fromkeys(sides, 0.0)
    seen: set[str] = set()
    rows = list(csv.DictReader(rows_path.open(newline="", encoding="utf-8")))
    for r in rows:
        if r["path"] in seen or r["damaged"] == "1":
            continue
        seen.add(r["path"])
        rgb = decode_bytes((args.season / r["path"]).read_bytes(), 1280)
        kinds = [r["content"]] + (["animal at night"] if r["content"] == "animal" and r["night"] == "1" else [])
        for side, (stage, det, coco) in sides.items():
            t = time.perf_counter()
            cats = {b.category for b in stage.boxes(rgb, det, coco)}
            seconds[side] += time.perf_counter() - t
            for kind in kinds:
                c = counts[side][kind]
                c[0] += 1
                c[1] += bool(cats)
                c[2] += WANT.get(kind.split(" ")[0]) in cats
    n = len(seen)
    print(f"{args.season}: {n} photos; seconds per photo offline {seconds['offline'] / n:.2f}, "
          f"MDv6 {seconds['mdv6'] / n:.2f}")
    print(f"{'true content':18}{'photos':>7}{'offline non-blank':>19}{'MDv6 non-blank':>16}"
          f"{'offline right':>15}{'MDv6 right':>12}{'ratio right':>13}")
    for kind in sorted(counts["offline"]):
        o, m = counts["offline"][kind], counts["mdv6"][kind]
        right = f"{m[2] / o[2]:.2f}x" if o[2] else "-"
        print(f"{kind:18}{o[0]:7d}{o[1]:19d}{m[1]:16d}"
              + (f"{o[2]:15d}{m[2]:12d}{right:>13}" if kind.split(" ")[0] in WANT else f"{'':15}{'':12}{'':13}"))
    print("(non-blank: any box passed; right: a box of the true category; for blank/smoke/fire, "
          "non-blank is a false alarm)")


if __name__ == "__main__":
    main()
