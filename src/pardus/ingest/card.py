"""Memory-card import: a folder or a .zip of a card, file by file, safe to kill and re-run.

Each file is hashed, its bytes stored in the blob store (atomically), and only then its row
committed. The unique sha256 in the database makes the whole thing idempotent: whatever moment
a crash hits, running the same import again ends with every file stored exactly once.
"""

from __future__ import annotations

import csv
import dataclasses
import lzma
import os
import re
import socket
import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select, update

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no run is ever declared dead (see _lock_free)
    fcntl = None  # type: ignore[assignment]
from sqlalchemy.exc import IntegrityError, OperationalError

from pardus.ingest.deployments import DeploymentError, check_id, create_once
from pardus.ingest.exif import CameraMetadata, read_camera_metadata
from pardus.ingest.one import MAX_FILE_NAME, MAX_FILE_PATH, media_row
from pardus.ingest.probe import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    NotMediaError,
    Probe,
    probe_image,
    probe_video,
)
from pardus.ingest.timefix import refresh_deployment_times
from pardus.store import Workspace
from pardus.store.blobs import DiskFullError, disk_full_message, sha256_bytes
from pardus.store.models import Camera, Deployment, ImportItem, ImportRun, Media, new_id, utcnow

ProgressCallback = Callable[[int, int, str], None]
BATCH_ITEMS = 64
BATCH_SECONDS = 1.5
MAX_IN_MEMORY = 256 << 20
WORKERS = max(1, min(4, os.cpu_count() or 1))
PREFETCH = 2 * WORKERS
MAX_CAMERA_ID = 64  # the store's camera.id


class CardError(Exception):
    """The card as a whole cannot be read (missing folder, unreadable zip); says what to do."""


@dataclass
class CardEntry:
    """One file on a card. ``problem`` is set for entries that must not be read (unsafe paths)."""

    rel_path: str
    size: int
    mtime: datetime | None
    read: Callable[[], bytes]
    local_path: Path | None = None
    problem: str | None = None


