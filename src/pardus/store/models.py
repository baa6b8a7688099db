"""The data model, aligned with Camtrap DP 1.0 so that export is a projection, not a translation.

Conventions that every room relies on:
- Instants are stored as UTC and come back timezone-aware (``UTCDateTime``); what a camera wrote
  in its EXIF is kept separately, naive and untouched, so a clock correction can always be undone.
- Text identifiers are the ones people and packages use (``deploymentID``, ``mediaID``); columns
  the model does not name yet go to ``extra`` (JSON) so a Camtrap DP round trip loses nothing.
- A file format writes some values differently from how Pardus would write them back ('1.30',
  '2020-05-30T02:57:37Z' for a +02:00 deployment, 'NA'); ``text_hints`` keeps such original text
  keyed by column, with the text Pardus would write for the stored value at import time. An
  export writes the original text only while the stored value still renders to that same text,
  so a round trip is byte-faithful and an edited value is never overruled by stale text.
- Nothing is deleted by the machine: blanks, repeats and rejected matches are flags and history.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    """Random identifier for rows that people do not name themselves."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store instants as naive UTC on every backend and hand them back aware.

    SQLite has no time zones and PostgreSQL's timestamptz returns aware values; one rule for
    both keeps comparisons and exports identical across backends.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a UTC column; attach a time zone first")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Project(Base):
    __tablename__ = "project"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Location(Base):
    """A place where cameras stand; ``sensitive`` places never leave in public exports exactly."""

    __tablename__ = "location"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    plot: Mapped[str | None] = mapped_column(String(128), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    coordinate_uncertainty: Mapped[int | None] = mapped_column(Integer)
    x_m: Mapped[float | None] = mapped_column(Float)
    y_m: Mapped[float | None] = mapped_column(Float)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Camera(Base):
    """A physical camera; live cameras authenticate with a token stored only as a hash."""

    __tablename__ = "camera"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    make: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    serial: Mapped[str | None] = mapped_column(String(128), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(255))
    token_revoked: Mapped[datetime | None] = mapped_column()
    expected_interval_s: Mapped[int | None] = mapped_column(Integer)
    last_seen: Mapped[datetime | None] = mapped_column()
    health: Mapped[dict[str, Any]] = mapped_column(default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Deployment(Base):
    """A camera at a location for a period, with the clock facts needed to trust its times.

    ``utc_offset_minutes`` is the zone the camera clock was set in; ``clock_offset_s`` is what
    must be added to the camera's time to get the true local time (corrections are recorded in
    ``ClockCorrection``, never by rewriting media).
    """

    __tablename__ = "deployment"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("project.id"))
    location_id: Mapped[str | None] = mapped_column(ForeignKey("location.id"), index=True)
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("camera.id"), index=True)
    start: Mapped[datetime | None] = mapped_column()
    end: Mapped[datetime | None] = mapped_column()
    utc_offset_minutes: Mapped[int] = mapped_column(Integer, default=600)
    clock_offset_s: Mapped[float] = mapped_column(Float, default=0.0)
    timestamp_issues: Mapped[bool] = mapped_column(Boolean, default=False)
    camera_height: Mapped[float | None] = mapped_column(Float)
    camera_heading: Mapped[int | None] = mapped_column(Integer)
    camera_tilt: Mapped[int | None] = mapped_column(Integer)
    bait_use: Mapped[bool | None] = mapped_column(Boolean)
    feature_type: Mapped[str | None] = mapped_column(String(64))
    habitat: Mapped[str | None] = mapped_column(String(255))
    setup_by: Mapped[str | None] = mapped_column(String(255))
    comments: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text_hints: Mapped[dict[str, Any]] = mapped_column(default=dict)

    location: Mapped[Location | None] = relationship()
    camera: Mapped[Camera | None] = relationship()


class ClockCorrection(Base):
    """Each clock correction with who, how and why, so a wrong fix can be traced and undone."""

    __tablename__ = "clock_correction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id"), index=True)
    previous_offset_s: Mapped[float] = mapped_column(Float)
    offset_s: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(32))
    reference_media_id: Mapped[str | None] = mapped_column(String(64))
    reference_true_time: Mapped[datetime | None] = mapped_column()
    created: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)


