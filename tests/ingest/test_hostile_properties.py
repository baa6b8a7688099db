"""Hostile input thrown at the file parsers (issue 19, "property-based tests at every parser"):
EXIF and JPEG headers, the GPS stripping of copies, and zip cards. Whatever hypothesis makes,
the answer is a clear error or a correct result, never a traceback, and nothing half-written."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import struct
import zipfile
from datetime import datetime
from pathlib import Path

import exifread
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select

from pardus.ingest.card import CardError, import_card
from pardus.ingest.exif import CameraMetadata, read_camera_metadata, without_gps
from pardus.ingest.probe import NotMediaError, Probe, probe_image
from pardus.ingest.synthetic import camera_jpeg
from pardus.store import Workspace
from pardus.store.models import Deployment, ImportItem, ImportRun, Media

SNOW_LEOPARD = "snow-leopard-reid/images/Cat5/02__Station26__Camera2__2012-8-7__9-3-26(6).JPG"  # GPS in EXIF
PEOPLE = "camera-trap-people-vehicles/images/chicago_human-2.jpg"  # GPS too, another camera
OTHERS = ["megadetector-lila-test-set/images/missouri_camera_traps_Set1_1.02-Agouti_SEQ89823_SEQ89823_IMG_0002.JPG",
          "camtrap-dp-example/example/media/20210531082538-RCNX0031.JPG"]
_serial = itertools.count(1)  # hypothesis seeds `random`, so ids come from a counter
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=60)


def _scan_start(data: bytes) -> int:
    """Where the picture begins (the start-of-scan marker), walking the segments of a whole header;
    not the first FF DA in the file, which may be the EXIF thumbnail's."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return i


@pytest.fixture(scope="module")
def heads(shared_data: Path) -> list[bytes]:
    """Real camera photos cut after their header and 4 KB of picture: the parsers only read that far."""
    out = []
    for rel in (SNOW_LEOPARD, PEOPLE, *OTHERS):
        data = (shared_data / rel).read_bytes()
        out.append(data[: _scan_start(data) + 4096])
    return out


def _gps_tags(data: bytes) -> list[str]:
    """The GPS tags two independent readers find: exifread (which hunts for EXIF even behind damaged
    segment markers) and Pillow. A reader that fails on the file finds nothing in it."""
    try:
        tags = [k for k in exifread.process_file(io.BytesIO(data), details=False) if k.startswith("GPS")]
    except Exception:  # noqa: BLE001 - exifread's own IndexError on a two-byte file, and the like
        tags = []
    try:
        with Image.open(io.BytesIO(data)) as img:
            tags += [f"Pillow {k}" for k in img.getexif().get_ifd(0x8825)]
    except Exception:  # noqa: BLE001 - a header Pillow cannot open shows it nothing
        pass
    return tags


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    """``data`` with bytes inside its header replaced, then cut short."""
    header_end = max(3, _scan_start(data))
    buf = bytearray(data)
    for where, value in flips:
        buf[2 + where % (header_end - 2)] = value
    return bytes(buf[: max(2, cut)] if cut is not None else buf)


MUTATION = st.tuples(st.integers(0, 3), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8),
                     st.none() | st.integers(0, 80_000))


@FAST
@given(MUTATION)
def test_exif_and_jpeg_headers_property_clear_answer_never_a_traceback(heads: list[bytes], m) -> None:
    """Cut and damaged headers of real photos: metadata is read or left empty, the picture is probed
    or refused with NotMediaError (a card import records it and goes on)."""
    which, flips, cut = m
    data = _mutate(heads[which], flips, cut)
    meta = read_camera_metadata(data)
    assert isinstance(meta, CameraMetadata)
    for text in (meta.make, meta.model, meta.serial, meta.datetime_raw):
        assert text is None or (isinstance(text, str) and "\x00" not in text)
    assert meta.camera_time is None or isinstance(meta.camera_time, datetime)
    try:
        probe = probe_image(data, 64)
    except NotMediaError as exc:
        assert str(exc) and " object at 0x" not in str(exc)
    else:
        assert isinstance(probe, Probe) and probe.width and probe.height


