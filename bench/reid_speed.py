"""Query time against a growing catalogue (1,000 -> 10,000 photos): HNSW index vs exact search.

What is simulated, to make 10,000 catalogue photos on a shared 2-core machine in minutes:
- each photo is the coat of one virtual-park leopard flank (``pardus.simulate.textures``, the same
  coats the rendered frames use), warped by a random perspective (viewpoint), rescaled, with
  random brightness, blur and sensor noise, but no forest scene around it (the animal's chip as
  a detector would cut it);
- 2,000 individuals x 5 photos (flanks mixed); chips are small (sqrt area 180 px) with at most
  150 keypoints each (real photos give 800-900), so the catalogue holds about 1.5 million
  descriptors: a 10,000-photo catalogue of full-size photos holds about 6 times more (the
  search cost grows with the logarithm of that, the per-query work with the query's features);
- the first 1,000 photos (which hold every queried individual) get Pardus's full features;
  photos 1,001-10,000 are *distractors* (1,800 more "leopards") whose RootSIFT descriptors come
  from OpenCV's plain SIFT on the chip (isotropic keypoints, no shape adaptation), and whose
  chips are random windows and viewpoints of 100 further coats (drawing a coat costs more than
  matching it): a few ms per photo instead of 0.2-1 s on this shared machine, and the same kind
  of descriptor, from the same kind of pattern, for the search to wade through;
- features are extracted once (two processes) and cached in ~/.cache/pardus-bench/reid.

Measured at each catalogue size, on the same queries (new photos of individuals catalogued in the
first 1,000 photos, so every query has its animal at every size):
- Pardus: ``match`` (one search over every descriptor, LNBNN, spatial verification) on the
  incremental faiss HNSW index; the photos are added to it, never rebuilt;
- baseline: the same ``match`` on exact (brute-force) nearest-neighbour search, which is what
  HotSpotter does without an approximate index; its cost grows linearly with the catalogue;
- the per-photo plain-SIFT matcher of bench/reid.py (BFMatcher + ratio test against every
  photo): its per-pair time is measured on 200 pairs and multiplied by the catalogue size
  (extrapolated, said so in the output).

    python bench/reid_speed.py [--sizes 1000,2000,5000,10000] [--queries 40]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pardus.reid.features import ChipFeatures, FeatureParams, extract, rootsift_uint8  # noqa: E402
from pardus.reid.index import Annotation, FeatureIndex  # noqa: E402
from pardus.reid.match import match  # noqa: E402
from reid_common import CACHE, fmt_ratio  # noqa: E402

# the chips are coat only (no scenery to mask), and this bench measures search, not extraction
PARAMS = FeatureParams(chip_sqrt_area=180, max_features=150, foreground="none")
PHOTOS_PER_INDIVIDUAL = 5


_COATS: dict[tuple[int, str], np.ndarray] = {}


def _coat(seed: int, flank: str) -> np.ndarray:
    if (seed, flank) not in _COATS:
        from pardus.simulate.textures import leopard_coat

        _COATS[(seed, flank)] = np.clip(leopard_coat(seed, flank), 0, 255).astype(np.uint8)
    return _COATS[(seed, flank)]


def chip(individual: int, flank: str, photo: int, distractor: bool = False) -> np.ndarray:
    """One simulated chip of one flank: the coat's trunk seen from a random viewpoint."""
    rng = np.random.default_rng([individual, photo, 7])
    if distractor:  # a random window of one of 100 further coats
        coat = _coat(50_000 + individual % 100, flank)
        y0, x0 = int(rng.integers(0, 100)), int(rng.integers(0, 180))
        trunk = coat[y0:y0 + 200, x0:x0 + 420].astype(np.float32)
    else:
        trunk = _coat(10_000 + individual, flank)[40:225, 130:560].astype(np.float32)
    h, w = trunk.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + (rng.normal(0, 0.05, src.shape) * np.float32([w, h])).astype(np.float32)
    out = cv2.warpPerspective(trunk, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT)
    scale = rng.uniform(0.7, 1.3)
    out = cv2.resize(out, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    out = out * rng.uniform(0.6, 1.2) + rng.normal(0, 5, out.shape)
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def plan(n_photos: int) -> list[tuple[int, str, int]]:
    out = []
    for i in range(n_photos // PHOTOS_PER_INDIVIDUAL + 1):
        for k in range(PHOTOS_PER_INDIVIDUAL):
            out.append((i, "left" if (i + k) % 3 else "right", k))
    return out[:n_photos]


FULL_FEATURES = 1000  # photos before this get Pardus's own extraction, later ones are distractors


def distractor_features(bgr: np.ndarray) -> ChipFeatures:
    """Plain OpenCV SIFT keypoints and RootSIFT descriptors of a chip, in Pardus's feature layout."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    s = PARAMS.chip_sqrt_area / np.sqrt(grey.shape[0] * grey.shape[1])
    grey = cv2.resize(grey, (round(grey.shape[1] * s), round(grey.shape[0] * s)), interpolation=cv2.INTER_AREA)
    kps, desc = cv2.SIFT_create(nfeatures=PARAMS.max_features, contrastThreshold=PARAMS.contrast_threshold
                                ).detectAndCompute(grey, None)
    n = len(kps)
    kpts = np.zeros((n, 5), np.float32)
    if n:
        kpts[:, :2] = [k.pt for k in kps]
        sigma = np.array([k.size / 2 for k in kps], np.float32)
        kpts[:, 2], kpts[:, 4] = sigma, sigma  # isotropic frames
    d = rootsift_uint8(desc) if n else np.zeros((0, 128), np.uint8)
    return ChipFeatures(kpts, d, np.ones(n, np.float32), grey.shape[:2], bgr.shape[:2], 1 / s, (0.0, 0.0), False,
                        PARAMS.key)  # labelled with the index's key on purpose: see the module docstring


def _extract_chunk(job: tuple[int, list[tuple[int, str, int]]]) -> list[dict[str, np.ndarray]]:
    start, items = job
    cv2.setNumThreads(1)
    out = []
    for n, (i, f, k) in enumerate(items):
        full = start + n < FULL_FEATURES
        img = chip(i, f, k, distractor=not full)
        out.append((extract(img, (0.0, 0.0, 1.0, 1.0), PARAMS) if full else distractor_features(img)).to_arrays())
    return out


def catalogue_features(items: list[tuple[int, str, int]], tag: str, *, all_full: bool = False) -> list[ChipFeatures]:
    """Features of every planned chip, from the cache in chunks of 250 (made in 2 processes)."""
    folder = CACHE / f"speed-{PARAMS.key}"
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [items[s:s + 250] for s in range(0, len(items), 250)]
    out: list[ChipFeatures] = []
    todo = []
    for c, part in enumerate(chunks):
        path = folder / f"{tag}-{c:03d}-{len(part)}.npz"
        if not path.exists():
            todo.append(((0 if all_full else c * 250, part), path))
    if todo:
        t0 = time.perf_counter()
        # spawn, not fork: the parent has faiss's OpenMP threads running, and forked children deadlock
        with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
            for n, ((_, path), res) in enumerate(zip(todo, pool.map(_extract_chunk, [t[0] for t in todo]),
                                                     strict=True)):
                np.savez(path, **{f"{j}_{k}": v for j, arrays in enumerate(res) for k, v in arrays.items()})
                print(f"  extracted chunk {n + 1}/{len(todo)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    for c, part in enumerate(chunks):
        with np.load(folder / f"{tag}-{c:03d}-{len(part)}.npz") as z:
            for j in range(len(part)):
                out.append(ChipFeatures.from_arrays({k: z[f"{j}_{k}"] for k in ("kpts", "desc", "weight", "meta",
                                                                                 "params_key")}))
    return out


def bf_pair_seconds(feats: list[ChipFeatures], pairs: int = 200) -> float:
    bf = cv2.BFMatcher(cv2.NORM_L2)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(pairs):
        a, b = rng.integers(0, len(feats), 2)
        bf.knnMatch(feats[a].desc.astype(np.float32), feats[b].desc.astype(np.float32), k=2)
    return (time.perf_counter() - t0) / pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,2000,5000,10000")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--exact-queries", type=int, default=8, help="exact search is slow: fewer queries for it")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    items = plan(sizes[-1])
    print(f"simulated catalogue: {len(items)} chips of {len(items) // PHOTOS_PER_INDIVIDUAL} leopards "
          f"({PHOTOS_PER_INDIVIDUAL} photos each), features {PARAMS.key}; faiss threads {os.cpu_count()}")
    feats: list[ChipFeatures] = []  # extracted size by size, so the small sizes report early
    # queries: a sixth photo of individuals from the first 1,000 catalogue photos
    first = sorted({i for i, _, _ in items[: sizes[0]]})
    qplan = [(first[j * len(first) // args.queries], "left", PHOTOS_PER_INDIVIDUAL) for j in range(args.queries)]
    qplan = [(i, next(f for ii, f, _ in items if ii == i), k) for i, _, k in qplan]  # a flank it has in the catalogue
    queries = catalogue_features(qplan, f"queries{args.queries}", all_full=True)
    print(f"{len(queries)} queries, {sum(len(q) for q in queries) / len(queries):.0f} descriptors each")

    hnsw = FeatureIndex(None, PARAMS.key, fold_threshold=10**9)
    exact = FeatureIndex(None, PARAMS.key, fold_threshold=10**9)
    pair_s = bf_pair_seconds(queries)
    print(f"\n{'catalogue':>9s} {'descriptors':>11s} | {'exact s/query':>13s} {'HNSW s/query':>12s} {'speed-up':>8s} | "
          f"{'top-1 exact':>11s} {'top-1 HNSW':>10s} | {'plain SIFT s/query (extrapolated)':>33s}")
    added = 0
    rows = []
    for size in sizes:
        feats = catalogue_features(items[:size], "catalogue")
        t0 = time.perf_counter()
        for n in range(added, size):
            i, f, _ = items[n]
            ann = Annotation(n, f"L{i:05d}", f, "Panthera pardus orientalis")
            hnsw.add(ann, feats[n], save=False)
            exact.add(Annotation(n, f"L{i:05d}", f, "Panthera pardus orientalis"), feats[n], save=False)
        hnsw.fold()  # insert the new photos into the graph (insertion, not a rebuild)
        build = time.perf_counter() - t0
        added = size
        res = {}
        for name, idx in (("exact", exact), ("hnsw", hnsw)):
            times, right = [], 0
            nq = args.exact_queries if name == "exact" else len(queries)
            for (i, _, _), q in list(zip(qplan, queries, strict=True))[:nq]:
                t = time.perf_counter()
                r = match(q, idx)
                times.append(time.perf_counter() - t)
                right += bool(r.best) and r.best.individual == f"L{i:05d}"  # type: ignore[union-attr]
            res[name] = (float(np.median(times)), right / nq)
        bf = pair_s * size
        rows.append((size, res))
        print(f"{size:9d} {hnsw.ntotal:11d} | {res['exact'][0]:13.3f} {res['hnsw'][0]:12.3f} "
              f"{fmt_ratio(res['exact'][0], res['hnsw'][0]):>8s} | {res['exact'][1]:11.3f} {res['hnsw'][1]:10.3f} | "
              f"{bf:33.1f}   (adding photos to the index: {build:.0f} s)")
    (s0, r0), (s1, r1) = rows[0], rows[-1]
    growth = r1["hnsw"][0] / r0["hnsw"][0]
    print(f"\ncatalogue x{s1 / s0:.0f} ({s0} -> {s1} photos): HNSW query time x{growth:.2f} "
          f"({'sub-linear' if growth < s1 / s0 else 'NOT sub-linear'}), "
          f"exact search x{r1['exact'][0] / r0['exact'][0]:.2f}, "
          f"plain SIFT per photo x{s1 / s0:.0f}")
    print(f"query against {s1} photos: {r1['hnsw'][0]:.2f} s median (target < 2 s on 2 cores)")


if __name__ == "__main__":
    main()
