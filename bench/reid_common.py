"""Helpers the re-identification benches share: a feature cache outside the repo, and scoring."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pardus.reid.features import ChipFeatures
from pardus.reid.openset import DecisionReport, calibrate, new_decision_report

CACHE = Path(os.environ.get("PARDUS_BENCH_CACHE", Path.home() / ".cache" / "pardus-bench" / "reid"))


def cached_features(name: str, params_key: str, make: Callable[[], ChipFeatures]) -> ChipFeatures:
    """Features from the bench cache, or made and stored there (extraction dominates a bench's time)."""
    key = hashlib.sha1(f"{params_key}|{name}".encode()).hexdigest()
    path = CACHE / params_key / key[:2] / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return ChipFeatures.from_arrays(dict(z))
    feats = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **feats.to_arrays())
    os.replace(tmp, path)
    return feats


def topk(ranked: Sequence[Sequence[str]], truth: Sequence[str], k: int) -> float:
    return float(np.mean([t in list(r)[:k] for r, t in zip(ranked, truth, strict=True)]))


def crossfit_openset(scores: Sequence[float], right: Sequence[bool], new: Sequence[bool], folds: Sequence[int]
                     ) -> DecisionReport:
    """Open-set precision/recall with the calibration and threshold fitted on the *other* folds.

    Choosing the threshold on the very queries it is scored on would flatter it; each fold (an
    individual, or a group of them) is decided with a threshold chosen without it.
    """
    s = np.asarray(scores, float)
    r = np.asarray(right, bool)
    n = np.asarray(new, bool)
    f = np.asarray(folds)
    called = np.zeros(s.size, bool)
    thresholds = []
    for fold in np.unique(f):
        train = f != fold
        try:
            cal, _ = calibrate(s[train], r[train] & ~n[train], n[train])
        except ValueError:
            # the other folds hold no right match at all: nothing to calibrate on, so every
            # query of this fold is called new (the cautious call: a person looks at it)
            called[~train] = True
            continue
        called[~train] = np.asarray(cal.probability(s[~train])) < cal.new_threshold
        thresholds.append(cal.new_threshold)
    rep = new_decision_report(np.where(called, 0.0, 1.0), n, 0.5)
    median = float(np.median(thresholds)) if thresholds else float("nan")
    return DecisionReport(median, rep.true_new, rep.false_new, rep.missed_new, rep.true_known)


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"