@FAST
@given(st.binary(max_size=2000),
       st.sampled_from([b"", b"\xff\xd8", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xe1\x00\x40Exif\x00\x00"]))
def test_random_bytes_never_crash_the_header_readers(data: bytes, prefix: bytes) -> None:
    data = prefix + data
    assert isinstance(read_camera_metadata(data), CameraMetadata)
    with contextlib.suppress(NotMediaError):
        probe_image(data, 64)
    out = without_gps(data)
    assert isinstance(out, bytes) and (out == data or out.startswith(b"\xff\xd8"))


def _xmp_with_gps() -> bytes:
    packet = (b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
              b"xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description "
              b"xmlns:exif='http://ns.adobe.com/exif/1.0/' exif:GPSLatitude='43,7.40N' "
              b"exif:GPSLongitude='131,34.07E'/></rdf:RDF></x:xmpmeta>")
    return b"\xff\xe1" + struct.pack(">H", len(packet) + 2) + packet


@FAST
@given(MUTATION, st.booleans(), st.booleans())
@example((0, [], None), False, False)
@example((0, [], None), True, True)
def test_copies_never_carry_a_place_whatever_the_header_holds(heads: list[bytes], m, twice: bool, xmp: bool) -> None:
    """A copy that leaves the store (export, a viewer's download) has no GPS either reader can find,
    however damaged the EXIF is, with a second Exif block or an XMP packet naming the place; the
    picture after the header is kept byte for byte."""
    which, flips, cut = m
    data = heads[which % 2]  # the two real photos that carry GPS
    app1 = data.find(b"\xff\xe1")
    if twice or xmp:  # a second Exif block (a copy of the first) and/or XMP, put after the first block
        length = int.from_bytes(data[app1 + 2:app1 + 4], "big")
        extra = (data[app1:app1 + 2 + length] if twice else b"") + (_xmp_with_gps() if xmp else b"")
        data = data[:app1 + 2 + length] + extra + data[app1 + 2 + length:]
    data = _mutate(data, flips, cut)
    out = without_gps(data)
    assert _gps_tags(out) == []
    if not flips and cut is None:  # whole headers: the place is there before, gone after, all else kept
        assert _gps_tags(data) and len(out) == len(data)
        assert out[_scan_start(data):] == data[_scan_start(data):]
        with Image.open(io.BytesIO(out)) as img, Image.open(io.BytesIO(data)) as before:  # still the same photo
            assert img.size == before.size and img.mode == before.mode
    assert without_gps(out) == out  # nothing left to take


@given(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.sampled_from([b"9999:12:31 23:59:59", b"0000:00:00 00:00:00", b"0001:01:01 00:00:00",
                                  b"2024:02:30 25:61:61", b"2024:13:01 00:00:00", "٢٠٢٤:٠٦:٠١ ٢١:٠٠:٠٠".encode(),
                                  b"2024-06-01T21:00:00+99:99", b"\xff\xfe\x00\x00", b"1" * 39])),
       st.one_of(st.none(), st.binary(max_size=70)),
       st.sampled_from([-720, 0, 840]), st.sampled_from([0.0, -1e9, 1e9]))
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=40)
def test_absurd_exif_dates_and_names_are_imported_or_flagged_never_a_crash(
        workspace: Workspace, tmp_path_factory: pytest.TempPathFactory, when: bytes, make: bytes | None,
        offset: int, clock: float) -> None:
    """A photo whose EXIF time is outside the calendar, in other digits or plain garbage, and whose
    make is any bytes: imported (time read or flagged as missing), on both databases; the zone and
    clock offsets push times past year 9999 or before year 1."""
    img = Image.new("RGB", (32, 24), "grey")
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = when
    buf = io.BytesIO()
    try:
        img.save(buf, "JPEG", exif=exif.tobytes())
    except (struct.error, ValueError):
        return  # Pillow cannot write it, so no camera's file holds it either
    card = tmp_path_factory.mktemp("card")
    (card / "IMG_0001.JPG").write_bytes(buf.getvalue())
    dep = f"D{next(_serial)}"
    with workspace.db.session() as s:
        s.add(Deployment(id=dep, utc_offset_minutes=offset, clock_offset_s=clock))
    report = import_card(workspace, card, dep)
    assert report.counts in ({"imported": 1}, {"duplicate": 1}), report.problems
    with workspace.db.session() as s:
        media = s.scalars(select(Media).where(Media.sha256 == report_sha(workspace, report.run_id))).one()
        assert media.timestamp is None or 1 <= media.timestamp.year <= 9999


def report_sha(ws: Workspace, run_id: str) -> str:
    with ws.db.session() as s:
        return s.scalars(select(ImportItem.sha256).where(ImportItem.run_id == run_id)).one()


# Zip cards -------------------------------------------------------------------------------------

HOSTILE_NAMES = st.one_of(
    st.sampled_from(["DCIM/100RECNX/IMG_0001.JPG", "DCIM/100RECNX/IMG_0002.JPG", "../../outside.jpg", "/etc/abs.jpg",
                     "C:/Windows/evil.jpg", "C:evil.jpg", "DCIM\\..\\..\\up.jpg", "DCIM/./IMG.JPG", "..", ".",
                     "DCIM/ IMG .JPG", "DCIM/IMG\n0003.JPG", "DCIM/IMG\r\n.JPG", "DCIM/\u202eGPJ.exe",
                     "DCIM/Снежный барс.JPG", "DCIM/" + "x" * 300 + ".JPG", "/" * 5 + "x.jpg", "DCIM//IMG.JPG",
                     "DCIM/IMG_0001.JPG/", "~/.ssh/evil.jpg", "DCIM/._IMG_0001.JPG", "DCIM/IMG.jpeg", "DCIM/V.MP4"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30)
    .map(lambda t: t + ".JPG"),
)


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    good = [camera_jpeg(datetime(2024, 6, 1, 21, 0, i), seed=i, size=(96, 64)) for i in range(3)]
    return good + [good[0][: len(good[0]) // 2], good[1][:300], b"", b"<html>not a photo</html>", b"\xff\xd8" * 40]


ENTRIES = st.lists(st.tuples(HOSTILE_NAMES, st.integers(0, 7),
                             st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])), min_size=0, max_size=8)
DAMAGE = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=4)


def _files_outside(root: Path, allowed: set[Path]) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(a) for a in allowed)]


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # zipfile's, on writing the hostile card
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=50)
@given(ENTRIES, DAMAGE, st.booleans())
@example([("DCIM/A.JPG", 0, zipfile.ZIP_STORED), ("DCIM/A.JPG", 1, zipfile.ZIP_STORED),
          ("../../x.jpg", 2, zipfile.ZIP_DEFLATED)], [], False)
