"""How well the offline detection finds blanks, animals, people and vehicles on real labelled photos.

Sets (read from ../shared/data, each with its PROVENANCE.md):
- speciesnet-test-images: 10 photos labelled animal / blank / human / vehicle;
- zamba-test-assets/ena24_small: ENA24 photos, every one an animal;
- camtrapR-sample-data sample_images_species_dir: photos sorted into species folders (animals);
- camtrap-dp-example: the Reconyx frames of the official example, labelled by its observations;
- megadetector-lila-test-set: no labels, but the real MegaDetector v5a output: agreement with it.

Side by side in one run: zamba's detector as zamba runs it (640 px, "peer"), Pardus's stage
settings (960 px plus the COCO model for people and vehicles, per-category thresholds), and the
same with full-resolution tiling (whole frame + 2x2 overlapping tiles, 5 passes: "tiled"), and
MegaDetector v6 compact ("mdv6": the Edge TPU file with its first layer recovered, 640 px, all three
categories at 0.2, no COCO model) when the file is there. The MDv6 weight scale was fitted on the
camtrap-dp-example frames (bench/mdv6_fit.py), so that set is left out of the mdv6 column.

    python bench/detect_eval.py [--shared ../shared] [--mdv6 PATH_TO_TFLITE]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pardus.models.detectors import CocoPersonVehicleDetector, YoloxAnimalDetector
from pardus.models.mdv6 import MegaDetectorV6, recover_first_layer
from pardus.pipeline.detect import Thresholds, combine

CLASSES = ("blank", "animal", "person", "vehicle")
PEER_THRESHOLD = 0.2  # the image-level score the issue measured zamba's detector at
MDV6_THRESHOLD = 0.2  # MegaDetector's usual threshold, fixed before looking at any result
MDV6_FIT_SETS = {"camtrap-dp-example"}  # used to fit the MDv6 first layer's weight scale: not counted
MDV6_FILE = "models/mdv6-yolov10-c-int8-edgetpu/MDV6-yolov10-c_full_integer_quant_edgetpu.tflite"


def labelled(shared: Path) -> dict[str, list[tuple[Path, str]]]:
    sets: dict[str, list[tuple[Path, str]]] = {}
    root = shared / "data" / "speciesnet-test-images"
    if root.is_dir():
        rows = csv.DictReader((root / "labels.csv").open(newline=""))
        sets["speciesnet-test-images"] = [
            (root / r["file"], {"human": "person"}.get(r["category"], r["category"])) for r in rows
        ]
    root = shared / "data" / "zamba-test-assets" / "ena24_small"
    if root.is_dir():
        sets["ena24 (zamba)"] = [(p, "animal") for p in sorted(root.glob("*.jpg"))]
    root = shared / "data" / "camtrapR-sample-data" / "inst" / "pictures" / "sample_images_species_dir"
    if root.is_dir():
        sets["camtrapR species dirs"] = [(p, "animal") for p in sorted(root.rglob("*")) if p.suffix.lower() == ".jpg"]
    root = shared / "data" / "camtrap-dp-example" / "example"
    if root.is_dir():
        sets["camtrap-dp-example"] = _camtrap_dp_labels(root)
    return sets


def _camtrap_dp_labels(root: Path) -> list[tuple[Path, str]]:
    """The example's local frames, labelled by the events (or media observations) that cover them."""
    media = {r["fileName"]: r for r in csv.DictReader((root / "media.csv").open(newline=""))}
    obs = list(csv.DictReader((root / "observations.csv").open(newline="")))
    out = []
    for p in sorted((root / "media").glob("*.JPG")):
        m = media.get(p.name.split("-", 1)[1]) or media.get(p.name)
        if m is None:
            continue
        t = datetime.fromisoformat(m["timestamp"])
        kinds = set()
        for o in obs:
            if o["mediaID"] == m["mediaID"] or (
                not o["mediaID"] and o["deploymentID"] == m["deploymentID"]
                and datetime.fromisoformat(o["eventStart"].replace("Z", "+00:00")) <= t
                <= datetime.fromisoformat(o["eventEnd"].replace("Z", "+00:00"))
            ):
                kinds.add(o["observationType"])
        label = "person" if "human" in kinds else "vehicle" if "vehicle" in kinds else (
            "animal" if "animal" in kinds else "blank" if kinds <= {"blank"} and kinds else None)
        if label:
            out.append((p, label))
    return out