@dataclass
class ImportReport:
    run_id: str
    deployment_id: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    created_deployment: bool = False
    stopped: str | None = None
    # Earlier imports of this card into this deployment that were killed before their end; this
    # run finishes what they left (see ``check_import_runs``).
    resumes: list[RunInfo] = field(default_factory=list)

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1

    def recount(self, path: str, old: str, new: str, message: str) -> None:
        """A file counted as ``old`` turned out ``new`` at commit (another run stored it first)."""
        self.counts[old] -= 1
        if not self.counts[old]:
            del self.counts[old]
        self.add(new)
        self.problems = [p for p in self.problems if not (p[0] == path and p[1] == old)]
        if new in ("failed", "skipped", "damaged"):
            self.problems.append((path, new, message))

    def write_csv(self, path: Path) -> Path:
        """The files that need a look, as a sheet a person can open beside the card."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "status", "reason"])
            w.writerows(self.problems)
        return path


@dataclass(frozen=True)
class RunInfo:
    """One card import as ``pardus status`` and a re-run tell it: what, where, since when."""

    run_id: str
    source: str
    deployment_id: str
    started: datetime
    files: int  # files recorded so far (imported, duplicate, failed, skipped, damaged)
    where: str | None = None  # "host (pid n)" of a running import


@dataclass
class ImportRuns:
    """Imports still running (on this machine, or elsewhere as far as can be told), and imports
    killed before their end that no later import of the same card has finished yet."""

    running: list[RunInfo] = field(default_factory=list)
    interrupted: list[RunInfo] = field(default_factory=list)


_RUNNING = "running on "


def _lock_path(ws: Workspace, run_id: str) -> Path:
    return ws.settings.data_dir / "runs" / f"{run_id}.lock"


@contextmanager
def _run_lock(ws: Workspace, run_id: str) -> Iterator[None]:
    """Hold an exclusive lock on ``runs/<run id>.lock`` for as long as the import runs.

    The operating system drops the lock the moment the process dies, even by SIGKILL or a power
    cut, so a run whose lock can be taken is known not to be running: that is how an interrupted
    run is told from a long one without guessing from times. The lock is taken before the run's
    row exists and given up after its end is recorded, so no one ever sees an unlocked live run.
    """
    path = _lock_path(ws, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _lock_free(path: Path) -> bool:
    """True when no live process holds the run's lock (or the lock file is gone)."""
    if fcntl is None:
        return False  # cannot tell: better "running" than a live import called dead
    try:
        f = open(path, "a")  # noqa: SIM115 - closed below; 'a' never truncates a holder's file
    except FileNotFoundError:
        return True
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def check_import_runs(ws: Workspace) -> ImportRuns:
    """Mark imports killed before their end as ``interrupted`` and say which ones still need a re-run.

    A run without an end is alive only while its process holds its lock (``_run_lock``). One that
    does not is recorded as interrupted, with the files it had recorded and when that was noticed,
    instead of staying 'running' for ever. A run started on another machine (PostgreSQL shared by
    several) cannot be checked from here and is listed as running there. Called by every import
    and by ``pardus status``.
    """
    here = socket.gethostname()
    state = ImportRuns()
    with ws.db.session() as s:
        files = dict(s.execute(select(ImportItem.run_id, func.count()).where(
            ImportItem.run_id.in_(select(ImportRun.id).where(ImportRun.status.in_(("running", "interrupted")))))
            .group_by(ImportItem.run_id)).all())  # fmt: skip
        open_runs = list(s.scalars(select(ImportRun).where(ImportRun.finished.is_(None))))
        finished_later = {(src, dep): started for src, dep, started in s.execute(
            select(ImportRun.source, ImportRun.deployment_id, func.max(ImportRun.started))
            .where(ImportRun.status == "finished").group_by(ImportRun.source, ImportRun.deployment_id))}
        for run in open_runs:
            info = RunInfo(run.id, run.source, run.deployment_id, run.started, files.get(run.id, 0))
            where = (run.message or "").removeprefix(_RUNNING) if (run.message or "").startswith(_RUNNING) else None
            host = where.split(" (", 1)[0] if where else here
            if host != here or not _lock_free(_lock_path(ws, run.id)):
                state.running.append(dataclasses.replace(info, where=where))
                continue
            counts = dict(s.execute(select(ImportItem.status, func.count()).where(ImportItem.run_id == run.id)
                                    .group_by(ImportItem.status)).all())  # fmt: skip
            s.execute(update(ImportRun).where(ImportRun.id == run.id, ImportRun.finished.is_(None)).values(
                status="interrupted", finished=utcnow(), counts=counts,
                message=f"interrupted before its end (the process was killed or crashed) with {info.files} "
                        "file(s) recorded; noticed when the lock it held was found free. Importing the same "
                        "card again finishes it"))  # fmt: skip
            _lock_path(ws, run.id).unlink(missing_ok=True)
        for run in s.scalars(select(ImportRun).where(ImportRun.status == "interrupted").order_by(ImportRun.started)):
            done = finished_later.get((run.source, run.deployment_id))
            if done is None or done < run.started:
                state.interrupted.append(
                    RunInfo(run.id, run.source, run.deployment_id, run.started, files.get(run.id, 0)))
    return state