def test_zip_cards_property_every_entry_answered_nothing_half_written(
        workspace: Workspace, tmp_path_factory: pytest.TempPathFactory, photos: list[bytes], entries, damage,
        big: bool) -> None:
    """Hostile names ('..', absolute, drive letters, control characters, duplicates, overlong),
    broken photos, a member declaring gigabytes, and bytes of the archive itself damaged (CRC,
    headers, directory, dates): the import refuses the card with a CardError before writing
    anything, or answers every member (imported, duplicate, damaged, failed or skipped) with its
    reason; every stored row has its bytes, no bytes are stored without a row, and nothing is
    written outside the data folder."""
    root = tmp_path_factory.mktemp("zipcard")
    card = root / "card.zip"
    with zipfile.ZipFile(card, "w") as z:
        for name, which, method in entries:
            z.writestr(zipfile.ZipInfo(name, (2024, 6, 1, 21, 0, 0)), photos[which], compress_type=method)
        if big:
            z.writestr("DCIM/HUGE.MP4", b"\x00" * 1024)
    raw = bytearray(card.read_bytes())
    if big:  # declare 3 GB in the directory, as an archive bomb does
        at = raw.rfind(b"DCIM/HUGE.MP4", 0, len(raw)) - 46 + 24
        raw[at:at + 4] = struct.pack("<I", 3 << 30)
    for where, value in damage:
        raw[where % len(raw)] = value
    card.write_bytes(bytes(raw))
    dep = f"Z{next(_serial)}"
    with workspace.db.session() as s:
        media_before = s.scalar(select(func.count()).select_from(Media))
    try:
        report = import_card(workspace, card, dep)
    except CardError as exc:
        assert str(exc) and " object at 0x" not in str(exc)
        with workspace.db.session() as s:  # refused before anything was written
            assert s.get(Deployment, dep) is None
            assert s.scalar(select(func.count()).select_from(Media)) == media_before
            assert s.scalar(select(func.count()).select_from(ImportRun).where(ImportRun.deployment_id == dep)) == 0
        return
    with zipfile.ZipFile(card) as z:
        members = [i for i in z.infolist() if not i.is_dir()]
    assert sum(report.counts.values()) == len(members)
    assert all(reason and " object at 0x" not in reason for _, _, reason in report.problems)
    with workspace.db.session() as s:
        run = s.get(ImportRun, report.run_id)
        assert run is not None and run.status == "finished" and run.counts == report.counts
        assert s.scalar(select(func.count()).select_from(ImportItem).where(ImportItem.run_id == run.id)) == len(members)
        shas = set(s.scalars(select(Media.sha256)))
    blobs = set(workspace.blobs.keys())
    assert shas == blobs, "a row without its bytes, or bytes without a row"
    assert _files_outside(root, {card}) == []
    data_dir = workspace.settings.data_dir
    assert not (data_dir.parent / "outside.jpg").exists() and not Path("/etc/abs.jpg").exists()


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
def test_zip_damage_named_per_file_and_the_card_goes_on(workspace: Workspace, tmp_path: Path) -> None:
    """The cases the property found, named: a bad CRC, an encrypted member, a compression Pardus
    cannot read, a local header naming another file, a date of month 0, a name stored twice, and a
    zip whose directory was cut off."""
    good = [camera_jpeg(datetime(2024, 6, 1, 21, 0, i), seed=i, size=(96, 64)) for i in range(7)]
    card = tmp_path / "card.zip"
    names = ["A_CRC.JPG", "B_LOCKED.JPG", "C_METHOD.JPG", "D_HEADER.JPG", "E_DATE.JPG", "F_TWICE.JPG", "F_TWICE.JPG",
             "G_GOOD.JPG"]
    with zipfile.ZipFile(card, "w") as z:
        for i, name in enumerate(names):
            z.writestr(zipfile.ZipInfo(f"DCIM/{name}", (2024, 6, 1, 21, 0, 0)), good[min(i, 6)])
    raw = bytearray(card.read_bytes())

    def headers(name: str) -> tuple[int, int]:  # (local header, directory entry) of the member
        local = raw.find(f"DCIM/{name}".encode()) - 30
        central = raw.find(f"DCIM/{name}".encode(), raw.find(b"PK\x01\x02")) - 46
        return local, central

    loc, cen = headers("A_CRC.JPG")
    raw[cen + 16] ^= 0xFF
    raw[loc + 14] ^= 0xFF
    loc, cen = headers("B_LOCKED.JPG")
    raw[loc + 6] |= 1
    raw[cen + 8] |= 1
    loc, cen = headers("C_METHOD.JPG")
    raw[loc + 8:loc + 10] = raw[cen + 10:cen + 12] = struct.pack("<H", 99)
    loc, _ = headers("D_HEADER.JPG")
    raw[loc + 30 + 5] = ord("X")
    _, cen = headers("E_DATE.JPG")
    raw[cen + 14:cen + 16] = b"\x00\x00"
    card.write_bytes(bytes(raw))
    report = import_card(workspace, card, "Z1")
    why = {path: (status, reason) for path, status, reason in report.problems}
    assert why["DCIM/A_CRC.JPG"][0] == "failed" and "Bad CRC-32" in why["DCIM/A_CRC.JPG"][1]
    assert "encrypted" in why["DCIM/B_LOCKED.JPG"][1] and "ZipInfo" not in why["DCIM/B_LOCKED.JPG"][1]
    assert "compression Pardus cannot read (method 99)" in why["DCIM/C_METHOD.JPG"][1]
    assert "damaged" in why["DCIM/D_HEADER.JPG"][1]
    assert "more than one file under this name" in why["DCIM/F_TWICE.JPG"][1]
    assert report.counts == {"imported": 3, "failed": 5}  # E (no real date: time from EXIF), F once, G
    cut = tmp_path / "cut.zip"
    cut.write_bytes(card.read_bytes()[: raw.find(b"PK\x01\x02")])
    with pytest.raises(CardError, match="directory at the end is missing"):
        import_card(workspace, cut, "Z2")


