"""Distractor coats: rendered leopards every query is also searched against, never proposed.

Why: an individual's score is the coat votes it collects (LNBNN, :func:`pardus.reid.match.match`),
so in a catalogue of one or two cats every chance vote of an unknown animal goes to them. A park
starts its catalogue that way, and then a new leopard, or a deer the species stage was unsure of,
comes out as the catalogued cat at 70-85% (``bench/reid_tiny_catalogue.py``). With the nearest
neighbours searched among these distractors as well, chance matches spread over them and their
votes are dropped, the way a larger catalogue spreads them, while a true match (much nearer than
anything else) keeps its vote. On the real snow leopards this left top-1 unchanged in both splits
and raised "new" F1 per encounter from 0.746 to 0.769 and 0.800 to 0.806 (docs/reid.md).

The distractors are made here by Pardus's own renderer (``pardus.reid.simulated``): eight
virtual-park leopards, both flanks, two scenes each, features with the default feature settings;
made once per process (about 25 s on this 2-core machine in a fresh process, loading the feature
models included; ``bench/reid_distractors.py``) and kept in memory, searched through an HNSW graph.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import faiss
import numpy as np

DISTRACTOR_CATS = 8
_lock = threading.Lock()


@lru_cache(maxsize=2)
def _descriptors(n_cats: int) -> np.ndarray:
    from pardus.reid.features import FeatureParams, extract
    from pardus.reid.simulated import render_animal

    params = FeatureParams()
    parts = []
    for d in range(n_cats):
        for flank in ("left", "right"):
            for seed in (1, 2):
                ph = render_animal(f"~X{d}", flank, seed + (0 if flank == "left" else 10) + 5000 + 100 * d)
                parts.append(extract(ph.bgr, ph.box, params).desc)
    return np.ascontiguousarray(np.concatenate(parts).astype(np.float32))


def descriptors(n_cats: int = DISTRACTOR_CATS) -> np.ndarray:
    """The distractors' descriptors (float32, the index's uint8 RootSIFT units), made on first use."""
    with _lock:
        return _descriptors(n_cats)


@lru_cache(maxsize=2)
def _graph(n_cats: int) -> faiss.Index:
    """An HNSW graph over the distractors: an exact search over their 20,700 descriptors costs
    about 70 ms a query on this machine, more than the catalogue's own search; the graph 12.5 ms,
    with the exact nearest distance for 97% of query features (``bench/reid_distractors.py``)."""
    vecs = _descriptors(n_cats)
    graph = faiss.IndexHNSWFlat(vecs.shape[1], 16)
    graph.hnsw.efConstruction = 40
    graph.hnsw.efSearch = 32
    graph.add(vecs)
    return graph


def nearest(desc: np.ndarray, k: int, n_cats: int = DISTRACTOR_CATS) -> np.ndarray:
    """Distances (RootSIFT units, as ``Neighbours.dist``) from each query descriptor to its ``k``
    nearest distractor descriptors (approximate, from the graph), nearest first."""
    with _lock:
        graph = _graph(n_cats)
    if desc.shape[0] == 0 or graph.ntotal == 0:
        return np.full((desc.shape[0], k), np.inf, np.float32)
    kk = min(k, graph.ntotal)
    d2, ids = graph.search(np.ascontiguousarray(desc, dtype=np.float32), kk)
    d2 = np.where(ids >= 0, d2, np.inf)
    dist = (np.sqrt(np.maximum(d2, 0)) / 512.0).astype(np.float32)
    if kk < k:
        dist = np.pad(dist, ((0, 0), (0, k - kk)), constant_values=np.inf)
    return dist