def natural_key(path: str) -> list[object]:
    """Sort like a person reads a card: IMG_2 before IMG_10, folder 100 before folder 101."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path)]


def _unsafe_member(name: str) -> str | None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in p.parts:
        return "the path tries to leave the card (absolute or '..'); skipped for safety"
    return None


@contextmanager
def open_card(source: Path) -> Iterator[list[CardEntry]]:
    """Every file of a card folder or zip, in card order, including the unsafe ones (flagged).

    A context manager because a zip must stay open while its entries are read.
    """
    if not source.exists():
        raise CardError(f"{source} does not exist: give the card folder (the one holding DCIM) or a .zip")
    if source.is_file():
        if not zipfile.is_zipfile(source):
            try:
                with open(source, "rb") as f:
                    cut = f.read(4) == b"PK\x03\x04"
            except OSError as exc:
                raise CardError(f"{source} cannot be read ({exc.strerror}); check its permissions") from exc
            if cut:  # the files' headers are there, the directory at the end is not
                raise CardError(f"{source} starts like a zip but its directory at the end is missing or damaged "
                                "(was the copy cut short?); copy the card again")
            raise CardError(f"{source} is a file but not a .zip archive: give a card folder or a .zip of it")
        try:
            zf = zipfile.ZipFile(source)
        except _ZIP_ERRORS as exc:  # a damaged directory, a name not in the encoding the zip claims, ...
            raise CardError(f"{source} cannot be opened as a zip ({type(exc).__name__}: {str(exc)[:200]}); "
                            "copy the card again") from exc
        with zf:
            yield _zip_entries(zf)
        return
    yield _folder_entries(source)


def _folder_entries(source: Path) -> list[CardEntry]:
    root = source.resolve()
    entries: list[CardEntry] = []
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort(key=natural_key)
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(source).as_posix()
            problem = None
            if full.is_symlink() and not full.resolve().is_relative_to(root):
                problem = f"a link pointing outside the card ({full.resolve()}); skipped for safety"
            try:
                st = full.stat()
            except OSError as exc:
                entries.append(CardEntry(rel, 0, None, bytes, problem=f"cannot be read: {exc.strerror}"))
                continue
            mtime = datetime.fromtimestamp(st.st_mtime)
            entries.append(CardEntry(rel, st.st_size, mtime, full.read_bytes, local_path=full, problem=problem))
    entries.sort(key=lambda e: natural_key(e.rel_path))
    return entries


def _zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    """A member too large to read into memory (an archive bomb declares gigabytes) is refused by name."""
    if info.file_size > MAX_IN_MEMORY:
        return (f"{info.file_size / (1 << 30):.1f} GB inside a zip, more than Pardus reads into memory "
                f"({MAX_IN_MEMORY >> 20} MB); unzip the card and import the folder (large videos are imported "
                "from folders without loading them whole)")
    return _unsafe_member(info.filename)


# What zipfile raises on a damaged or hostile archive: bad CRC, a local header naming another file,
# overlapping entries (BadZipFile), an encrypted member (RuntimeError), a compression method it
# lacks (NotImplementedError), a broken deflate/bzip2/lzma stream (zlib.error, OSError, LZMAError),
# a name not in the encoding the zip claims (UnicodeDecodeError), data ending early (EOFError).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, ValueError, EOFError, zlib.error,
               lzma.LZMAError, struct.error)


def _zip_time(info: zipfile.ZipInfo) -> datetime | None:
    """The member's time, or None when the archive holds no real date (month 0, day 0, hour 31...)."""
    try:
        return datetime(*info.date_time)
    except (ValueError, TypeError):
        return None


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    """Read one member whole; any failure of the archive becomes an OSError naming what is wrong,
    which the import records against that file while the rest of the card goes on."""

    def read() -> bytes:
        try:
            return zf.read(info)  # zipfile stops at the declared size, checked before (_zip_member_problem)
        except NotImplementedError as exc:
            raise OSError(f"the zip stores it with a compression Pardus cannot read (method {info.compress_type}); "
                          "unzip the card and import the folder") from exc
        except RuntimeError as exc:  # zipfile's words for an encrypted member
            raise OSError("the file is encrypted in the zip (password protected); unzip the card with its "
                          "password and import the folder") from exc
        except _ZIP_ERRORS as exc:
            raise OSError(f"the zip's copy of it is damaged ({type(exc).__name__}: {str(exc)[:200]}); copy the "
                          "card again") from exc

    return read


def _zip_entries(zf: zipfile.ZipFile) -> list[CardEntry]:
    infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: natural_key(i.filename))
    times: dict[str, int] = {}
    entries = []
    for info in infos:
        problem = _zip_member_problem(info)
        times[info.filename] = times.get(info.filename, 0) + 1
        if problem is None and times[info.filename] > 1:
            # Unzipping keeps only one of them: which is the card's own file cannot be told.
            problem = ("the zip holds more than one file under this name; only the first was imported. Unzip "
                       "the card and check which is the camera's")
        entries.append(CardEntry(info.filename, info.file_size, _zip_time(info), _zip_reader(zf, info),
                                 problem=problem))
    return entries


