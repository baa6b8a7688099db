"""The store: database (SQLite by default, PostgreSQL by URL) and the blob folders beside it.

Every other room reaches storage only through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pardus.config import Settings, get_settings
from pardus.store.blobs import BlobStore, open_blob_store
from pardus.store.db import Store


@dataclass
class Workspace:
    """Everything one Pardus installation keeps: rows, original bytes and derived files."""

    settings: Settings
    db: Store
    blobs: BlobStore
    derived: BlobStore

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_workspace(settings: Settings | None = None, *, migrate: bool = True) -> Workspace:
    settings = settings or get_settings()
    # Private to the account that runs Pardus (issue 19): the folder holds camera tokens' hashes, the
    # people's password hashes and the exact places of sensitive species; with the folder 0700 no
    # other account on the machine can read any file in it, whatever the file's own mode.
    if not settings.data_dir.exists():
        try:
            settings.data_dir.mkdir(parents=True, mode=0o700)
            settings.data_dir.chmod(0o700)  # mkdir's mode is masked by the umask
        except FileExistsError:  # another process made it a moment ago
            pass
    return Workspace(
        settings=settings,
        db=Store(settings.resolved_database_url, migrate=migrate),
        blobs=open_blob_store(settings.blob_url or settings.blob_dir, settings.data_dir / "cache" / "blobs"),
        derived=BlobStore(settings.data_dir / "derived", durable=False),
    )
