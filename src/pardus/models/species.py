"""Naming the animal in a crop: out of the box from ImageNet, and from the park's own labelled examples.

Two classifiers share one small interface, ``classify(crops) -> list[SpeciesCall]``:

- :class:`ImagenetTaxonClassifier` runs an ImageNet-1k network and adds up the softmax over the
  ImageNet classes that stand for each taxon of a :class:`TaxonMap` (e.g. "leopard", "snow
  leopard" and "jaguar" all mean the Amur leopard in the Land of the Leopard, where no other large
  spotted cat lives). ImageNet has no deer, raccoon dog or roe deer at all, which is why
- :class:`SpeciesHead` exists: a class-balanced, calibrated logistic regression on DINOv2 embeddings
  of crops that people labelled. A park teaches it sika deer or raccoon dog with a few dozen examples,
  even beside hundreds of photos of its flagship species.

Both answer "unknown" (``scientific_name=None``) below their probability threshold, because a
wrong name costs a reviewer more than no name; the head also says "unknown" for a crop unlike any
of its teaching examples (a species nobody taught it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pardus.models.registry import MOBILENET_V2_IMAGENET, ModelInfo


@dataclass(frozen=True)
class SpeciesCall:
    scientific_name: str | None  # None = unknown (below the threshold, or a class the model cannot name)
    probability: float  # of the best taxon, even when it was not enough
    best: str | None  # the best taxon regardless of the threshold, for review screens
    similarity: float | None = None  # a taught head: to the nearest teaching example of ``best``


# People are taught like a species (pipeline.teach): the name a head gives a person.
HUMAN = "Homo sapiens"


@dataclass(frozen=True)
class Taxon:
    scientific_name: str
    common_name: str
    imagenet: tuple[int, ...]  # ImageNet-1k class indices that stand for it


@dataclass(frozen=True)
class TaxonMap:
    name: str
    taxa: tuple[Taxon, ...]

    def matrix(self) -> np.ndarray:
        """(taxa, 1000) 0/1 matrix: softmax @ matrix.T gives each taxon's probability."""
        m = np.zeros((len(self.taxa), 1000), np.float32)
        for i, t in enumerate(self.taxa):
            m[i, list(t.imagenet)] = 1.0
        return m


_DOGS = tuple(range(151, 269))
_BIRDS = tuple(range(7, 25)) + tuple(range(80, 101)) + tuple(range(127, 147))

# Russia's Land of the Leopard: what its cameras see, with the ImageNet classes that look like it.
LAND_OF_THE_LEOPARD = TaxonMap("land-of-the-leopard", (
    Taxon("Panthera pardus orientalis", "Amur leopard", (288, 289, 290, 293)),  # leopard, snow leopard, jaguar, cheetah
    Taxon("Panthera tigris altaica", "Amur tiger", (292,)),
    Taxon("Lynx lynx", "Eurasian lynx", (287,)),
    Taxon("Prionailurus bengalensis euptilurus", "Amur leopard cat", (281, 282, 285)),  # tabby, tiger cat, Egyptian
    Taxon("Ursus arctos", "brown bear", (294,)),
    Taxon("Ursus thibetanus", "Asiatic black bear", (295, 297)),  # American black bear, sloth bear
    Taxon("Sus scrofa", "wild boar", (341, 342, 343)),
    Taxon("Cervidae", "deer (ImageNet has no deer: antelope classes stand in)", (351, 352, 353)),
    Taxon("Meles leucurus", "Asian badger", (362,)),
    Taxon("Vulpes vulpes", "red fox", (277, 278, 279, 280)),
    Taxon("Canis lupus", "wolf", (269, 270, 271, 272)),
    Taxon("Canis familiaris", "domestic dog", _DOGS),
    Taxon("Mustelidae", "marten, sable, weasel", (356, 357, 358, 359)),
    Taxon("Lutra lutra", "Eurasian otter", (360,)),
    Taxon("Lepus", "hare", (330, 331)),
    Taxon("Sciuridae", "squirrel", (335, 336)),
    Taxon("Aves", "bird", _BIRDS),
))

