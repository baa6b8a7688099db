"""Request and response shapes of the REST API: typed, documented in the OpenAPI page, checked at the door."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pardus.alerts.lifecycle import MAX_NOTE


class Health(BaseModel):
    ok: bool  # every background loop this server started is running (and MQTT is connected)
    pipeline: bool
    ready: bool
    queue: dict[str, int] | None = None  # signed-in people and tokens only
    processed: int | None = None
    loops: dict[str, bool] = {}
    mqtt: dict[str, Any] | None = None


class UploadReply(BaseModel):
    media_id: str
    sha256: str
    stored: bool = True
    duplicate: bool
    deployment_id: str | None
    seq: int | None
    note: str | None = None


class AckIn(BaseModel):
    """Acknowledge: the ranger has seen the alert and is on it."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class ResolveIn(BaseModel):
    """Resolve: what happened, in a few words, and a note if there is more to say."""

    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(min_length=1, max_length=500, examples=["false alarm: our patrol"])
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class AlertOut(BaseModel):
    id: str
    kind: str
    status: str
    severity: str | None
    rule: str | None
    camera_id: str | None
    deployment_id: str | None
    media_id: str | None
    created: str
    updated: str
    sightings: int
    evidence: dict[str, Any]
    location: dict[str, Any] | None
    camera_health: dict[str, Any]
    acknowledged_by: str | None
    resolved_by: str | None
    outcome: str | None


class AlertEventOut(BaseModel):
    action: str
    at: str
    by: str | None
    details: dict[str, Any]


class AlertDetail(AlertOut):
    history: list[AlertEventOut]


class AlertList(BaseModel):
    alerts: list[AlertOut]


AlertStatus = Literal["new", "acknowledged", "resolved", "open"]
