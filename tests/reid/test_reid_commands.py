"""`pardus reid` and `pardus individuals` as an ecologist uses them, on the embedded database."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from pardus.cli import app
from pardus.config import get_settings
from pardus.reid.match import Calibration
from pardus.reid.stage import save_calibration
from pardus.store import Workspace, open_workspace
from pardus.store.models import Observation

runner = CliRunner()
Card = tuple[Path, dict[str, tuple[float, float, float, float]]]


@pytest.fixture
def env(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI data folder, with the person the decisions are recorded for."""
    monkeypatch.setenv("PARDUS_USER", "ranger Olga")
    return env


def _proposals(ws: Workspace) -> dict[str, str]:
    """file name -> undecided proposal id"""
    from pardus.store.models import Media

    with ws.db.session() as s:
        rows = s.execute(select(Observation.id, Media.file_name, Observation.extra)
                         .join(Media, Media.id == Observation.media_id)
                         .where(Observation.classification_method == "machine")).all()
    return {name: oid for oid, name, extra in rows if not extra["reid"].get("decision")}


def as_current_detector(ws: Workspace) -> None:
    """Stamp the card's true boxes as the current detect stage's (`pardus reid run` matches only the
    boxes of the detector `pardus process` runs now)."""
    from pardus.pipeline.stages import current_detector_key
    from pardus.store.models import Detection

    key = current_detector_key()
    if key is None:
        return
    with ws.db.session() as s:
        for det in s.scalars(select(Detection)):
            det.extra = {**(det.extra or {}), "stage": key}


def invoke(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())  # the console wraps long lines


def test_reid_from_first_photo_to_merge_and_split(env: Path, card: Card,
                                                  load_card: Callable[[Workspace, Card], dict[str, str]]) -> None:
    ws = open_workspace(get_settings())
    load_card(ws, card)
    as_current_detector(ws)
    # the park's own calibration (see test_catalogue): 50 % at a score of 1
    save_calibration(ws, Calibration(slope=4.0, intercept=-4.0 * math.log(2.0), new_threshold=0.5, source="park"))
    out = invoke("reid", "run")
    # nothing is catalogued yet, and the card is one burst (a minute apart): one encounter, one "new"
    assert "5 photos matched" in out and "1 probably new" in out
    props = _proposals(ws)
    leo = "Panthera pardus orientalis"
    invoke("reid", "new", props["IMG_0001.JPG"][:8], "--code", "SC_026", "--name", "Berry", "--flank", "left",
           "--species", leo, "--sex", "female")
    invoke("reid", "new", props["IMG_0002.JPG"][:8], "--code", "SC_031", "--flank", "left", "--species", leo)
    out = invoke("reid", "run", "--rematch")
    assert "Matching 3 undecided photos again" in out
    props = _proposals(ws)
    with ws.db.session() as s:
        again = s.get(Observation, props["IMG_0003.JPG"])
        assert again is not None and again.extra["reid"]["candidates"][0]["code"] == "SC_026"

    sheets = env / "sheets"
    out = invoke("reid", "review", "--out", str(sheets))
    assert "SC_026" in out and "probably NEW" in out  # photo 3 is Berry, photo 5 an animal never seen
    sheet = cv2.imread(str(sheets / f"{props['IMG_0003.JPG'][:8]}.jpg"))
    assert sheet is not None and sheet.shape[0] > 300 and sheet.shape[1] > 500

    invoke("reid", "confirm", props["IMG_0003.JPG"][:8], "SC_026", "--flank", "left")
    invoke("reid", "reject", props["IMG_0004.JPG"][:8], "SC_026", "--reason", "different spots")
    out = invoke("individuals", "list")
    assert "SC_026" in out and "Berry" in out and "2 (2/0/0)" in out
    # the card is one burst: calibration leaves out the whole encounter, so no photo has a known
    # match left, and it says so instead of reporting flattering numbers
    res = runner.invoke(app, ["reid", "calibrate"])
    assert res.exit_code == 1 and "at least two encounters" in " ".join(res.output.split()), res.output
    from pardus.store.models import Media

    with ws.db.session() as s:  # the same photos as separate visits
        for m in s.scalars(select(Media)):
            m.sequence_id = f"visit-{m.file_name}"
    out = invoke("reid", "calibrate")
    assert "Calibrated on 5 test matches from catalogue (3 photos, 3 encounters, bursts left out)" in out
    assert "recall" in out

    invoke("individuals", "merge", "SC_026", "SC_031", "--reason", "test")
    out = invoke("individuals", "show", "SC_031")
    assert "SC_031 was merged into SC_026" in out and "merged-into" in out and "merge" in out
    with ws.db.session() as s:
        berry3 = s.scalars(select(Observation.id).where(Observation.classification_method == "human",
                                                        Observation.media_id == again.media_id)).one()
    invoke("individuals", "split", "SC_026", berry3, "--new-code", "SC_040")
    out = invoke("individuals", "show", "SC_040")
    assert "split_from_code=SC_026" in out
    res = runner.invoke(app, ["individuals", "merge", "SC_026", "SC_999"])
    assert res.exit_code == 1 and "no individual with code 'SC_999'" in res.output
    ws.close()