# The same idea for the public test photos (North America, Borneo, Africa, Central Asia), for the bench.
WORLD = TaxonMap("world", (
    Taxon("Panthera pardus", "leopard", (288,)),
    Taxon("Panthera uncia", "snow leopard", (289,)),
    Taxon("Panthera tigris", "tiger", (292,)),
    Taxon("Lynx", "lynx", (287,)),
    Taxon("Prionailurus bengalensis", "leopard cat", (281, 282, 285)),
    Taxon("Ursus americanus", "American black bear", (295,)),
    Taxon("Ursus arctos", "brown bear", (294,)),
    Taxon("Sus scrofa", "wild boar", (341, 342, 343)),
    Taxon("Urocyon cinereoargenteus", "grey fox", (280,)),
    Taxon("Vulpes vulpes", "red fox", (277,)),
    Taxon("Mephitis mephitis", "striped skunk", (361,)),
    Taxon("Sciurus niger", "fox squirrel", (335,)),
    Taxon("Gallus gallus domesticus", "chicken", (7, 8)),
    Taxon("Loxodonta africana", "African elephant", (101, 385, 386)),
    Taxon("Canis familiaris", "domestic dog", _DOGS),
    Taxon("Macaca", "macaque", (373,)),
    Taxon("Ardea", "heron", (131, 132, 133, 134)),
))

TAXON_MAPS = {m.name: m for m in (LAND_OF_THE_LEOPARD, WORLD)}


def square_crop(rgb: np.ndarray, box: tuple[float, float, float, float] | None, margin: float = 0.1) -> np.ndarray:
    """The box (normalised x, y, w, h) grown by ``margin`` and to a square where the frame allows, so
    the classifier sees the animal at its own proportions with a little context. None: whole frame."""
    if box is None:
        return rgb
    h, w = rgb.shape[:2]
    bx, by, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    side = max(bw, bh) * (1 + 2 * margin)
    cx, cy = bx + bw / 2, by + bh / 2
    x1, x2 = int(max(0, cx - side / 2)), int(min(w, cx + side / 2))
    y1, y2 = int(max(0, cy - side / 2)), int(min(h, cy + side / 2))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return rgb
    return rgb[y1:y2, x1:x2]


class ImagenetTaxonClassifier:
    """MobileNetV2 on ImageNet-1k, its softmax summed per taxon of ``taxon_map``."""

    info: ModelInfo = MOBILENET_V2_IMAGENET

    def __init__(self, taxon_map: TaxonMap = LAND_OF_THE_LEOPARD, threshold: float = 0.35) -> None:
        import threading

        import torch

        from pardus.models.mobilenet import MobileNetV2

        self.taxon_map = taxon_map
        self.threshold = threshold
        self.net = MobileNetV2()
        self.net.load_state_dict(torch.load(self.info.weights_path(), map_location="cpu"), strict=True)
        self.net.eval()
        self._m = taxon_map.matrix()
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return f"{self.info.key}/{self.taxon_map.name}"

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, taxa) probabilities; the rest of the 1000 classes is "something else"."""
        import torch

        from pardus.models.mobilenet import to_tensor

        if not crops:
            return np.zeros((0, len(self.taxon_map.taxa)), np.float32)
        with self._lock, torch.inference_mode():
            p = torch.softmax(self.net(torch.from_numpy(to_tensor(list(crops)))), 1).numpy()
        return p @ self._m.T

    def classify(self, crops: Sequence[np.ndarray]) -> list[SpeciesCall]:
        names = [t.scientific_name for t in self.taxon_map.taxa]
        return [_call(names, row, self.threshold) for row in self.probabilities(crops)]


def _call(names: Sequence[str], probs: np.ndarray, threshold: float) -> SpeciesCall:
    i = int(np.argmax(probs))
    p = float(probs[i])
    return SpeciesCall(names[i] if p >= threshold else None, p, names[i])


# Fitting choices, measured by bench/species_eval.py (5-fold CV on the 244 shared labelled crops, 17
# taxa, 116 of them snow leopards): DINOv2 CLS vectors share a large common direction (any two crops
# have cosine ~0.9), so features are centred on the class-balanced mean of the teaching examples and
# re-normalised; with that, C=100 gave the best balanced top-1 (0.57, against 0.53 for the old raw
# C=10 fit with class weights and 0.32 without them).
HEAD_C = 100.0
FOLDS = 5
# "Unknown" by distance: a crop whose nearest teaching example of the called class is less similar than
# this share of that class's held-out crops were (see similarity_floors), i.e. it gives up this share of
# the taught species' crops to catch untaught ones. bench/species_eval.py, MDv6 / offline-pair crops:
# 0.1: balanced accuracy 0.43 / 0.33, untaught species "unknown" 56 % / 70 % (the old head: 0.27 / 0.22
# and 63 % / 50 %); 0.3: 0.29 / 0.26 and 69 % / 76 %, but 30 % of snow leopards go unnamed and
# tests/pipeline/test_species.py's held-out camtrapR photos drop from 5 of 6 named to 3.
SIMILARITY_QUANTILE = 0.1
_ABSENT = -1.0e4  # logit of a class with no examples in a fold: never called


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _class_mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean of the class means, so the majority class does not pull the centre onto itself."""
    return np.mean([x[y == k].mean(axis=0) for k in np.unique(y)], axis=0)


