"""From a query photo's features to a ranked list of individuals, HotSpotter's way and beyond.

1. **One search**: every query descriptor looks up its K+1 nearest descriptors in the whole
   catalogue at once (:class:`~pardus.reid.index.FeatureIndex`), restricted to photos the query may
   match (same species, never the opposite flank, not withdrawn).
2. **LNBNN** (local naive-Bayes nearest neighbour, McCann & Lowe 2012, as used by HotSpotter): a
   neighbour votes ``d(K+1) - d(k)``, how much closer it is than the (K+1)-th neighbour, which
   stands for "a random coat". Features that look like everything (grass, rock texture) get tiny
   votes; distinctive rosettes get large ones. Votes are weighted by both features' belief of
   lying on the animal and off the camera's scenery (:mod:`pardus.reid.foreground`).
3. **Spatial verification**: for the most promising photos, HotSpotter's single-correspondence
   hypotheses (an affine keypoint pair fixes a whole affine transform), the best one refined by a
   least-squares homography; only votes from geometrically consistent pairs survive. Because the
   keypoint frames keep image-up, a mirrored pattern cannot produce a consistent transform.
   Two photos from the same camera share its rocks at the same pixels: a pair whose two
   keypoints sit at (nearly) the same place of the frame in two photos of one camera is the
   scenery, not the coat, and votes nothing (``camera``; the cat does not stand on the same
   pixels in two encounters).
4. **Per individual, per flank**: a query feature counts once per individual (the best of its
   votes among that individual's photos, HotSpotter's "nsum"), so an animal with fifty catalogue
   photos does not outvote one with two. Votes from an individual's left-flank photos and its
   right-flank photos are never added together: a query shows one side, and evidence from the
   other side can only be coincidence.
5. **Open set**: the best individual's score is turned into a probability by a logistic curve
   fitted on labelled queries, and below a threshold chosen on labelled data the animal is
   reported as probably new (:mod:`pardus.reid.openset`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from pardus.reid.features import ChipFeatures
from pardus.reid.index import FeatureIndex, Neighbours

FLANK_UNKNOWN = "unknown"


@dataclass(frozen=True)
class MatchParams:
    """Matching knobs; the defaults are the ones bench/reid.py measured."""

    k: int = 4  # neighbours that vote (HotSpotter's K)
    knorm: int = 1  # the next neighbour is the normaliser
    shortlist_individuals: int = 10  # individual-flank groups whose photos are verified
    per_individual: int = 3  # photos verified per group
    max_correspondences: int = 500
    xy_tol: float = 0.03  # inlier distance, fraction of the catalogue chip's diagonal
    scale_tol: float = 2.0  # allowed keypoint scale disagreement under the transform
    min_inliers: int = 5
    verify: bool = True
    flank_aware: bool = True
    same_place_tol: float = 0.02  # same camera, same pixels within this fraction of the frame diagonal
    distractors: int = 8  # rendered leopards searched beside the catalogue, never proposed (0: none)
    # an individual's raw (unverified) evidence comes from its this many best photos (0: all), so
    # a cat with seventy catalogue photos does not collect more chance votes than one with three
    raw_photos: int = 0


@dataclass(frozen=True)
class Calibration:
    """Score -> probability (Platt scaling on log1p(score)) and the "new individual" threshold.

    Fitted by :func:`pardus.reid.openset.calibrate` on labelled queries; the defaults come from
    bench/reid.py on the real snow-leopard photos and are replaced by a park's own calibration.
    """

    # fitted by bench/reid.py on the virtual park (20 rendered leopards + 5 never catalogued,
    # detection boxes, IR night queries against day photos, animal-masked features): the
    # pipeline's situation; real photos score differently (docs/reid.md), which is why a park
    # should fit its own
    slope: float = 2.693
    intercept: float = -1.576
    new_threshold: float = 0.348  # a best probability below this means "probably a new individual"
    source: str = "virtual-park bench"

    def probability(self, score: float | np.ndarray) -> float | np.ndarray:
        z = self.slope * np.log1p(np.maximum(score, 0.0)) + self.intercept
        p = 1.0 / (1.0 + np.exp(-z))
        return float(p) if np.ndim(p) == 0 else p


@dataclass
class PhotoMatch:
    """One catalogue photo that matched: the verified correspondences and the transform."""

    annotation_id: int
    score: float
    query_idx: np.ndarray  # inlier query feature indices
    db_idx: np.ndarray  # the catalogue photo's matching feature indices
    votes: np.ndarray  # each pair's LNBNN vote
    transform: np.ndarray | None = None  # 3x3, query chip -> catalogue chip


@dataclass
class Candidate:
    """One individual proposed for the query, with the side it was matched on."""

    individual: str
    flank: str
    score: float
    probability: float = 0.0
    photos: list[PhotoMatch] = field(default_factory=list)


@dataclass
class MatchResult:
    """Ranked candidates for one query (best first) and the open-set decision."""

    candidates: list[Candidate]
    n_features: int
    flank: str | None  # the side seen, when a matched photo's flank tells it
    is_new: bool
    new_probability: float
    timings: dict[str, float] = field(default_factory=dict)
    # individuals with raw votes but no verified photo, strongest first: they rank after every
    # verified candidate (a person browsing the top five still sees them)
    unverified: list[str] = field(default_factory=list)

    def top(self, n: int = 5) -> list[str]:
        ranked = [c.individual for c in self.candidates]
        ranked += [i for i in self.unverified if i not in ranked]
        return ranked[:n]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def lnbnn_votes(dist: np.ndarray, k: int, knorm: int) -> np.ndarray:
    """Votes ``max(0, d_norm - d_j)`` for the first ``k`` neighbours; the ``k + knorm``-th normalises.

    Missing neighbours (distance inf) vote nothing; a missing normaliser (tiny catalogue) is
    replaced by sqrt(2), the largest distance between two RootSIFT descriptors.
    """
    norm = np.minimum(dist[:, k + knorm - 1], math.sqrt(2.0))
    votes = norm[:, None] - dist[:, :k]
    return np.where(np.isfinite(votes) & (votes > 0), votes, 0.0).astype(np.float32)


def _frames(kpts: np.ndarray) -> np.ndarray:
    out = np.zeros((kpts.shape[0], 2, 2), np.float64)
    out[:, 0, 0] = kpts[:, 2]
    out[:, 1, 0] = kpts[:, 3]
    out[:, 1, 1] = kpts[:, 4]
    return out


def verify_pairs(q: ChipFeatures, d: ChipFeatures, qi: np.ndarray, dj: np.ndarray, votes: np.ndarray,
                 params: MatchParams) -> tuple[np.ndarray, np.ndarray | None]:
    """Geometrically consistent pairs (a boolean mask) and the query->catalogue transform.

    Every pair of affine keypoints fixes one affine transform; the transform with the largest
    summed vote of agreeing pairs (position within ``xy_tol`` of the chip diagonal, scale within
    ``scale_tol``) wins, and a least-squares homography over its inliers refines it.
    """
    m = qi.shape[0]
    if m < params.min_inliers:
        return np.zeros(m, bool), None
    qxy = q.kpts[qi, :2].astype(np.float64)
    dxy = d.kpts[dj, :2].astype(np.float64)
    qa = _frames(q.kpts[qi])
    da = _frames(d.kpts[dj])
    # hypothesis h: M_h = D_h Q_h^-1, t_h = d_h - M_h q_h
    qa_inv = np.linalg.inv(qa)
    mh = np.einsum("hij,hjk->hik", da, qa_inv)
    th = dxy - np.einsum("hij,hj->hi", mh, qxy)
    pred = np.einsum("hij,cj->hci", mh, qxy) + th[:, None, :]
    err = np.linalg.norm(pred - dxy[None, :, :], axis=2)
    diag = math.hypot(*d.chip_shape)
    tol = params.xy_tol * diag
    log_det_m = np.log(np.abs(np.linalg.det(mh)))
    log_det_q = np.log(np.abs(qa[:, 0, 0] * qa[:, 1, 1]))
    log_det_d = np.log(np.abs(da[:, 0, 0] * da[:, 1, 1]))
    scale_err = np.abs(log_det_m[:, None] + log_det_q[None, :] - log_det_d[None, :]) / 2
    inl = (err < tol) & (scale_err < math.log(params.scale_tol))
    best = int(np.argmax(inl.astype(np.float32) @ votes))
    mask = inl[best]
    transform = np.eye(3)
    transform[:2, :2] = mh[best]
    transform[:2, 2] = th[best]
    # refine: least-squares homography on the inliers, then re-collect inliers under it
    for _ in range(2):
        if mask.sum() < max(params.min_inliers, 6):
            break
        h, _ = cv2.findHomography(qxy[mask], dxy[mask], 0)
        if h is None or not _sane(h, q.chip_shape):
            break
        proj = cv2.perspectiveTransform(qxy[None].astype(np.float64), h)[0]
        new_mask = np.linalg.norm(proj - dxy, axis=1) < tol
        if new_mask.sum() < mask.sum():
            break
        mask, transform = new_mask, h
    if mask.sum() < params.min_inliers:
        return np.zeros(m, bool), None
    return mask, transform


def _sane(h: np.ndarray, shape: tuple[int, int]) -> bool:
    """A homography that keeps orientation (no mirror) and does not fold the chip."""
    if abs(h[2, 2]) < 1e-9:
        return False
    hn = h / h[2, 2]
    if np.linalg.det(hn[:2, :2]) <= 0:
        return False
    hgt, wid = shape
    corners = np.array([[[0, 0], [wid, 0], [wid, hgt], [0, hgt]]], np.float64)
    denom = corners[0] @ hn[2, :2] + 1.0
    return bool(np.all(denom > 0.1))


def _with_distractors(nb: Neighbours, desc: np.ndarray, params: MatchParams) -> tuple[Neighbours, np.ndarray]:
    """The catalogue's neighbours merged with the distractor coats' (:mod:`pardus.reid.distractors`):
    the nearest ``k + knorm`` of both, and a mask of the places a distractor took."""
    from pardus.reid.distractors import nearest

    kk = params.k + params.knorm
    merged = np.concatenate([nb.dist, nearest(desc, kk, params.distractors)], axis=1)
    order = np.argsort(merged, axis=1, kind="stable")[:, :kk]
    foreign = order >= kk
    take = np.where(foreign, 0, order)

    def pick(a: np.ndarray) -> np.ndarray:
        return np.where(foreign, -1, np.take_along_axis(a, take, axis=1))

    out = Neighbours(dist=np.take_along_axis(merged, order, axis=1).astype(np.float32), ann=pick(nb.ann),
                   feat=pick(nb.feat), gid=np.where(foreign, 0, np.take_along_axis(nb.gid, take, axis=1)))
    return out, foreign


def match(
    query: ChipFeatures,
    index: FeatureIndex,
    *,
    flank: str | None = None,
    species: str | None = None,
    exclude: tuple[int, ...] | list[int] | set[int] = (),
    params: MatchParams | None = None,
    calibration: Calibration | None = None,
    shortlist: Iterable[str] | None = None,
    camera: str | None = None,
) -> MatchResult:
    """Rank the catalogue's individuals for one query photo.

    ``flank``: the side the query shows when known ('left'/'right'); photos of the other side are
    then never searched. ``exclude``: catalogue photo ids the query must not match (itself, its
    own burst in a leave-one-out test). ``shortlist``: individual ids to search among, the hook
    for a first-stage learned embedding (nearest individuals by whole-animal embedding, then
    coat-pattern matching among them); ``None`` searches the whole catalogue. ``camera``: the
    query's camera (deployment id; default ``query.camera``); pairs with a catalogue photo of the
    same camera that sit at the same pixels of the frame are its scenery and vote nothing.
    """
    params = params or MatchParams()
    camera = camera if camera is not None else query.camera
    calibration = calibration or Calibration()
    t0 = time.perf_counter()
    n = len(query)
    empty = MatchResult([], n, flank, True, 1.0)
    if n == 0 or len(index) == 0:
        return empty
    allowed = index.allowed_rows(flank=flank, species=species, exclude=exclude, individuals=shortlist)
    nb = index.search(query.desc, params.k + params.knorm, allowed)
    foreign = None
    if params.distractors:
        nb, foreign = _with_distractors(nb, query.desc, params)
    t_search = time.perf_counter()
    votes = lnbnn_votes(nb.dist, params.k, params.knorm)
    if foreign is not None:
        votes[foreign[:, : params.k]] = 0.0  # a distractor takes its neighbour's place, and its vote
    votes *= query.weight[:, None]
    qi, kj = np.nonzero(votes > 0)
    rows = nb.ann[qi, kj]
    feats = nb.feat[qi, kj]
    v = votes[qi, kj]
    v = v * index.weights[nb.gid[qi, kj]]
    anns = index.annotations
    if camera is not None and v.size:
        v = _drop_same_place(query, index, camera, qi, rows, feats, v, params.same_place_tol)
    keep_pairs = v > 0
    qi, rows, feats, v = qi[keep_pairs], rows[keep_pairs], feats[keep_pairs], v[keep_pairs]
    if v.size == 0:
        return empty

    def group_of(row: int) -> tuple[str, str]:
        a = anns[row]
        side = (a.flank or FLANK_UNKNOWN) if params.flank_aware else FLANK_UNKNOWN
        return a.individual, side

    # raw (unverified) evidence: per photo, each query feature's best vote
    pair_rows = defaultdict(list)
    for idx, r in enumerate(rows.tolist()):
        pair_rows[r].append(idx)
    photo_raw: dict[int, float] = {}
    for r, idxs in pair_rows.items():
        ia = np.asarray(idxs)
        photo_raw[r] = float(_best_per_feature(qi[ia], v[ia]).sum())
    group_photos: dict[tuple[str, str], list[int]] = defaultdict(list)  # each group's photos, best raw first
    for r in sorted(photo_raw, key=photo_raw.get, reverse=True):
        group_photos[group_of(r)].append(r)
    group_raw = {}
    for g, rs in group_photos.items():
        ia = np.concatenate([np.asarray(pair_rows[r]) for r in rs[: params.raw_photos or None]])
        group_raw[g] = float(_best_per_feature(qi[ia], v[ia]).sum())
    shortlist = sorted(group_raw, key=group_raw.get, reverse=True)[: params.shortlist_individuals]

    # spatial verification of the best photos of the best groups
    group_best: dict[tuple[str, str], dict[int, float]] = {}
    group_photo_matches: dict[tuple[str, str], list[PhotoMatch]] = defaultdict(list)
    for g in shortlist:
        rs = group_photos[g][: params.per_individual]
        per_feature: dict[int, float] = {}
        for r in rs:
            ia = np.asarray(pair_rows[r])
            if ia.size > params.max_correspondences:
                ia = ia[np.argsort(-v[ia])[: params.max_correspondences]]
            ann = anns[r]
            if params.verify:
                dfeat = index.features(ann.id)
                mask, transform = verify_pairs(query, dfeat, qi[ia], feats[ia], v[ia], params)
            else:
                mask, transform = np.ones(ia.size, bool), None
            if not mask.any():
                continue
            keep = ia[mask]
            best = _best_per_feature_map(qi[keep], v[keep])
            score = float(sum(best.values()))
            group_photo_matches[g].append(PhotoMatch(ann.id, score, qi[keep], feats[keep], v[keep], transform))
            for f, s in best.items():
                if s > per_feature.get(f, 0.0):
                    per_feature[f] = s
        group_best[g] = per_feature
    t_verify = time.perf_counter()

    # per individual: the better of its flank groups
    by_individual: dict[str, Candidate] = {}
    for g, per_feature in group_best.items():
        score = float(sum(per_feature.values()))
        if score <= 0:
            continue
        ind, side = g
        cand = by_individual.get(ind)
        if cand is None or score > cand.score:
            photos = sorted(group_photo_matches[g], key=lambda p: p.score, reverse=True)
            by_individual[ind] = Candidate(ind, side, score, 0.0, photos)
    candidates = sorted(by_individual.values(), key=lambda c: c.score, reverse=True)
    for c in candidates:
        c.probability = float(calibration.probability(c.score))
    unverified: list[str] = []
    for g in sorted(group_raw, key=group_raw.get, reverse=True):
        if g[0] not in by_individual and g[0] not in unverified:
            unverified.append(g[0])
    best_p = candidates[0].probability if candidates else 0.0
    seen_flank = flank
    if seen_flank is None and candidates and candidates[0].flank in ("left", "right") and not (
        best_p < calibration.new_threshold
    ):
        seen_flank = candidates[0].flank
    result = MatchResult(
        candidates=candidates,
        n_features=n,
        flank=seen_flank,
        is_new=best_p < calibration.new_threshold,
        new_probability=1.0 - best_p,
        timings={"search": t_search - t0, "verify": t_verify - t_search, "total": time.perf_counter() - t0},
        unverified=unverified,
    )
    return result


def _drop_same_place(query: ChipFeatures, index: FeatureIndex, camera: str, qi: np.ndarray, rows: np.ndarray,
                     feats: np.ndarray, v: np.ndarray, tol: float) -> np.ndarray:
    """Votes with the pairs that sit on the same pixels of two photos of ``camera`` set to zero."""
    anns = index.annotations
    same_cam = np.fromiter((anns[r].camera == camera for r in rows.tolist()), bool, rows.size)
    if not same_cam.any():
        return v
    v = v.copy()
    qxy = query.image_xy()
    diag = math.hypot(*query.image_shape)
    for r in np.unique(rows[same_cam]).tolist():
        dfeat = index.features(anns[r].id)
        if tuple(dfeat.image_shape) != tuple(query.image_shape):
            continue
        sel = np.nonzero(rows == r)[0]
        dxy = dfeat.image_xy()[feats[sel]]
        still = np.linalg.norm(qxy[qi[sel]] - dxy, axis=1) < tol * diag
        v[sel[still]] = 0.0
    return v


def _best_per_feature(qi: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each query feature's best vote (a feature counts once per photo or individual)."""
    order = np.lexsort((-v, qi))
    first = np.ones(order.size, bool)
    first[1:] = qi[order][1:] != qi[order][:-1]
    return v[order][first]


