"""Background suppression: keypoints on the animal count, the rocks behind it do not.

A camera trap is bolted to a tree: its rocks, trunks and grass sit at the same pixels in every
photo it takes, whoever walks past. Left in, those keypoints make two different leopards photographed
at one station look alike (the scenery matches perfectly), and one leopard at two stations look
different. So a feature of a photo is *scenery* when a near-identical descriptor sits at (almost)
the same place in the frame of another photo from the same camera taken at another time (another
sequence, so the animal has moved on). Such features get a low weight; LNBNN votes are multiplied
by both sides' weights in :func:`pardus.reid.match.match`.

A detection box, when there is one, already keeps most of the scenery out (the chip is the box);
this test removes what is left inside the box, and is the only defence for whole-frame queries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import faiss
import numpy as np

from pardus.reid.features import DESCRIPTOR_SCALE, ChipFeatures

# Two descriptors of the same rock in two photos: RootSIFT distance below this (0 .. 1.41).
SCENERY_MAX_DIST = 0.40
# ... and at most this far apart in the frame, as a fraction of the frame's diagonal.
SCENERY_XY_TOL = 0.012
# The weight a scenery feature keeps: small, not zero, so a leopard lying on the very same rock
# in two photos is not wiped out completely.
SCENERY_WEIGHT = 0.05


def scenery_mask(query: ChipFeatures, references: Sequence[ChipFeatures], *, max_dist: float = SCENERY_MAX_DIST,
                 xy_tol: float = SCENERY_XY_TOL, k: int = 3) -> np.ndarray:
    """True for each query feature that also appears, unmoved, in one of the ``references``.

    ``references`` are other photos of the same camera (same frame size), from other sequences.
    """
    static = np.zeros(len(query), bool)
    if len(query) == 0:
        return static
    q = query.desc.astype(np.float32)
    qxy = query.image_xy()
    diag = math.hypot(*query.image_shape)
    for ref in references:
        if len(ref) == 0 or tuple(ref.image_shape) != tuple(query.image_shape):
            continue
        kk = min(k, len(ref))
        d2, idx = faiss.knn(q, ref.desc.astype(np.float32), kk)
        dist = np.sqrt(np.maximum(d2, 0)) / DESCRIPTOR_SCALE
        rxy = ref.image_xy()[np.maximum(idx, 0)]
        near = np.linalg.norm(rxy - qxy[:, None, :], axis=2) < xy_tol * diag
        static |= np.any((dist < max_dist) & near & (idx >= 0), axis=1)
    return static


def suppress_scenery(query: ChipFeatures, references: Sequence[ChipFeatures], *,
                     weight: float = SCENERY_WEIGHT) -> int:
    """Lower the weight of ``query``'s scenery features in place; returns how many were scenery."""
    static = scenery_mask(query, references)
    query.weight = np.where(static, np.minimum(query.weight, weight), query.weight).astype(np.float32)
    query.extra["scenery_features"] = float(static.sum())
    return int(static.sum())