def _fit_linear(f: np.ndarray, y: np.ndarray, n_classes: int, c: float,
                balanced: bool) -> tuple[np.ndarray, np.ndarray]:
    """(coef (K, d), intercept (K,)) of a multinomial logistic regression; classes without examples get
    a logit that can never win. ``balanced``: each class weighs the same in the loss whatever its count
    (scikit-learn's ``class_weight='balanced'``), so 116 snow leopards do not outvote 3 opossums."""
    from sklearn.linear_model import LogisticRegression

    coef = np.zeros((n_classes, f.shape[1]), np.float64)
    icpt = np.full(n_classes, _ABSENT, np.float64)
    present = np.unique(y)
    if len(present) == 1:
        icpt[present[0]] = 0.0
        return coef, icpt
    lr = LogisticRegression(C=c, max_iter=5000, class_weight="balanced" if balanced else None)
    lr.fit(f, y)
    if len(present) == 2:
        coef[present] = np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        icpt[present] = [-lr.intercept_[0] / 2, lr.intercept_[0] / 2]
    else:
        coef[lr.classes_], icpt[lr.classes_] = lr.coef_, lr.intercept_
    return coef, icpt


def _nearest(f: np.ndarray, bank: np.ndarray, bank_y: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, K) cosine similarity of each row to its nearest bank example of each class (-1: none)."""
    out = np.full((len(f), n_classes), -1.0, np.float32)
    if len(f) == 0 or len(bank) == 0:
        return out
    sims = f @ bank.T
    for k in np.unique(bank_y):
        out[:, k] = sims[:, bank_y == k].max(axis=1)
    return out


def _softmax(z: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(z, np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-row weight 1 / (classes x count of its class): every class counts the same in a mean."""
    counts = np.bincount(y)
    return 1.0 / (len(np.unique(y)) * counts[y])


@dataclass
class CrossValidation:
    """Out-of-fold results: every example scored by a head fitted without it (``folds`` stratified
    folds; a class with fewer examples than folds is spread over as many folds as it has)."""

    fold: np.ndarray  # (n,) fold of each example
    logits: np.ndarray  # (n, K) of the fold's head (_ABSENT for a class missing from its training part)
    nearest: np.ndarray  # (n, K) similarity to the nearest training example of each class

    def known(self, y: np.ndarray) -> np.ndarray:
        """Rows whose own class was in their fold's training part (a lone example's is not)."""
        return self.logits[np.arange(len(y)), y] > _ABSENT / 2


