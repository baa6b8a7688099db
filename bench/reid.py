"""Re-identification accuracy: Pardus's HotSpotter-style matcher against plain SIFT, same run.

Part 1, real photos: ../shared/data/snow-leopard-reid (116 photos, 6 snow leopards, 28 encounters,
day and IR night), whole frames as the set comes (no boxes); ``--boxes`` crops both matchers'
input to the best animal box of Pardus's detector (YOLOX, cached), as the pipeline would.
- Leave-one-encounter-out identification: every photo is a query against all photos of *other*
  encounters (its own burst would be a near-copy); top-1 and top-5 per photo, and per encounter
  (the burst's photos combined).
- Open set, "previously unknown individual": leave-one-individual-out queries (all photos of that
  cat withdrawn) are the truly new ones, the leave-one-encounter-out queries the known ones. The
  calibration and threshold are fitted on the other individuals' queries (cross-fitted by
  individual), then precision/recall of "new" are counted.
- Baseline: plain OpenCV SIFT (1,000 strongest keypoints of the grey crop resized like Pardus's),
  BFMatcher with Lowe's ratio test (0.8), photo by photo; an individual's score is its best photo's
  number of ratio-test matches. Same queries, same exclusions, same cross-fitted open-set rule.

Part 2, the virtual park: 50 rendered leopards, 3 day catalogue photos each (left and right
flanks, flank known as a person would record it), one new infrared *night* photo of each as a
query (the hard case: IR against day), and 10 more leopards never in the catalogue (2 photos
each, day or night) as the new ones; detection boxes from the renderer's truth.

    python bench/reid.py [--shared ../shared] [--sim-individuals 50] [--skip-sim]

Features are cached in ~/.cache/pardus-bench/reid (PARDUS_BENCH_CACHE); the first run extracts.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pardus.reid.background import suppress_scenery  # noqa: E402
from pardus.reid.features import ChipFeatures, FeatureParams, extract  # noqa: E402
from pardus.reid.index import Annotation, FeatureIndex  # noqa: E402
from pardus.reid.match import combine, match  # noqa: E402
from pardus.reid.openset import calibrate  # noqa: E402
from reid_common import cached_features, crossfit_openset, fmt_ratio, topk  # noqa: E402

BASELINE_FEATURES = 1000
RATIO = 0.8


# --- the plain-SIFT baseline ------------------------------------------------------------------

def baseline_features(bgr: np.ndarray, box: tuple[float, float, float, float] | None, sqrt_area: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if box is not None:
        h, w = grey.shape
        x, y, bw, bh = box
        grey = grey[int(y * h):int((y + bh) * h), int(x * w):int((x + bw) * w)]
    s = sqrt_area / np.sqrt(grey.shape[0] * grey.shape[1])
    grey = cv2.resize(grey, (max(16, round(grey.shape[1] * s)), max(16, round(grey.shape[0] * s))),
                      interpolation=cv2.INTER_AREA)
    kps, desc = cv2.SIFT_create(nfeatures=BASELINE_FEATURES).detectAndCompute(grey, None)
    return np.array([k.pt for k in kps], np.float32), (desc if desc is not None else np.zeros((0, 128), np.float32))


def baseline_pair_scores(descs: list[np.ndarray], rows: list[int], cache_name: str) -> tuple[np.ndarray, float]:
    """Ratio-test matches of each query row against every photo, and seconds per query row.

    OpenCV's brute-force matcher is the slow part of the whole bench (about 25 ms per photo pair
    here), so the matrix is cached beside the features; the time it took is cached with it.
    """
    import hashlib

    from reid_common import CACHE

    key = hashlib.sha1((cache_name + repr(rows) + repr([len(d) for d in descs])).encode()).hexdigest()[:16]
    path = CACHE / "baseline" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["scores"], float(z["seconds"])
    bf = cv2.BFMatcher(cv2.NORM_L2)
    n = len(descs)
    out = np.zeros((n, n), np.float32)
    t0 = time.perf_counter()
    for c, i in enumerate(rows):
        for j in range(n):
            if i == j or len(descs[i]) < 2 or len(descs[j]) < 2:
                continue
            pairs = bf.knnMatch(descs[i], descs[j], k=2)
            out[i, j] = sum(1 for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance)
        if c % 20 == 0:
            print(f"  baseline matching {c + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    seconds = (time.perf_counter() - t0) / max(1, len(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, scores=out, seconds=np.array(seconds))
    return out, seconds


def baseline_rank(scores_row: np.ndarray, labels: list[str], allowed: np.ndarray) -> tuple[list[str], float]:
    best: dict[str, float] = {}
    for j in np.nonzero(allowed)[0]:
        best[labels[j]] = max(best.get(labels[j], 0.0), float(scores_row[j]))
    ranked = sorted(best, key=best.get, reverse=True)
    return ranked, (best[ranked[0]] if ranked else 0.0)


# --- evaluation ---------------------------------------------------------------------------

class Photos:
    """The labelled photos of one experiment, with Pardus and baseline features."""

    def __init__(self, labels: list[str], encounters: list[str], stations: list[str],
                 feats: list[ChipFeatures], base: list[np.ndarray], flanks: list[str | None]) -> None:
        self.labels, self.encounters, self.stations = labels, encounters, stations
        self.feats, self.base, self.flanks = feats, base, flanks


def apply_background(p: Photos) -> int:
    """Scenery test per photo against the other sequences of its camera."""
    total = 0
    for i, f in enumerate(p.feats):
        refs = [p.feats[j] for j in range(len(p.feats))
                if p.stations[j] == p.stations[i] and p.encounters[j] != p.encounters[i]]
        total += suppress_scenery(f, refs)
    return total


def build_index(p: Photos, params_key: str, use_weights: bool = True) -> FeatureIndex:
    idx = FeatureIndex(None, params_key)
    for i, f in enumerate(p.feats):
        ff = f if use_weights else f.subset(np.arange(len(f)))
        if not use_weights:
            ff.weight = np.ones(len(ff), np.float32)
        idx.add(Annotation(i, p.labels[i], p.flanks[i]), ff, save=False)
    idx.fold()  # everything in the HNSW graph, as a long-lived catalogue is
    return idx


def evaluate(p: Photos, idx: FeatureIndex, base_scores: np.ndarray, query_rows: list[int],
             new_rows: list[int], exclude_of: dict[int, set[int]], new_exclude_of: dict[int, set[int]],
             base_seconds: float, use_weights: bool = True) -> dict[str, object]:
    """Identification and open-set numbers for Pardus and the baseline on the same queries."""
    out: dict[str, object] = {}
    for who in ("pardus", "baseline"):
        ranked, best, is_new, truth, folds, per_enc = [], [], [], [], [], defaultdict(list)
        night: list[bool] = []
        t0 = time.perf_counter()
        for rows, excl_map, new in ((query_rows, exclude_of, False), (new_rows, new_exclude_of, True)):
            for i in rows:
                excl = excl_map[i]
                if who == "pardus":
                    q = p.feats[i]
                    if not use_weights:
                        q = q.subset(np.arange(len(q)))
                        q.weight = np.ones(len(q), np.float32)
                    res = match(q, idx, exclude=excl)
                    r, s = res.top(10), (res.best.score if res.best else 0.0)
                    if not new:
                        per_enc[p.encounters[i]].append(res)
                else:
                    allowed = np.ones(len(p.labels), bool)
                    allowed[list(excl)] = False
                    r, s = baseline_rank(base_scores[i], p.labels, allowed)
                    if not new:
                        per_enc[p.encounters[i]].append(r)
                ranked.append(r)
                best.append(s)
                is_new.append(new)
                truth.append(p.labels[i])
                folds.append(p.labels[i])
                night.append(p.feats[i].night)
        seconds = time.perf_counter() - t0
        known = [k for k, n in enumerate(is_new) if not n]
        known_night = [k for k in known if night[k]]
        known_day = [k for k in known if not night[k]]
        right = [bool(ranked[k]) and ranked[k][0] == truth[k] for k in range(len(truth))]
        rep = crossfit_openset(best, right, is_new, folds)
        if who == "pardus":
            enc_ranked, enc_truth = [], []
            for enc, results in per_enc.items():
                enc_ranked.append(combine(results).top(10))
                enc_truth.append(p.labels[p.encounters.index(enc)])
        else:
            enc_ranked, enc_truth = [], []
            for enc, ranks in per_enc.items():
                votes: dict[str, float] = defaultdict(float)
                for r in ranks:
                    for pos, name in enumerate(r):
                        votes[name] += 1.0 / (pos + 1)
                enc_ranked.append(sorted(votes, key=votes.get, reverse=True))
                enc_truth.append(p.labels[p.encounters.index(enc)])
        full = calibrate(best, [a and not b for a, b in zip(right, is_new, strict=True)], is_new)[0]
        out[who] = dict(
            calibration=full,
            top1=topk([ranked[k] for k in known], [truth[k] for k in known], 1),
            top5=topk([ranked[k] for k in known], [truth[k] for k in known], 5),
            top1_night=topk([ranked[k] for k in known_night], [truth[k] for k in known_night], 1)
            if known_night else float("nan"),
            top1_day=topk([ranked[k] for k in known_day], [truth[k] for k in known_day], 1),
            n_night=len(known_night),
            enc_top1=topk(enc_ranked, enc_truth, 1), enc_top5=topk(enc_ranked, enc_truth, 5),
            n_queries=len(known), n_enc=len(enc_truth), n_new=len(new_rows), openset=rep,
            seconds_per_query=seconds / max(1, len(truth)) + (base_seconds if who == "baseline" else 0.0),
        )
    return out


def print_table(title: str, res: dict[str, dict], extra: str = "") -> None:
    pa, ba = res["pardus"], res["baseline"]
    print(f"\n== {title} ==")
    if extra:
        print(extra)
    print(f"{'metric':38s} {'plain SIFT':>11s} {'Pardus':>9s} {'ratio':>7s}")
    rows = [
        (f"top-1 per photo ({pa['n_queries']} queries)", ba["top1"], pa["top1"]),
        ("top-5 per photo", ba["top5"], pa["top5"]),
        (f"top-1, day photos ({pa['n_queries'] - pa['n_night']})", ba["top1_day"], pa["top1_day"]),
        (f"top-1, IR night photos ({pa['n_night']})", ba["top1_night"], pa["top1_night"]),
        (f"top-1 per encounter ({pa['n_enc']})", ba["enc_top1"], pa["enc_top1"]),
        ("top-5 per encounter", ba["enc_top5"], pa["enc_top5"]),
        (f"'new individual' precision ({pa['n_new']} new)", ba["openset"].precision, pa["openset"].precision),
        ("'new individual' recall", ba["openset"].recall, pa["openset"].recall),
        ("'new individual' F1", ba["openset"].f1, pa["openset"].f1),
        ("seconds per query", ba["seconds_per_query"], pa["seconds_per_query"]),
    ]
    for name, b, a in rows:
        if np.isnan(a) and np.isnan(b):
            continue  # e.g. no day queries in this set
        print(f"{name:38s} {b:11.3f} {a:9.3f} {fmt_ratio(a, b):>7s}")
    cal = pa["calibration"]
    print(f"  Pardus calibration fitted on all these queries: slope {cal.slope:.3f}, intercept {cal.intercept:.3f}, "
          f"'new' below probability {cal.new_threshold:.3f}")
    for who in ("baseline", "pardus"):
        o = res[who]["openset"]
        print(f"  {who}: new called right {o.true_new}, known called new {o.false_new}, new missed {o.missed_new}, "
              f"known kept {o.true_known}; median threshold {o.threshold:.3f}")


def leave_out_sets(p: Photos) -> tuple[list[int], list[int], dict[int, set[int]], dict[int, set[int]]]:
    n = len(p.labels)
    by_enc: dict[str, set[int]] = defaultdict(set)
    by_ind: dict[str, set[int]] = defaultdict(set)
    for i in range(n):
        by_enc[p.encounters[i]].add(i)
        by_ind[p.labels[i]].add(i)
    # known queries: the individual must still have photos after its encounter is withdrawn
    known = [i for i in range(n) if by_ind[p.labels[i]] - by_enc[p.encounters[i]]]
    exclude = {i: by_enc[p.encounters[i]] for i in range(n)}
    return known, list(range(n)), exclude, {i: by_ind[p.labels[i]] for i in range(n)}


def detection_boxes(root: Path, rows: list[dict[str, str]]) -> dict[str, tuple[float, float, float, float]]:
    """The best animal box per photo from Pardus's detector (as the pipeline would give the reid
    stage), cached as JSON; photos where it finds nothing are matched as whole frames."""
    import json

    from reid_common import CACHE

    path = CACHE / "snow-leopard-boxes.json"
    if path.exists():
        return {k: tuple(v) for k, v in json.loads(path.read_text()).items()}  # type: ignore[misc]
    import torch

    from pardus.models.detectors import YoloxAnimalDetector
    from pardus.pipeline.detect import Thresholds

    torch.set_num_threads(1)  # on a loaded 2-core machine one thread is 30x faster than torch's default
    det = YoloxAnimalDetector()
    out: dict[str, tuple[float, float, float, float]] = {}
    t0 = time.perf_counter()
    for k, r in enumerate(rows):
        bgr = cv2.imdecode(np.fromfile(root / r["file"], np.uint8), cv2.IMREAD_COLOR)
        found = [b for b in det.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) if b.score >= Thresholds().animal]
        if found:
            b = max(found, key=lambda b: b.score)
            out[r["sha256"]] = (b.x, b.y, b.w, b.h)
        if k % 20 == 0:
            print(f"  detection {k + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def real_photos(shared: Path, params: FeatureParams, use_boxes: bool = True) -> Photos:
    root = shared / "data" / "snow-leopard-reid"
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels, encs, stations, feats, base = [], [], [], [], []
    t0 = time.perf_counter()
    boxes = detection_boxes(root, rows) if use_boxes else {}
    for k, r in enumerate(rows):
        photo = _Lazy(lambda path=root / r["file"]: cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR))
        box = boxes.get(r["sha256"])
        size = params.chip_sqrt_area if box else params.frame_sqrt_area
        name = f"{r['sha256']}|{box}"
        f = cached_features(name, params.key, lambda photo=photo, box=box: extract(photo(), box, params))
        b = cached_features(name, f"plainsift{BASELINE_FEATURES}-{size}",
                            lambda photo=photo, box=box, size=size: _baseline_as_chip(photo(), box, size))
        labels.append(r["individual_id"])
        encs.append(r["encounter_id"])
        stations.append(f"{r['site_prefix']}-{r['station']}-{r['camera']}")
        feats.append(f)
        base.append(b.desc.astype(np.float32))
        if k % 20 == 0:
            print(f"  features {k + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return Photos(labels, encs, stations, feats, base, [None] * len(rows))


class _Lazy:
    """A value made on first use (decoding or rendering a photo is skipped when both caches hit)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make, self._value, self._done = make, None, False

    def __call__(self) -> Any:
        if not self._done:
            self._value, self._done = self._make(), True
        return self._value


