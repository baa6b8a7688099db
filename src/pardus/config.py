"""Settings for Pardus, read from the environment (``PARDUS_*``) so a field laptop and a
cluster run the same code with different values and no config file is required."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Pardus keeps its things.

    The default is a self-contained data directory (SQLite database + blob folder) so a ranger's
    laptop needs no server; PostgreSQL is reached by setting ``PARDUS_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="PARDUS_", extra="ignore")

    data_dir: Path = Field(default=Path("pardus-data"), description="Database, blobs, thumbnails.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL (default SQLite).")
    blob_url: str | None = Field(
        default=None, description="Blob store location: a folder (a shared NFS mount for a cluster), file://..., "
        "or an fsspec URL such as s3://bucket/pardus (needs s3fs); default data_dir/blobs.")
    shared_dir: Path = Field(default=Path("../shared"), description="Shared data/models folder.")
    sequence_gap_seconds: float = Field(default=60.0, description="Max gap within a burst.")
    thumbnail_size: int = Field(default=320, description="Longest side of stored thumbnails, pixels.")
    detect_tiles: int = Field(
        default=0, description="Detection also on N x N full-resolution tiles (2 or 3; 0 = off): finds small "
        "animals the whole frame missed, costs 1 + N*N passes (see docs/detection.md).")
    detector: str = Field(
        default="auto", description="Detector of the detect stage. auto: MegaDetector v6-c once "
        "`pardus models fit-mdv6` installed it in the data folder, else offline. offline: zamba YOLOX-tiny + "
        "COCO SSD (installed with Pardus). megadetector-v6-yolov10-c, or megadetector-v5a / "
        "megadetector-v1000-redwood from an ONNX file named by PARDUS_MEGADETECTOR_V5A / _V1000 "
        "(see docs/detection.md).")
    map_tiles: str | None = Field(
        default=None, description="Tile URL template for the web app's maps ({z}/{x}/{y}), e.g. a local tile "
        "server; unset: a plain background with plot outlines and a scale bar, and no request leaves the machine.")
    mqtt_username: str | None = Field(default=None, description="Username `pardus serve --mqtt` gives the broker.")
    mqtt_password: str | None = Field(
        default=None, description="Its password (environment only: a command-line option would show in `ps`).")
    mqtt_tls: bool = Field(default=False, description="Reach the MQTT broker over TLS, its certificate verified.")
    mqtt_ca_file: Path | None = Field(
        default=None, description="Authority that signed the broker's certificate (default: the system's).")
    executor: str = Field(default="local", description="Where `pardus process` computes: local or ray.")
    ray_address: str | None = Field(
        default=None, description="Ray cluster for the ray executor: auto, or ray://host:10001; unset: a Ray "
        "instance on this machine for the run.")
    ray_workers: int = Field(default=2, description="Ray workers, each with its own copy of the models.")
    detect_workers: int = Field(
        default=2, description="Worker processes that decode photos while the detector runs (0 = decode in "
        "the main process).")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pardus.sqlite').resolve()}"

    @property
    def blob_dir(self) -> Path:
        """The local blob folder (for an fsspec URL: the local cache of it)."""
        if self.blob_url and "://" not in self.blob_url:
            return Path(self.blob_url)
        if self.blob_url and self.blob_url.startswith("file://"):
            return Path(self.blob_url.removeprefix("file://"))
        return self.data_dir / ("cache/blobs" if self.blob_url else "blobs")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
