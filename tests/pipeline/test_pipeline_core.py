"""The stage runner: results recorded per item, failures kept with their reason, runs resumable."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.ingest.synthetic import camera_jpeg, write_card
from pardus.pipeline.core import ItemResult, pending_media, run_stage
from pardus.pipeline.daynight import DayNightStage
from pardus.store import Workspace
from pardus.store.models import Media, StageState


def _card(tmp_path: Path) -> Path:
    card = tmp_path / "card"
    write_card(card, 6, datetime(2024, 6, 1, 12, 0), size=(320, 240))
    night = card / "DCIM" / "100RECNX"
    for i in range(3):
        (night / f"IR_{i:04d}.JPG").write_bytes(
            camera_jpeg(datetime(2024, 6, 1, 23, 0, i), size=(320, 240), seed=100 + i, mode="L")
        )
    return card


def test_daynight_marks_infrared_frames(workspace: Workspace, tmp_path: Path) -> None:
    import_card(workspace, _card(tmp_path), "P1")
    run = run_stage(workspace, DayNightStage(), batch_size=4)
    assert (run.done, run.failed) == (9, 0)
    with workspace.db.session() as s:
        flags = {m.file_name: m.extra["ir_night"] for m in s.scalars(select(Media))}
    assert flags == {**{f"IMG_{i:04d}.JPG": False for i in range(1, 7)}, **{f"IR_{i:04d}.JPG": True for i in range(3)}}
    again = run_stage(workspace, DayNightStage())
    assert (again.done, again.failed) == (0, 0), "a finished item is not processed twice"


class _Flaky(DayNightStage):
    """The real day/night stage, with one item's thumbnail gone missing and a newer version."""

    model_key = "chroma@2"

    def __init__(self, broken: str, stop_after: int | None = None) -> None:
        self.broken = broken
        self.stop_after = stop_after
        self.seen = 0

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        for res in super().process(ws, media_ids):
            self.seen += 1
            if self.stop_after is not None and self.seen > self.stop_after:
                raise KeyboardInterrupt("operator pressed Ctrl-C")
            if res.media_id == self.broken:
                yield ItemResult(res.media_id, error="thumbnail unreadable")
            else:
                yield res


def test_failures_are_recorded_and_a_stopped_run_resumes(workspace: Workspace, tmp_path: Path) -> None:
    import_card(workspace, _card(tmp_path), "P1")
    with workspace.db.session() as s:
        ids = [m.id for m in s.scalars(select(Media).order_by(Media.file_path))]
    first = _Flaky(ids[0], stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_stage(workspace, first, batch_size=2)
    with workspace.db.session() as s:
        states = s.scalars(select(StageState).where(StageState.model == "chroma@2")).all()
        assert 0 < len(states) < 9
        left = len(pending_media(s, first))
    assert left == 9 - len(states)
    second = run_stage(workspace, _Flaky(ids[0]), batch_size=2)
    assert second.done + second.failed == left
    with workspace.db.session() as s:
        states = {st.media_id: (st.status, st.error) for st in s.scalars(select(StageState))}
    assert len(states) == 9
    assert states[ids[0]] == ("failed", "thumbnail unreadable")
    older = run_stage(workspace, DayNightStage())
    assert older.done == 9, "another model version keeps its own state"