def _best_per_feature_map(qi: np.ndarray, v: np.ndarray) -> dict[int, float]:
    out: dict[int, float] = {}
    for f, s in zip(qi.tolist(), v.tolist(), strict=True):
        if s > out.get(f, 0.0):
            out[f] = s
    return out


@dataclass
class EncounterDecision:
    """One decision for the photos of one encounter (a burst), with each photo's own evidence.

    ``result`` ranks individuals by their mean score over the photos (a photo that did not find
    an individual adds 0), so its scale is a single photo's and the photo-level calibration and
    "new" threshold apply to it; ``photos`` are the per-photo results in the order given;
    ``support`` counts, per individual, the photos whose verified candidates include it.
    """

    result: MatchResult
    photos: list[MatchResult]
    support: dict[str, int]


def decide_encounter(results: Sequence[MatchResult], calibration: Calibration | None = None) -> EncounterDecision:
    """Decide the photos of one encounter together (see :class:`EncounterDecision`).

    Each photo is evidence about the same coat; adding the scores per individual and flank lets
    three middling photos of one cat outweigh one lucky rock match of another. Dividing by the
    number of photos keeps the ranking and puts the score on a single photo's scale, so a burst
    of ten is not "surely known" merely for being long. The flank group must agree across photos
    (an animal does not turn its other side to the camera between two frames; if it does, the two
    sides stay separate). An empty list gives an empty, "new" decision.
    """
    calibration = calibration or Calibration()
    results = list(results)
    n = max(1, len(results))
    total: dict[tuple[str, str], float] = defaultdict(float)
    photos: dict[tuple[str, str], list[PhotoMatch]] = defaultdict(list)
    support: dict[str, int] = defaultdict(int)
    for res in results:
        for c in res.candidates:
            total[(c.individual, c.flank)] += c.score / n
            photos[(c.individual, c.flank)].extend(c.photos)
        for ind in {c.individual for c in res.candidates}:
            support[ind] += 1
    by_individual: dict[str, Candidate] = {}
    for (ind, side), score in total.items():
        if ind not in by_individual or score > by_individual[ind].score:
            by_individual[ind] = Candidate(ind, side, score, 0.0, photos[(ind, side)])
    candidates = sorted(by_individual.values(), key=lambda c: c.score, reverse=True)
    for c in candidates:
        c.probability = float(calibration.probability(c.score))
    best_p = candidates[0].probability if candidates else 0.0
    flank = next((r.flank for r in results if r.flank), None)
    unverified = list(dict.fromkeys(i for r in results for i in r.unverified if i not in by_individual))
    combined = MatchResult(candidates, sum(r.n_features for r in results), flank, best_p < calibration.new_threshold,
                           1.0 - best_p, unverified=unverified)
    return EncounterDecision(combined, results, dict(support))


