"""Photos without a camera time are events of their own (issue 16).

ENA24's photos carry no EXIF at all: copied onto a card they all get copy times a moment apart,
and grouping by those made one "burst" of fourteen photos of seven species, which burst smoothing
then gave one name. Each must stay alone, flagged, while photos with a camera time still group.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.ingest.synthetic import camera_jpeg
from pardus.store import Workspace
from pardus.store.models import Media


def test_photos_without_exif_time_are_each_their_own_event(workspace: Workspace, shared_data: Path,
                                                           tmp_path: Path) -> None:
    card = tmp_path / "card" / "DCIM"
    card.mkdir(parents=True)
    ena24 = sorted((shared_data / "zamba-test-assets" / "ena24_small").glob("*.jpg"))
    assert len(ena24) >= 10
    for p in ena24:
        shutil.copy(p, card / p.name)
    # two photos with a camera time a second apart: still one burst
    for i in range(2):
        (card / f"TIMED_{i}.JPG").write_bytes(camera_jpeg(datetime(2024, 5, 2, 3, 0, i), size=(160, 120), seed=i))
    import_card(workspace, tmp_path / "card", "ENA")
    with workspace.db.session() as s:
        media = {m.file_name: m for m in s.scalars(select(Media))}
    untimed = [m for name, m in media.items() if not name.startswith("TIMED")]
    assert len(untimed) == len(ena24)
    assert all(m.timestamp_source == "file-time" for m in untimed)
    assert all("no-time" in (m.timestamp_issues or "") for m in untimed)
    assert len({m.sequence_id for m in untimed}) == len(untimed), "each photo without a camera time alone"
    assert all(m.sequence_id and m.sequence_index == 1 for m in untimed)
    timed = [media["TIMED_0.JPG"], media["TIMED_1.JPG"]]
    assert timed[0].sequence_id == timed[1].sequence_id
    assert timed[0].sequence_id not in {m.sequence_id for m in untimed}
