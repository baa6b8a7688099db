"""Issue 20 step 3: a Timelapse export Timelapse can take (one row per observation, unique keys across
cards, the template beside it) and the people's edits back as human observations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pardus.interop.timelapse import (
    COLUMNS,
    TimelapseError,
    export_timelapse,
    import_timelapse,
    read_timelapse,
    template_path,
)
from pardus.store.models import Media, Observation

from .conftest import Season


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _human(ws) -> int:
    with ws.db.session() as s:
        return s.scalar(select(func.count()).select_from(Observation).where(
            Observation.classification_method == "human", Observation.superseded_by.is_(None)))  # fmt: skip


def test_export_edit_one_label_import_gives_one_new_human_observation(reviewed_season: Season, tmp_path: Path) -> None:
    ws = reviewed_season.ws
    out = tmp_path / "review.csv"
    n = export_timelapse(ws, out)
    rows = _rows(out)
    assert n == len(rows) and list(rows[0]) == COLUMNS
    with ws.db.session() as s:
        n_media = s.scalar(select(func.count()).select_from(Media))
    keys = {(r["RelativePath"], r["File"]) for r in rows}
    assert len(keys) == n_media, "RelativePath + File is unique per photo across cards"
    assert not any("|" in r["Species"] for r in rows) and len(rows) >= n_media
    template = json.loads(template_path(out).read_text())
    labels = {f["DataLabel"] for f in template["fields"]}
    assert labels == set(COLUMNS) - {"File", "RelativePath", "DateTime", "DeleteFlag"}, "every column is a field"
    species = next(f for f in template["fields"] if f["DataLabel"] == "Species")["List"]
    assert "Panthera pardus orientalis" in species

    before = _human(ws)
    again = import_timelapse(ws, out)  # nothing edited: nothing new
    assert (again.added, again.unmatched) == (0, []) and again.unchanged > 0 and _human(ws) == before
    deer = next(i for i, r in enumerate(rows) if r["Species"] == "Cervus nippon" and r["Individual"] == "")
    rows[deer] = {**rows[deer], "Species": "Capreolus pygargus", "ClassifiedBy": "O. Ivanova"}
    _write(out, rows)
    rep = import_timelapse(ws, out, reviewer="O. Ivanova")
    assert (rep.added, rep.superseded) == (1, 1)
    assert _human(ws) == before  # one new, the corrected one set aside
    with ws.db.session() as s:
        # the season fixture is shared: other tests' reviewers may have labelled this photo too
        new = s.scalars(select(Observation).where(Observation.classified_by == "O. Ivanova",
                                                  Observation.superseded_by.is_(None),
                                                  Observation.scientific_name == "Capreolus pygargus")
                        .order_by(Observation.classification_timestamp.desc())).first()
        assert new is not None
        assert new.scientific_name == "Capreolus pygargus" and new.classification_method == "human"
        assert new.media_id == s.scalar(select(Media.id).where(Media.sha256 == rows[deer]["MediaHash"]))
    assert import_timelapse(ws, out, reviewer="O. Ivanova").added == 0  # twice: nothing more
    # teaching still reads the export
    labels_read, deleted = read_timelapse(out)
    assert deleted == 0 and any(lab.species == "Capreolus pygargus" for lab in labels_read)


def test_photos_found_by_path_or_content_and_bad_rows_refused(reviewed_season: Season, tmp_path: Path) -> None:
    ws = reviewed_season.ws
    out = tmp_path / "review.csv"
    export_timelapse(ws, out)
    rows = _rows(out)
    # no hash: found by '<deployment>\path' alone
    blank = next(i for i, r in enumerate(rows) if r["ObservationType"] == "blank")
    by_path = [{**rows[blank], "MediaHash": "", "ObservationID": "", "ObservationType": "animal",
                "Species": "Sus scrofa", "Count": "2"}]  # fmt: skip
    _write(tmp_path / "path.csv", by_path)
    assert import_timelapse(ws, tmp_path / "path.csv").added == 1
    # that photo now has two observations: two rows, never '|'-joined
    export_timelapse(ws, tmp_path / "again.csv")
    twice = [r for r in _rows(tmp_path / "again.csv") if r["MediaHash"] == rows[blank]["MediaHash"]]
    assert sorted(r["Species"] for r in twice) == ["", "Sus scrofa"]
    # moved folders: found by content under the image root
    moved = [{**by_path[0], "RelativePath": "somewhere\\else", "Species": "Meles leucurus", "Count": "1"}]
    _write(tmp_path / "moved.csv", moved)
    with pytest.raises(TimelapseError, match="--image-root"):
        import_timelapse(ws, tmp_path / "moved.csv")
    card = reviewed_season.folder / "cards"
    rel = rows[blank]["RelativePath"].replace("\\", "/")
    target = tmp_path / "root" / "somewhere" / "else" / rows[blank]["File"]
    target.parent.mkdir(parents=True)
    target.write_bytes((card / rel / rows[blank]["File"]).read_bytes())
    assert import_timelapse(ws, tmp_path / "moved.csv", image_root=tmp_path / "root").added == 1
    before = _human(ws)
    for change, msg in (({"Count": "two"}, "Count"), ({"Sex": "M"}, "Sex"), ({"ObservationType": "cat"}, "Observ"),
                        ({"Individual": "NOPE_1"}, "no individual")):
        bad = [{**by_path[0], "Species": "Ursus thibetanus", **change}]
        _write(tmp_path / "bad.csv", bad)
        with pytest.raises(TimelapseError, match=msg):
            import_timelapse(ws, tmp_path / "bad.csv")
    assert _human(ws) == before, "a refused file writes nothing"


_cell = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_cell, min_size=0, max_size=len(COLUMNS) + 2), max_size=6), st.booleans())
def test_hostile_csvs_are_refused_or_read_never_crash(reviewed_season: Season, tmp_path: Path,
                                                      rows: list[list[str]], header: bool) -> None:
    path = tmp_path / "hostile.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(COLUMNS)
        w.writerows(rows)
    before = _human(reviewed_season.ws)
    try:
        rep = import_timelapse(reviewed_season.ws, path)
    except TimelapseError as exc:
        assert str(exc)
        assert _human(reviewed_season.ws) == before
    else:
        assert rep.added == 0  # random text names no stored photo, so nothing is added
