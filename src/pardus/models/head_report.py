"""What a taught head learned, measured before anyone relies on it: the teaching report.

A head is judged on photos it did not see: the cross-validation kept by :meth:`SpeciesHead.train`
names every teaching example with a head fitted without it. From those calls the report gives, per
class, the examples used, the recall (named right / examples: an "unknown" counts as not named),
what the class was mistaken for, and over all classes the balanced accuracy (the mean of the
recalls, so a class of 3 photos counts as much as one of 116). It also tells which share of other
classes' crops the majority class took (the failure issue 16 measured: every animal called a snow
leopard), how well the head names its own teaching photos, and which labels were left out and why.

The report is saved beside the head as ``<task>-head-<version>.report.json``; ``pardus models
train-species`` prints it and uses its balanced accuracy to decide whether the new head replaces
the current one (:func:`compare_with_current`). A park's first species head replaces the ImageNet
map the species stage uses out of the box, so it is held to that map instead, on the same teaching
crops and on the labels the map can name (:func:`compare_with_imagenet`): teaching should never
make a park's names worse without someone saying so.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pardus.models.species import SpeciesHead

UNKNOWN = "unknown"


@dataclass
class ClassReport:
    examples: int
    recall: float  # cross-validated: named right / examples
    top1_recall: float  # cross-validated: best class right, "unknown" or not
    unknown: float  # share of its held-out crops called "unknown"
    mistaken_for: dict[str, int] = field(default_factory=dict)  # other names it was given, and how often
    similarity_floor: float | None = None  # a crop less alike to its nearest example is "unknown"


@dataclass
class TeachingReport:
    task: str
    version: str
    classes: dict[str, ClassReport]
    balanced_accuracy: float  # cross-validated mean of the per-class recalls
    top1_balanced_accuracy: float
    training_accuracy: float  # the head on its own teaching examples (named right)
    majority: str
    majority_share: float  # other classes' held-out crops named as the majority class
    temperature: float
    threshold: float
    left_out: dict[str, str] = field(default_factory=dict)  # label -> why
    notes: list[str] = field(default_factory=list)
    previous: str | None = None  # the head that was current before
    previous_balanced_accuracy: float | None = None
    previous_measured: str = ""  # how the previous number was obtained
    # A first species head against the ImageNet map on the same crops, on the labels the map can name:
    imagenet_map: str | None = None  # the map's model key
    imagenet_classes: list[str] = field(default_factory=list)  # the labels it can name
    imagenet_balanced_accuracy: float | None = None  # the map's, on those labels' crops
    head_on_imagenet_classes: float | None = None  # the new head's (cross-validated)
    made_current: bool = True
    decision: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def save(self, folder: Path) -> Path:
        p = folder / f"{self.task}-head-{self.version}.report.json"
        p.write_text(self.to_json())
        return p

    @classmethod
    def load(cls, path: Path) -> TeachingReport:
        d = json.loads(path.read_text())
        d["classes"] = {k: ClassReport(**v) for k, v in d["classes"].items()}
        return cls(**d)

    def lines(self) -> list[str]:
        """The report as plain sentences, for the console and logs."""
        floors = [c.similarity_floor for c in self.classes.values() if c.similarity_floor is not None]
        out = [f"cross-validated balanced accuracy {self.balanced_accuracy:.2f} (best class right, ignoring "
               f"'unknown': {self.top1_balanced_accuracy:.2f}); on its own teaching photos "
               f"{self.training_accuracy:.2f}",
               f"other classes' crops called {self.majority} (the largest class): {self.majority_share:.0%}",
               f"'unknown' below probability {self.threshold:.2f} (temperature {self.temperature:.2f})"
               + (f" or similarity to the nearest teaching example below {min(floors):.2f}-{max(floors):.2f} "
                  "(per class)" if floors else "")]
        if self.imagenet_balanced_accuracy is not None and self.head_on_imagenet_classes is not None:
            out.append(f"balanced accuracy on the {len(self.imagenet_classes)} label(s) the ImageNet map can name "
                       f"({', '.join(self.imagenet_classes)}): this head {self.head_on_imagenet_classes:.2f} "
                       f"(cross-validated), the ImageNet map {self.imagenet_balanced_accuracy:.2f} "
                       f"({self.imagenet_map}, same crops)")
        for label, why in self.left_out.items():
            out.append(f"left out: {label}: {why}")
        out += self.notes
        return out


def _names(head: SpeciesHead, y: np.ndarray) -> tuple[list[str | None], list[str]]:
    """Cross-validated (named, best) of every teaching example under the head's own decision rule."""
    cv = head.cv
    assert cv is not None, "the head was trained without cross-validation (calibrate=False)"
    probs = np.exp((cv.logits - cv.logits.max(axis=1, keepdims=True)) / head.temperature)
    probs /= probs.sum(axis=1, keepdims=True)
    calls = head.calls(probs, cv.nearest if head.bank is not None else None)
    return [c.scientific_name for c in calls], [c.best or "" for c in calls]


