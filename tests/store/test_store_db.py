"""The store on both backends: migrations, time handling, uniqueness, and the blob store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from pardus.store import open_workspace
from pardus.store.blobs import BlobStore, sha256_bytes
from pardus.store.db import current_revision, head_revision
from pardus.store.models import Base, Deployment, Individual, IndividualEvent, Location, Media


def test_migrations_create_every_table(workspace) -> None:
    tables = set(inspect(workspace.db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert current_revision(workspace.db.engine) == head_revision()


def test_reopening_does_not_migrate_again(settings) -> None:
    ws = open_workspace(settings)
    with ws.db.session() as s:
        s.add(Location(id="L1", latitude=43.1, longitude=131.3, sensitive=True))
    ws.close()
    ws = open_workspace(settings)
    with ws.db.session() as s:
        loc = s.get(Location, "L1")
        assert loc is not None and loc.sensitive
    ws.close()


def test_instants_come_back_in_utc_on_every_backend(workspace) -> None:
    vladivostok = timezone(timedelta(hours=10))
    start = datetime(2024, 5, 1, 10, 0, tzinfo=vladivostok)
    with workspace.db.session() as s:
        s.add(Deployment(id="D1", start=start))
    with workspace.db.session() as s:
        dep = s.get(Deployment, "D1")
        assert dep.start == start
        assert dep.start.tzinfo is not None and dep.start.utcoffset() == timedelta(0)
        assert dep.start.hour == 0


def test_naive_instants_are_refused(workspace) -> None:
    with pytest.raises(Exception, match="naive datetime"), workspace.db.session() as s:
        s.add(Deployment(id="D2", start=datetime(2024, 5, 1)))
        s.flush()


def test_same_bytes_cannot_be_two_media(workspace) -> None:
    with workspace.db.session() as s:
        s.add(Deployment(id="D1"))
        s.add(Media(deployment_id="D1", sha256="ab" * 32, file_path="a.jpg", file_mediatype="image/jpeg"))
    with pytest.raises(IntegrityError), workspace.db.session() as s:
        s.add(Media(deployment_id="D1", sha256="ab" * 32, file_path="b.jpg", file_mediatype="image/jpeg"))
    with workspace.db.session() as s:
        # Media without bytes (remote files in a Camtrap DP package) may be many.
        s.add(Media(deployment_id="D1", sha256=None, file_path="http://x/1.jpg", file_mediatype="image/jpeg"))
        s.add(Media(deployment_id="D1", sha256=None, file_path="http://x/2.jpg", file_mediatype="image/jpeg"))
    with workspace.db.session() as s:
        assert len(s.scalars(select(Media)).all()) == 3


def test_a_video_past_2_gb_keeps_its_size(workspace) -> None:
    """A long video from a card is 2-4 GB: a 32-bit size column made PostgreSQL refuse the card's commit."""
    from pardus.store.models import ImportItem, ImportRun

    big = 3_221_225_472 + 7  # 3 GiB and a few bytes: past 2**31 and 2**32's neighbours
    with workspace.db.session() as s:
        s.add(Deployment(id="D1"))
        s.add(Media(deployment_id="D1", sha256="cd" * 32, file_path="long.mp4", file_mediatype="video/mp4",
                    file_size=big))
        run = ImportRun(deployment_id="D1", source="card")
        s.add(run)
        s.flush()
        s.add(ImportItem(run_id=run.id, path="long.mp4", size=big, status="imported"))
    with workspace.db.session() as s:
        assert s.scalars(select(Media.file_size)).one() == big
        assert s.scalars(select(ImportItem.size)).one() == big


def test_json_extra_round_trips(workspace) -> None:
    with workspace.db.session() as s:
        s.add(Individual(code="SC_026", name="Berry", scientific_name="Panthera pardus orientalis",
                         extra={"flanks": ["left", "right"], "n": 3}))
        s.add(IndividualEvent(individual_id="SC_026", action="create", details={"by": "test"}))
    with workspace.db.session() as s:
        ind = s.scalars(select(Individual).where(Individual.code == "SC_026")).one()
        assert ind.extra == {"flanks": ["left", "right"], "n": 3}
        assert ind.first_seen is None


def test_blob_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"\xff\xd8 a photo" * 1000
    key = store.put_bytes(data)
    assert key == sha256_bytes(data)
    assert store.put_bytes(data) == key
    assert store.get_bytes(key) == data
    assert store.verify(key)
    assert list(store.keys()) == [key]
    src = tmp_path / "video.mp4"
    src.write_bytes(data * 3)
    k2, size = store.put_file(src)
    assert size == len(data) * 3 and store.verify(k2)
    assert src.read_bytes() == data * 3, "the original must not change"


def test_blob_store_detects_corruption_and_rejects_bad_keys(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    key = store.put_bytes(b"original bytes")
    store.path(key).write_bytes(b"bit rot")
    assert not store.verify(key)
    for bad in ("../../etc/passwd", "ABCDEF0123", "short"):
        with pytest.raises(ValueError):
            store.path(bad)


def test_blob_store_cleans_what_a_crash_left(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    leftover = tmp_path / "blobs" / ".tmp" / "999999999.deadbeef"
    leftover.write_bytes(b"half a photo")
    assert store.clean_tmp() == 1
    assert not leftover.exists()


def test_deployment_time_zone_default_is_vladivostok(workspace) -> None:
    with workspace.db.session() as s:
        s.add(Deployment(id="D3"))
    with workspace.db.session() as s:
        assert s.get(Deployment, "D3").utc_offset_minutes == 600
    assert datetime.now(UTC).tzinfo is UTC
