"""Searching the distractor coats: the HNSW graph Pardus uses against an exact search of the same
descriptors, per query, and how often the graph's answer is the exact one.

Every re-identification query is also searched among eight rendered distractor leopards
(``pardus.reid.distractors``, about 20,000 RootSIFT descriptors). This bench times that search the
way the matcher calls it (``distractors.nearest``: the ``k + knorm`` nearest per query feature)
against an exact flat search (faiss ``IndexFlatL2``) over the same descriptors, on queries of
rendered leopards that are not among the distractors. Because only the nearest distance takes a
vote slot, it also prints how often the graph returns the same nearest distance and how far the
``k + knorm`` distances it returns are from the exact ones.

    python bench/reid_distractors.py [--queries 12]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from pardus.reid import distractors
from pardus.reid.features import FeatureParams, extract
from pardus.reid.match import MatchParams
from pardus.reid.simulated import render_animal


def exact_nearest(flat: faiss.Index, desc: np.ndarray, k: int) -> np.ndarray:
    """The same units as ``distractors.nearest``, from an exact search."""
    d2, _ = flat.search(np.ascontiguousarray(desc, dtype=np.float32), k)
    return (np.sqrt(np.maximum(d2, 0)) / 512.0).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=12, help="rendered leopard photos searched")
    args = ap.parse_args()
    if args.queries < 1:
        ap.error("--queries must be at least 1")

    params, mp = FeatureParams(), MatchParams()
    k = mp.k + mp.knorm
    t0 = time.perf_counter()
    vecs = distractors.descriptors()
    distractors.nearest(vecs[:1], k)  # builds the graph once, as the first query of a process does
    print(f"distractors: {mp.distractors} cats, {len(vecs):,} descriptors, made and graphed in "
          f"{time.perf_counter() - t0:.1f} s (once per process, loading the feature models included)")
    flat = faiss.IndexFlatL2(vecs.shape[1])
    flat.add(vecs)

    queries = []
    for q in range(args.queries):  # cats ~Q*, never among the distractors (~X*)
        ph = render_animal(f"~Q{q}", "left" if q % 2 else "right", 9000 + q)
        queries.append(extract(ph.bgr, ph.box, params).desc.astype(np.float32))

    distractors.nearest(queries[0], k)  # warm both searches (thread pools) outside the timing
    exact_nearest(flat, queries[0], k)
    t_graph = t_exact = 0.0
    same_first = total = 0
    rel_err: list[float] = []
    for desc in queries:
        t = time.perf_counter()
        approx = distractors.nearest(desc, k)
        t_graph += time.perf_counter() - t
        t = time.perf_counter()
        exact = exact_nearest(flat, desc, k)
        t_exact += time.perf_counter() - t
        same_first += int(np.sum(np.isclose(approx[:, 0], exact[:, 0], rtol=1e-4, atol=1e-6)))
        total += len(desc)
        rel_err.append(float(np.mean((approx - exact) / np.maximum(exact, 1e-6))))

    n = len(queries)
    print(f"{n} queries, {total:,} query features, k + knorm = {k}")
    print(f"{'search':<34}{'ms per query':>14}")
    print(f"{'exact (faiss IndexFlatL2)':<34}{1000 * t_exact / n:>14.1f}")
    print(f"{'Pardus (HNSW graph)':<34}{1000 * t_graph / n:>14.1f}")
    print(f"Pardus / exact time: {t_graph / t_exact:.2f}x")
    print(f"nearest distance the same as the exact search's: {same_first / total:.3f} of query features; "
          f"the k + knorm distances are on average {100 * float(np.mean(rel_err)):.2f}% longer than exact")


if __name__ == "__main__":
    main()