def per_class(truth: list[str], named: list[str | None], best: list[str],
              floors: dict[str, float] | None = None) -> dict[str, ClassReport]:
    out = {}
    for label in sorted(set(truth)):
        rows = [i for i, t in enumerate(truth) if t == label]
        wrong = Counter(named[i] or UNKNOWN for i in rows if named[i] != label)
        out[label] = ClassReport(
            examples=len(rows), recall=sum(named[i] == label for i in rows) / len(rows),
            top1_recall=sum(best[i] == label for i in rows) / len(rows),
            unknown=sum(named[i] is None for i in rows) / len(rows),
            mistaken_for={k: v for k, v in wrong.most_common() if k != UNKNOWN},
            similarity_floor=(floors or {}).get(label))
    return out


def balanced_accuracy(truth: list[str], named: list[str | None]) -> float:
    """Mean over the true classes of the share named right ("unknown" is not right)."""
    labels = sorted(set(truth))
    return float(np.mean([np.mean([n == lab for t, n in zip(truth, named, strict=True) if t == lab])
                          for lab in labels])) if labels else 0.0


def majority_share(truth: list[str], named: list[str | None]) -> tuple[str, float]:
    """The largest class and the share of the other classes' crops named as it."""
    majority = Counter(truth).most_common(1)[0][0]
    others = [n for t, n in zip(truth, named, strict=True) if t != majority]
    return majority, (sum(n == majority for n in others) / len(others)) if others else 0.0


def teaching_report(head: SpeciesHead, embeddings: np.ndarray, labels: list[str],
                    left_out: dict[str, str] | None = None, notes: list[str] | None = None) -> TeachingReport:
    """The report of ``head``, trained (with cross-validation) on exactly ``embeddings`` / ``labels``."""
    y = np.array([head.classes.index(k) for k in labels])
    named, best = _names(head, y)
    own = [c.scientific_name for c in head.classify_embeddings(embeddings)]
    majority, share = majority_share(labels, named)
    return TeachingReport(
        task=head.task, version=head.version,
        classes=per_class(labels, named, best, dict(zip(head.classes, head.min_similarity, strict=True))
                          if head.min_similarity is not None else None),
        balanced_accuracy=balanced_accuracy(labels, named),
        top1_balanced_accuracy=balanced_accuracy(labels, list(best)),
        training_accuracy=float(np.mean([o == t for o, t in zip(own, labels, strict=True)])),
        majority=majority, majority_share=share, temperature=head.temperature,
        threshold=head.threshold,
        left_out=dict(left_out or {}), notes=list(notes or []))


