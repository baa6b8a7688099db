"""Bad cards: unsafe paths, empty and fake files, zips, and a full disk. The rest always goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pardus.ingest.card import CardError, import_card
from pardus.ingest.synthetic import camera_jpeg, write_card
from pardus.store import open_workspace
from pardus.store.models import Media

T0 = datetime(2024, 6, 1, 21, 0, 0)


def test_zip_card_with_every_kind_of_bad_entry(workspace, tmp_path: Path) -> None:
    good = camera_jpeg(T0, seed=1)
    card = tmp_path / "card.zip"
    with zipfile.ZipFile(card, "w") as z:
        z.writestr("DCIM/100RECNX/IMG_0001.JPG", good)
        z.writestr("DCIM/100RECNX/IMG_0002.JPG", camera_jpeg(T0, seed=2))
        z.writestr("../../outside.jpg", camera_jpeg(T0, seed=3))
        z.writestr("/etc/abs.jpg", camera_jpeg(T0, seed=4))
        z.writestr("DCIM/100RECNX/EMPTY.JPG", b"")
        z.writestr("DCIM/100RECNX/FAKE.JPG", b"<html><body>404 not found</body></html>")
        z.writestr("DCIM/100RECNX/CUT.JPG", good[: len(good) // 2])
        z.writestr("DCIM/100RECNX/COPY.JPG", good)
        z.writestr("DCIM/notes.txt", b"battery low")
        z.writestr("__MACOSX/DCIM/._IMG_0001.JPG", b"\x00\x05\x16\x07")
    rep = import_card(workspace, card, "Z1")
    status = {p: (st, why) for p, st, why in rep.problems}
    assert status["../../outside.jpg"][0] == "failed" and "leave the card" in status["../../outside.jpg"][1]
    assert status["/etc/abs.jpg"][0] == "failed"
    assert status["DCIM/100RECNX/EMPTY.JPG"] == ("failed", "empty file (0 bytes): the camera or the copy failed")
    assert status["DCIM/100RECNX/FAKE.JPG"][0] == "failed" and "HTML" in status["DCIM/100RECNX/FAKE.JPG"][1]
    assert status["DCIM/100RECNX/CUT.JPG"][0] == "damaged"
    assert status["DCIM/notes.txt"][0] == "skipped"
    assert rep.counts == {"imported": 2, "damaged": 1, "duplicate": 1, "failed": 4, "skipped": 2}
    with workspace.db.session() as s:
        assert s.scalar(select(func.count(Media.id))) == 3
    assert not (tmp_path / "outside.jpg").exists()


def test_link_out_of_the_card_is_not_followed(sqlite_settings, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(camera_jpeg(T0, seed=9))
    card = tmp_path / "card"
    write_card(card, 2, T0, size=(160, 120))
    (card / "DCIM" / "100RECNX" / "LINK.JPG").symlink_to(secret)
    ws = open_workspace(sqlite_settings)
    rep = import_card(ws, card, "S1")
    assert rep.counts["imported"] == 2
    assert [p for p, st, _ in rep.problems if st == "failed"] == ["DCIM/100RECNX/LINK.JPG"]
    ws.close()


def test_missing_card_says_what_to_give(sqlite_settings, tmp_path: Path) -> None:
    ws = open_workspace(sqlite_settings)
    with pytest.raises(CardError, match="does not exist"):
        import_card(ws, tmp_path / "nope", "X")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(CardError, match="not a .zip"):
        import_card(ws, tmp_path / "file.jpg", "X")
    ws.close()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def test_full_disk_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    mnt = tmp_path / "small-disk"
    if os.geteuid() != 0 or not _mount_tmpfs(mnt, "2m"):
        pytest.skip("needs root to mount a small tmpfs as a full disk")
    try:
        card = tmp_path / "card"
        write_card(card, 40, T0, size=(800, 600))
        env = {**os.environ, "PARDUS_DATA_DIR": str(mnt / "data")}
        cmd = [sys.executable, "-m", "pardus", "import-card", str(card), "--deployment", "F1"]
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 2, first.stdout + first.stderr
        assert "is full" in first.stdout and "run the same command again" in first.stdout
        assert not list((mnt / "data" / "blobs" / ".tmp").iterdir()), "no half-written file may stay"
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        from pardus.config import Settings

        ws = open_workspace(Settings(data_dir=mnt / "data"))
        with ws.db.session() as s:
            shas = s.scalars(select(Media.sha256)).all()
        assert len(shas) == 40 == len(set(shas))
        assert all(ws.blobs.verify(k) for k in shas)
        ws.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _declare_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header (SOF0) saying another size: what an image bomb looks like."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[: i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[i + 9:]


def test_item3_image_bomb_headers_are_refused_by_name_and_the_card_goes_on(workspace, tmp_path: Path) -> None:
    """Issue 19, item 3: a header of more than ~179 megapixels used to raise DecompressionBombError and
    block the card for ever; 12000 x 12000 was accepted. Both are refused before decoding; a rerun is calm."""
    card = tmp_path / "card" / "DCIM" / "100MEDIA"
    card.mkdir(parents=True)
    (card / "IMG_0001.JPG").write_bytes(camera_jpeg(T0, seed=1))
    (card / "IMG_0002.JPG").write_bytes(_declare_size(camera_jpeg(T0, seed=2), 12000, 12000))
    (card / "IMG_0003.JPG").write_bytes(_declare_size(camera_jpeg(T0, seed=3), 20000, 20000))
    (card / "IMG_0004.JPG").write_bytes(camera_jpeg(T0, seed=4))
    rep = import_card(workspace, tmp_path / "card", "B1")
    why = {p: (st, msg) for p, st, msg in rep.problems}
    for name in ("IMG_0002.JPG", "IMG_0003.JPG"):
        status, msg = why[f"DCIM/100MEDIA/{name}"]
        assert status in ("failed", "damaged") and ("megapixels" in msg or "decompression bomb" in msg.lower()), msg
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Media)) == 2
    again = import_card(workspace, tmp_path / "card", "B1")
    assert again.counts.get("imported", 0) == 0


def test_item3_zip_member_of_gigabytes_is_refused_not_read(workspace, tmp_path: Path, monkeypatch) -> None:
    """Issue 19, item 3: a zip card holding a 3 GB deflated entry was read whole into memory."""
    from pardus.ingest import card as card_mod

    monkeypatch.setattr(card_mod, "MAX_IN_MEMORY", 1 << 20)  # the same rule, at a size a test can afford
    card = tmp_path / "card.zip"
    with zipfile.ZipFile(card, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("DCIM/100MEDIA/IMG_0001.JPG", camera_jpeg(T0, seed=1))
        z.writestr("DCIM/100MEDIA/MOV_0002.MP4", b"\x00" * (3 << 20))
    rep = import_card(workspace, card, "Z2")
    why = {p: (st, msg) for p, st, msg in rep.problems}
    status, msg = why["DCIM/100MEDIA/MOV_0002.MP4"]
    assert status == "failed" and "unzip the card" in msg
    assert rep.counts.get("imported") == 1
