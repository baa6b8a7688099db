"""Re-identification accuracy, the honest way: Pardus beside plain SIFT and a no-pixels station prior.

Part 1, real photos: ../shared/data/snow-leopard-reid (116 photos, 6 snow leopards, 28 encounters,
19 cameras at 17 stations, day and IR night). ``--boxes mdv6`` (or ``yolox``) crops every matcher's
input to the detector's best animal box (cached), as the pipeline would; ``none`` keeps whole frames.

Two splits, both per photo and per encounter (a burst's photos decided together):
- **leave-one-encounter-out**: every photo is a query against all photos of *other* encounters
  (its own burst would be a near-copy). Encounters of one cat at one station share the scenery, so
  this split rewards matching the rocks as much as the coat.
- **cross-station**: a query is matched only against catalogue photos from *other stations* (every
  photo of its own station withheld, both cameras): the cat must be recognised by its coat alone.
  Only cats photographed at two or more stations are known queries here.

Three matchers, same queries, same exclusions:
- **station prior** (no pixels): the individual with the most allowed catalogue photos at the
  query's camera (then at its station, then in the whole catalogue). On this set a cat tends to
  come back to its own cameras, so this is the number a matcher must beat to show it reads coats;
  in the cross-station split it degenerates to "the most catalogued cat", the base rate.
- **plain SIFT**: OpenCV SIFT (1,000 strongest keypoints of the grey crop resized like Pardus's),
  Lowe's ratio test (0.8) photo against photo; an individual's score is its best photo's number of
  ratio-test matches; per encounter the photos' individual scores are summed.
- **Pardus**: ``pardus.reid.match.match`` with the query's camera (same-camera pairs on the same
  pixels vote nothing), features weighted by the animal mask and by the camera-scenery test
  against the camera's photos of other encounters (``--foreground``, ``--no-scenery`` and
  ``--no-same-place`` measure each part); per encounter as the re-id stage stores proposals:
  each photo's result in its stored form, the burst split only where two frames name different
  cats decisively (``match.split_animals``), ``match.decide_encounter`` per group (the
  encounter's answer: its largest group's). "top-1 per photo, as stored" is what each photo's
  proposal shows a reviewer: its encounter's ranking.
- **Pardus+prior** (real photos): the same matches, ranked with the station prior as a prior
  (``match.camera_prior``, Laplace's rule over the allowed catalogue photos at the query's camera,
  added to the shipped calibration's log-odds of verified candidates by ``match.apply_prior``;
  unverified candidates, which have no calibrated coat evidence, ordered by the prior, their vote
  order breaking ties; nothing fitted). Flat, and so equal to Pardus, in the cross-station split.

Open set, "previously unknown individual": each photo (and each encounter) is queried again with
its whole individual withheld (and, in the cross-station split, its station too): those are the
truly new ones. The score-to-probability curve and the "new" threshold are fitted with the whole
encounter left out (cross-fitted: the queries of one encounter are decided by a calibration fitted
on the other encounters' queries only); a stricter line fits with the whole individual left out.

Part 2, the virtual park: 50 rendered leopards, 3 day catalogue photos each (left and right
flanks, flank known as a person would record it), one new infrared *night* photo of each as a
query (the hard case: IR against day), and 10 more leopards never in the catalogue (2 photos
each, day or night) as the new ones; detection boxes from the renderer's truth.

    python bench/reid.py [--shared ../shared] [--boxes none|yolox|mdv6] [--skip-sim] [--skip-real]

Features and the baseline's photo-pair matrix are cached in ~/.cache/pardus-bench/reid
(PARDUS_BENCH_CACHE); the first run extracts.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pardus.reid.encounter import candidate_entries, photo_result  # noqa: E402
from pardus.reid.features import ChipFeatures, FeatureParams, extract  # noqa: E402
from pardus.reid.foreground import scenery_grey, suppress_camera_scenery  # noqa: E402
from pardus.reid.index import Annotation, FeatureIndex  # noqa: E402
from pardus.reid.match import (  # noqa: E402
    Calibration,
    MatchParams,
    MatchResult,
    apply_prior,
    camera_prior,
    decide_encounter,
    match,
    split_animals,
)
from pardus.reid.openset import DecisionReport, calibrate  # noqa: E402
from reid_common import CACHE, cached_features, crossfit_openset, fmt_ratio, topk  # noqa: E402

BASELINE_FEATURES = 1000
RATIO = 0.8
faiss.omp_set_num_threads(1)  # small searches: threads only queue behind each other on a shared 2-core machine
Box = tuple[float, float, float, float]


# --- the plain-SIFT baseline ------------------------------------------------------------------

def baseline_features(bgr: np.ndarray, box: Box | None, sqrt_area: int) -> tuple[np.ndarray, np.ndarray]:
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


def ratio_matches(a: np.ndarray, b: np.ndarray) -> int:
    """Lowe's ratio test, ``a`` against ``b``: the count of a's descriptors whose nearest neighbour in
    ``b`` is clearly nearer than the second. Exact L2 2-NN, the same answer as OpenCV's BFMatcher
    (NORM_L2) knnMatch, computed with faiss's BLAS search (about 10x faster here)."""
    if len(a) < 2 or len(b) < 2:
        return 0
    d2, _ = faiss.knn(a, b, 2)
    d = np.sqrt(np.maximum(d2, 0))
    return int(np.sum(d[:, 0] < RATIO * d[:, 1]))