def cross_validate(x: np.ndarray, y: np.ndarray, n_classes: int, *, c: float, balanced: bool, centred: bool,
                   folds: int = FOLDS, seed: int = 0) -> CrossValidation:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), int)
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        fold[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % folds
    logits = np.full((len(y), n_classes), _ABSENT, np.float64)
    nearest = np.full((len(y), n_classes), -1.0, np.float32)
    for f in range(folds):
        tr, te = fold != f, fold == f
        if not te.any():
            continue
        centre = _class_mean(x[tr], y[tr]) if centred else None
        ftr, fte = (_unit(x[tr] - centre), _unit(x[te] - centre)) if centre is not None else (x[tr], x[te])
        coef, icpt = _fit_linear(ftr, y[tr], n_classes, c, balanced)
        logits[te] = fte @ coef.T + icpt
        nearest[te] = _nearest(fte, ftr, y[tr], n_classes)
    return CrossValidation(fold, logits, nearest)


def fit_temperature(logits: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks"): the T that
    minimises the (``weights``-weighted) negative log-likelihood of held-out logits / T. One number, so the
    ranking of classes never changes, only how sure the head says it is."""
    grid = np.geomspace(0.05, 50.0, 241)
    rows = np.arange(len(y))
    losses = [-(weights * np.log(_softmax(logits, t)[rows, y] + 1e-12)).sum() for t in grid]
    return float(grid[int(np.argmin(losses))])


def _weighted_quantile(v: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(v)
    cum = np.cumsum(w[order]) / w.sum()
    return float(v[order][min(int(np.searchsorted(cum, q)), len(v) - 1)])


def similarity_floors(nearest: np.ndarray, y: np.ndarray, known: np.ndarray,
                      quantile: float = SIMILARITY_QUANTILE, min_examples: int = FOLDS) -> list[float]:
    """Per class, the similarity to its nearest teaching example below which a crop is "unknown",
    from the held-out crops of the cross-validation (``nearest`` (n, K), ``known``: rows whose own
    class was in their fold's training part).

    - A class with ``min_examples`` or more held-out crops: the ``quantile`` of their similarity to
      their own class's nearest training example (a tight class, herons on one pond, gets a high
      floor; a varied one, snow leopards day and night, a lower one).
    - A smaller class: ``overall`` (the class-balanced ``quantile`` over those larger classes, or over
      all classes if none is larger), lowered to the class's own quantile (the nearest of 3 examples
      is farther than the nearest of 100, so a class of 3 can be named beside one of 100) but not
      below ``stranger``, the class-balanced median similarity of held-out crops to the nearest example
      of a *wrong* class: a crop no closer than a typical stranger is not recognised.
    - A class with no held-out crop of its own (a single example): ``overall``."""
    n_classes = nearest.shape[1]
    counts = np.bincount(y, minlength=n_classes)
    rows = np.arange(len(y))
    own = nearest[rows, y]
    use = known & (counts[y] >= min_examples)
    if not use.any():
        use = known
    if not use.any():
        return [-1.0] * n_classes
    overall = _weighted_quantile(own[use], 1.0 / counts[y[use]], quantile)
    others = nearest.copy()
    others[rows, y] = -np.inf
    wrong = others.max(axis=1)
    stranger = _weighted_quantile(wrong, 1.0 / counts[y], 0.5)
    floors = []
    for k in range(n_classes):
        mine = own[known & (y == k)]
        if len(mine) == 0:
            floors.append(overall)
        elif len(mine) >= min_examples:
            floors.append(float(np.quantile(mine, quantile)))
        else:
            floors.append(min(overall, max(stranger, float(np.quantile(mine, quantile)))))
    return floors


@dataclass
class SpeciesHead:
    """Multinomial logistic regression on DINOv2 embeddings, with an open-set "unknown", stored as plain arrays.

    Trained with scikit-learn; saved as ``.npz`` + ``.json`` (no pickle, so a head file from
    elsewhere cannot run code), and applied with NumPy. ``version`` is a hash of the weights and
    the examples, so each retrain is a new model key and the older head's results stay.

    A call is a name only when (1) the calibrated probability reaches ``threshold`` and (2) the crop
    is at least its ``min_similarity`` alike (cosine, centred features) to one of the called class's
    teaching examples: a species nobody taught lands far from every example and is "unknown" instead
    of being forced into the nearest class. Both numbers come from cross-validation on the teaching
    examples (:func:`fit_temperature`, :func:`similarity_floors`). Heads saved before this had neither
    (``temperature`` 1, no examples kept) and apply as they did.
    """

    classes: list[str]
    coef: np.ndarray  # (classes, 384)
    intercept: np.ndarray  # (classes,)
    threshold: float = 0.5
    task: str = "species"
    embedder: str = ""
    examples: dict[str, int] = field(default_factory=dict)
    version: str = ""
    centre: np.ndarray | None = None  # subtracted before the unit norm (None: raw embeddings)
    temperature: float = 1.0
    min_similarity: list[float] | None = None  # per class (see similarity_floors)
    bank: np.ndarray | None = None  # (n, 384) centred unit teaching examples, for the nearest-example rule
    bank_labels: np.ndarray | None = None  # (n,) class index of each bank row
    fitting: dict[str, object] = field(default_factory=dict)
    cv: CrossValidation | None = field(default=None, repr=False, compare=False)  # not saved

    @property
    def key(self) -> str:
        return f"{self.task}-head@{self.version}"

    @classmethod
    def train(cls, embeddings: np.ndarray, labels: Sequence[str], *, threshold: float = 0.5, task: str = "species",
              embedder: str = "", c: float = HEAD_C, balanced: bool = True, calibrate: bool = True,
              centred: bool = True) -> SpeciesHead:
        """Fit on labelled embeddings. ``balanced``: class weights (see :func:`_fit_linear`);
        ``calibrate``: cross-validate to fit the temperature and the similarity floor (kept in ``cv``
        for the teaching report). ``balanced=False, calibrate=False, centred=False, c=10`` is the
        fitting before issue 16, kept for the bench's comparison."""
        labels = list(labels)
        x = np.asarray(embeddings, np.float64)
        if len(labels) == 0 or len(x) == 0:
            raise ValueError("no labelled examples to learn from: label some photos first.")
        if x.ndim != 2 or len(x) != len(labels):
            raise ValueError(f"{len(labels)} labels for embeddings of shape {x.shape}")
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError(f"a head needs at least two classes to tell apart; got only {classes}. "
                             "Label some photos of another species (or of blanks) first.")
        y = np.array([classes.index(k) for k in labels])
        centre = _class_mean(x, y) if centred else None
        f = _unit(x - centre) if centre is not None else x
        coef, icpt = _fit_linear(f, y, len(classes), c, balanced)
        cv, temperature, floor = None, 1.0, None
        if calibrate:
            cv = cross_validate(x, y, len(classes), c=c, balanced=balanced, centred=centred)
            known = cv.known(y)
            if known.any():
                # Unweighted, as Guo et al.: weighting classes equally let 2-photo classes (always wrong
                # held out) flatten every probability; on offline-pair crops the head then named 15 % of
                # its own teaching photos (bench/species_eval.py).
                temperature = fit_temperature(cv.logits[known], y[known], np.ones(int(known.sum())))
                floor = similarity_floors(cv.nearest, y, known)
        keep_bank = calibrate
        coef32, icpt32 = np.asarray(coef, np.float32), np.asarray(icpt, np.float32)
        digest = hashlib.sha256(coef32.tobytes() + icpt32.tobytes() + "\0".join(classes).encode()
                                + f"{temperature}|{floor}".encode()).hexdigest()[:12]
        counts = {k: labels.count(k) for k in classes}
        fitting = {"c": c, "class_weight": "balanced" if balanced else None, "centred": centred,
                   "calibrated": calibrate, "folds": FOLDS if cv is not None else None,
                   "similarity_quantile": SIMILARITY_QUANTILE if floor is not None else None}
        return cls(classes, coef32, icpt32, threshold, task, embedder, counts, digest,
                   None if centre is None else centre.astype(np.float32), temperature, floor,
                   f.astype(np.float32) if keep_bank else None, y if keep_bank else None, fitting, cv)

    def features(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, np.float32)
        return x if self.centre is None else _unit(x - self.centre)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, classes) calibrated probabilities (logits / temperature)."""
        return _softmax(self.features(embeddings) @ self.coef.T + self.intercept, self.temperature)

    def nearest(self, embeddings: np.ndarray) -> np.ndarray | None:
        """(n, classes) similarity to each class's nearest teaching example; None for an old head."""
        if self.bank is None or self.bank_labels is None:
            return None
        return _nearest(self.features(embeddings), self.bank, self.bank_labels, len(self.classes))

    def calls(self, probs: np.ndarray, nearest: np.ndarray | None) -> list[SpeciesCall]:
        """The decision rule on given probabilities and similarities (shared with cross-validation)."""
        out = []
        for i, row in enumerate(probs):
            call = _call(self.classes, row, self.threshold)
            k = int(np.argmax(row))
            sim = None if nearest is None else float(nearest[i, k])
            if call.scientific_name is not None and sim is not None and self.min_similarity is not None \
                    and sim < self.min_similarity[k]:
                call = SpeciesCall(None, call.probability, call.best, sim)
            out.append(SpeciesCall(call.scientific_name, call.probability, call.best, sim))
        return out

    def classify_embeddings(self, embeddings: np.ndarray) -> list[SpeciesCall]:
        return self.calls(self.probabilities(embeddings), self.nearest(embeddings))

    def save(self, folder: Path, make_current: bool = True) -> Path:
        """Write ``<task>-head-<version>.npz/.json``; with ``make_current`` point ``<task>-head.json``
        (the head the stages use) at it. Returns the versioned ``.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.task}-head-{self.version}"
        arrays: dict[str, np.ndarray] = {"coef": self.coef, "intercept": self.intercept}
        if self.centre is not None:
            arrays["centre"] = self.centre
        if self.bank is not None and self.bank_labels is not None:
            arrays["bank"], arrays["bank_labels"] = self.bank.astype(np.float16), self.bank_labels.astype(np.int32)
        np.savez(folder / f"{stem}.npz", **arrays)
        meta = {"classes": self.classes, "threshold": self.threshold, "task": self.task, "embedder": self.embedder,
                "examples": self.examples, "version": self.version, "weights": f"{stem}.npz",
                "temperature": self.temperature, "min_similarity": self.min_similarity, "fitting": self.fitting}
        (folder / f"{stem}.json").write_text(json.dumps(meta, indent=1))
        if make_current:
            tmp = folder / f".{self.task}-head.json.tmp"
            tmp.write_text(json.dumps(meta, indent=1))
            tmp.replace(folder / f"{self.task}-head.json")
        return folder / f"{stem}.json"

    @classmethod
    def load(cls, meta_path: Path) -> SpeciesHead:
        meta = json.loads(meta_path.read_text())
        with np.load(meta_path.parent / meta["weights"], allow_pickle=False) as arrays:
            a = {k: arrays[k] for k in arrays.files}
        return cls(list(meta["classes"]), a["coef"], a["intercept"], float(meta["threshold"]),
                   meta["task"], meta.get("embedder", ""), dict(meta.get("examples", {})), meta["version"],
                   a.get("centre"), float(meta.get("temperature", 1.0)), meta.get("min_similarity"),
                   a["bank"].astype(np.float32) if "bank" in a else None, a.get("bank_labels"),
                   dict(meta.get("fitting", {})))

    @classmethod
    def current(cls, folder: Path, task: str = "species") -> SpeciesHead | None:
        """The head ``train-species`` made current for ``task``, or None when the park has not trained one."""
        p = folder / f"{task}-head.json"
        return cls.load(p) if p.is_file() else None
