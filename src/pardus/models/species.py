"""Naming the animal in a crop: out of the box from ImageNet, and from the park's own labelled examples.

Two classifiers share one small interface, ``classify(crops) -> list[SpeciesCall]``:

- :class:`ImagenetTaxonClassifier` runs an ImageNet-1k network and adds up the softmax over the
  ImageNet classes that stand for each taxon of a :class:`TaxonMap` (e.g. "leopard", "snow
  leopard" and "jaguar" all mean the Amur leopard in the Land of the Leopard, where no other large
  spotted cat lives). ImageNet has no deer, raccoon dog or roe deer at all, which is why
- :class:`SpeciesHead` exists: a multinomial logistic regression on DINOv2 embeddings of crops
  that people labelled. A park teaches it sika deer or raccoon dog with a few dozen examples.

Both answer "unknown" (``scientific_name=None``) below their probability threshold, because a
wrong name costs a reviewer more than no name.
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


@dataclass
class SpeciesHead:
    """Multinomial logistic regression on L2-normalised DINOv2 embeddings, stored as plain arrays.

    Trained with scikit-learn; saved as ``.npz`` + ``.json`` (no pickle, so a head file from
    elsewhere cannot run code), and applied with NumPy. ``version`` is a hash of the weights and
    the examples, so each retrain is a new model key and the older head's results stay.
    """

    classes: list[str]
    coef: np.ndarray  # (classes, 384)
    intercept: np.ndarray  # (classes,)
    threshold: float = 0.5
    task: str = "species"
    embedder: str = ""
    examples: dict[str, int] = field(default_factory=dict)
    version: str = ""

    @property
    def key(self) -> str:
        return f"{self.task}-head@{self.version}"

    @classmethod
    def train(cls, embeddings: np.ndarray, labels: Sequence[str], *, threshold: float = 0.5, task: str = "species",
              embedder: str = "", c: float = 10.0) -> SpeciesHead:
        """Fit on labelled embeddings. ``c`` is scikit-learn's inverse regularisation: the embeddings
        are unit vectors, so a weak penalty (10) lets a few dozen examples per class separate."""
        from sklearn.linear_model import LogisticRegression

        labels = list(labels)
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError(f"a head needs at least two classes to tell apart; got only {classes or 'none'}. "
                             "Label some photos of another species (or of blanks) first.")
        x = np.asarray(embeddings, np.float64)
        lr = LogisticRegression(C=c, max_iter=2000)
        lr.fit(x, labels)
        order = [list(lr.classes_).index(k) for k in classes]
        coef = lr.coef_ if len(classes) > 2 else np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        icpt = lr.intercept_ if len(classes) > 2 else np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
        coef, icpt = np.asarray(coef, np.float32)[order], np.asarray(icpt, np.float32)[order]
        digest = hashlib.sha256(coef.tobytes() + icpt.tobytes() + "\0".join(classes).encode()).hexdigest()[:12]
        counts = {k: labels.count(k) for k in classes}
        return cls(classes, coef, icpt, threshold, task, embedder, counts, digest)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        z = np.asarray(embeddings, np.float32) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def classify_embeddings(self, embeddings: np.ndarray) -> list[SpeciesCall]:
        return [_call(self.classes, row, self.threshold) for row in self.probabilities(embeddings)]

    def save(self, folder: Path) -> Path:
        """Write ``<task>-head-<version>.npz/.json`` and point ``<task>-head.json`` (the current one) at it."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.task}-head-{self.version}"
        np.savez(folder / f"{stem}.npz", coef=self.coef, intercept=self.intercept)
        meta = {"classes": self.classes, "threshold": self.threshold, "task": self.task, "embedder": self.embedder,
                "examples": self.examples, "version": self.version, "weights": f"{stem}.npz"}
        (folder / f"{stem}.json").write_text(json.dumps(meta, indent=1))
        tmp = folder / f".{self.task}-head.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(folder / f"{self.task}-head.json")
        return folder / f"{stem}.json"

    @classmethod
    def load(cls, meta_path: Path) -> SpeciesHead:
        meta = json.loads(meta_path.read_text())
        arrays = np.load(meta_path.parent / meta["weights"], allow_pickle=False)
        return cls(list(meta["classes"]), arrays["coef"], arrays["intercept"], float(meta["threshold"]),
                   meta["task"], meta.get("embedder", ""), dict(meta.get("examples", {})), meta["version"])

    @classmethod
    def current(cls, folder: Path, task: str = "species") -> SpeciesHead | None:
        """The head ``train-species`` saved last for ``task``, or None when the park has not trained one."""
        p = folder / f"{task}-head.json"
        return cls.load(p) if p.is_file() else None