def test_a_header_built_to_stall_the_gps_scrubber_is_cleaned_quickly() -> None:
    """65,535-entry IFDs full of GPS pointers, five times over: the copy comes back at once, same
    length, and neither reader finds a GPS block in it (past its work budget the scrubber takes the
    EXIF markers away rather than keep a viewer waiting)."""
    import time

    n = 65535
    ifd = struct.pack("<H", n) + struct.pack("<HHII", 0x8825, 4, 1, 8) * n + struct.pack("<I", 0)
    data = b"\xff\xd8" + (b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd) * 5 + b"\xff\xd9"
    started = time.perf_counter()
    out = without_gps(data)
    assert time.perf_counter() - started < 10
    assert len(out) == len(data) and _gps_tags(out) == []


# COCO Camera Traps ------------------------------------------------------------------------------

EXTREME = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([2**31 - 2, 2**31 - 1, 2**31, 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=12), st.sampled_from(["\x00", "\ud800", "\u202e", "x" * 5000, "9999-12-31 23:59:59",
                                           "0001-01-01 00:00:00", "2024-02-30 25:61:61", "٢٠٢٤-٠٦-٠١ ٢١:٠٠:٠٠"]),
    st.lists(st.integers(), max_size=3), st.recursive(st.none(), lambda c: st.lists(c, max_size=2), max_leaves=40),
)
# First the smallest number each database refuses (hypothesis tries early items of a list most).
PAST_THE_COLUMNS = st.sampled_from([2**31, 2**63, 2**31 - 1, 2**31 - 2, 2**32, 2**63 - 1, 2**70, -(2**63), -1])
# Numbers first: hypothesis tries the early items of a list most, and numbers are where columns end.
IMAGE_FIELDS = ["width", "frame_num", "height", "datetime", "id", "file_name", "seq_id", "location", "extra_field"]
ANN_FIELDS = ["count", "bbox", "bbox_relative", "classification_probability", "id", "image_id", "category_id",
              "sequence_level_annotation", "classified_by", "classification_method"]