def _classify(rel_path: str) -> tuple[str | None, str | None]:
    """('image'|'video', None) for media; (None, reason) for files that are not imported."""
    name = PurePosixPath(rel_path).name
    if len(rel_path) > MAX_FILE_PATH or len(name) > MAX_FILE_NAME:
        return None, (f"the path is {len(rel_path)} characters long (the name {len(name)}); Pardus keeps paths of "
                      f"up to {MAX_FILE_PATH} and names of up to {MAX_FILE_NAME}: rename it and import again")
    if name.startswith("._") or name in {".DS_Store", "Thumbs.db"}:
        return None, "operating-system metadata file, not a photo"
    suffix = PurePosixPath(rel_path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image", None
    if suffix in VIDEO_SUFFIXES:
        return "video", None
    return None, f"not a photo or video ({suffix or 'no extension'}); left on the card, not imported"


def import_card(
    ws: Workspace,
    source: Path,
    deployment_id: str,
    *,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import one card into one deployment; returns the report (also kept in the database)."""
    try:
        check_id(deployment_id)
    except DeploymentError as exc:
        raise CardError(str(exc)) from exc
    with open_card(Path(source)) as entries:
        return _import_entries(ws, Path(source), entries, deployment_id, progress)


def _import_entries(
    ws: Workspace,
    source: Path,
    entries: list[CardEntry],
    deployment_id: str,
    progress: ProgressCallback | None,
) -> ImportReport:
    ws.blobs.clean_tmp()
    earlier = check_import_runs(ws).interrupted
    run_id = new_id()
    with _run_lock(ws, run_id):
        return _run(ws, source, entries, deployment_id, progress, run_id, earlier)


def _run(
    ws: Workspace,
    source: Path,
    entries: list[CardEntry],
    deployment_id: str,
    progress: ProgressCallback | None,
    run_id: str,
    earlier: list[RunInfo],
) -> ImportReport:
    # Two imports into a new deployment at once both find it missing: exactly one creates it.
    created = create_once(ws.db, Deployment, deployment_id, lambda: Deployment(id=deployment_id))
    where = f"{_RUNNING}{socket.gethostname()} (pid {os.getpid()})"
    with ws.db.session() as s:
        dep = s.get(Deployment, deployment_id)
        assert dep is not None, "deployments are never deleted"
        run = ImportRun(id=run_id, source=str(source.resolve()), deployment_id=deployment_id, message=where)
        s.add(run)
        s.flush()
        resumes = [r for r in earlier if (r.source, r.deployment_id) == (run.source, deployment_id)]
        report = ImportReport(run_id=run.id, deployment_id=deployment_id, created_deployment=created, resumes=resumes)
        offset = dep.utc_offset_minutes
        clock = dep.clock_offset_s
    importer = _Importer(ws, report, deployment_id, offset, clock)
    total = len(entries)
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for i, (entry, prep) in enumerate(_prefetch(pool, importer.prepare, entries)):
                importer.one(entry, prep)
                if progress:
                    progress(i + 1, total, entry.rel_path)
        importer.flush()
    except DiskFullError as exc:
        importer.discard_pending()
        report.stopped = str(exc)
        report.problems.append(("(import stopped)", "failed", str(exc)))
    finally:
        importer.session.close()
        try:
            _attach_camera(ws, deployment_id, importer.camera_seen)
            with ws.db.session() as s:
                refresh_deployment_times(s, deployment_id, ws.settings.sequence_gap_seconds)
                run = s.get(ImportRun, report.run_id)
                assert run is not None
                run.finished = utcnow()
                run.status = "stopped" if report.stopped else "finished"
                run.counts = dict(report.counts)
                run.message = report.stopped
        except OperationalError:
            if not report.stopped:
                raise
            # The database itself has no room left; the next run recomputes all of this.
    return report


@dataclass
class _Prepared:
    """What a worker learned about one file before the main thread stores it."""

    kind: str | None = None
    data: bytes | None = None
    sha: str | None = None
    meta: CameraMetadata | None = None
    probe: Probe | None = None
    not_media: str | None = None
    failure: tuple[str, str] | None = None
    large: bool = False


def _prefetch(
    pool: ThreadPoolExecutor, prepare: Callable[[CardEntry], _Prepared], entries: list[CardEntry]
) -> Iterator[tuple[CardEntry, _Prepared]]:
    """Prepare files ahead in the pool, in card order, holding at most PREFETCH files in memory."""
    window: deque[tuple[CardEntry, Future[_Prepared]]] = deque()
    it = iter(entries)
    for entry in it:
        window.append((entry, pool.submit(prepare, entry)))
        if len(window) >= PREFETCH:
            break
    for entry in it:
        done_entry, fut = window.popleft()
        window.append((entry, pool.submit(prepare, entry)))
        yield done_entry, fut.result()
    while window:
        done_entry, fut = window.popleft()
        yield done_entry, fut.result()


class _Importer:
    """Holds the open batch: rows are committed together, after their bytes are safely stored."""

    def __init__(
        self, ws: Workspace, report: ImportReport, deployment_id: str, utc_offset: int, clock: float
    ):
        self.ws = ws
        self.report = report
        self.deployment_id = deployment_id
        self.utc_offset = utc_offset
        self.clock = clock
        self.pending: list[tuple[Media | None, ImportItem]] = []
        self.pending_shas: set[str] = set()
        self.last_commit = time.monotonic()
        self.camera_seen: dict[tuple[str | None, str | None, str | None], int] = {}
        self.session = ws.db.sessionmaker()

    def _item(self, entry: CardEntry, status: str, message: str | None = None, **kw: object) -> ImportItem:
        self.report.add(status)
        if status in ("failed", "skipped", "damaged") and message:
            self.report.problems.append((entry.rel_path, status, message))
        path = entry.rel_path  # the report keeps it whole; the item row as much as its column holds
        return ImportItem(
            run_id=self.report.run_id,
            path=path if len(path) <= MAX_FILE_PATH else path[: MAX_FILE_PATH - 1] + "…",
            # The column is 32-bit: a member declaring gigabytes (refused, its size in the message) must not
            # stop the whole import with PostgreSQL's "integer out of range" at the commit.
            size=entry.size if entry.size < 1 << 31 else None,
            status=status,
            message=message,
            **kw,
        )

    def prepare(self, entry: CardEntry) -> _Prepared:
        """The part of a file's import that needs no database: read, hash, EXIF, decode.

        Runs in worker threads (hashing and JPEG decoding release the GIL), so a card is read
        and checked on both cores while the main thread writes rows.
        """
        if entry.problem:
            return _Prepared(failure=("failed", entry.problem))
        kind, reason = _classify(entry.rel_path)
        if kind is None:
            return _Prepared(failure=("skipped", reason or "not imported"))
        if entry.size == 0:
            return _Prepared(failure=("failed", "empty file (0 bytes): the camera or the copy failed"))
        if entry.size > MAX_IN_MEMORY and entry.local_path is not None:
            return _Prepared(kind=kind, large=True)
        try:
            data = entry.read()
        except OSError as exc:
            return _Prepared(failure=("failed", f"cannot be read from the card: {exc}"))
        prep = _Prepared(kind=kind, data=data, sha=sha256_bytes(data))
        if not self.ws.blobs.exists(prep.sha):
            # Already stored bytes are most likely a re-run: the probe waits until the database
            # says the row is really missing (a crash between blob and row).
            self._probe(prep)
        return prep

    def _probe(self, prep: _Prepared) -> None:
        assert prep.data is not None
        try:
            if prep.kind == "image":
                prep.meta = read_camera_metadata(prep.data)
                prep.probe = probe_image(prep.data, self.ws.settings.thumbnail_size)
            else:
                prep.meta = CameraMetadata()
                prep.probe = probe_video(prep.data, self.ws.settings.thumbnail_size)
        except NotMediaError as exc:
            prep.not_media = str(exc)

    def one(self, entry: CardEntry, prep: _Prepared | None = None) -> None:
        """Finish one file in the main thread: duplicate check, durable bytes, then its row."""
        prep = prep or self.prepare(entry)
        if prep.failure:
            status, message = prep.failure
            self._queue(None, self._item(entry, status, message))
            return
        if prep.large:
            self._large_video(entry)
            return
        assert prep.sha is not None and prep.data is not None
        if self._is_duplicate(entry, prep.sha):
            return
        if prep.probe is None and prep.not_media is None:
            self._probe(prep)
        if prep.not_media is not None:
            self._queue(None, self._item(entry, "failed", prep.not_media, sha256=prep.sha))
            return
        assert prep.probe is not None
        self.ws.blobs.put_bytes(prep.data, prep.sha)
        self._add_media(entry, prep.sha, len(prep.data), prep.meta or CameraMetadata(), prep.probe)

    def _large_video(self, entry: CardEntry) -> None:
        assert entry.local_path is not None
        sha, size = self.ws.blobs.put_file(entry.local_path)
        if self._is_duplicate(entry, sha):
            return
        try:
            probe = probe_video(entry.local_path, self.ws.settings.thumbnail_size)
        except NotMediaError as exc:
            self._queue(None, self._item(entry, "failed", str(exc), sha256=sha))
            return
        self._add_media(entry, sha, size, CameraMetadata(), probe)

    def _is_duplicate(self, entry: CardEntry, sha: str) -> bool:
        if sha in self.pending_shas:
            self._queue(
                None, self._item(entry, "duplicate", "the same file appears twice on this card", sha256=sha)
            )
            return True
        existing = self.session.execute(
            select(Media.id, Media.deployment_id).where(Media.sha256 == sha)
        ).first()
        if existing is None:
            return False
        msg = "already imported" + (
            "" if existing[1] == self.deployment_id else f" in deployment {existing[1]}"
        )
        self._queue(None, self._item(entry, "duplicate", msg, sha256=sha, media_id=existing[0]))
        return True

    def _add_media(self, entry: CardEntry, sha: str, size: int, meta: CameraMetadata, probe: Probe) -> None:
        thumb_key = None
        if probe.thumbnail:
            thumb_key = self.ws.derived.put_bytes(probe.thumbnail, f"{sha}.thumb.jpg")
        media = media_row(
            deployment_id=self.deployment_id,
            rel_path=entry.rel_path,
            sha=sha,
            size=size,
            meta=meta,
            probe=probe,
            utc_offset_minutes=self.utc_offset,
            clock_offset_s=self.clock,
            fallback_time=entry.mtime,
            thumbnail_key=thumb_key,
        )
        key = (meta.make, meta.model, meta.serial)
        self.camera_seen[key] = self.camera_seen.get(key, 0) + 1
        status = "damaged" if probe.issue else "imported"
        self._queue(media, self._item(entry, status, probe.issue, sha256=sha, media_id=media.id))
        self.pending_shas.add(sha)

    def _queue(self, media: Media | None, item: ImportItem) -> None:
        if media is not None:
            # Give the row its id now so the item can point at it.
            item.media_id = media.id
        self.pending.append((media, item))
        if len(self.pending) >= BATCH_ITEMS or time.monotonic() - self.last_commit > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        s = self.session
        try:
            self._commit_pending()
        except OperationalError as exc:
            s.rollback()
            if "full" in str(exc).lower():
                raise DiskFullError(28, disk_full_message(self.ws.settings.data_dir)) from exc
            raise
        self.pending.clear()
        self.pending_shas.clear()
        self.last_commit = time.monotonic()

    def _commit_pending(self) -> None:
        s = self.session
        try:
            for media, item in self.pending:
                if media is not None:
                    s.add(media)
                s.add(item)
            s.commit()
        except IntegrityError:
            # Another import stored some of these files meanwhile: fall back to one by one.
            s.rollback()
            for media, item in self.pending:
                try:
                    if media is not None:
                        s.add(media)
                    s.add(item)
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    winner = s.execute(
                        select(Media.id, Media.deployment_id).where(Media.sha256 == item.sha256)
                    ).first()
                    if winner is None:
                        raise  # not a file stored meanwhile: a real error
                    where = "" if winner[1] == self.deployment_id else f" in deployment {winner[1]}"
                    message = f"imported meanwhile by another run{where}"
                    self.report.recount(item.path, item.status, "duplicate", message)
                    item.status, item.message, item.media_id = "duplicate", message, winner[0]
                    s.add(item)
                    s.commit()

    def discard_pending(self) -> None:
        """Drop the rows whose bytes may not be stored (disk full); a re-run imports them."""
        for media, item in self.pending:
            if media is not None:
                item.status, item.message, item.media_id = "failed", "not stored: the disk was full", None
        self.session.rollback()
        try:
            for _, item in self.pending:
                self.session.add(item)
            self.session.commit()
        except Exception:
            self.session.rollback()
        self.pending.clear()


def _attach_camera(
    ws: Workspace, deployment_id: str, seen: dict[tuple[str | None, str | None, str | None], int]
) -> None:
    """Link the deployment to the camera its photos name, when they name one serial.

    The camera row is created race-safe (two cards of one camera imported at once both name it).
    """
    if not seen:
        return
    (make, model, serial), _ = max(seen.items(), key=lambda kv: kv[1])
    if not serial or len(serial) > MAX_CAMERA_ID:
        return  # no serial, or one longer than a camera id (a damaged or forged field): not linked
    with ws.db.session() as s:
        dep = s.get(Deployment, deployment_id)
        if dep is None or dep.camera_id is not None:
            return
    create_once(ws.db, Camera, serial, lambda: Camera(id=serial, make=make, model=model, serial=serial))
    with ws.db.session() as s:
        dep = s.get(Deployment, deployment_id)
        if dep is not None and dep.camera_id is None:
            dep.camera_id = serial