def _mdv6(path: Path) -> MegaDetectorV6 | None:
    """MegaDetector v6 with its Edge TPU first layer recovered from the file, or None without the file."""
    if not path.is_file():
        print(f"(no MegaDetector v6 file at {path}: the mdv6 column is left out)")
        return None
    return MegaDetectorV6(path, recover_first_layer(path))


def load(p: Path) -> np.ndarray:
    with Image.open(p) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def call(boxes: list) -> str:
    cats = {b.category for b in boxes}
    for c in ("person", "vehicle", "animal"):
        if c in cats:
            return c
    return "blank"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--mdv6", type=Path, default=None, help="MegaDetector v6 Edge TPU .tflite "
                    "(default: shared/" + MDV6_FILE + ")")
    args = ap.parse_args()
    if not (args.shared / "data").is_dir():
        sys.exit(f"no data at {args.shared / 'data'}: give --shared")
    th = Thresholds()
    peer = YoloxAnimalDetector(size=640)
    mine = YoloxAnimalDetector(size=960)
    coco = CocoPersonVehicleDetector(min_score=min(th.person, th.vehicle))
    mdv6 = _mdv6(args.mdv6 or args.shared / MDV6_FILE)
    sets = labelled(args.shared)
    t0 = time.perf_counter()
    conf = {"peer": Counter(), "pardus": Counter(), "tiled": Counter()}
    held = {"peer": Counter(), "pardus": Counter(), "tiled": Counter()}  # without MDv6's fit set
    if mdv6:
        conf["mdv6"] = Counter()
        held["mdv6"] = conf["mdv6"]
    print(f"{'set':26} {'photos':>6}  {'peer correct':>12}  {'Pardus correct':>14}  {'tiled correct':>13}"
          + (f"  {'MDv6 correct':>12}" if mdv6 else ""))
    for name, items in sets.items():
        right = {"peer": 0, "pardus": 0, "tiled": 0, "mdv6": 0}
        unreadable = []
        for p, truth in items:
            try:
                rgb = load(p)
            except OSError:
                unreadable.append(p.name)  # the sets carry deliberately broken files; the importer reports them
                continue
            people = coco.detect(rgb)
            calls = {
                "peer": call([b for b in peer.detect(rgb) if b.score >= PEER_THRESHOLD]),
                "pardus": call(combine(mine.detect(rgb), people, th)),
                "tiled": call(combine(mine.detect_tiled(rgb), people, th)),
            }
            if mdv6 and name not in MDV6_FIT_SETS:
                calls["mdv6"] = call([b for b in mdv6.detect(rgb) if b.score >= MDV6_THRESHOLD])
            for side, c in calls.items():
                conf[side][(truth, c)] += 1
                right[side] += c == truth
                if side != "mdv6" and name not in MDV6_FIT_SETS:
                    held[side][(truth, c)] += 1
        n = len(items) - len(unreadable)
        skipped = f"   ({len(unreadable)} unreadable file(s) left out: {', '.join(unreadable)})" if unreadable else ""
        extra = ("" if not mdv6 else f"  {'(fit set)':>12}" if name in MDV6_FIT_SETS else f"  {right['mdv6']:12d}")
        print(f"{name:26} {n:6d}  {right['peer']:12d}  {right['pardus']:14d}  {right['tiled']:13d}{extra}{skipped}")
    for side, cm in conf.items():
        print(f"\nimage-level confusion, {side} (rows: truth, columns: call)")
        print(f"{'':10}" + "".join(f"{c:>9}" for c in CLASSES))
        for t in CLASSES:
            if any(cm[(t, c)] for c in CLASSES):
                print(f"{t:10}" + "".join(f"{cm[(t, c)]:9d}" for c in CLASSES))
        nonblank = sum(v for (t, _), v in cm.items() if t != "blank")
        found = sum(v for (t, c), v in cm.items() if t != "blank" and c != "blank")
        blanks = sum(v for (t, _), v in cm.items() if t == "blank")
        removed = cm[("blank", "blank")]
        print(f"recall of non-blank photos {found}/{nonblank} = {found / max(nonblank, 1):.3f}; "
              f"blanks removed {removed}/{blanks}")
    if mdv6:
        print(f"\non the same photos for every side (without {', '.join(sorted(MDV6_FIT_SETS))}, MDv6's fit set):")
        for side, cm in held.items():
            nonblank = sum(v for (t, _), v in cm.items() if t != "blank")
            found = sum(v for (t, c), v in cm.items() if t != "blank" and c != "blank")
            right_cat = sum(v for (t, c), v in cm.items() if t == c)
            blanks = sum(v for (t, _), v in cm.items() if t == "blank")
            removed = cm[("blank", "blank")]
            print(f"  {side:7} correct {right_cat}/{nonblank + blanks}; recall of non-blank photos "
                  f"{found}/{nonblank} = {found / max(nonblank, 1):.3f}; blanks removed {removed}/{blanks}")

    root = args.shared / "data" / "megadetector-lila-test-set"
    if root.is_dir():
        md = json.loads((root / "megadetector_v5a_output.json").read_text())
        md_best = {Path(i["file"]).name: max([d["conf"] for d in i.get("detections") or []] or [0.0])
                   for i in md["images"]}
        agree = {"peer": 0, "pardus": 0, "tiled": 0, "mdv6": 0}
        missed = {"peer": 0, "pardus": 0, "tiled": 0, "mdv6": 0}
        for p in sorted((root / "images").iterdir()):
            rgb = load(p)
            md_hit = md_best[p.name] >= 0.2
            people = coco.detect(rgb)
            hits = {"peer": any(b.score >= PEER_THRESHOLD for b in peer.detect(rgb)),
                    "pardus": call(combine(mine.detect(rgb), people, th)) != "blank",
                    "tiled": call(combine(mine.detect_tiled(rgb), people, th)) != "blank"}
            if mdv6:
                hits["mdv6"] = any(b.score >= MDV6_THRESHOLD for b in mdv6.detect(rgb))
            for side, hit in hits.items():
                agree[side] += hit == md_hit
                missed[side] += md_hit and not hit
        n, n_md = len(md_best), sum(v >= 0.2 for v in md_best.values())
        print(f"\nagreement with real MegaDetector v5a (image level, score 0.2) on {n} LILA photos:")
        print(f"  peer (zamba YOLOX-tiny, 640, 0.2): {agree['peer']}/{n}, misses {missed['peer']} of MD's {n_md}")
        print(f"  Pardus stage (960, 0.15 + COCO):  {agree['pardus']}/{n}, misses {missed['pardus']} of MD's {n_md}")
        print(f"  Pardus tiled (960 + 2x2 tiles):   {agree['tiled']}/{n}, misses {missed['tiled']} of MD's {n_md}")
        if mdv6:
            print(f"  MegaDetector v6-c (640, 0.2):     {agree['mdv6']}/{n}, misses {missed['mdv6']} of MD's {n_md}")
        print(f"  ratio Pardus/peer agreement: {agree['pardus'] / max(agree['peer'], 1):.2f}; "
              f"tiled/peer: {agree['tiled'] / max(agree['peer'], 1):.2f}"
              + (f"; MDv6/peer: {agree['mdv6'] / max(agree['peer'], 1):.2f}" if mdv6 else ""))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