@st.composite
def coco_docs(draw: st.DrawFn) -> dict[str, object]:
    """A good file of 1-3 photos of a leopard burst, then one to three of its values made hostile:
    most examples are one bad value away from importing, so both answers are exercised."""
    n = draw(st.integers(1, 3))
    doc: dict[str, list[dict[str, object]]] = {
        "images": [{"id": i, "file_name": f"cam/IMG_{i}.JPG", "width": 640, "height": 480,
                    "datetime": "2024-06-01 21:00:00", "seq_id": "s1", "frame_num": i, "location": "L1"}
                   for i in range(n)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 2, 30, 40], "count": 1,
                         "sequence_level_annotation": False} for i in range(n)],
        "categories": [{"id": 1, "name": "Panthera pardus"}],
    }
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(["images"] * 4 + ["annotations"] * 4 + ["categories"]))
        item = draw(st.sampled_from(doc[section]))
        key = draw(st.sampled_from({"images": IMAGE_FIELDS, "annotations": ANN_FIELDS,
                                    "categories": ["id", "name"]}[section]))
        item[key] = draw(st.one_of(PAST_THE_COLUMNS, EXTREME))
    return doc


def _coco_rows(ws: Workspace) -> tuple[int, ...]:
    from pardus.store.models import Location, Observation, Project

    with ws.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0
                     for m in (Media, Observation, Deployment, Location, Project))


@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=100)
@given(st.one_of(coco_docs().map(lambda d: json.dumps(d).encode()),  # NaN and Infinity as Python writes them
                 st.binary(max_size=200), st.binary(max_size=60).map(lambda b: b'{"images": [' + b)),
       st.sampled_from([-720, 0, 840]))
@example(json.dumps({"images": [{"id": 1, "file_name": "cam/IMG_1.JPG", "width": 640, "height": 480,
                                 "datetime": "9999-12-31 23:59:59"}], "annotations": [],
                     "categories": []}).encode(), -720)
def test_coco_import_property_numbers_past_the_columns_text_no_database_keeps_and_raw_bytes(
        workspace: Workspace, tmp_path_factory: pytest.TempPathFactory, raw: bytes, offset: int) -> None:
    """Numbers past what the store's columns hold (2^31, 2^63, 2^70), NaN and Infinity, NUL and lone
    surrogates, times outside the calendar with a zone pushing them further, deep nesting and bytes
    that are no JSON or no UTF-8: imported whole, or refused whole with a CocoError naming the item
    and nothing written. (tests/interop/test_coco_counts_sequences.py covers well-formed shapes.)"""
    from pardus.interop.coco_ct import CocoError
    from pardus.interop.coco_import import import_coco

    path = tmp_path_factory.mktemp("coco") / "hostile.json"
    path.write_bytes(raw)
    before = _coco_rows(workspace)
    try:
        rep = import_coco(workspace, path, utc_offset_minutes=offset, prefix=f"h{next(_serial)}/")
    except CocoError as exc:
        assert str(exc) and " object at 0x" not in str(exc)
        assert _coco_rows(workspace) == before, "a refused file left rows behind"
        return
    doc = json.loads(raw)
    assert rep.images == len(doc["images"]) and rep.annotations == len(doc.get("annotations", []))
    with workspace.db.session() as s:
        assert all(t is None or 1 <= t.year <= 9999 for t in s.scalars(select(Media.timestamp)))