class Media(Base):
    """One stored file. Bytes live in the blob store under ``sha256``; this row never changes them."""

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("sha256", name="uq_media_sha256"),
        Index("ix_media_deployment_time", "deployment_id", "timestamp"),
        # The season overview counts flagged photos per deployment from this index alone.
        Index("ix_media_deployment_flags", "deployment_id", "timestamp_issues", "file_issues"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id"))
    sha256: Mapped[str | None] = mapped_column(String(64))
    file_path: Mapped[str] = mapped_column(String(1024))
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_mediatype: Mapped[str] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)  # videos pass 2 GB
    file_public: Mapped[bool] = mapped_column(Boolean, default=True)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    orientation: Mapped[int | None] = mapped_column(Integer)
    exif_make: Mapped[str | None] = mapped_column(String(128))
    exif_model: Mapped[str | None] = mapped_column(String(128))
    exif_serial: Mapped[str | None] = mapped_column(String(128))
    exif_datetime_raw: Mapped[str | None] = mapped_column(String(64))
    camera_time: Mapped[datetime | None] = mapped_column(DateTime)
    timestamp_source: Mapped[str] = mapped_column(String(32), default="exif")
    timestamp: Mapped[datetime | None] = mapped_column()
    timestamp_issues: Mapped[str | None] = mapped_column(String(255))
    capture_method: Mapped[str | None] = mapped_column(String(32), default="activityDetection")
    sequence_id: Mapped[str | None] = mapped_column(String(64), index=True)
    sequence_index: Mapped[int | None] = mapped_column(Integer)
    camera_seq: Mapped[int | None] = mapped_column(Integer)
    thumbnail_key: Mapped[str | None] = mapped_column(String(128))
    file_issues: Mapped[str | None] = mapped_column(Text)
    favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    comments: Mapped[str | None] = mapped_column(Text)
    imported: Mapped[datetime] = mapped_column(default=utcnow)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text_hints: Mapped[dict[str, Any]] = mapped_column(default=dict)

    deployment: Mapped[Deployment] = relationship()


class ImportRun(Base):
    """One import of one card or upload batch; with ``ImportItem`` it is the import report."""

    __tablename__ = "import_run"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(2048))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id"), index=True)
    started: Mapped[datetime] = mapped_column(default=utcnow)
    finished: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(32), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str | None] = mapped_column(Text)


class ImportItem(Base):
    """What happened to one file of a card: imported, duplicate, failed or skipped, and why."""

    __tablename__ = "import_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("import_run.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    media_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)


