"""Camera health: heartbeats (battery, signal, temperature, free storage), silence and tampering.

A heartbeat is stored as ``SensorReading`` rows (one per quantity, so a battery curve is a plain
query) and the latest values in ``Camera.health``. A camera silent past its
``expected_interval_s`` (times ``OFFLINE_GRACE``, because cellular links lag) is offline. A camera
whose view suddenly changes (turned on its post, covered by snow or a hand) is tampered: each
new frame's thumbnail is compared with the camera's reference view by normalised correlation of
a small greyscale image, separately for day and infrared night views (they look different).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.store.db import unstorable_text
from pardus.store.models import Camera, SensorReading, utcnow

# name in the heartbeat -> (SensorReading.kind, unit)
QUANTITIES = {
    "battery_pct": ("battery", "%"),
    "battery_v": ("battery_voltage", "V"),
    "signal_dbm": ("signal", "dBm"),
    "temperature_c": ("temperature", "degC"),
    "free_storage_mb": ("free_storage", "MB"),
}
# What a working camera can report; outside these a value is a fault or a forgery, refused so that
# it never reaches a battery curve or an alert rule (1e308 %, NaN dBm).
RANGES = {
    "battery_pct": (0.0, 100.0),
    "battery_v": (0.0, 60.0),
    "signal_dbm": (-200.0, 30.0),
    "temperature_c": (-90.0, 90.0),
    "free_storage_mb": (0.0, 1e9),  # a petabyte
}
# Other fields (firmware version, counters) are kept as sent, within these limits: a heartbeat is
# a few hundred bytes, not a place to store 64 KB of anything.
MAX_OTHER_FIELDS = 32
MAX_OTHER_BYTES = 4096
MAX_NAME = 64
OFFLINE_GRACE = 1.5
VIEW_SIZE = (64, 36)
VIEW_ROWS = (0.08, 0.88)  # leave out the cameras' data strips (time, temperature): they match in every view
# Correlation of the new frame's fine structure with the reference below which the camera counts as
# moved. Measured on rendered frames (docs/live.md): the same view with an animal or a person in it
# scores 0.91-0.95, a person at night 0.60, a car filling the frame 0.35; another view -0.04..0.07.
MOVED_BELOW = 0.2
# A covered lens gives an almost flat frame (standard deviation of grey levels, 0..255).
COVERED_STD = 6.0


class HeartbeatError(ValueError):
    """A heartbeat is malformed; the message names the field."""


def _shown(value: object) -> str:
    """A sent value as JSON, cut short: messages quote what the camera sent, never a Python repr."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _quantity(name: str, raw: object) -> float:
    """One known quantity as a float within its range; HeartbeatError naming it otherwise."""
    lo, hi = RANGES[name]
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and len(raw) <= 32:
        try:
            value = float(raw)
        except ValueError:
            value = None
    if value is None or not math.isfinite(value):
        raise HeartbeatError(f"{name} must be a number, not {_shown(raw)}")
    if not lo <= value <= hi:
        raise HeartbeatError(f"{name} {value:g} is outside what a camera can report ({lo:g} to {hi:g})")
    return value


