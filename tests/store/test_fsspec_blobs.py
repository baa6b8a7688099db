"""Issue 21: the blob store through fsspec, so a cluster's workers read originals from a bucket.

fsspec's own in-memory filesystem stands in for S3 here (no object store runs on this machine);
the code path is the one s3fs takes (``url_to_fs``, ``pipe_file``, ``put_file``, ``cat_file``).
A card is imported into it, read back byte for byte, and its photos decoded from the local cache.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.config import Settings
from pardus.ingest.card import import_card
from pardus.ingest.synthetic import camera_jpeg
from pardus.store import open_workspace
from pardus.store.blobs import BlobStore, FsspecBlobStore, open_blob_store, sha256_bytes
from pardus.store.models import Media


def test_fsspec_store_keeps_blobs_by_content_and_never_changes_them(tmp_path: Path) -> None:
    url = f"memory://pardus-{uuid.uuid4().hex}/blobs"
    store = open_blob_store(url, tmp_path / "cache")
    assert isinstance(store, FsspecBlobStore)
    data = camera_jpeg(datetime(2024, 5, 2, 3, 0, 0), size=(160, 120), seed=1)
    key = store.put_bytes(data)
    assert key == sha256_bytes(data) and store.exists(key) and store.get_bytes(key) == data
    assert store.put_bytes(data) == key, "idempotent"
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * 3_000_000)
    key2, size = store.put_file(src)
    assert size == 3_000_000 and store.verify(key2) and sorted(store.keys()) == sorted([key, key2])
    local = store.path(key)  # a decoder's file: a cached copy, identical
    assert local.read_bytes() == data and local.is_relative_to(tmp_path / "cache")
    with pytest.raises(ValueError, match="not a blob key"):
        store.get_bytes("../../etc/passwd")
    assert isinstance(open_blob_store(f"file://{tmp_path / 'plain'}", tmp_path / "c2"), BlobStore)
    with pytest.raises(ValueError, match="cannot open the blob store"):
        open_blob_store("nosuchprotocol://bucket/x", tmp_path / "c3")


def test_a_card_imported_into_an_fsspec_store_reads_back_byte_for_byte(tmp_path: Path) -> None:
    card = tmp_path / "card" / "DCIM"
    card.mkdir(parents=True)
    originals = {}
    for i in range(3):
        data = camera_jpeg(datetime(2024, 5, 2, 3, i * 2, 0), size=(320, 240), seed=i)
        (card / f"IMG_{i:04d}.JPG").write_bytes(data)
        originals[f"IMG_{i:04d}.JPG"] = data
    settings = Settings(data_dir=tmp_path / "data", blob_url=f"memory://pardus-{uuid.uuid4().hex}/blobs")
    with open_workspace(settings) as ws:
        assert isinstance(ws.blobs, FsspecBlobStore)
        import_card(ws, tmp_path / "card", "FS1")
        with ws.db.session() as s:
            media = list(s.scalars(select(Media)))
        assert len(media) == 3
        for m in media:
            assert ws.blobs.get_bytes(m.sha256) == originals[m.file_name]
        assert not any((tmp_path / "data" / "blobs").glob("??/??/*")), "nothing kept in the local blob folder"


def test_a_new_data_folder_is_private_to_its_account(tmp_path: Path) -> None:
    """Issue 19 item 6: the data folder, database and blobs were created world-readable (755/644)."""
    settings = Settings(data_dir=tmp_path / "new" / "data", blob_url=str(tmp_path / "elsewhere" / "blobs"))
    with open_workspace(settings) as ws:
        assert (settings.data_dir.stat().st_mode & 0o777) == 0o700
        assert (ws.blobs.root.stat().st_mode & 0o777) == 0o700
