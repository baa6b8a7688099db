"""Importing the real public camera-trap photos and videos under ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pardus.ingest.card import import_card
from pardus.store.models import Deployment, ImportItem, Media

FOLDERS = {
    "speciesnet": "speciesnet-test-images/images",
    "lila": "megadetector-lila-test-set/images",
    "camtrapdp": "camtrap-dp-example/example/media",
    "camtrapr": "camtrapR-sample-data/inst/pictures",
    "serengeti": "snapshot-serengeti-d04-sequence/images",
    "snowleopard": "snow-leopard-reid/images",
    "ena24": "zamba-test-assets/ena24_small",
    "videos": "zamba-test-assets/videos",
}


@pytest.fixture(scope="module")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from pardus.config import Settings
    from pardus.store import open_workspace

    ws = open_workspace(Settings(data_dir=tmp_path_factory.mktemp("real") / "data"))
    reports = {dep: import_card(ws, shared_data / rel, dep) for dep, rel in FOLDERS.items()}
    yield ws, reports
    ws.close()


def test_every_real_folder_imports(imported, shared_data: Path) -> None:
    ws, reports = imported
    for dep, rel in FOLDERS.items():
        on_disk = [p for p in (shared_data / rel).rglob("*") if p.is_file() and p.suffix.lower() in
                   {".jpg", ".jpeg", ".mp4", ".avi", ".asf", ".mov"}]
        counts = reports[dep].counts
        stored = counts.get("imported", 0) + counts.get("damaged", 0) + counts.get("duplicate", 0)
        assert stored == len(on_disk), (dep, counts)
        assert not reports[dep].stopped
    with ws.db.session() as s:
        n = s.scalar(select(func.count(Media.id)))
        for m in s.scalars(select(Media)):
            assert ws.blobs.exists(m.sha256)
            assert m.width and m.height, m.file_path
    assert n > 300


def test_broken_file_reported_by_name_and_reason(imported) -> None:
    _, reports = imported
    problems = {p: (status, why) for p, status, why in reports["speciesnet"].problems}
    assert set(problems) == {"african_elephants_truncated_file.jpg"}
    status, why = problems["african_elephants_truncated_file.jpg"]
    assert status == "damaged" and "truncated" in why


def test_second_import_adds_nothing(imported, shared_data: Path) -> None:
    ws, _ = imported
    with ws.db.session() as s:
        before = s.scalar(select(func.count(Media.id)))
    for dep, rel in FOLDERS.items():
        again = import_card(ws, shared_data / rel, dep)
        assert set(again.counts) <= {"duplicate", "failed", "skipped"}, again.counts
    with ws.db.session() as s:
        assert s.scalar(select(func.count(Media.id))) == before


def test_awkward_images_keep_their_facts(imported) -> None:
    ws, _ = imported
    with ws.db.session() as s:
        by_name = {m.file_name: m for m in s.scalars(select(Media).where(Media.deployment_id == "speciesnet"))}
        rotated = by_name["african_elephants_with_exif_orientation.jpg"]
        assert (rotated.width, rotated.height, rotated.orientation) == (2048, 1536, 6)
        for name in ("african_elephants_cmyk.jpg", "african_elephants_bw.jpg"):
            m = by_name[name]
            assert m.file_issues is None and m.thumbnail_key and ws.derived.exists(m.thumbnail_key)
            assert m.timestamp_source == "file-time" and "no-time" in m.timestamp_issues
        dog = by_name["domestic_dog.jpg"]
        assert (dog.exif_make, dog.exif_model) == ("RECONYX", "PC800 PROFESSIONAL")
        assert dog.exif_datetime_raw == "2017:07:13 12:09:23"
        human = by_name["human.jpg"]
        assert human.exif_make is None and human.exif_model == "E8"


def test_cuddeback_swapped_make_and_model(imported) -> None:
    ws, _ = imported
    with ws.db.session() as s:
        m = s.scalars(select(Media).where(Media.deployment_id == "camtrapr", Media.file_name == "IMG0002.JPG")).first()
        assert (m.exif_make, m.exif_model) == ("CUDDEBACK", "G6.1")


def test_serengeti_bursts_become_sequences(imported) -> None:
    ws, _ = imported
    with ws.db.session() as s:
        media = s.scalars(select(Media).where(Media.deployment_id == "serengeti")).all()
        groups: dict[str, set[str]] = {}
        for m in media:
            groups.setdefault(m.sequence_id, set()).add(m.file_name[-8:-4])
    assert sorted(map(sorted, groups.values())) == [
        ["0020", "0021", "0022"], ["0128", "0129", "0130"], ["0221", "0222", "0223"], ["0275"]
    ]


def test_videos_have_length_and_thumbnail(imported) -> None:
    ws, _ = imported
    with ws.db.session() as s:
        vids = s.scalars(select(Media).where(Media.deployment_id == "videos")).all()
        assert len(vids) == 19
        assert {v.file_mediatype for v in vids} == {"video/mp4", "video/x-msvideo", "video/x-ms-asf"}
        assert all(v.duration_s and v.duration_s > 1 and v.thumbnail_key for v in vids)


def test_import_report_is_kept_in_the_database(imported) -> None:
    ws, reports = imported
    with ws.db.session() as s:
        items = s.scalars(select(ImportItem).where(ImportItem.run_id == reports["speciesnet"].run_id)).all()
        assert len(items) == 10
        assert s.get(Deployment, "speciesnet") is not None
