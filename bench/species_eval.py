"""Species accuracy on real labelled camera-trap photos: ImageNet mapping vs the head taught by example.

Sets (../shared/data, each with its PROVENANCE.md), labels as scientific names:
- zamba-test-assets/ena24_small: 7 North American species x 2 photos (ENA24, labels.csv);
- camtrapR-sample-data sample_images_species_dir: Bornean species sorted into folders
  (100x75 thumbnails; the UNID folder is left out);
- speciesnet-test-images: the animal photos of labels.csv (elephants, a dog);
- snow-leopard-reid: Panthera uncia (the first ``--snow`` photos, to bound the run);
- camtrap-dp-example: the Reconyx heron frames (Ardea), cropped to their labelled boxes.

Every photo is cropped to the zamba detector's best animal box (when it finds one; the labelled box
for the heron frames) and classified two ways, in one run:
- "ImageNet map": MobileNetV2 ImageNet-1k, softmax summed over the ImageNet classes of each taxon
  (pardus.models.species.WORLD); a species ImageNet does not know can only be wrong;
- "head (LOO)": leave-one-out few-shot training of the DINOv2 logistic-regression head: for each
  photo, a head trained on all the other labelled photos (all sets pooled) names it.
Top-1 accuracy per set and overall, the ratio head / ImageNet, and at the stage's "unknown"
thresholds the share of photos named and how many of the named are right.

    PYTHONPATH=src python bench/species_eval.py [--shared ../shared] [--snow 20] [--whole]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pardus.models.embedder import Dinov2Embedder
from pardus.models.species import WORLD, ImagenetTaxonClassifier, SpeciesHead, square_crop

ENA24 = {"Virginia Opossum": "Didelphis virginiana", "Eastern Fox Squirrel": "Sciurus niger",
         "American Black Bear": "Ursus americanus", "American Crow": "Corvus brachyrhynchos",
         "Striped Skunk": "Mephitis mephitis", "Chicken": "Gallus gallus domesticus",
         "Grey Fox": "Urocyon cinereoargenteus"}
CAMTRAPR = {"PBE": "Prionailurus bengalensis", "VTA": "Viverra tangalunga", "MNE": "Macaca nemestrina",
            "EGY": "Echinosorex gymnura", "TRA": "Tragulus"}
SPECIESNET = {"African elephant (Loxodonta africana)": "Loxodonta africana",
              "domestic dog (Canis familiaris)": "Canis familiaris"}

Item = tuple[str, Path, str, tuple[float, float, float, float] | None]  # set, file, label, known box


def labelled(shared: Path, snow: int) -> list[Item]:
    d = shared / "data"
    items: list[Item] = []
    root = d / "zamba-test-assets" / "ena24_small"
    for r in csv.DictReader((root / "labels.csv").open()):
        items.append(("ENA24", root / r["filepath"], ENA24[r["label"]], None))
    root = d / "camtrapR-sample-data" / "inst" / "pictures" / "sample_images_species_dir"
    for p in sorted(root.rglob("*.JPG")):
        if p.parent.name in CAMTRAPR:
            items.append(("camtrapR", p, CAMTRAPR[p.parent.name], None))
    root = d / "speciesnet-test-images"
    for r in csv.DictReader((root / "labels.csv").open()):
        if r["label"] in SPECIESNET:
            items.append(("SpeciesNet test", root / r["file"], SPECIESNET[r["label"]], None))
    root = d / "snow-leopard-reid"
    rows = list(csv.DictReader((root / "labels.csv").open()))
    for r in rows[:: max(1, len(rows) // snow)][:snow]:
        items.append(("snow leopard", root / r["file"], "Panthera uncia", None))
    root = d / "camtrap-dp-example" / "example"
    media = {r["mediaID"]: r["filePath"].split("/")[-1] for r in csv.DictReader((root / "media.csv").open())}
    for r in csv.DictReader((root / "observations.csv").open()):
        f = root / "media" / media.get(r["mediaID"], "-")
        if r["observationLevel"] == "media" and r["scientificName"] and f.is_file() and r["bboxWidth"]:
            box = (float(r["bboxX"]), float(r["bboxY"]), float(r["bboxWidth"]), float(r["bboxHeight"]))
            items.append(("camtrap-dp heron", f, r["scientificName"], box))
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--snow", type=int, default=20, help="snow-leopard photos to use (of 116)")
    ap.add_argument("--whole", action="store_true", help="classify whole photos (no detector crops)")
    ap.add_argument("--head-threshold", type=float, default=0.5)
    ap.add_argument("--imagenet-threshold", type=float, default=0.35)
    args = ap.parse_args()
    if not (args.shared / "data").is_dir():
        print(f"no data at {args.shared / 'data'}", file=sys.stderr)
        return 2
    items = labelled(args.shared, args.snow)
    t0 = time.perf_counter()
    detector = None
    if not args.whole:
        from pardus.models.detectors import YoloxAnimalDetector

        detector = YoloxAnimalDetector()
    crops, kept = [], []
    for it in items:
        try:
            with Image.open(it[1]) as im:
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - the truncated test file, reported and left out
            print(f"skipped {it[1].name}: {exc}")
            continue
        box = it[3]
        if box is None and detector is not None:
            found = detector.detect(rgb)
            if found:
                b = max(found, key=lambda x: x.score)
                box = (b.x, b.y, b.w, b.h)
        crops.append(square_crop(rgb, box))
        kept.append(it)
    t_crop = time.perf_counter() - t0
    labels = [k[2] for k in kept]
    imagenet = ImagenetTaxonClassifier(WORLD, threshold=args.imagenet_threshold)
    t1 = time.perf_counter()
    im_calls = [c for i in range(0, len(crops), 16) for c in imagenet.classify(crops[i : i + 16])]
    t_im = time.perf_counter() - t1
    t1 = time.perf_counter()
    emb = Dinov2Embedder().embed(crops)
    t_emb = time.perf_counter() - t1
    t1 = time.perf_counter()
    head_calls = []
    for i in range(len(kept)):
        rest = [j for j in range(len(kept)) if j != i]
        head = SpeciesHead.train(emb[rest], [labels[j] for j in rest], threshold=args.head_threshold)
        head_calls.append(head.classify_embeddings(emb[i : i + 1])[0])
    t_loo = time.perf_counter() - t1

    per: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0, 0, 0], [0, 0, 0, 0]])  # n, top1, named, named ok
    for it, lab, ic, hc in zip(kept, labels, im_calls, head_calls, strict=True):
        for s in (it[0], "all"):
            for k, c in enumerate((ic, hc)):
                row = per[s][k]
                row[0] += 1
                row[1] += c.best == lab
                row[2] += c.scientific_name is not None
                row[3] += c.scientific_name == lab
    print(f"\nSpecies on {len(kept)} real labelled photos, {len(set(labels))} taxa "
          f"({'whole photos' if args.whole else 'detector crops'})")
    print(f"{'set':<18}{'n':>4} | {'ImageNet map':>12} {'named':>6} {'ok':>5} | {'head (LOO)':>10} {'named':>6} "
          f"{'ok':>5} | {'ratio':>6}")
    for s in [*sorted(k for k in per if k != "all"), "all"]:
        (n, a1, n1, o1), (_, a2, n2, o2) = per[s]
        ratio = f"{a2 / a1:.2f}x" if a1 else "inf" if a2 else "-"
        print(f"{s:<18}{n:>4} | {a1 / n:>12.0%} {n1 / n:>6.0%} {o1 / max(n1, 1):>5.0%} | {a2 / n:>10.0%} "
              f"{n2 / n:>6.0%} {o2 / max(n2, 1):>5.0%} | {ratio:>6}")
    print("top-1 = best taxon right; named = share above the 'unknown' threshold "
          f"(ImageNet {args.imagenet_threshold}, head {args.head_threshold}); ok = right among the named")
    print(f"time: crops {t_crop:.1f} s, ImageNet {t_im:.1f} s, DINOv2 embeddings {t_emb:.1f} s "
          f"({len(kept) / t_emb:.1f} crops/s), {len(kept)} leave-one-out fits {t_loo:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