class StageState(Base):
    """Where each media item stands in each pipeline stage, so any run can resume."""

    __tablename__ = "stage_state"
    __table_args__ = (
        UniqueConstraint("media_id", "stage", "model", name="uq_stage_media_model"),
        # The season overview counts states per deployment without joining every state to its photo.
        Index("ix_stage_state_deployment", "deployment_id", "stage", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"), index=True)
    # The photo's deployment, copied when the state is created (a photo never changes deployment).
    deployment_id: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[datetime] = mapped_column(default=utcnow)


class Detection(Base):
    """A box found by a model; ``repeat`` marks static false positives for review, not deletion."""

    __tablename__ = "detection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    frame_time_s: Mapped[float | None] = mapped_column(Float)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Individual(Base):
    """A known animal (e.g. SC_026 "Berry"); merged ones keep their row and point to the survivor."""

    __tablename__ = "individual"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(128))
    scientific_name: Mapped[str | None] = mapped_column(String(128))
    sex: Mapped[str | None] = mapped_column(String(16))
    first_seen: Mapped[datetime | None] = mapped_column()
    last_seen: Mapped[datetime | None] = mapped_column()
    merged_into: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text_hints: Mapped[dict[str, Any]] = mapped_column(default=dict)


class IndividualEvent(Base):
    """History of the catalogue: every confirm, reject, create, merge and split, with who and when."""

    __tablename__ = "individual_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    individual_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(128))


class Observation(Base):
    """A Camtrap DP observation: media-level (one photo) or event-level (a burst or event)."""

    __tablename__ = "observation"
    __table_args__ = (
        # The season overview: photos per deployment and type, and photos a person reviewed.
        Index("ix_observation_deployment_type", "deployment_id", "observation_type", "media_id"),
        Index("ix_observation_deployment_method", "deployment_id", "classification_method", "media_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id"), index=True)
    media_id: Mapped[str | None] = mapped_column(ForeignKey("media.id"), index=True)
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event_start: Mapped[datetime | None] = mapped_column()
    event_end: Mapped[datetime | None] = mapped_column()
    observation_level: Mapped[str] = mapped_column(String(8), default="media")
    observation_type: Mapped[str] = mapped_column(String(16))
    camera_setup_type: Mapped[str | None] = mapped_column(String(32))
    scientific_name: Mapped[str | None] = mapped_column(String(255))
    count: Mapped[int | None] = mapped_column(Integer)
    life_stage: Mapped[str | None] = mapped_column(String(16))
    sex: Mapped[str | None] = mapped_column(String(16))
    behavior: Mapped[str | None] = mapped_column(String(255))
    individual_id: Mapped[str | None] = mapped_column(String(64), index=True)
    bbox_x: Mapped[float | None] = mapped_column(Float)
    bbox_y: Mapped[float | None] = mapped_column(Float)
    bbox_width: Mapped[float | None] = mapped_column(Float)
    bbox_height: Mapped[float | None] = mapped_column(Float)
    classification_method: Mapped[str | None] = mapped_column(String(16))
    classified_by: Mapped[str | None] = mapped_column(String(255))
    classification_timestamp: Mapped[datetime | None] = mapped_column()
    classification_probability: Mapped[float | None] = mapped_column(Float)
    comments: Mapped[str | None] = mapped_column(Text)
    # A person's decision made at the review desk (pardus.review); None for every other row.
    review_decision_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # A human observation replaced by a later review decision on the same photo (that decision's id), or
    # "undone" (its own decision was undone): kept
    # for the record, left out of every count, export and teaching set.
    superseded_by: Mapped[str | None] = mapped_column(String(64), index=True)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text_hints: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ReviewItem(Base):
    """One sequence (a burst: a camera's photos seconds apart) in the review queue, with the
    machine's call and the latest person's decision, so the queue is one indexed query at a million
    photos. Rebuilt from the photos and observations by ``pardus.review.queue.refresh``; the human
    side is updated by each decision."""

    __tablename__ = "review_item"
    __table_args__ = (
        Index("ix_review_item_camera_day", "deployment_id", "start", "sequence_id"),
        Index("ix_review_item_confidence", "confidence", "sequence_id"),
        # "Not yet reviewed" is reviewed_at IS NULL: these lead with it, so the next unreviewed
        # sequence is a seek, not a scan past the reviewed ones.
        Index("ix_review_item_unreviewed_camera_day", "reviewed_at", "deployment_id", "start", "sequence_id"),
        Index("ix_review_item_unreviewed_confidence", "reviewed_at", "confidence", "sequence_id"),
    )

    sequence_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(64))
    plot: Mapped[str | None] = mapped_column(String(128), index=True)
    camera_day: Mapped[str | None] = mapped_column(String(10))  # the local date of its first photo
    start: Mapped[datetime | None] = mapped_column()
    end: Mapped[datetime | None] = mapped_column()
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    first_media_id: Mapped[str] = mapped_column(String(64))
    time_issues: Mapped[bool] = mapped_column(Boolean, default=False)
    machine_type: Mapped[str | None] = mapped_column(String(16), index=True)
    machine_species: Mapped[str | None] = mapped_column(String(255))
    confidence: Mapped[float | None] = mapped_column(Float)
    human_type: Mapped[str | None] = mapped_column(String(16))
    human_species: Mapped[str | None] = mapped_column(String(255))
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    disagree: Mapped[bool] = mapped_column(Boolean, default=False)


class ReviewDecision(Base):
    """What a person decided about a sequence at the review desk, beside what the machine had said.
    Its observations carry ``review_decision_id``; undoing it marks them "undone" and brings back
    what they had replaced. A bulk action is many decisions sharing one ``batch_id``."""

    __tablename__ = "review_decision"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    sequence_id: Mapped[str] = mapped_column(String(64), index=True)
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(16))  # accept, blank, animal, human, vehicle
    observation_type: Mapped[str] = mapped_column(String(16))
    scientific_name: Mapped[str | None] = mapped_column(String(255))
    count: Mapped[int | None] = mapped_column(Integer)
    machine_type: Mapped[str | None] = mapped_column(String(16))
    machine_species: Mapped[str | None] = mapped_column(String(255))
    machine_confidence: Mapped[float | None] = mapped_column(Float)
    undone_at: Mapped[datetime | None] = mapped_column()
    undone_by: Mapped[str | None] = mapped_column(String(128))


