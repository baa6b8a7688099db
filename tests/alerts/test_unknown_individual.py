"""Across rooms: a live camera's photo of an uncatalogued leopard raises "previously unknown individual".

The upload goes through the real one-file ingest and live queue, the whole default pipeline
(detection, species, re-identification on real weights) and the alert rules. Once a person has
confirmed that animal as a new catalogue individual, its next photo is matched to it and raises
nothing. This is the path issue 5 and issue 7 share: the re-id stage's ``extra["reid"]["is_new"]``
read by the alert room.

The animal's true box is stored as a detection beside the detector's own: zamba's YOLOX-tiny does
not fire on the virtual park's rendered leopards at all (scores below 0.02 on these frames, measured
when this test was written), so without it the path would stop at "blank" and test nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pardus.alerts.rules import parse_rules
from pardus.ingest.one import ingest_file
from pardus.live.cameras import add_camera
from pardus.live.queue import LiveWorker, enqueue
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.reid.catalogue import Catalogue
from pardus.reid.simulated import render_animal
from pardus.reid.stage import ReidStage
from pardus.store import open_workspace
from pardus.store.models import Alert, Detection, Observation

RULES = "rules: [{name: unknown-leopard, kind: new-individual}]"


def _proposals(ws, media_id: str) -> list[Observation]:
    key = ReidStage().model_key
    with ws.db.session() as s:
        return list(s.scalars(select(Observation).where(Observation.media_id == media_id,
                                                        Observation.classified_by == key)))


def _upload(ws, photo, seq: int) -> str:
    media_id = ingest_file(ws, photo.jpeg, camera_id="C7", camera_seq=seq, on_created=enqueue).media_id
    x, y, w, h = photo.box
    with ws.db.session() as s:
        s.add(Detection(media_id=media_id, category="animal", score=0.9, x=x, y=y, w=w, h=h,
                        model_name="virtual-park-truth", model_version="1"))
    return media_id


def _new_individual_alerts(ws) -> list[str | None]:
    with ws.db.session() as s:
        return list(s.scalars(select(Alert.media_id).where(Alert.kind == "new-individual")))


@pytest.mark.slow
@pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()), reason="detector weights not installed")
def test_uncatalogued_leopard_alerts_and_the_confirmed_one_does_not(sqlite_settings) -> None:
    from pardus.live.triage import TriageStage
    from pardus.pipeline.stages import default_stages

    ws = open_workspace(sqlite_settings)
    try:
        add_camera(ws, "C7")
        worker = LiveWorker(ws, parse_rules(RULES), stages=default_stages(ws.settings), triage=TriageStage())
        assert any(st.name == "reid" for st in worker.stages)

        m1 = _upload(ws, render_animal("AMUR_X", "left", 41), 1)
        worker.drain()
        props = _proposals(ws, m1)
        assert props, "the species stage named a leopard and the re-id stage wrote a proposal"
        assert props[0].extra["reid"]["is_new"] is True
        assert _new_individual_alerts(ws) == [m1]

        Catalogue(ws).confirm_new(props[0].id, by="ranger test", code="PPO_900", flank="left",
                                  species="Panthera pardus orientalis")

        m2 = _upload(ws, render_animal("AMUR_X", "left", 42), 2)
        worker.drain()
        props2 = _proposals(ws, m2)
        assert props2, "the second photo was matched too"
        reid = props2[0].extra["reid"]
        assert reid["candidates"] and reid["candidates"][0]["code"] == "PPO_900", reid["candidates"][:2]
        assert reid["is_new"] is False
        assert _new_individual_alerts(ws) == [m1], "the catalogued leopard raises no unknown-individual alert"
    finally:
        ws.close()
