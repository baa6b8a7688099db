"""People and vehicles first: does each detector Pardus can run find them, by day and by night?

The park's poacher alerts fire on person and vehicle boxes (pardus.alerts.rules), so a missed
person is the costly error and a person or vehicle box on an empty frame the annoying one. This
runs the detect stage's own code (``DetectionStage.boxes``: the stage's detector objects, its
``combine`` and its ``Thresholds``, on frames decoded by the stage's ``decode_bytes`` at the size
the stage decodes) on the 41 real photos of ../shared/data/camera-trap-people-vehicles (15 person,
13 vehicle, 10 empty, 3 animal; see its PROVENANCE.md), with

- the offline pair (zamba YOLOX-tiny at 960 px + COCO SSD): the stage on a fresh install;
- MegaDetector v6 compact: the stage once ``pardus models fit-mdv6`` has installed it (the bench
  runs that command into its cache folder when the cache does not hold it yet);

side by side, and the options that might raise recall where it is low: a lower person threshold
per detector, full-resolution tiling (``PARDUS_DETECT_TILES=2``) as the stage does it and with
the COCO model on the tiles too, a contrast stretch of greyscale infrared frames, and the union
of both detectors' boxes. Day and night (the set's ``night_ir`` flag) are counted apart.

Fifteen people are few: one more found is 7 points of recall. So every variant is also run on
the other real photos in ../shared/data that hold no person or vehicle (the animals and blanks
bench/detect_eval.py reads, and the LILA photos, which LILA publishes without people; LILA
photos where MegaDetector v5a saw a person or vehicle are left out): a person or vehicle box
there is a false alarm a ranger would be sent.

    python bench/detect_people.py [--shared ../shared] [--cache DIR] [--no-cross-check]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detect_eval import labelled  # noqa: E402
from pardus.models.detectors import Box, inside, iou, tile_windows  # noqa: E402
from pardus.models.mdv6 import ready  # noqa: E402
from pardus.models.registry import ModelUnavailableError  # noqa: E402
from pardus.pipeline.daynight import IR_CHROMA_THRESHOLD, chroma  # noqa: E402
from pardus.pipeline.decode import decode_bytes  # noqa: E402
from pardus.pipeline.detect import MDV6_THRESHOLDS, DetectionStage, Detector, Thresholds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PEOPLE_SET = Path("data") / "camera-trap-people-vehicles"
MDV6_FILE = Path("models") / "mdv6-yolov10-c-int8-edgetpu" / "MDV6-yolov10-c_full_integer_quant_edgetpu.tflite"
MDV6 = "megadetector-v6-yolov10-c"
ALERT = frozenset({"person", "vehicle"})  # what the alert rules fire on (pardus.alerts.rules.DETECTION_KINDS)
LIGHT = {"no": "day", "yes": "night", "unknown": "unknown"}


@dataclass(frozen=True)
class Photo:
    """One labelled photo of the set: its file, the source's label and whether it is a night infrared frame."""

    path: Path
    label: str  # person | vehicle | empty | animal
    light: str  # day | night | unknown


def people_set(shared: Path) -> list[Photo]:
    """The 41 photos as labels.csv lists them."""
    root = shared / PEOPLE_SET
    with (root / "labels.csv").open(newline="", encoding="utf-8") as f:
        return [Photo(root / r["file"], r["label"], LIGHT[r["night_ir"]]) for r in csv.DictReader(f)]


def other_sets(shared: Path) -> list[Path]:
    """Real photos with no person or vehicle in them: any person or vehicle box there is a false alarm."""
    out = [p for items in labelled(shared).values() for p, truth in items if truth in ("animal", "blank")]
    root = shared / "data" / "megadetector-lila-test-set"
    if root.is_dir():
        md = json.loads((root / "megadetector_v5a_output.json").read_text())
        # MegaDetector's categories: 1 animal, 2 person, 3 vehicle. LILA removes people from its public sets;
        # a photo where v5a still saw a person or vehicle is left out rather than judged.
        seen = {Path(i["file"]).name for i in md["images"]
                if any(d["category"] in ("2", "3") and d["conf"] >= 0.2 for d in i.get("detections") or [])}
        out += [p for p in sorted((root / "images").iterdir()) if p.name not in seen]
    return out


