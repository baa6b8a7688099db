"""Re-identification on real leopards: ../shared/data/bigcat-reid (SpotID / NCF India flank crops).

32 real camera-trap photos of 4 wild leopards (*Panthera pardus*), each already a tight crop of one
flank (MegaDetector v5 boxes cut by the source project), one flank per individual; station,
camera and date come from the file names (``labels.csv``: ``site_prefix``, ``station``,
``camera_side``, ``datetime_from_filename``). Every matcher gets the whole crop as the animal box
(``(0, 0, 1, 1)``: Pardus's chip size, as a detection box would be), flank not given (given, the
other flank's two cats would never be searched and top-1 would be a choice between two).

Encounter = same individual, same station (both cameras A/B), same date. Splits, both from
``bench/reid.py`` (``standard_splits``):
- **leave-one-encounter-out**: every photo against the photos of other encounters;
- **cross-station**: against catalogue photos of other stations only (coat alone).

Matchers side by side, the same queries and exclusions (classes of ``bench/reid.py``):
- **station prior** (no pixels): the cat most often catalogued at the query's camera, then its
  station, then anywhere; cross-station it is "the most catalogued cat";
- **plain SIFT**: OpenCV SIFT (1,000 keypoints, the crop resized to Pardus's chip area) + Lowe's
  ratio test 0.8, an individual's score its best photo's count;
- **Pardus**: ``pardus.reid.match.match`` on ``features.extract`` with the shipped
  ``FeatureParams`` (saliency animal mask); per encounter as the stage decides;
- **Pardus test**: the same matcher on ``foreground="none", max_features=450`` features
  (no saliency network, half the keypoints: what tests/reid/test_real_leopards.py runs, so its
  threshold comes from this column);
- **Pardus+prior**: Pardus ranked with the station prior as a prior (``match.apply_prior``).
- **photo look** (no coat): the individual of the nearest allowed photo by crop size and global
  colour statistics (log width, log height, mean B, G, R, grey contrast), standardised. Each
  leopard here comes from one site and season (one camera model, one light), so a matcher could
  tell them apart by the look of the photos; this column says how far that alone gets.

Not used on crops: the camera-scenery test (it compares a photo with the *frames* of its camera;
a crop has no frame) and the same-place rule (same-camera pairs at the same frame pixels vote
nothing; crop pixels are not frame pixels), so Pardus gets no camera here (``same_place=False``).

Open set, "new individual": every photo (and encounter) is queried again with its whole
individual withheld from the catalogue (3 cats left). "'new' F1 per encounter, individual left
out" fits the calibration and threshold on the other three individuals' queries only (no leak);
the other 'new' rows leave out the whole encounter. Chance levels are printed beside: top-1 of a
uniform guess among 4 cats is 0.25, top-5 is 1.0 by construction (4 cats), and calling every
query "new" gives the F1 printed as "always new".

    python bench/reid_bigcat.py [--shared ../shared]

Features are cached in ~/.cache/pardus-bench/reid (PARDUS_BENCH_CACHE).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pardus.reid.features import ChipFeatures, FeatureParams, extract  # noqa: E402
from reid import (  # noqa: E402
    BASELINE_FEATURES,
    RATIO,
    Answer,
    Pardus,
    PardusWithPrior,
    Photos,
    PlainSift,
    StationPrior,
    _baseline_as_chip,
    _Lazy,
    baseline_pair_scores,
    evaluate,
    print_split,
    standard_splits,
)
from reid_common import cached_features  # noqa: E402

WHOLE_CROP = (0.0, 0.0, 1.0, 1.0)


def read_labels(root: Path) -> list[dict[str, str]]:
    """labels.csv rows with ``station_key``, ``camera_key``, ``date`` and ``encounter`` added.

    A station is the site prefix and station number (cameras A and B of one station face the same
    trail); BHA32's names have no site prefix, so its stations are keyed by the individual's site
    code (the ID's first two letters, "BH"), never merged with another site's numbers."""
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        site = r["site_prefix"] or r["individual_id"][:2]
        r["station_key"] = f"{site}-{r['station']}"
        r["camera_key"] = f"{r['station_key']}{r['camera_side']}"
        r["date"] = r["datetime_from_filename"][:10]
        r["encounter"] = f"{r['individual_id']}|{r['station_key']}|{r['date']}"
    return rows


def load(shared: Path, params_list: list[FeatureParams]
         ) -> tuple[Photos, list[list[ChipFeatures]], list[bool], np.ndarray]:
    root = shared / "data" / "bigcat-reid"
    rows = read_labels(root)
    feats: list[list[ChipFeatures]] = [[] for _ in params_list]
    base, stats = [], []
    t0 = time.perf_counter()
    for k, r in enumerate(rows):
        photo = _Lazy(lambda path=root / r["file"]: cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR))
        name = f"bigcat|{r['sha256']}|crop"
        for m, params in enumerate(params_list):
            feats[m].append(cached_features(name, params.key,
                                            lambda photo=photo, params=params: extract(photo(), WHOLE_CROP, params)))
        size = params_list[0].chip_sqrt_area
        b = cached_features(name, f"plainsift{BASELINE_FEATURES}-{size}",
                            lambda photo=photo, size=size: _baseline_as_chip(photo(), None, size))
        base.append(b.desc.astype(np.float32))
        stats.append(photo_stats(photo()))
        if k % 8 == 0:
            print(f"  features {k + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    p = Photos([r["individual_id"] for r in rows], [r["encounter"] for r in rows], [r["camera_key"] for r in rows],
               [r["station_key"] for r in rows], feats[0], base, [None] * len(rows))
    return p, feats, [f.night for f in feats[0]], np.asarray(stats, float)


class PhotoLook:
    """No coat: the individuals ranked by their nearest allowed photo in global photo statistics."""

    name = "photo look"
    has_score = False

    def __init__(self, p: Photos, stats: np.ndarray) -> None:
        self.p = p
        self.z = (stats - stats.mean(0)) / np.maximum(stats.std(0), 1e-9)

    def rank(self, i: int, exclude: set[int]) -> Answer:
        best: dict[str, float] = {}
        for j, lab in enumerate(self.p.labels):
            if j != i and j not in exclude:
                d = float(np.linalg.norm(self.z[i] - self.z[j]))
                best[lab] = min(best.get(lab, np.inf), d)
        return Answer(sorted(best, key=lambda k: best[k]), float("nan"))

    def encounter(self, answers: list[Answer]) -> Answer:
        return answers[0]


def photo_stats(bgr: np.ndarray) -> list[float]:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return [np.log(bgr.shape[1]), np.log(bgr.shape[0]), *bgr.reshape(-1, 3).mean(0), float(grey.std())]


def always_new_f1(n_known: int, n_new: int) -> float:
    """F1 of "new" for a caller that calls every query new: precision = share of new queries."""
    precision = n_new / (n_known + n_new)
    return 2 * precision / (precision + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    args = ap.parse_args()
    shipped = FeatureParams()
    no_mask = replace(shipped, foreground="none", max_features=450)
    print(f"features: {shipped.key} (and {no_mask.key}); baseline: plain SIFT {BASELINE_FEATURES} keypoints "
          f"+ ratio test {RATIO}")
    p, (feats, feats_none), nights, stats = load(args.shared, [shipped, no_mask])
    pair_scores, base_s = baseline_pair_scores(p.base, list(range(len(p.base))), "bigcat-reid-crops")
    pardus = Pardus(p, shipped.key, feats=feats, same_place=False)
    methods = [StationPrior(p), PhotoLook(p, stats), PlainSift(p, pair_scores, 0.0), pardus,
               Pardus(p, no_mask.key, name="Pardus test", feats=feats_none, same_place=False),
               PardusWithPrior(p, pardus)]
    n_enc = len(set(p.encounters))
    print(f"{len(p.labels)} photos, {len(set(p.labels))} leopards "
          f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(p.labels).items()))}), {n_enc} encounters "
          f"(individual, station, date), {len(set(p.stations))} stations, {len(set(p.cameras))} cameras")
    for split in standard_splits(p):
        res = {m.name: evaluate(p, split, m, nights, base_s if m.name == "plain SIFT" else 0.0) for m in methods}
        inds = sorted({p.labels[i] for i in split.known})
        s = res["Pardus"]
        print_split(f"bigcat-reid, {split.name}: {len(p.labels)} real leopard flank crops", res,
                    f"known queries of {len(inds)} leopards ({', '.join(inds)}); catalogue of 4 (3 for 'new')")
        print(f"  chance: top-1 0.250 (uniform among 4), top-5 1.000 (only 4 cats); 'always new' F1 "
              f"{always_new_f1(s.n_queries, s.n_new):.3f} per photo, "
              f"{always_new_f1(s.n_enc, s.n_new_enc):.3f} per encounter")


if __name__ == "__main__":
    main()
