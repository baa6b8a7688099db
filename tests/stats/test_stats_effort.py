"""Effort, independent events and relative abundance, checked by hand and against camtrapR."""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from pardus.stats.effort import (
    DeploymentPeriod,
    EffortError,
    camera_operation,
    independent_events,
    relative_abundance,
    zero_rai,
)

VLAD = timezone(timedelta(hours=10))


def t(day: int, hour: float = 0.0) -> datetime:
    return datetime(2024, 5, 1, tzinfo=VLAD) + timedelta(days=day - 1, hours=hour)


def test_operation_matrix_subtracts_gaps_and_splits_occasions():
    deps = [
        DeploymentPeriod("A", t(1, 12), t(11, 12), gaps=((t(4), t(6)),)),  # 10 days minus a 2-day gap
        DeploymentPeriod("B", t(1), t(6)),
        DeploymentPeriod("B", t(5), t(9)),  # overlapping swap at B: not double-counted
    ]
    op = camera_operation(deps, start=t(1), end=t(11), occasion_days=2.0)
    assert op.stations == ("A", "B")
    assert op.n_occasions == 5
    np.testing.assert_allclose(op.days[0], [1.5, 1.0, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(op.days[1], [2.0, 2.0, 2.0, 2.0, 0.0])
    np.testing.assert_allclose(op.trap_nights, [7.5, 8.0])
    assert deps[0].trap_nights == pytest.approx(8.0)  # the deployment itself runs 10 days - 2 gap days
    np.testing.assert_allclose(op.usage[0], [0.75, 0.5, 0.5, 1.0, 1.0])
    assert op.occasion_of(t(3, 1)) == 1 and op.occasion_of(t(12)) == -1


def test_deployment_errors_name_the_problem():
    with pytest.raises(EffortError, match="ends"):
        DeploymentPeriod("A", t(3), t(2))
    with pytest.raises(EffortError, match="time zone"):
        DeploymentPeriod("A", datetime(2024, 1, 1), t(2))
    with pytest.raises(EffortError, match="no deployments"):
        camera_operation([])


def test_independent_events_threshold_and_reference():
    times = [t(1, 0), t(1, 0.4), t(1, 0.8), t(1, 1.2), t(1, 3.0), t(1, 0.1)]
    st = ["A", "A", "A", "A", "A", "B"]
    sp = ["deer"] * 6
    last = independent_events(st, sp, times, 30, "last_record")
    assert [(e.station, e.n_records) for e in last] == [("A", 4), ("A", 1), ("B", 1)]
    first = independent_events(st, sp, times, 30, "event_start")
    assert [(e.station, e.n_records) for e in first] == [("A", 2), ("A", 2), ("A", 1), ("B", 1)]
    other = independent_events(["A", "A"], ["deer", "boar"], [t(1), t(1, 0.1)], 30)
    assert len(other) == 2  # different species are never one event


def test_independent_events_match_camtraprs_record_table(shared_data):
    """camtrapR's sample photos (EXIF times, station/species folders) grouped with a 60-minute rule
    from the last record give exactly its published recordTableSample (39 records)."""
    from pardus.ingest.exif import read_camera_metadata

    root = shared_data / "camtrapR-sample-data"
    photos = sorted((root / "inst/pictures/sample_images_species_dir").glob("Station*/*/*.JPG"))
    st, sp, tm = [], [], []
    for p in photos:
        if p.parent.name == "UNID":
            continue
        meta = read_camera_metadata(p.read_bytes())
        assert meta.camera_time is not None, p
        st.append(p.parent.parent.name)
        sp.append(p.parent.name)
        tm.append(meta.camera_time.replace(tzinfo=timezone(timedelta(hours=8))))
    events = independent_events(st, sp, tm, threshold_minutes=60, compare_to="last_record")
    ours = {(e.station, e.species, e.start.strftime("%Y-%m-%d %H:%M:%S")) for e in events}
    with open(root / "data_csv/recordTableSample.csv", newline="") as f:
        ref = {(r["Station"], r["Species"], r["DateTimeOriginal"]) for r in csv.DictReader(f)}
    assert len(ref) == 39
    assert ours == ref


def test_rai_and_its_ratio_estimator_se():
    trap_nights = {"A": 50.0, "B": 30.0, "C": 20.0}
    evs = independent_events(["A"] * 4 + ["B"] * 2, ["deer"] * 6, [t(i * 2) for i in range(1, 7)], 30)
    (r,) = relative_abundance(evs, trap_nights)
    assert r.events == 6 and r.trap_nights == 100.0 and r.stations_detected == 2
    assert r.rai.value == pytest.approx(6.0)
    rate = 0.06
    resid = np.array([4 - rate * 50, 2 - rate * 30, 0 - rate * 20])
    se = math.sqrt(3 / 2 * (resid**2).sum() / 100**2) * 100
    assert r.rai.se == pytest.approx(se)
    assert r.rai.lcl < 6.0 < r.rai.ucl
    z = zero_rai("tiger", 100.0, 3)
    assert z.rai.value == 0 and z.rai.ucl == pytest.approx(-math.log(0.025))
    with pytest.raises(EffortError, match="no deployment"):
        relative_abundance(independent_events(["X"], ["deer"], [t(1)]), trap_nights)