class Alert(Base):
    """Something a ranger must act on, tracked from new to resolved."""

    __tablename__ = "alert"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64), index=True)
    deployment_id: Mapped[str | None] = mapped_column(String(64))
    media_id: Mapped[str | None] = mapped_column(String(64))
    # The inbox lists newest first: an index keeps that one step at thousands of alerts.
    created: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AlertEvent(Base):
    """Audit trail of an alert: creation, each sighting attached, each delivery, ack, resolve."""

    __tablename__ = "alert_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alert.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TelemetryFix(Base):
    """One record of a tag (Movebank-shaped): a GPS position, a failed fix (no position: kept, so
    fix success can be judged) or another sensor's record (acceleration). Nothing is deleted:
    outliers are flagged in ``outlier`` ('marked' by the data owner, 'speed', 'null-island').
    (tag, sensor type, time) is the record's identity, so importing a file twice adds nothing.
    ``individual_id`` is the catalogue individual the tag is linked to (``TelemetryTag``), copied
    here so an individual's track is one indexed query."""

    __tablename__ = "telemetry_fix"
    __table_args__ = (
        UniqueConstraint("tag_id", "sensor_type", "timestamp", name="uq_telemetry_fix_record"),
        Index("ix_telemetry_fix_individual_time", "individual_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tag_id: Mapped[str] = mapped_column(String(64), index=True)
    individual_id: Mapped[str | None] = mapped_column(String(64), index=True)
    timestamp: Mapped[datetime] = mapped_column()
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    dop: Mapped[float | None] = mapped_column(Float)
    event_id: Mapped[str | None] = mapped_column(String(64))
    sensor_type: Mapped[str] = mapped_column(String(32), default="gps")
    animal: Mapped[str | None] = mapped_column(String(128))  # the data owner's individual-local-identifier
    visible: Mapped[bool] = mapped_column(Boolean, default=True)  # as the file said
    outlier: Mapped[str | None] = mapped_column(String(32))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SensorReading(Base):
    """A reading from an online sensor or a camera heartbeat (battery, signal, temperature ...)."""

    __tablename__ = "sensor_reading"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    timestamp: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class User(Base):
    """A person and their role (viewer, reviewer, ranger, admin); decides what they may see and do.

    ``password_hash`` (argon2) signs them in to the web app, ``token_hash`` lets their scripts use
    the REST API; ``revoked`` ends both at once, the row stays for the audit trail."""

    __tablename__ = "user"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    token_hash: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    revoked: Mapped[datetime | None] = mapped_column()
    created: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser. The cookie holds a random secret; only its SHA-256 is kept, so a copy
    of the database signs nobody in. Sign-out deletes the row; ``expires`` slides with use."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie's secret
    user_id: Mapped[str] = mapped_column(ForeignKey("user.id"), index=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime] = mapped_column()
    last_used: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who released what a park protects, when, and where to: exact places of sensitive species
    exported, and the attempts refused. Rows are only ever added (issue 19: exact coordinates go
    only to an authenticated person whose role allows it, recorded in an audit log)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    who: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TelemetryTag(Base):
    """A collar or tag as the data owner names it (``tag-local-identifier``), and the catalogue
    individual it is linked to (``pardus individuals link-tag SC_026 TAG123``)."""

    __tablename__ = "telemetry_tag"

    tag_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    animal: Mapped[str | None] = mapped_column(String(128))
    taxon: Mapped[str | None] = mapped_column(String(255))
    study: Mapped[str | None] = mapped_column(String(500))
    individual_id: Mapped[str | None] = mapped_column(String(64), index=True)
    linked_by: Mapped[str | None] = mapped_column(String(128))
    linked_at: Mapped[datetime | None] = mapped_column()
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FireHotspot(Base):
    """One satellite active-fire detection (NASA FIRMS, MODIS or VIIRS), kept whether or not it lies
    in the park; ``key`` (satellite, time, place) makes a second import of the same file add nothing.
    ``distance_m``/``location_id`` name the nearest camera location, ``alert_id`` the alert raised."""

    __tablename__ = "fire_hotspot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    acquired: Mapped[datetime] = mapped_column(index=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    instrument: Mapped[str] = mapped_column(String(16))
    satellite: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[str | None] = mapped_column(String(16))
    frp: Mapped[float | None] = mapped_column(Float)
    daynight: Mapped[str | None] = mapped_column(String(1))
    in_park: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    distance_m: Mapped[float | None] = mapped_column(Float)
    location_id: Mapped[str | None] = mapped_column(String(64))
    alert_id: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Sensor(Base):
    """An online sensor (smoke, PM2.5, temperature/humidity, fuel moisture, acoustic gunshot/chainsaw
    detector, gate or vehicle counter, weather station), registered like a camera with its own token
    (``pds.<sensor>.<secret>``, only a salted hash kept). Its readings are ``SensorReading`` rows with
    ``source_id`` = the sensor's id."""

    __tablename__ = "sensor"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(255))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    token_hash: Mapped[str | None] = mapped_column(String(255))
    token_revoked: Mapped[datetime | None] = mapped_column()
    last_seen: Mapped[datetime | None] = mapped_column()
    created: Mapped[datetime] = mapped_column(default=utcnow)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