def compare_with_current(report: TeachingReport, current: SpeciesHead | None, folder: Path,
                         embeddings: np.ndarray, labels: list[str], make_current: bool) -> None:
    """Decide whether the new head becomes current, and say why in ``report``.

    A new head replaces the current one when its cross-validated balanced accuracy is at least the
    current head's: the current head's own teaching report when it has one, else (a head saved before
    reports existed) the current head applied to the new teaching examples, which flatters it (it was
    taught on many of them), so the new head has to beat it clearly. ``make_current`` overrides."""
    if current is None:
        report.made_current, report.decision = True, "the first head for this task: made current"
        return
    report.previous = current.version
    saved = folder / f"{current.task}-head-{current.version}.report.json"
    if saved.is_file():
        report.previous_balanced_accuracy = TeachingReport.load(saved).balanced_accuracy
        report.previous_measured = "cross-validated, from its teaching report"
    else:
        named = [c.scientific_name for c in current.classify_embeddings(embeddings)]
        report.previous_balanced_accuracy = balanced_accuracy(labels, named)
        report.previous_measured = "on the new teaching photos (it was taught on some of them)"
    prev = report.previous_balanced_accuracy
    better = report.balanced_accuracy >= prev - 1e-9
    if better:
        report.made_current = True
        report.decision = (f"made current: balanced accuracy {report.balanced_accuracy:.2f} against the current "
                           f"head's {prev:.2f} ({report.previous_measured})")
    elif make_current:
        report.made_current = True
        report.decision = (f"made current because you asked (--make-current), although its balanced accuracy "
                           f"{report.balanced_accuracy:.2f} is below the current head's {prev:.2f} "
                           f"({report.previous_measured})")
    else:
        report.made_current = False
        report.decision = (f"saved but NOT made current: balanced accuracy {report.balanced_accuracy:.2f} is below "
                           f"the current head's {prev:.2f} ({report.previous_measured}); the stages keep using "
                           f"{current.key}. Pass --make-current to use the new head anyway.")


def map_names_label(taxon: str, label: str) -> bool:
    """Whether the ImageNet map's ``taxon`` names a photo labelled ``label`` right: the same name, or
    one name a rank below the other (the map's *Panthera pardus orientalis* for a label *Panthera
    pardus*, its genus *Ardea* for *Ardea cinerea*). Generous to the map on purpose: a head that beats
    it under this rule beats it under any stricter one. Names that need a taxonomy to relate (the map's
    *Cervidae* and a label *Cervus nippon*) are not matched; such labels are not compared."""
    a, b = " ".join(taxon.lower().split()), " ".join(label.lower().split())
    return a == b or a.startswith(b + " ") or b.startswith(a + " ")


def compare_with_imagenet(report: TeachingReport, map_key: str | None, calls: list[tuple[str, str | None]],
                          make_current: bool) -> None:
    """Decide whether a park's first species head becomes current, and say why in ``report``.

    Without a head the species stage names animals with the ImageNet map (``map_key``). ``calls``
    are the map's names (None: "unknown") of the teaching crops of the labels it can name, as
    (label, name). On those labels the head's cross-validated balanced accuracy must be at
    least the map's on the same crops, or the head is saved but not made current (``make_current``
    overrides). A head whose labels the map cannot name at all (or ``map_key`` None: the map's
    weights are not installed) has nothing to be compared with and is made current."""
    first = "the first head for this task"
    classes = sorted({lab for lab, _ in calls if lab in report.classes})
    if map_key is None or not classes:
        why = ("the ImageNet map's weights are not installed" if map_key is None
               else "the ImageNet map cannot name any of its labels")
        report.made_current = True
        report.decision = f"{first}: made current ({why}, so there is nothing to compare with)"
        return
    recall = {lab: float(np.mean([name is not None and map_names_label(name, lab) for la, name in calls if la == lab]))
              for lab in classes}
    report.imagenet_map, report.imagenet_classes = map_key, classes
    report.imagenet_balanced_accuracy = float(np.mean(list(recall.values())))
    report.head_on_imagenet_classes = float(np.mean([report.classes[c].recall for c in classes]))
    mine, theirs = report.head_on_imagenet_classes, report.imagenet_balanced_accuracy
    said = (f"on the {len(classes)} label(s) the ImageNet map can name, cross-validated balanced accuracy "
            f"{mine:.2f} against the map's {theirs:.2f} on the same crops")
    if mine >= theirs - 1e-9:
        report.made_current, report.decision = True, f"{first}: made current: {said}"
    elif make_current:
        report.made_current = True
        report.decision = f"{first}: made current because you asked (--make-current), although {said}"
    else:
        report.made_current = False
        report.decision = (f"{first}: saved but NOT made current: {said}; the species stage keeps using the "
                           f"ImageNet map ({map_key}). Pass --make-current to use the new head anyway.")
