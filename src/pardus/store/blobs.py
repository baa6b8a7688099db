"""Content-addressed blob store: every file is kept once, under its sha256, and never modified.

Writes go to a temporary file beside the target, are flushed to disk, then renamed into place,
so a crash (or ``kill -9``) leaves either the whole blob or nothing under its key: a reader can
never see half a photo. A local folder is the default; any fsspec URL (``s3://…``) works through
the same interface for clusters.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class DiskFullError(OSError):
    """The disk under the data folder is full; nothing partial was kept."""


def disk_full_message(where: Path) -> str:
    free = shutil.disk_usage(where).free
    return (
        f"the disk holding {where} is full ({free // (1 << 20)} MiB free): free some space or set "
        "PARDUS_DATA_DIR to a bigger disk, then run the same command again "
        "(what was imported is kept; the import continues where it stopped)"
    )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


_KEY_RE = re.compile(r"[0-9a-f]{8}[0-9a-z._-]*")


def _check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key) or ".." in key:
        raise ValueError(f"not a blob key: {key!r}")
    return key


class BlobStore:
    """A folder of blobs named by sha256, sharded two levels deep to keep folders small."""

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        # ``durable=False`` skips fsync: for derived files (thumbnails) that can be made again,
        # where a power cut may cost a thumbnail but never an original.
        self.durable = durable
        self.root = Path(root)
        if not self.root.exists():  # a blob folder outside the data folder is private too
            try:
                self.root.mkdir(parents=True, mode=0o700)
                self.root.chmod(0o700)
            except FileExistsError:  # another process made it a moment ago
                pass
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        key = _check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def put_bytes(self, data: bytes, key: str | None = None) -> str:
        """Store ``data`` under its sha256 (or ``key`` for derived files); idempotent."""
        key = key or sha256_bytes(data)
        target = self.path(key)
        if target.is_file():
            return key
        self._write_atomic(target, lambda f: f.write(data))
        return key

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy a file in while hashing it, without holding it all in memory (large videos)."""
        h = hashlib.sha256()
        size = 0
        tmp = self._new_tmp()
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                if self.durable:
                    os.fsync(dst.fileno())
            key = h.hexdigest()
            target = self.path(key)
            if target.is_file():
                tmp.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return key, size
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._translate(exc) from exc

    def verify(self, key: str) -> bool:
        """Re-hash a stored blob; False means the disk corrupted it."""
        return sha256_file(self.path(key)) == key

    def keys(self) -> Iterator[str]:
        for p in self.root.glob("??/??/*"):
            if p.is_file():
                yield p.name

    def clean_tmp(self) -> int:
        """Remove leftovers of writes interrupted by a crash; returns how many were removed."""
        n = 0
        for p in self._tmp.iterdir():
            pid = p.name.split(".")[0]
            if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
                continue
            p.unlink(missing_ok=True)
            n += 1
        return n

    def _new_tmp(self) -> Path:
        return self._tmp / f"{os.getpid()}.{os.urandom(8).hex()}"

    def _write_atomic(self, target: Path, write: object) -> None:
        tmp = self._new_tmp()
        try:
            with open(tmp, "wb") as f:
                write(f)  # type: ignore[operator]
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._translate(exc) from exc

    def _translate(self, exc: OSError) -> OSError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return DiskFullError(exc.errno, disk_full_message(self.root))
        return exc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class FsspecBlobStore(BlobStore):
    """The same content-addressed store on any fsspec filesystem (``s3://bucket/pardus``, ``gcs://``,
    ``memory://`` ...), for a cluster whose workers share no disk.

    An object store writes a whole object or nothing, which is the atomicity the local store gets
    from rename. Readers that need a file on disk (the decoders) get ``path()``: a copy in a local
    cache folder, safe to keep because a blob never changes under its key. The protocol's package
    (``s3fs`` for S3 and S3-compatible stores such as MinIO) must be installed beside Pardus.
    """

    def __init__(self, url: str, cache: Path, *, durable: bool = True) -> None:
        import fsspec

        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ValueError(f"cannot open the blob store {url}: {exc}. For s3:// install s3fs "
                             "(pip install s3fs) and give its credentials in the usual AWS variables") from None
        self.url, self.remote_root, self.durable = url, root.rstrip("/"), durable
        self.root = cache
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def _remote(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.remote_root}/{key[:2]}/{key[2:4]}/{key}"

    def path(self, key: str) -> Path:
        local = super().path(key)
        if not local.is_file():
            data = self.fs.cat_file(self._remote(key))
            self._write_atomic(local, lambda f: f.write(data))
        return local

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._remote(key)))

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def get_bytes(self, key: str) -> bytes:
        local = super().path(key)
        if local.is_file():
            return local.read_bytes()
        return bytes(self.fs.cat_file(self._remote(key)))

    def put_bytes(self, data: bytes, key: str | None = None) -> str:
        key = key or sha256_bytes(data)
        target = self._remote(key)
        if not self.fs.exists(target):
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(target, data)
        return key

    def put_file(self, source: Path) -> tuple[str, int]:
        key, size = sha256_file(source), source.stat().st_size  # hash first: the object's name is its hash
        target = self._remote(key)
        if not self.fs.exists(target):
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(source), target)
        return key, size

    def verify(self, key: str) -> bool:
        return sha256_bytes(bytes(self.fs.cat_file(self._remote(key)))) == key

    def keys(self) -> Iterator[str]:
        for p in self.fs.find(self.remote_root):
            name = p.rsplit("/", 1)[-1]
            if _KEY_RE.fullmatch(name):
                yield name


def open_blob_store(location: str | Path, cache: Path) -> BlobStore:
    """A local folder (a path, ``file://``, or an NFS mount) or any other fsspec URL."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        return FsspecBlobStore(text, cache)
    return BlobStore(Path(text.removeprefix("file://")))
