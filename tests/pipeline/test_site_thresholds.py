"""Animal thresholds per camera site, tuned from reviews, applied by the detect stage."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.ingest.synthetic import write_card
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.pipeline.site_thresholds import (
    KEY,
    save_site_thresholds,
    set_site_threshold,
    site_animal_thresholds,
    site_tunings,
)
from pardus.store import Workspace
from pardus.store.models import Deployment, Detection, Location, Media, Observation, utcnow

DET = "detector@test"


def _site(ws: Workspace, tmp_path: Path, loc: str, n: int, seed: int) -> list[str]:
    with ws.db.session() as s:
        s.add(Location(id=loc))
        s.add(Deployment(id=f"D-{loc}", location_id=loc))
    write_card(tmp_path / loc, n, datetime(2024, 6, 1, 12, 0), burst=1, size=(64, 48), seed=seed)
    import_card(ws, tmp_path / loc, f"D-{loc}")
    with ws.db.session() as s:
        return list(s.scalars(select(Media.id).where(Media.deployment_id == f"D-{loc}").order_by(Media.file_path)))


def _result(ws: Workspace, mid: str, score: float | None, reviewed: str | None) -> None:
    """The detector's call (an animal box of ``score``, or blank) and, if given, a person's review."""
    with ws.db.session() as s:
        m = s.get(Media, mid)
        assert m is not None
        if score is not None:
            s.add(Detection(media_id=mid, category="animal", score=score, x=0.1, y=0.1, w=0.2, h=0.2,
                            model_name="detector", model_version="test", extra={"stage": DET}))
        s.add(Observation(deployment_id=m.deployment_id, media_id=mid, observation_level="media",
                          observation_type="animal" if score is not None else "blank",
                          classification_method="machine", classified_by=DET, classification_timestamp=utcnow()))
        if reviewed:
            s.add(Observation(deployment_id=m.deployment_id, media_id=mid, observation_level="media",
                              observation_type=reviewed, classification_method="human", classified_by="ranger",
                              classification_timestamp=utcnow()))


def test_reviews_raise_a_noisy_sites_threshold_without_losing_a_reviewed_animal(workspace: Workspace,
                                                                                  tmp_path: Path) -> None:
    grass = _site(workspace, tmp_path, "GRASS", 24, 1)  # swaying grass: empty photos called animal
    for i, mid in enumerate(grass):
        if i < 14:
            _result(workspace, mid, 0.5 + 0.03 * i, "animal")  # reviewed animals, faintest 0.50
        elif i < 22:
            _result(workspace, mid, 0.2 + 0.01 * i, "blank")  # reviewed empty, boxes 0.34-0.41
        else:
            _result(workspace, mid, 0.3, None)  # not reviewed: says nothing
    trail = _site(workspace, tmp_path, "TRAIL", 22, 2)  # a faint animal was reviewed here
    for i, mid in enumerate(trail):
        _result(workspace, mid, 0.16 if i == 0 else (0.8 if i < 10 else None), "animal" if i < 10 else "blank")
    few = _site(workspace, tmp_path, "FEW", 5, 3)
    for mid in few:
        _result(workspace, mid, 0.9, "animal")

    got = {t.location_id: t for t in site_tunings(workspace, 0.15, detect_key=DET)}
    g = got["GRASS"]
    assert (g.reviewed, g.reviewed_non_blank, g.false_alarms) == (22, 14, 8)
    assert g.lowest_animal_score == pytest.approx(0.5) and g.threshold == pytest.approx(0.45)
    assert g.false_alarms_removed == 8
    t = got["TRAIL"]
    assert t.threshold == 0.15 and t.false_alarms_removed == 0, "0.9 x 0.16 is below the default: kept"
    assert got["FEW"].threshold is None and "not enough reviews" in got["FEW"].why

    assert save_site_thresholds(workspace, list(got.values()), by="test") == 2
    with workspace.db.session() as s:
        assert s.get(Location, "GRASS").extra[KEY]["animal"] == pytest.approx(0.45)
        assert KEY not in (s.get(Location, "FEW").extra or {})
        assert site_animal_thresholds(s, grass[:2] + few[:1]) == {grass[0]: 0.45, grass[1]: 0.45}
    set_site_threshold(workspace, "GRASS", None, by="test")
    with pytest.raises(ValueError, match="between 0 and 1"):
        set_site_threshold(workspace, "GRASS", 1.5, by="test")
    with pytest.raises(KeyError, match="no camera site"):
        set_site_threshold(workspace, "NOWHERE", 0.3, by="test")
    with workspace.db.session() as s:
        assert site_animal_thresholds(s, grass) == {}


@pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()), reason="detector weights not installed")
def test_the_detect_stage_uses_the_sites_threshold(workspace: Workspace, tmp_path: Path) -> None:
    from pardus.pipeline.core import run_stage
    from pardus.pipeline.detect import DetectionStage
    from pardus.simulate import render_frame

    for loc in ("HIGH", "PLAIN"):
        with workspace.db.session() as s:
            s.add(Location(id=loc))
            s.add(Deployment(id=f"D-{loc}", location_id=loc))
    set_site_threshold(workspace, "HIGH", 0.99, by="test")
    for i, loc in enumerate(("HIGH", "PLAIN")):
        card = tmp_path / loc / "DCIM" / "100MEDIA"
        card.mkdir(parents=True)
        (card / "IMG_0001.JPG").write_bytes(render_frame("animal", when=datetime(2024, 7, 1, 12, 0), seed=3))
        # the same picture, one trailing byte apart: two files (the store keeps one copy of equal bytes)
        (card / "IMG_0001.JPG").write_bytes((card / "IMG_0001.JPG").read_bytes() + bytes([i]))
        import_card(workspace, tmp_path / loc, f"D-{loc}")
    run = run_stage(workspace, DetectionStage(workers=0))
    assert (run.done, run.failed) == (2, 0), run.errors
    with workspace.db.session() as s:
        calls = {dep: (kind, extra) for dep, kind, extra in s.execute(
            select(Observation.deployment_id, Observation.observation_type, Observation.extra)
            .where(Observation.classification_method == "machine"))}
    assert calls["D-PLAIN"] == ("animal", {}), "the same picture at a site on the default finds the animal"
    assert calls["D-HIGH"] == ("blank", {"site_animal_threshold": 0.99})


def test_detect_thresholds_cli(env: Path) -> None:
    from typer.testing import CliRunner

    from pardus.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["detect", "thresholds"])
    assert out.exit_code == 0 and "No reviewed photos" in out.output
    out = runner.invoke(app, ["detect", "set-threshold", "S01", "high"])
    assert out.exit_code == 1 and "not a number" in out.output
    out = runner.invoke(app, ["detect", "set-threshold", "S01", "0.3"])
    assert out.exit_code == 1 and "no camera site" in out.output