def stretch_ir(rgb: np.ndarray) -> np.ndarray:
    """Candidate (not in the stage): a greyscale infrared frame's grey levels stretched over 0..255, the darkest
    and brightest 1 % left out, so a dim figure at the edge of the flash gets the contrast daylight frames have.
    Colour frames are returned as they are; "greyscale" is the daynight stage's own test (``chroma``)."""
    img = Image.fromarray(rgb)
    if chroma(img) >= IR_CHROMA_THRESHOLD:
        return rgb
    return np.asarray(ImageOps.autocontrast(img, cutoff=1))


def _digest(rgb: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()


class Replay:
    """A stage detector whose boxes for one frame are computed once and then replayed.

    Every variant calls the stage's own ``boxes`` (its combine and thresholds) on the same frames, so
    each network runs once per frame instead of once per variant. The detector is made at the lowest
    threshold any variant uses; a higher threshold only drops boxes (``combine``), and the check in
    ``main`` compares the replayed defaults with the stages' own detectors, box for box.
    """

    def __init__(self, det: Detector | object) -> None:
        self.det = det
        self.size = int(getattr(det, "size", 0))
        self.memo: dict[tuple[str, tuple[int, ...], bytes], list[Box]] = {}

    def _memo(self, kind: str, rgb: np.ndarray, run: Callable[[], list[Box]]) -> list[Box]:
        key = (kind, rgb.shape, _digest(rgb))
        if key not in self.memo:
            self.memo[key] = run()
        return list(self.memo[key])

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return self._memo("whole", rgb, lambda: self.det.detect(rgb))  # type: ignore[attr-defined]

    def forget(self) -> None:
        """Drop the boxes of the last photo (one photo's frames are all the memo ever needs)."""
        self.memo.clear()


class ReplayTiled(Replay):
    """A replayed YOLOX, which the stage also asks for its tiled pass."""

    def detect_tiled(self, rgb: np.ndarray, grid: int = 2) -> list[Box]:
        return self._memo(f"tiles{grid}", rgb, lambda: self.det.detect_tiled(rgb, grid=grid))  # type: ignore[attr-defined]


class CocoOnTiles:
    """Candidate (not in the stage): the COCO model also on the tiles the stage's tiling cuts.

    The SSD sees every frame at 300 x 300, so a walker 100 px tall in a 3264 px frame is a few pixels
    to it. On frames larger than the animal detector's input (where the stage tiles), the same
    ``grid`` x ``grid`` windows go through COCO as well, and a tile's person or vehicle box is added
    when no whole-frame box of that category overlaps it (the add-only rule the stage uses for animals).
    ``floor`` is the score the stage's COCO object keeps (``min(person, vehicle)``), so the result does
    not depend on the lower score the replayed detector was made at.
    """

    def __init__(self, coco: Replay, grid: int, frame_above: int, floor: float) -> None:
        self.coco = coco
        self.grid = grid
        self.frame_above = frame_above
        self.floor = floor

    def detect(self, rgb: np.ndarray) -> list[Box]:
        found = [b for b in self.coco.detect(rgb) if b.score >= self.floor]
        h, w = rgb.shape[:2]
        if max(h, w) <= self.frame_above:
            return found
        for x0, y0, x1, y1 in tile_windows(w, h, self.grid, 0.2):
            for b in self.coco.detect(np.ascontiguousarray(rgb[y0:y1, x0:x1])):
                if b.score < self.floor:
                    continue
                t = Box(b.category, b.score, (x0 + b.x * (x1 - x0)) / w, (y0 + b.y * (y1 - y0)) / h,
                        b.w * (x1 - x0) / w, b.h * (y1 - y0) / h, f"{b.label} (tile)", b.model)
                if not any(o.category == t.category and (iou(t, o) >= 0.3 or inside(t, o) >= 0.6 or inside(o, t) >= 0.6)
                           for o in found):
                    found.append(t)
        return found


class Frames:
    """One photo decoded as the stage decodes it (``decode_bytes`` at the stage's longest side), once per size."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.cache: dict[tuple[int, bool], np.ndarray] = {}

    def get(self, longest: int, ir: bool = False) -> np.ndarray:
        key = (longest, ir)
        if key not in self.cache:
            self.cache[key] = stretch_ir(self.get(longest)) if ir else decode_bytes(self.data, longest)
        return self.cache[key]


Run = Callable[[Frames], list[Box]]


@dataclass(frozen=True)
class Variant:
    """One row of the table: a name, which detector family it belongs to, and how it boxes a photo."""

    name: str
    family: str  # offline | mdv6 | union
    run: Run


def staged(stage: DetectionStage, animal: Detector, coco: object | None, ir: bool = False) -> Run:
    """The stage's ``boxes`` on the frame ``process`` would decode (longest side = detector size x tiles)."""
    longest = animal.size * max(1, stage.tiles)
    return lambda f: stage.boxes(f.get(longest, ir), animal, coco)  # type: ignore[arg-type]


def fit_mdv6(shared: Path, cache: Path) -> tuple[Path | None, str]:
    """The models folder holding MDv6, made with `pardus models fit-mdv6` when the cache lacks it; or why not."""
    tflite = shared / MDV6_FILE
    if not tflite.is_file():
        return None, f"MegaDetector v6 left out: no model file at {tflite}"
    data_dir = cache / "pardus-data"
    models = data_dir / "models"
    if ready(models):
        return models, f"MegaDetector v6 from the cache {models}"
    env = {k: v for k, v in os.environ.items() if k != "PARDUS_MDV6_PATH"} | {"PARDUS_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "pardus", "models", "fit-mdv6", str(tflite)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not ready(models):
        said = " ".join((done.stdout + done.stderr).split())[-300:]
        return None, f"MegaDetector v6 left out: `pardus models fit-mdv6` did not install it ({said})"
    return models, f"MegaDetector v6 fitted now with `pardus models fit-mdv6` into {models}"


@dataclass
class Sides:
    """The stages and replayed detectors every variant is built from."""

    variants: list[Variant]
    checks: list[tuple[str, Run, Run]]  # (name, replayed default, the stage with its own detectors)
    replays: list[Replay]
    raw: dict[str, Callable[[Frames, str], float]]  # family -> best raw score of a category on a photo


def build(models: Path | None) -> Sides:
    """The variants measured: the two stage defaults, then the options that might raise recall.

    The replayed detectors come from stages at 0.05 for people and vehicles, so the raw scores of
    what a default missed can be printed; each variant's own stage applies its own thresholds.
    """
    raw_offline = DetectionStage(thresholds=Thresholds(person=0.05, vehicle=0.05))
    yolox, coco = raw_offline._models()  # noqa: SLF001 - the stage's own detector objects
    rx, rc = ReplayTiled(yolox), Replay(coco)
    default = DetectionStage()
    tiled = DetectionStage(tiles=2)

    def offline(**th: float) -> DetectionStage:
        return DetectionStage(thresholds=replace(default.thresholds, **th))

    variants = [
        Variant("offline (stage default)", "offline", staged(default, rx, rc)),
        Variant("offline, person >= 0.3", "offline", staged(offline(person=0.3), rx, rc)),
        Variant("offline, person >= 0.2", "offline", staged(offline(person=0.2), rx, rc)),
        Variant("offline, vehicle >= 0.3", "offline", staged(offline(vehicle=0.3), rx, rc)),
        Variant("offline, tiles 2 (stage)", "offline", staged(tiled, rx, rc)),
        Variant("offline, tiles 2 + COCO on tiles", "offline",
                staged(tiled, rx, CocoOnTiles(rc, 2, frame_above=rx.size,
                                              floor=min(tiled.thresholds.person, tiled.thresholds.vehicle)))),
        Variant("offline, IR frames stretched", "offline", staged(default, rx, rc, ir=True)),
    ]
    own_yolox, own_coco = default._models()  # noqa: SLF001
    checks = [("offline", variants[0].run, staged(default, own_yolox, own_coco))]
    replays: list[Replay] = [rx, rc]

    def best(r: Replay, longest: int) -> Callable[[Frames, str], float]:
        return lambda f, cat: max([b.score for b in r.detect(f.get(longest)) if b.category == cat] or [0.0])

    raw = {"offline": best(rc, rx.size)}
    if models is not None:
        raw_md = DetectionStage(detector=MDV6, models_dir=models,
                                thresholds=Thresholds(animal=0.05, person=0.05, vehicle=0.05))
        mdv6, _ = raw_md._models()  # noqa: SLF001
        rm = Replay(mdv6)
        md_default = DetectionStage(detector=MDV6, models_dir=models)
        md_low = DetectionStage(detector=MDV6, models_dir=models, thresholds=replace(MDV6_THRESHOLDS, person=0.1))
        md_run, offline_run = staged(md_default, rm, None), variants[0].run
        variants += [
            Variant("MDv6 (stage, 0.2)", "mdv6", md_run),
            Variant("MDv6, person >= 0.1", "mdv6", staged(md_low, rm, None)),
            Variant("MDv6, IR frames stretched", "mdv6", staged(md_default, rm, None, ir=True)),
            Variant("union: MDv6 + offline boxes", "union", lambda f: md_run(f) + offline_run(f)),
        ]
        own_md, _ = md_default._models()  # noqa: SLF001
        checks.append(("MDv6", md_run, staged(md_default, own_md, None)))
        replays.append(rm)
        raw["mdv6"] = best(rm, rm.size)
    return Sides(variants, checks, replays, raw)


def frames_of(path: Path) -> Frames | None:
    """The photo's bytes ready to decode, or None for a file the decoder refuses (the sets keep a broken one)."""
    try:
        f = Frames(path.read_bytes())
        f.get(64)
    except (OSError, ValueError, SyntaxError):
        return None
    return f


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("PARDUS_SHARED_DIR", REPO.parent / "shared")))
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "pardus-bench" / "people",
                    help="where MegaDetector v6 is fitted once (a Pardus data folder; never committed)")
    ap.add_argument("--no-cross-check", action="store_true",
                    help="skip the false-alarm check on the other real photos (faster)")
    args = ap.parse_args()
    if not (args.shared / PEOPLE_SET / "labels.csv").is_file():
        sys.exit(f"no people-and-vehicles set at {args.shared / PEOPLE_SET}: give --shared (or PARDUS_SHARED_DIR)")
    if os.environ.pop("PARDUS_MDV6_PATH", None):
        print("(PARDUS_MDV6_PATH ignored: the bench uses the MDv6 it fitted in its cache)")
    import torch

    # One torch thread: the boxes are the same; on this shared 2-core machine a second thread mostly
    # spins against the other work instead of computing.
    torch.set_num_threads(1)
    photos = people_set(args.shared)
    models, said = fit_mdv6(args.shared, args.cache)
    print(said)
    try:
        sides = build(models)
    except ModelUnavailableError as exc:
        sys.exit(f"a detector could not be loaded: {exc}")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()

    calls: dict[str, dict[Path, set[str]]] = {v.name: {} for v in sides.variants}
    misses: dict[str, list[str]] = {fam: [] for fam in sides.raw}
    mismatched: dict[str, list[str]] = {name: [] for name, *_ in sides.checks}
    stretched = {"set": 0, "other": 0}
    sizes = {r.size for r in sides.replays if r.size}
    for ph in photos:
        f = frames_of(ph.path)
        if f is None:
            sys.exit(f"{ph.path} cannot be decoded")
        stretched["set"] += any(f.get(s, ir=True) is not f.get(s) for s in sizes)
        for v in sides.variants:
            calls[v.name][ph.path] = {b.category for b in v.run(f)}
        for name, replayed, own in sides.checks:
            if sorted(replayed(f), key=repr) != sorted(own(f), key=repr):
                mismatched[name].append(ph.path.name)
        for fam, best in sides.raw.items():
            default = next(v for v in sides.variants if v.family == fam)
            if ph.label in ALERT and ph.label not in calls[default.name][ph.path]:
                misses[fam].append(f"{ph.path.name} ({ph.label} {best(f, ph.label):.2f})")
        for r in sides.replays:
            r.forget()
    people_seconds = time.perf_counter() - t0

    others: list[Path] = [] if args.no_cross_check else other_sets(args.shared)
    false_pv: dict[str, set[str]] = {name: set() for name in calls}
    judged = 0
    for i, p in enumerate(others, 1):
        if i % 20 == 0:
            print(f"(cross-check {i}/{len(others)})", file=sys.stderr, flush=True)
        f = frames_of(p)
        if f is None:
            continue
        judged += 1
        for v in sides.variants:
            if {b.category for b in v.run(f)} & ALERT:
                false_pv[v.name].add(f"{p.parent.name}/{p.name}")
        stretched["other"] += any(f.get(s, ir=True) is not f.get(s) for s in sizes)
        for r in sides.replays:
            r.forget()
    seconds = time.perf_counter() - t0

    def n(label: str, light: str | None = None) -> list[Photo]:
        return [p for p in photos if p.label == label and (light is None or p.light == light)]

    def hits(name: str, group: list[Photo], cats: frozenset[str]) -> int:
        return sum(bool(calls[name][p.path] & cats) for p in group)

    groups = {
        "person day": (n("person", "day"), frozenset({"person"})),
        "person night": (n("person", "night"), frozenset({"person"})),
        "vehicle day": (n("vehicle", "day"), frozenset({"vehicle"})),
        "vehicle IR?": (n("vehicle", "unknown"), frozenset({"vehicle"})),
        "alert P|V": (n("person") + n("vehicle"), ALERT),
        "empty P|V day": (n("empty", "day"), ALERT),
        "empty P|V night": (n("empty", "night"), ALERT),
        "empty any box": (n("empty"), frozenset({"animal", "person", "vehicle"})),
        "animal P|V": (n("animal"), ALERT),
    }
    print(f"{len(photos)} photos of {args.shared / PEOPLE_SET}: "
          + ", ".join(f"{k} {len(g)}" for k, (g, _) in groups.items())
          + f"; the IR stretch applies to {stretched['set']} (greyscale) of them")
    if others:
        print(f"cross-check: {judged} other real photos with no person or vehicle (animals and blanks of "
              f"{args.shared / 'data'}, LILA without MD v5a person/vehicle); the IR stretch applies to "
              f"{stretched['other']}")
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the start; {people_seconds:.0f} s for the set, "
          f"{seconds:.0f} s in all")
    print("alert P|V: person or vehicle photos given any person or vehicle box (what fires an alert); "
          "empty P|V: empty photos given one (a false alert); empty any box: empty photos not marked blank; "
          "IR?: night_ir unknown")
    cols = list(groups) + (["other P|V"] if others else []) + ["person x", "alert x"]
    width = max(len(v.name) for v in sides.variants) + 1
    print(f"{'variant':{width}}" + "".join(f"{c:>{len(c) + 2}}" for c in cols))
    base = sides.variants[0].name
    persons, alerts = n("person"), n("person") + n("vehicle")
    for v in sides.variants:
        cells = [f"{hits(v.name, g, cats)}/{len(g)}" for g, cats in groups.values()]
        if others:
            cells.append(f"{len(false_pv[v.name])}/{judged}")
        cells.append(ratio(hits(v.name, persons, frozenset({"person"})), hits(base, persons, frozenset({"person"}))))
        cells.append(ratio(hits(v.name, alerts, ALERT), hits(base, alerts, ALERT)))
        print(f"{v.name:{width}}" + "".join(f"{c:>{len(h) + 2}}" for c, h in zip(cells, cols, strict=True)))
    print("(person x, alert x: against the offline stage default; every 'x/15' person cell is out of 15 photos, "
          "so one photo is 0.07)")
    if "mdv6" in sides.raw:
        md = next(v.name for v in sides.variants if v.family == "mdv6")
        pairs = [("person", persons, frozenset({"person"})), ("vehicle", n("vehicle"), frozenset({"vehicle"})),
                 ("alert", alerts, ALERT)]
        print("MDv6 / offline: " + "; ".join(
            f"{k} {hits(md, g, c)}/{hits(base, g, c)} = {ratio(hits(md, g, c), hits(base, g, c))}"
            for k, g, c in pairs)
            + f"; false alerts on empties {hits(md, n('empty'), ALERT)} vs {hits(base, n('empty'), ALERT)}"
            + (f", on the other photos {len(false_pv[md])} vs {len(false_pv[base])}" if others else ""))
    for fam, items in misses.items():
        print(f"missed by the {fam} stage default (its raw best score of that category): "
              + (", ".join(items) or "none"))
    if others:
        print("false alerts on the other photos (a person or vehicle box on a photo without either):")
        for v in sides.variants:
            ref = next(d.name for d in sides.variants if d.family == v.family)
            if v.name == ref:
                print(f"  {v.name}: " + (", ".join(sorted(false_pv[v.name])) or "none"))
            elif false_pv[v.name] != false_pv[ref]:
                print(f"  {v.name}, against its default: "
                      + ", ".join([f"+{x}" for x in sorted(false_pv[v.name] - false_pv[ref])]
                                  + [f"-{x}" for x in sorted(false_pv[ref] - false_pv[v.name])]))
    for name, bad in mismatched.items():
        print(f"check: replayed {name} default = the stage with its own detectors on all {len(photos)} photos: "
              + ("yes" if not bad else f"NO, differs on {', '.join(bad)}"))


if __name__ == "__main__":
    main()
