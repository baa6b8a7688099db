"""Issue 19: hostile files given to the importers. Each either imports correctly or is refused with
a clear message and nothing written; never a traceback (items 5 and 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.megadetector_json import MegaDetectorError, import_megadetector
from pardus.store import Workspace
from pardus.store.models import Detection, Media, StageState

# --- MegaDetector results (item 5) ---------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5))
DETECTIONS = st.fixed_dictionaries(
    {"category": st.one_of(st.sampled_from(["1", "2", "3", "9"]), st.integers(0, 4), ANY_JSON),
     "conf": st.one_of(st.floats(0, 1), NUMBERS, ANY_JSON),
     "bbox": st.one_of(st.lists(st.floats(0, 1), min_size=4, max_size=4), st.lists(NUMBERS, max_size=6), ANY_JSON)},
    optional={"frame_number": st.one_of(st.integers(-3, 100), ANY_JSON), "classifications": ANY_JSON},
)
IMAGES = st.one_of(
    st.fixed_dictionaries(
        {"file": st.one_of(st.text(min_size=1, max_size=40), ANY_JSON),
         "detections": st.one_of(st.none(), st.lists(st.one_of(DETECTIONS, ANY_JSON), max_size=4), ANY_JSON)},
        optional={"failure": st.one_of(st.text(max_size=20), ANY_JSON),
                  "frame_rate": st.one_of(NUMBERS, ANY_JSON)},
    ),
    ANY_JSON,
)
RESULTS = st.fixed_dictionaries(
    {"images": st.lists(IMAGES, max_size=4)},
    optional={"info": st.one_of(st.fixed_dictionaries({"detector": st.one_of(st.text(max_size=20), ANY_JSON)}),
                                ANY_JSON),
              "detection_categories": st.one_of(st.just({"1": "animal", "2": "person"}), ANY_JSON)},
)


def _rows(ws: Workspace) -> tuple[int, int, int]:
    with ws.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0  # type: ignore[return-value]
                     for m in (Media, Detection, StageState))


def _well_formed(doc: dict[str, Any]) -> bool:
    """What a correct importer must accept: the format's own rules, written out independently."""
    def number(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    info = doc.get("info")
    if info is not None and not isinstance(info, dict):
        return False
    det = (info or {}).get("detector")
    if det and not (isinstance(det, str) and det.strip()):
        return False
    cats = doc.get("detection_categories")
    if cats is not None and not (isinstance(cats, dict) and all(isinstance(v, str) and v.strip()
                                                                for v in cats.values())):
        return False
    def clean(v: object) -> bool:
        if isinstance(v, str):
            return "\x00" not in v
        if isinstance(v, dict):
            return all(clean(k) and clean(x) for k, x in v.items())
        if isinstance(v, list):
            return all(clean(x) for x in v)
        return True

    if not clean(doc):
        return False
    for img in doc["images"]:
        if not isinstance(img, dict) or not isinstance(img.get("file"), str) or not img["file"].strip():
            return False
        if img.get("failure") is not None and not isinstance(img["failure"], str):
            return False
        rate = img.get("frame_rate")
        if rate is not None and not (number(rate) and rate > 0):
            return False
        dets = img.get("detections")
        if dets is not None and not isinstance(dets, list):
            return False
        for d in dets or []:
            if not isinstance(d, dict):
                return False
            c = d.get("category")
            if isinstance(c, bool) or not isinstance(c, str | int) or not str(c).strip():
                return False
            if not (number(d.get("conf")) and 0 <= d["conf"] <= 1):
                return False
            b = d.get("bbox")
            if not (isinstance(b, list) and len(b) == 4 and all(number(v) for v in b)):
                return False
            x, y, w, h = b
            if not (-0.01 <= x <= 1.01 and -0.01 <= y <= 1.01 and 0 <= w <= 1.01 and 0 <= h <= 1.01):
                return False
            f = d.get("frame_number", 0)
            if isinstance(f, bool) or not isinstance(f, int) or f < 0:
                return False
    return True


def test_megadetector_entries_property(workspace: Workspace, tmp_path: Path) -> None:
    """Generated results files of every shape: imported whole when well formed, refused whole with
    a MegaDetectorError otherwise; never another exception, never a partial write."""
    with workspace.db.session() as s:
        upsert_deployment(s, DeploymentSpec(id="H1"))
    path = tmp_path / "md.json"

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(RESULTS)
    def check(doc: dict[str, Any]) -> None:
        path.write_text(json.dumps(doc))
        before = _rows(workspace)
        good = _well_formed(doc)
        try:
            rep = import_megadetector(workspace, path, deployment_id="H1")
        except MegaDetectorError as exc:
            assert not good, f"a well-formed file was refused: {exc}"
            assert "Traceback" not in str(exc) and " object at 0x" not in str(exc)
            assert _rows(workspace) == before, "a refused file left rows behind"
            return
        assert good, "a malformed file was imported"
        assert rep.images == len(doc["images"])
        assert rep.detections == sum(len(i.get("detections") or []) for i in doc["images"])

    check()


@pytest.mark.parametrize("text", ["NaN", "-Infinity", "Infinity"])
def test_megadetector_refuses_json_constants(workspace: Workspace, tmp_path: Path, text: str) -> None:
    path = tmp_path / "md.json"
    box = '{"category": "1", "conf": 0.5, "bbox": [0, 0, ' + text + ", 0.1]}"
    path.write_text('{"images": [{"file": "a.jpg", "detections": [' + box + "]}]}")
    with pytest.raises(MegaDetectorError, match="is not a number JSON allows"):
        import_megadetector(workspace, path)