# A photo names its animal decisively when its best verified candidate is "known" by the
# calibration's own line and scores at least this many times its runner-up. Chosen, not fitted:
# two frames that each name a different cat this clearly are two cats (a mother and her grown cub
# a minute apart), not one cat and a rock match to be outvoted.
DECISIVE_RATIO = 4.0


def split_animals(results: Sequence[MatchResult], calibration: Calibration | None = None) -> list[list[int]]:
    """Which photos of one burst show one animal: lists of indices into ``results``, in order.

    A burst (a camera's sequence, photos up to a minute apart) is usually one animal, and
    :func:`decide_encounter` assumes it. Two animals passing one after the other are told apart
    only when two photos each name a different individual decisively (:data:`DECISIVE_RATIO`):
    the photos naming one animal are one group, and every photo that names none decisively is
    then decided alone (which animal a weak frame shows cannot be told without tracking, as for
    a photo with two boxes). With at most one decisive name the burst stays whole, so a wrong
    frame is outvoted unless it is decisively wrong.
    """
    calibration = calibration or Calibration()
    decisive: dict[int, str] = {}
    for i, res in enumerate(results):
        if not res.candidates:
            continue
        best = res.candidates[0]
        second = res.candidates[1].score if len(res.candidates) > 1 else 0.0
        if calibration.probability(best.score) >= calibration.new_threshold and best.score >= DECISIVE_RATIO * second:
            decisive[i] = best.individual
    names = list(dict.fromkeys(decisive[i] for i in sorted(decisive)))
    if len(names) <= 1:
        return [list(range(len(results)))] if len(results) else []
    groups: dict[str, list[int]] = {n: [] for n in names}
    alone: list[list[int]] = []
    for i in range(len(results)):
        if i in decisive:
            groups[decisive[i]].append(i)
        else:
            alone.append([i])
    return sorted(list(groups.values()) + alone, key=lambda g: g[0])