def _baseline_as_chip(bgr: np.ndarray, box: tuple[float, float, float, float] | None, sqrt_area: int) -> ChipFeatures:
    """The baseline's SIFT stored in the same cache format (descriptors kept as float via uint8 range)."""
    xy, desc = baseline_features(bgr, box, sqrt_area)
    kpts = np.zeros((len(xy), 5), np.float32)
    kpts[:, :2] = xy
    return ChipFeatures(kpts, np.clip(desc, 0, 255).astype(np.uint8), np.ones(len(xy), np.float32), (0, 0),
                        bgr.shape[:2], 1.0, (0.0, 0.0), False, "plainsift")


def sim_photos(n_ind: int, n_new: int, params: FeatureParams) -> tuple[Photos, list[int], list[int]]:
    from pardus.reid.simulated import render_animal

    labels, encs, stations, feats, base, flanks = [], [], [], [], [], []
    catalogue, queries, news = [], [], []
    plan = []
    for i in range(n_ind + n_new):
        ind = f"SIM_L{i:03d}"
        sides = ["left", "right", "left" if i % 2 else "right", "left" if i % 3 else "right"]
        if i < n_ind:
            plan += [(ind, sides[k], k, "catalogue") for k in range(3)] + [(ind, sides[3], 3, "query")]
        else:
            plan += [(ind, sides[k], k, "new") for k in range(2)]
    t0 = time.perf_counter()
    for n, (ind, side, k, role) in enumerate(plan):
        seed = 1000 + n
        night = n % 4 == 3
        sim = _Lazy(lambda ind=ind, side=side, seed=seed, night=night: render_animal(ind, side, seed, night=night))
        name = f"sim|{ind}|{side}|{seed}|{night}"
        f = cached_features(name, params.key, lambda sim=sim: extract(sim().bgr, sim().box, params))
        b = cached_features(name, f"plainsift{BASELINE_FEATURES}-{params.chip_sqrt_area}",
                            lambda sim=sim: _baseline_as_chip(sim().bgr, sim().box, params.chip_sqrt_area))
        row = len(labels)
        labels.append(ind)
        encs.append(f"{ind}|{k}")
        stations.append(f"S{seed}")
        feats.append(f)
        base.append(b.desc.astype(np.float32))
        flanks.append(side if role == "catalogue" else None)
        {"catalogue": catalogue, "query": queries, "new": news}[role].append(row)
        if n % 25 == 0:
            print(f"  simulated {n + 1}/{len(plan)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return Photos(labels, encs, stations, feats, base, flanks), queries, news


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    ap.add_argument("--sim-individuals", type=int, default=50)
    ap.add_argument("--sim-new", type=int, default=10)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--boxes", action="store_true", help="crop the real photos to the detector's animal box")
    args = ap.parse_args()
    params = FeatureParams()
    print(f"features: {params.key}; baseline: plain SIFT {BASELINE_FEATURES} keypoints + BFMatcher ratio {RATIO}")

    if not args.skip_real:
        p = real_photos(args.shared, params, use_boxes=args.boxes)
        base_scores, base_s = baseline_pair_scores(p.base, list(range(len(p.base))),
                                                   "snow-leopard-boxes" if args.boxes else "snow-leopard-reid")
        known, new, excl, new_excl = leave_out_sets(p)
        no_bg = evaluate(p, build_index(p, params.key), base_scores, known, new, excl, new_excl, base_s)
        n_scenery = apply_background(p)
        res = evaluate(p, build_index(p, params.key), base_scores, known, new, excl, new_excl, base_s)
        nights = sum(f.night for f in p.feats)
        print_table("snow-leopard-reid: 116 real photos, 6 individuals, leave-one-encounter-out", res,
                    f"{nights} IR night photos; {n_scenery} features marked scenery by the same-camera test; "
                    f"{'animal boxes from the YOLOX detector' if args.boxes else 'whole frames'}")
        print(f"  without background suppression Pardus top-1 {no_bg['pardus']['top1']:.3f} "  # type: ignore[index]
              f"top-5 {no_bg['pardus']['top5']:.3f}, 'new' F1 {no_bg['pardus']['openset'].f1:.3f}")  # type: ignore[index]

    if not args.skip_sim:
        sim_params = FeatureParams()
        sp, queries, news = sim_photos(args.sim_individuals, args.sim_new, sim_params)
        cat_rows = set(range(len(sp.labels))) - set(queries) - set(news)
        not_cat = set(queries) | set(news)
        excl = {i: not_cat for i in queries}
        new_excl = {i: not_cat for i in news}
        scores, base_s = baseline_pair_scores(sp.base, queries + news, f"sim{args.sim_individuals}-{args.sim_new}")
        res = evaluate(sp, build_index(sp, sim_params.key), scores, queries, news, excl, new_excl, base_s)
        print_table(f"virtual park: {args.sim_individuals} rendered leopards x 3 catalogue photos "
                    f"({len(cat_rows)}), {len(queries)} known + {len(news)} new queries", res,
                    "catalogue: day photos, flanks known; known queries: IR night photos, flank not given")


if __name__ == "__main__":
    main()