def baseline_pair_scores(descs: list[np.ndarray], rows: list[int], cache_name: str) -> tuple[np.ndarray, float]:
    """Ratio-test matches of each query row against every photo, and seconds per query row (cached)."""
    key = hashlib.sha1((cache_name + repr(rows) + repr([len(d) for d in descs])).encode()).hexdigest()[:16]
    path = CACHE / "baseline" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["scores"], float(z["seconds"])
    n = len(descs)
    out = np.zeros((n, n), np.float32)
    t0 = time.perf_counter()
    for c, i in enumerate(rows):
        for j in range(n):
            if i != j:
                out[i, j] = ratio_matches(descs[i], descs[j])
        if c % 20 == 0:
            print(f"  baseline matching {c + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    seconds = (time.perf_counter() - t0) / max(1, len(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, scores=out, seconds=np.array(seconds))
    return out, seconds


# --- the photos and the splits ------------------------------------------------------------

@dataclass
class Photos:
    """The labelled photos of one experiment, with Pardus and baseline features.

    ``cameras`` name the camera (site, station and camera), ``stations`` the place (site and
    station): two cameras of one station look at the same rocks from two sides.
    """

    labels: list[str]
    encounters: list[str]
    cameras: list[str]
    stations: list[str]
    feats: list[ChipFeatures]
    base: list[np.ndarray]
    flanks: list[str | None]
    greys: list[np.ndarray] | None = None  # frames as the scenery test reads them

    def rows_by(self, column: Sequence[str]) -> dict[str, set[int]]:
        out: dict[str, set[int]] = defaultdict(set)
        for i, v in enumerate(column):
            out[v].add(i)
        return out


@dataclass
class Split:
    """Which photos are queries and which catalogue photos each query must not see."""

    name: str
    known: list[int]  # queries whose individual is still in the catalogue they see
    exclude: dict[int, set[int]]  # known query -> withheld catalogue photos
    new_rows: list[int]  # every photo queried again as an unknown animal
    new_exclude: dict[int, set[int]]  # ... with its whole individual withheld too


def standard_splits(p: Photos) -> list[Split]:
    """Leave-one-encounter-out and cross-station (see the module docstring)."""
    by_enc, by_ind, by_station = p.rows_by(p.encounters), p.rows_by(p.labels), p.rows_by(p.stations)
    n = len(p.labels)
    loeo_ex = {i: by_enc[p.encounters[i]] for i in range(n)}
    cross_ex = {i: by_enc[p.encounters[i]] | by_station[p.stations[i]] for i in range(n)}
    out = []
    for name, ex in (("leave-one-encounter-out", loeo_ex), ("cross-station", cross_ex)):
        known = [i for i in range(n) if by_ind[p.labels[i]] - ex[i]]
        out.append(Split(name, known, ex, list(range(n)), {i: ex[i] | by_ind[p.labels[i]] for i in range(n)}))
    return out


# --- the three matchers -------------------------------------------------------------------

@dataclass
class Answer:
    """One matcher's answer to one query: ranked individuals, the best one's score, all scores."""

    ranked: list[str]
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    result: MatchResult | None = None
    prior: dict[str, float] | None = None  # the query camera's log prior ratios (Pardus + station prior)


class StationPrior:
    """No pixels: the cats most often catalogued at the query's camera, then station, then anywhere."""

    name = "station prior"
    has_score = False

    def __init__(self, p: Photos) -> None:
        self.p = p

    def rank(self, i: int, exclude: set[int]) -> Answer:
        p = self.p
        cam: Counter[str] = Counter()
        station: Counter[str] = Counter()
        anywhere: Counter[str] = Counter()
        for j, lab in enumerate(p.labels):
            if j in exclude or j == i:
                continue
            anywhere[lab] += 1
            station[lab] += p.stations[j] == p.stations[i]
            cam[lab] += p.cameras[j] == p.cameras[i]
        ranked = sorted(anywhere, key=lambda k: (cam[k], station[k], anywhere[k], k), reverse=True)
        return Answer(ranked, float("nan"))

    def encounter(self, answers: list[Answer]) -> Answer:
        return answers[0]  # one camera, one catalogue: the same answer for every photo of a burst


class PlainSift:
    """The baseline; per encounter an individual's per-photo scores are summed (as Pardus does)."""

    name = "plain SIFT"
    has_score = True

    def __init__(self, p: Photos, pair_scores: np.ndarray, seconds: float) -> None:
        self.p, self.pair_scores, self.seconds = p, pair_scores, seconds

    def rank(self, i: int, exclude: set[int]) -> Answer:
        best: dict[str, float] = {}
        for j, lab in enumerate(self.p.labels):
            if j != i and j not in exclude:
                best[lab] = max(best.get(lab, 0.0), float(self.pair_scores[i, j]))
        return _answer(best, str(i))

    def encounter(self, answers: list[Answer]) -> Answer:
        total: dict[str, float] = defaultdict(float)
        for a in answers:
            for k, v in a.scores.items():
                total[k] += v
        return _answer(dict(total), repr(sorted(a.ranked[0] for a in answers if a.ranked)))


def _answer(scores: dict[str, float], salt: str) -> Answer:
    """Ranked by score; ties (common: a few ratio-test matches each) in an order that favours no
    individual (a hash of query and name), not in catalogue order, which would hand every tie
    to the cat listed first, here also the most photographed one."""
    ranked = sorted(scores, key=lambda k: (scores[k], hashlib.sha1(f"{salt}|{k}".encode()).hexdigest()),
                    reverse=True)
    return Answer(ranked, scores[ranked[0]] if ranked else 0.0, scores)


class DinoGlobal:
    """``--dino``: the whole-chip DINOv2 ViT-S/14 CLS embedding (``pardus.models.embedder``, the
    one the species head uses), an individual's score its best photo's cosine similarity; per
    encounter the photos' scores are averaged. It asks whether a global descriptor of the crop,
    without local coat matching, tells these cats apart."""

    name = "DINOv2 global"
    has_score = True

    def __init__(self, p: Photos, embeddings: np.ndarray) -> None:
        self.p, self.sim = p, embeddings @ embeddings.T

    def rank(self, i: int, exclude: set[int]) -> Answer:
        best: dict[str, float] = {}
        for j, lab in enumerate(self.p.labels):
            if j != i and j not in exclude:
                best[lab] = max(best.get(lab, -1.0), float(self.sim[i, j]))
        return _answer(best, str(i))

    def encounter(self, answers: list[Answer]) -> Answer:
        total: dict[str, float] = defaultdict(float)
        for a in answers:
            for k, v in a.scores.items():
                total[k] += v / len(answers)
        return _answer(dict(total), repr(sorted(a.ranked[0] for a in answers if a.ranked)))


def dino_embeddings(shared: Path, boxes: dict[str, Box]) -> np.ndarray:
    """CLS embeddings of each snow-leopard photo's chip (its detector box, else the whole frame), cached."""
    path = CACHE / f"snow-leopard-dino-{hashlib.sha1(json.dumps(sorted(boxes.items())).encode()).hexdigest()[:12]}.npy"
    if path.exists():
        return np.load(path)
    from pardus.models.embedder import Dinov2Embedder

    root = shared / "data" / "snow-leopard-reid"
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    crops = []
    for r in rows:
        bgr = cv2.imdecode(np.fromfile(root / r["file"], np.uint8), cv2.IMREAD_COLOR)
        if r["sha256"] in boxes:
            h, w = bgr.shape[:2]
            x, y, bw, bh = boxes[r["sha256"]]
            y0, x0 = int(y * h), int(x * w)
            bgr = bgr[y0:max(y0 + 1, int((y + bh) * h)), x0:max(x0 + 1, int((x + bw) * w))]
        crops.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    out = Dinov2Embedder().embed(crops)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


class Pardus:
    """Pardus's matcher over an in-memory index of every photo (exclusions mask the withheld ones).

    Per encounter it decides as the stage stores proposals: each photo's result in the stored
    form (every verified candidate, scores to 4 decimals: ``encounter.candidate_entries`` and
    ``photo_result``), the burst split where two frames name different cats decisively
    (``match.split_animals``), each group ranked with ``match.decide_encounter``. The encounter's
    answer is its largest group's (the earliest on a tie); ``photo_answers`` gives what each
    photo's stored proposal shows."""

    has_score = True

    def __init__(self, p: Photos, params_key: str, name: str = "Pardus", same_place: bool = True,
                 feats: list[ChipFeatures] | None = None, match_params: MatchParams | None = None) -> None:
        self.p, self.name, self.same_place = p, name, same_place
        self.match_params = match_params or MatchParams()
        self.feats = feats if feats is not None else p.feats
        self.index = build_index(p, params_key, self.feats)
        self._memo: dict[tuple[int, frozenset[int]], Answer] = {}
        self.split_encounters = 0  # encounters the stage would split into several animals
        self.encounters_seen = 0

    def rank(self, i: int, exclude: set[int]) -> Answer:
        key = (i, frozenset(exclude))
        if key not in self._memo:
            res = match(self.feats[i], self.index, flank=self.p.flanks[i], exclude=exclude | {i},
                        camera=self.p.cameras[i] if self.same_place else None, params=self.match_params)
            self._memo[key] = Answer(res.top(10), res.best.score if res.best else 0.0, result=res)
        return self._memo[key]

    def _groups(self, answers: list[Answer]) -> tuple[list[MatchResult], list[list[int]]]:
        keep = max(5, self.match_params.shortlist_individuals)  # as ReidStage keeps a photo's evidence
        stored = [photo_result({"candidates": candidate_entries(a.result, {}, keep, lambda _: None),
                                "n_features": a.result.n_features, "flank": a.result.flank,
                                "is_new": a.result.is_new, "new_probability": a.result.new_probability})
                  for a in answers if a.result is not None]
        return stored, split_animals(stored)

    def _answer(self, res: MatchResult) -> Answer:
        return Answer(res.top(10), res.best.score if res.best else 0.0, result=res)

    def decide(self, answers: list[Answer]) -> tuple[Answer, int]:
        """The encounter's answer (its largest group's) and how many animals the grouping saw."""
        stored, groups = self._groups(answers)
        main = max(groups, key=len) if groups else []
        return self._answer(decide_encounter([stored[k] for k in main]).result), len(groups)

    def encounter(self, answers: list[Answer]) -> Answer:
        answer, n_groups = self.decide(answers)
        self.encounters_seen += 1
        self.split_encounters += n_groups > 1
        return answer

    def photo_answers(self, answers: list[Answer]) -> list[Answer]:
        stored, groups = self._groups(answers)
        out: list[Answer | None] = [None] * len(answers)
        for g in groups:
            a = self._answer(decide_encounter([stored[k] for k in g]).result)
            for k in g:
                out[k] = a
        return [a if a is not None else Answer([], 0.0) for a in out]


class PardusWithPrior:
    """Pardus's answers (the same matches, reused) ranked with the station prior as a *prior*:
    ``match.apply_prior`` adds ``match.camera_prior`` (Laplace's rule over the allowed catalogue
    photos at the query's camera) to the calibrated log-odds of each verified candidate's coat
    score and orders the unverified ones by it, per photo and on the encounter's combined
    ranking. Nothing is fitted: the shipped
    calibration (``Calibration()``, the virtual park's) turns scores into log-odds, alpha is 1. In
    the cross-station split the query's camera has no allowed catalogue photo, so the prior is
    flat and this column must equal Pardus's there."""

    has_score = True
    reuses = True  # its seconds per query are Pardus's

    def __init__(self, p: Photos, pardus: Pardus) -> None:
        self.p, self.pardus, self.name = p, pardus, "Pardus+prior"

    def _prior(self, i: int, exclude: set[int]) -> dict[str, float]:
        allowed = [j for j in range(len(self.p.labels)) if j != i and j not in exclude]
        counts = Counter(self.p.labels[j] for j in allowed if self.p.cameras[j] == self.p.cameras[i])
        return camera_prior(dict(counts), sorted({self.p.labels[j] for j in allowed}))

    def rank(self, i: int, exclude: set[int]) -> Answer:
        a = self.pardus.rank(i, exclude)
        prior = self._prior(i, exclude)
        assert a.result is not None
        res = apply_prior(a.result, prior)
        return Answer(res.top(10), a.score, result=res, prior=prior)

    def encounter(self, answers: list[Answer]) -> Answer:
        plain = self.pardus.decide(answers)[0]
        assert plain.result is not None
        res = apply_prior(plain.result, answers[0].prior or {})  # one camera, one catalogue per burst
        return Answer(res.top(10), plain.score, result=res)

    def photo_answers(self, answers: list[Answer]) -> list[Answer]:
        out = []
        for plain in self.pardus.photo_answers(answers):
            res = apply_prior(plain.result, answers[0].prior or {}) if plain.result is not None else None
            out.append(Answer(res.top(10), plain.score, result=res) if res is not None else plain)
        return out


def build_index(p: Photos, params_key: str, feats: list[ChipFeatures]) -> FeatureIndex:
    idx = FeatureIndex(None, params_key)
    for i, f in enumerate(feats):
        idx.add(Annotation(i, p.labels[i], p.flanks[i], camera=p.cameras[i]), f, save=False)
    idx.fold()  # everything in the HNSW graph, as a long-lived catalogue is
    return idx


def apply_scenery(p: Photos) -> tuple[list[ChipFeatures], int]:
    """The camera-scenery test per photo against its camera's photos of *other* encounters (the
    park's other sequences of that camera; labels are not used); returns new feature copies."""
    assert p.greys is not None
    out, total = [], 0
    for i, f in enumerate(p.feats):
        g = f.subset(np.arange(len(f)))
        refs = [p.greys[j] for j in range(len(p.feats))
                if p.cameras[j] == p.cameras[i] and p.encounters[j] != p.encounters[i]]
        total += suppress_camera_scenery(g, p.greys[i], refs)
        out.append(g)
    return out, total


# --- scoring ------------------------------------------------------------------------------

@dataclass
class Scores:
    """One matcher's numbers on one split."""

    top1: float
    top5: float
    top1_night: float
    n_queries: int
    n_night: int
    enc_top1: float
    enc_top5: float
    n_enc: int
    stored_top1: float  # per photo, the ranking its stored proposal shows (its encounter's)
    openset: DecisionReport | None
    enc_openset: DecisionReport | None
    enc_openset_by_individual: DecisionReport | None
    n_new: int
    n_new_enc: int
    seconds_per_query: float
    calibration: Calibration | None = None  # fitted on all these photo queries (not cross-fitted)


def evaluate(p: Photos, split: Split, method: Any, nights: Sequence[bool], extra_seconds: float = 0.0) -> Scores:
    """Identification and open-set numbers of one matcher on one split."""
    t0 = time.perf_counter()
    known = {i: method.rank(i, split.exclude[i]) for i in split.known}
    new = {i: method.rank(i, split.new_exclude[i]) for i in split.new_rows}
    seconds = (time.perf_counter() - t0) / max(1, len(known) + len(new)) + extra_seconds
    if getattr(method, "reuses", False):
        seconds = float("nan")  # another column's matches, re-ranked
    truth = [p.labels[i] for i in split.known]
    ranked = [known[i].ranked for i in split.known]
    night_rows = [k for k, i in enumerate(split.known) if nights[i]]

    def by_encounter(answers: dict[int, Answer]) -> dict[str, Answer]:
        groups: dict[str, list[Answer]] = defaultdict(list)
        for i, a in answers.items():
            groups[p.encounters[i]].append(a)
        return {e: method.encounter(a) for e, a in groups.items()}

    enc_known, enc_new = by_encounter(known), by_encounter(new)
    # what each photo's stored proposal shows: its encounter's ranking (the stage's grouping)
    stored: dict[int, Answer] = {}
    rows_of: dict[str, list[int]] = defaultdict(list)
    for i in split.known:
        rows_of[p.encounters[i]].append(i)
    for rows in rows_of.values():
        shown = (method.photo_answers([known[i] for i in rows]) if hasattr(method, "photo_answers")
                 else [method.encounter([known[i] for i in rows])] * len(rows))
        stored.update(zip(rows, shown, strict=True))
    enc_label = {p.encounters[i]: p.labels[i] for i in range(len(p.labels))}
    enc_ids = list(enc_known)
    openset = enc_openset = enc_by_ind = calibration = None
    if method.has_score:
        # per photo: a known query is right when its top-1 is right; every new query is wrong
        scores = [known[i].score for i in split.known] + [new[i].score for i in split.new_rows]
        right = [bool(known[i].ranked) and known[i].ranked[0] == p.labels[i] for i in split.known]
        right += [False] * len(split.new_rows)
        is_new = [False] * len(split.known) + [True] * len(split.new_rows)
        folds = [p.encounters[i] for i in split.known] + [p.encounters[i] for i in split.new_rows]
        openset = crossfit_openset(scores, right, is_new, folds)
        e_scores = [enc_known[e].score for e in enc_ids] + [enc_new[e].score for e in enc_new]
        e_right = [bool(enc_known[e].ranked) and enc_known[e].ranked[0] == enc_label[e] for e in enc_ids]
        e_right += [False] * len(enc_new)
        e_new = [False] * len(enc_ids) + [True] * len(enc_new)
        e_folds = enc_ids + list(enc_new)
        enc_openset = crossfit_openset(e_scores, e_right, e_new, e_folds)
        enc_by_ind = crossfit_openset(e_scores, e_right, e_new, [enc_label[e] for e in e_folds])
        calibration = calibrate(scores, [a and not b for a, b in zip(right, is_new, strict=True)], is_new)[0]
    return Scores(
        top1=topk(ranked, truth, 1), top5=topk(ranked, truth, 5),
        top1_night=topk([ranked[k] for k in night_rows], [truth[k] for k in night_rows], 1)
        if night_rows else float("nan"),
        n_queries=len(truth), n_night=len(night_rows),
        enc_top1=topk([enc_known[e].ranked for e in enc_ids], [enc_label[e] for e in enc_ids], 1),
        enc_top5=topk([enc_known[e].ranked for e in enc_ids], [enc_label[e] for e in enc_ids], 5),
        n_enc=len(enc_ids), stored_top1=topk([stored[i].ranked for i in split.known], truth, 1),
        openset=openset, enc_openset=enc_openset, enc_openset_by_individual=enc_by_ind,
        n_new=len(split.new_rows), n_new_enc=len(enc_new), seconds_per_query=seconds,
        calibration=calibration if method.has_score else None,
    )


def print_split(title: str, res: dict[str, Scores], note: str = "") -> None:
    """One table: station prior, plain SIFT and Pardus side by side, ratio Pardus / plain SIFT."""
    names = list(res)
    main = "Pardus" if "Pardus" in res else names[-1]
    pa, ba = res[main], res["plain SIFT"]
    print(f"\n== {title} ==")
    if note:
        print(note)
    print(f"{'metric':44s} " + " ".join(f"{n:>13s}" for n in names) + f" {main + ' vs SIFT':>16s}")

    def osr(s: Scores, what: str, attr: str) -> float:
        rep = getattr(s, what)
        return float("nan") if rep is None else float(getattr(rep, attr))

    rows: list[tuple[str, Callable[[Scores], float]]] = [
        (f"top-1 per photo ({pa.n_queries} queries)", lambda s: s.top1),
        ("top-5 per photo", lambda s: s.top5),
        (f"top-1, IR night photos ({pa.n_night})", lambda s: s.top1_night),
        (f"top-1 per encounter ({pa.n_enc})", lambda s: s.enc_top1),
        ("top-1 per photo, as stored (its encounter's)", lambda s: s.stored_top1),
        ("top-5 per encounter", lambda s: s.enc_top5),
        (f"'new' precision per photo ({pa.n_new} new)", lambda s: osr(s, "openset", "precision")),
        ("'new' recall per photo", lambda s: osr(s, "openset", "recall")),
        ("'new' F1 per photo", lambda s: osr(s, "openset", "f1")),
        (f"'new' precision per encounter ({pa.n_new_enc} new)", lambda s: osr(s, "enc_openset", "precision")),
        ("'new' recall per encounter", lambda s: osr(s, "enc_openset", "recall")),
        ("'new' F1 per encounter", lambda s: osr(s, "enc_openset", "f1")),
        ("'new' F1 per encounter, individual left out", lambda s: osr(s, "enc_openset_by_individual", "f1")),
        ("seconds per query", lambda s: s.seconds_per_query),
    ]
    for label, get in rows:
        vals = [get(res[n]) for n in names]
        if all(np.isnan(v) for v in vals):
            continue
        cells = " ".join(f"{'-':>13s}" if np.isnan(v) else f"{v:13.3f}" for v in vals)
        print(f"{label:44s} {cells} {fmt_ratio(get(pa), get(ba)):>16s}")
    cal = pa.calibration
    if cal is not None:
        print(f"  {main} calibration fitted on all these photo queries: slope {cal.slope:.3f}, "
              f"intercept {cal.intercept:.3f}, 'new' below probability {cal.new_threshold:.3f}")
    for n in names:
        o = res[n].enc_openset
        if o is not None:
            print(f"  {n}, encounters: new called new {o.true_new}, known called new {o.false_new}, "
                  f"new missed {o.missed_new}, known kept {o.true_known}; median threshold {o.threshold:.3f}")


# --- the real photos ----------------------------------------------------------------------

def detection_boxes(root: Path, rows: list[dict[str, str]], detector: str, shared: Path) -> dict[str, Box]:
    """The best animal box per photo from a Pardus detector (as the pipeline would give the reid
    stage), cached as JSON; photos where it finds nothing are matched as whole frames."""
    path = CACHE / f"snow-leopard-boxes-{detector}.json"
    if detector == "yolox" and not path.exists() and (CACHE / "snow-leopard-boxes.json").exists():
        path = CACHE / "snow-leopard-boxes.json"  # the name earlier runs cached YOLOX's boxes under
    if path.exists():
        return {k: tuple(v) for k, v in json.loads(path.read_text()).items()}  # type: ignore[misc]
    import torch

    from pardus.pipeline.detect import Thresholds

    torch.set_num_threads(1)  # on a loaded 2-core machine one thread is much faster than torch's default
    det: Any
    if detector == "mdv6":
        from pardus.models.mdv6 import MegaDetectorV6, recover_first_layer

        tflite = shared / "models" / "mdv6-yolov10-c-int8-edgetpu" / "MDV6-yolov10-c_full_integer_quant_edgetpu.tflite"
        det = MegaDetectorV6(tflite, recover_first_layer(tflite))
    else:
        from pardus.models.detectors import YoloxAnimalDetector

        det = YoloxAnimalDetector()
    out: dict[str, Box] = {}
    t0 = time.perf_counter()
    for k, r in enumerate(rows):
        bgr = cv2.imdecode(np.fromfile(root / r["file"], np.uint8), cv2.IMREAD_COLOR)
        found = [b for b in det.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                 if b.category == "animal" and b.score >= Thresholds().animal]
        if found:
            b = max(found, key=lambda b: b.score)
            out[r["sha256"]] = (b.x, b.y, b.w, b.h)
        if k % 20 == 0:
            print(f"  detection {k + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def real_photos(shared: Path, params: FeatureParams, detector: str) -> tuple[Photos, list[bool], int]:
    """The snow leopards with features (cached); returns the photos, IR flags and boxed count."""
    root = shared / "data" / "snow-leopard-reid"
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels, encs, cams, stations, feats, base, greys = [], [], [], [], [], [], []
    t0 = time.perf_counter()
    boxes = detection_boxes(root, rows, detector, shared) if detector != "none" else {}
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
        stations.append(f"{r['site_prefix']}-{r['station']}")
        cams.append(f"{r['site_prefix']}-{r['station']}-{r['camera']}")
        feats.append(f)
        base.append(b.desc.astype(np.float32))
        greys.append(cached_grey(r["sha256"], photo))
        if k % 20 == 0:
            print(f"  features {k + 1}/{len(rows)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    nights = [f.night for f in feats]
    return Photos(labels, encs, cams, stations, feats, base, [None] * len(rows), greys), nights, len(boxes)


def cached_grey(sha256: str, photo: Callable[[], np.ndarray]) -> np.ndarray:
    """The frame as the scenery test reads it, cached as PNG beside the features."""
    path = CACHE / "scenery-grey" / f"{sha256}.png"
    if path.exists():
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if grey is not None:
            return grey
    grey = scenery_grey(photo())
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grey)
    return grey


class _Lazy:
    """A value made on first use (decoding or rendering a photo is skipped when both caches hit)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make, self._value, self._done = make, None, False

    def __call__(self) -> Any:
        if not self._done:
            self._value, self._done = self._make(), True
        return self._value


def _baseline_as_chip(bgr: np.ndarray, box: Box | None, sqrt_area: int) -> ChipFeatures:
    """The baseline's SIFT stored in the same cache format (descriptors kept as float via uint8 range)."""
    xy, desc = baseline_features(bgr, box, sqrt_area)
    kpts = np.zeros((len(xy), 5), np.float32)
    kpts[:, :2] = xy
    return ChipFeatures(kpts, np.clip(desc, 0, 255).astype(np.uint8), np.ones(len(xy), np.float32), (0, 0),
                        bgr.shape[:2], 1.0, (0.0, 0.0), False, "plainsift")


def run_real(args: argparse.Namespace, params: FeatureParams) -> None:
    p, nights, n_boxed = real_photos(args.shared, params, args.boxes)
    pair_scores, base_s = baseline_pair_scores(p.base, list(range(len(p.base))), f"snow-leopard-{args.boxes}")
    weighted, n_scenery = apply_scenery(p) if args.scenery else (p.feats, 0)
    pardus = Pardus(p, params.key, feats=weighted, same_place=args.same_place, match_params=args.match_params)
    methods: list[Any] = [StationPrior(p), PlainSift(p, pair_scores, 0.0), pardus, PardusWithPrior(p, pardus)]
    if args.dino:
        root = args.shared / "data" / "snow-leopard-reid"
        with open(root / "labels.csv", newline="") as fh:
            boxes = detection_boxes(root, list(csv.DictReader(fh)), args.boxes, args.shared) \
                if args.boxes != "none" else {}
        methods.insert(2, DinoGlobal(p, dino_embeddings(args.shared, boxes)))
    where = (f"animal boxes from {args.boxes} on {n_boxed} of {len(p.labels)} photos, the rest whole frames"
             if args.boxes != "none" else "whole frames")
    n_feats = sum(len(f) for f in p.feats)
    on_animal = sum(float(np.sum(f.weight >= 0.5)) for f in weighted)
    for split in standard_splits(p):
        pardus.split_encounters = pardus.encounters_seen = 0
        res = {m.name: evaluate(p, split, m, nights, base_s if m.name == "plain SIFT" else 0.0) for m in methods}
        split_note = (f"; the stage's grouping split {pardus.split_encounters} of {pardus.encounters_seen} "
                      "encounter decisions (known and new queries) into several animals")
        inds = sorted({p.labels[i] for i in split.known})
        print_split(f"snow-leopard-reid, {split.name}: {len(p.labels)} real photos, {where}", res,
                    f"known queries of {len(inds)} cats ({', '.join(inds)}); {sum(nights)} IR night photos; "
                    f"{n_feats} features ({params.foreground} animal mask), {n_scenery} judged the camera's "
                    f"scenery, {on_animal:.0f} weighted at least 0.5{split_note}")


# --- the virtual park ---------------------------------------------------------------------

def sim_photos(n_ind: int, n_new: int, params: FeatureParams) -> tuple[Photos, list[int], list[int], list[bool]]:
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
    nights = [f.night for f in feats]
    return Photos(labels, encs, stations, stations, feats, base, flanks), queries, news, nights


def run_sim(args: argparse.Namespace, params: FeatureParams) -> None:
    sp, queries, news, nights = sim_photos(args.sim_individuals, args.sim_new, params)
    not_cat = set(queries) | set(news)
    split = Split("virtual park", queries, {i: not_cat for i in queries}, news, {i: not_cat for i in news})
    scores, base_s = baseline_pair_scores(sp.base, queries + news, f"sim{args.sim_individuals}-{args.sim_new}")
    methods = [PlainSift(sp, scores, 0.0), Pardus(sp, params.key, same_place=False)]
    res = {m.name: evaluate(sp, split, m, nights, base_s if m.name == "plain SIFT" else 0.0) for m in methods}
    print_split(f"virtual park: {args.sim_individuals} rendered leopards x 3 catalogue photos "
                f"({len(sp.labels) - len(not_cat)}), {len(queries)} known + {len(news)} new queries", res,
                "catalogue: day photos, flanks known; known queries: IR night photos, flank not given; "
                "every photo is its own encounter")


def _overrides(base: Any, pairs: list[str], ap: argparse.ArgumentParser) -> Any:
    """``base`` with NAME=VALUE fields replaced, each value parsed as its field's type."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not hasattr(base, name) or not value:
            ap.error(f"{pair!r}: expected NAME=VALUE with NAME one of {', '.join(vars(base))}")
        kind = type(getattr(base, name))
        try:
            if kind is bool:
                changes[name] = {"true": True, "1": True, "false": False, "0": False}[value.lower()]
            else:
                changes[name] = kind(value)
        except (KeyError, ValueError):
            wants = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, kind.__name__)
            ap.error(f"{pair!r}: {name} takes {wants}")
    return dataclasses.replace(base, **changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    ap.add_argument("--sim-individuals", type=int, default=50)
    ap.add_argument("--sim-new", type=int, default=10)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--boxes", choices=("none", "yolox", "mdv6"), default="none",
                    help="crop the real photos to this detector's best animal box (none: whole frames)")
    ap.add_argument("--foreground", choices=("saliency", "grabcut", "none"), default=FeatureParams().foreground,
                    help="the animal mask inside the chip (to measure one against another)")
    ap.add_argument("--no-scenery", dest="scenery", action="store_false", help="leave out the camera-scenery test")
    ap.add_argument("--no-same-place", dest="same_place", action="store_false",
                    help="let same-camera pairs at the same pixels vote")
    ap.add_argument("--k", type=int, default=MatchParams().k, help="LNBNN neighbours that vote")
    ap.add_argument("--dino", action="store_true", help="add a DINOv2 global-embedding column (real photos)")
    ap.add_argument("--match", action="append", default=[], metavar="NAME=VALUE",
                    help="override one MatchParams field (repeatable), e.g. --match min_inliers=4")
    ap.add_argument("--feature", action="append", default=[], metavar="NAME=VALUE",
                    help="override one FeatureParams field (repeatable), e.g. --feature max_features=1500")
    args = ap.parse_args()
    args.match_params = _overrides(MatchParams(k=args.k), args.match, ap)
    params = _overrides(FeatureParams(foreground=args.foreground), args.feature, ap)
    print(f"features: {params.key}; baseline: plain SIFT {BASELINE_FEATURES} keypoints + ratio test {RATIO}")
    if not args.skip_real:
        run_real(args, params)
    if not args.skip_sim:
        run_sim(args, params)


if __name__ == "__main__":
    main()