def camera_prior(counts: dict[str, int], individuals: Iterable[str], alpha: float = 1.0) -> dict[str, float]:
    """Log prior ratios from where a camera's catalogue photos come from: ``log(pi_k * N)`` with
    ``pi_k = (n_k + alpha) / (n + alpha * N)`` over the ``N`` ``individuals`` (Laplace's rule at
    ``alpha`` 1: no count is fitted). A camera with no catalogue photos gives 0 for everyone.

    It says which cats come back to this camera (snow leopards keep to their ranges; cameras sit
    on marking routes), not what this one looks like: a prior, to be named as such wherever used.
    """
    names = list(dict.fromkeys(individuals))
    n_total = sum(counts.get(k, 0) for k in names)
    if not names or n_total == 0:
        return {k: 0.0 for k in names}
    denom = n_total + alpha * len(names)
    return {k: math.log((counts.get(k, 0) + alpha) / denom * len(names)) for k in names}


def apply_prior(result: MatchResult, log_prior: dict[str, float], calibration: Calibration | None = None
                ) -> MatchResult:
    """Candidates ranked with a log prior ratio (e.g. :func:`camera_prior`) by Bayes' rule.

    Verified candidates: the calibration's log-odds of their coat score (read as the likelihood
    ratio of "this individual" against a uniform catalogue) plus the prior. Unverified ones have
    no calibrated coat evidence, so their coat likelihoods are taken as equal and the prior alone
    orders them, their raw-vote order breaking ties (a flat prior leaves them as they were);
    they still rank after every verified one. Scores, probabilities and the "new" call stay the
    coat's: a prior over catalogued cats says nothing about whether this one is catalogued."""
    cal = calibration or Calibration()

    def posterior(c: Candidate) -> float:
        return cal.slope * math.log1p(max(c.score, 0.0)) + cal.intercept + log_prior.get(c.individual, 0.0)

    ranked = sorted(result.candidates, key=posterior, reverse=True)
    unverified = sorted(result.unverified, key=lambda i: -log_prior.get(i, 0.0))  # stable: ties keep vote order
    return MatchResult(ranked, result.n_features, result.flank, result.is_new, result.new_probability,
                       dict(result.timings), unverified)


def combine(results: list[MatchResult], calibration: Calibration | None = None) -> MatchResult:
    """The combined result of :func:`decide_encounter` (kept for callers that need only that)."""
    return decide_encounter(results, calibration).result