def _check_other(other: dict[str, Any]) -> None:
    """Fields Pardus does not know: few, small, and storable in either database."""
    if len(other) > MAX_OTHER_FIELDS:
        raise HeartbeatError(f"a heartbeat carries at most {MAX_OTHER_FIELDS} other fields, not {len(other)}")
    try:
        text = json.dumps(other, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise HeartbeatError("a heartbeat's numbers must be finite (no NaN or Infinity)") from exc
    except RecursionError as exc:
        raise HeartbeatError("a heartbeat is nested too deeply; send a flat JSON object") from exc
    if len(text.encode("utf-8", "replace")) > MAX_OTHER_BYTES:
        raise HeartbeatError(f"a heartbeat's other fields take at most {MAX_OTHER_BYTES} bytes as JSON")
    for k in other:
        if not k or len(k) > MAX_NAME:
            raise HeartbeatError(f"field names are 1-{MAX_NAME} characters, not {_shown(k)}")
    bad = unstorable_text(other)  # PostgreSQL keeps no NUL in text, UTF-8 no lone surrogate: refused, not a 500
    if bad is not None and bad[0] == "nul":
        raise HeartbeatError("a heartbeat may not hold NUL characters (\\u0000)")
    if bad is not None:
        raise HeartbeatError("a heartbeat must be valid Unicode text (a lone surrogate was sent)")


def record_heartbeat(s: Session, cam: Camera, values: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """Store one heartbeat; unknown fields are kept in the reading's ``extra``, not dropped.

    This is the one boundary for heartbeats from HTTP and MQTT alike: known quantities must be
    finite numbers within ``RANGES``, other fields within ``MAX_OTHER_*``; anything else is a
    HeartbeatError naming the field, and nothing of that heartbeat is stored.
    """
    at = at or utcnow()
    known = {name: _quantity(name, values[name]) for name in QUANTITIES if values.get(name) is not None}
    other = {k: v for k, v in values.items() if k not in QUANTITIES}
    _check_other(other)
    for name, value in known.items():
        kind, unit = QUANTITIES[name]
        s.add(SensorReading(source_id=cam.id, timestamp=at, kind=kind, value=value, unit=unit))
    if other:
        s.add(SensorReading(source_id=cam.id, timestamp=at, kind="heartbeat", extra=other))
    cam.health = {**(cam.health or {}), **known, **({"other": other} if other else {}), "heartbeat_at": at.isoformat()}
    touch(cam, at)
    return dict(cam.health)


def touch(cam: Camera, at: datetime | None = None) -> None:
    at = at or utcnow()
    if cam.last_seen is None or cam.last_seen < at:
        cam.last_seen = at


def silence(cam: Camera, now: datetime) -> float | None:
    """Seconds the camera has been silent past its expected interval (times OFFLINE_GRACE), else None.
    A camera that never reported was installed but not switched on yet: nothing went silent."""
    if not cam.expected_interval_s or cam.last_seen is None:
        return None
    silent = (now - cam.last_seen).total_seconds()
    return silent if silent > cam.expected_interval_s * OFFLINE_GRACE else None


def offline_cameras(s: Session, now: datetime | None = None) -> list[tuple[Camera, float]]:
    """Cameras with an expected interval that have been silent too long, with how long (seconds)."""
    now = now or utcnow()
    out = []
    for cam in s.scalars(select(Camera).where(Camera.expected_interval_s.is_not(None), Camera.token_revoked.is_(None))):
        silent = silence(cam, now)
        if silent is not None:
            out.append((cam, silent))
    return out


def view_vector(thumbnail: bytes) -> tuple[np.ndarray, float]:
    """The view's fine structure (grey minus its blur: edges of trunks, rocks, horizon) and its grey spread.

    Plain grey levels are dominated by light (sky above, ground below) and so look alike for any
    two views; the high-pass keeps what makes this spot this spot.
    """
    import cv2

    img = Image.open(io.BytesIO(thumbnail)).convert("L")
    w, h = img.size
    img = img.crop((0, int(h * VIEW_ROWS[0]), w, int(h * VIEW_ROWS[1]))).resize(VIEW_SIZE, Image.Resampling.BILINEAR)
    grey = np.asarray(img, dtype=np.float32)
    return (grey - cv2.GaussianBlur(grey, (9, 9), 0)).ravel(), float(grey.std())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 1e-6 else 0.0


@dataclass
class ViewCheck:
    tampered: bool
    reason: str | None
    correlation: float | None
    std: float


def check_view(cam: Camera, thumbnail: bytes, night: bool) -> ViewCheck:
    """Compare a frame with the camera's reference view and update the reference.

    The first frame of each mode becomes the reference. A frame close to it nudges the reference
    (slow changes of season and light); a tampered view becomes the new reference, so a turned
    camera raises one alert, not one per photo.
    """
    vec, std = view_vector(thumbnail)
    mode = "night" if night else "day"
    refs = dict((cam.extra or {}).get("view_reference") or {})
    ref = refs.get(mode)
    if std < COVERED_STD:
        result = ViewCheck(True, f"the view is almost uniform (grey-level spread {std:.1f}): lens covered?", None, std)
    elif ref is None:
        result = ViewCheck(False, None, None, std)
    else:
        corr = correlation(vec, np.asarray(ref, dtype=np.float32))
        moved = corr < MOVED_BELOW
        reason = f"the view changed suddenly (similarity {corr:.2f} to its usual view): turned or moved?"
        result = ViewCheck(moved, reason if moved else None, corr, std)
        if not moved:
            vec = 0.8 * np.asarray(ref, dtype=np.float32) + 0.2 * vec
    if std >= COVERED_STD:
        refs[mode] = [round(float(v), 1) for v in vec]
        cam.extra = {**(cam.extra or {}), "view_reference": refs}
    return result


def offline_window(cam: Camera) -> timedelta:
    return timedelta(seconds=(cam.expected_interval_s or 0) * OFFLINE_GRACE)
