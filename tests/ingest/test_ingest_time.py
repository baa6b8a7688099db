"""Time you can trust: absurd camera times are flagged, and corrections never lose the original."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.ingest.synthetic import camera_jpeg
from pardus.ingest.timefix import TimeFixError, fix_time, parse_offset
from pardus.store.models import ClockCorrection, Deployment, Media

VLAD = timezone(timedelta(hours=10))


def _card(tmp_path: Path, times: list[datetime]) -> Path:
    d = tmp_path / "card" / "DCIM" / "100MEDIA"
    d.mkdir(parents=True)
    for i, t in enumerate(times):
        (d / f"IMG_{i + 1:04d}.JPG").write_bytes(camera_jpeg(t, size=(160, 120), seed=i))
    return tmp_path / "card"


@pytest.fixture
def flagged(workspace, tmp_path: Path):
    with workspace.db.session() as s:
        upsert_deployment(s, DeploymentSpec(
            id="T1", latitude=43.1, longitude=131.3,
            start=datetime(2024, 5, 1, 10, 0, tzinfo=VLAD), end=datetime(2024, 9, 1, 10, 0, tzinfo=VLAD)))
    times = [
        datetime(2024, 5, 2, 3, 0, 0),     # 1 fine
        datetime(2024, 5, 2, 3, 0, 1),     # 2 fine, same burst
        datetime(2024, 4, 1, 12, 0, 0),    # 3 before the deployment, and earlier than 2 on the card
        datetime(2024, 6, 1, 12, 0, 0),    # 4 fine
        datetime(2000, 1, 1, 0, 0, 5),     # 5 clock reset
        datetime(2000, 1, 1, 0, 9, 0),     # 6 clock reset
        datetime(2099, 1, 1, 0, 0, 0),     # 7 future
    ]
    import_card(workspace, _card(tmp_path, times), "T1")
    return workspace


def _by_name(ws) -> dict[str, Media]:
    with ws.db.session() as s:
        return {m.file_name: m for m in s.scalars(select(Media).where(Media.deployment_id == "T1"))}


def test_absurd_times_are_flagged(flagged) -> None:
    m = _by_name(flagged)
    issues = {k: set((v.timestamp_issues or "").split(",")) - {""} for k, v in m.items()}
    assert issues["IMG_0001.JPG"] == set() and issues["IMG_0002.JPG"] == set()
    assert issues["IMG_0003.JPG"] == {"before-deployment", "out-of-order"}
    assert issues["IMG_0004.JPG"] == set()
    assert {"clock-reset", "before-deployment", "out-of-order"} <= issues["IMG_0005.JPG"]
    assert "clock-reset" in issues["IMG_0006.JPG"]
    assert {"in-future", "after-deployment"} <= issues["IMG_0007.JPG"]
    with flagged.db.session() as s:
        assert s.get(Deployment, "T1").timestamp_issues is True


def test_times_are_utc_from_the_camera_zone(flagged) -> None:
    m = _by_name(flagged)["IMG_0001.JPG"]
    assert m.camera_time == datetime(2024, 5, 2, 3, 0, 0)
    assert m.timestamp == datetime(2024, 5, 1, 17, 0, 0, tzinfo=UTC)
    assert m.sequence_id == _by_name(flagged)["IMG_0002.JPG"].sequence_id


def test_fix_time_by_offset_keeps_the_original(flagged) -> None:
    before = _by_name(flagged)
    with flagged.db.session() as s:
        res = fix_time(s, "T1", offset_s=parse_offset("+1h30m"), by="ranger", note="DST")
    assert res.media_changed == 7
    after = _by_name(flagged)
    for name, m in after.items():
        assert m.camera_time == before[name].camera_time
        assert m.exif_datetime_raw == before[name].exif_datetime_raw
        assert m.timestamp - before[name].timestamp == timedelta(hours=1, minutes=30)
    with flagged.db.session() as s:
        hist = s.scalars(select(ClockCorrection)).all()
        assert [(h.previous_offset_s, h.offset_s, h.method, h.created_by) for h in hist] == [
            (0.0, 5400.0, "offset", "ranger")
        ]


def test_fix_time_from_a_reference_photo(flagged) -> None:
    # The camera reset to 2000-01-01; IMG_0005 is known to show the ranger at 2024-08-20 14:00:05 local.
    with flagged.db.session() as s:
        res = fix_time(s, "T1", reference="IMG_0005.JPG", true_time="2024-08-20T14:00:05")
    expected = (datetime(2024, 8, 20, 14, 0, 5) - datetime(2000, 1, 1, 0, 0, 5)).total_seconds()
    assert res.offset_s == expected
    m = _by_name(flagged)
    assert m["IMG_0005.JPG"].timestamp == datetime(2024, 8, 20, 4, 0, 5, tzinfo=UTC)
    assert m["IMG_0006.JPG"].timestamp == datetime(2024, 8, 20, 4, 9, 0, tzinfo=UTC)
    assert m["IMG_0005.JPG"].exif_datetime_raw == "2000:01:01 00:00:05"
    assert "clock-reset" in m["IMG_0005.JPG"].timestamp_issues, "the camera did reset; the flag stays"


def test_fix_time_errors_say_what_to_do(flagged) -> None:
    with flagged.db.session() as s:
        with pytest.raises(TimeFixError, match="no deployment"):
            fix_time(s, "NOPE", offset_s=1)
        with pytest.raises(TimeFixError, match="--true-time"):
            fix_time(s, "T1", reference="IMG_0001.JPG")
        with pytest.raises(TimeFixError, match="no photo"):
            fix_time(s, "T1", reference="IMG_9999.JPG", true_time="2024-01-01T00:00:00")
    with pytest.raises(TimeFixError, match=r"\+3h"):
        parse_offset("three hours")


@pytest.mark.parametrize(("text", "seconds"), [
    ("+3h", 10800), ("-1d2h30m", -(86400 + 9000)), ("+01:00:00", 3600), ("-90", -90), ("45m", 2700),
    ("-00:30", -1800), ("1h15s", 3615),
])
def test_parse_offset(text: str, seconds: float) -> None:
    assert parse_offset(text) == seconds
