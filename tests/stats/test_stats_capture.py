"""Capture histories from identifications; MNKA and new individuals by year."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from pardus.stats.capture import CaptureError, capture_histories, individuals_by_year
from pardus.stats.effort import DeploymentPeriod, camera_operation

VLAD = timezone(timedelta(hours=10))


def t(day: int, hour: float = 22.0) -> datetime:
    return datetime(2024, 3, 1, tzinfo=VLAD) + timedelta(days=day - 1, hours=hour)


def test_capture_history_bins_by_occasion_and_station():
    deps = [
        DeploymentPeriod("S1", t(1, 0), t(15, 0)),
        DeploymentPeriod("S2", t(1, 0), t(15, 0), gaps=((t(8, 0), t(15, 0)),)),  # out for occasion 2
    ]
    op = camera_operation(deps, occasion_days=7)
    ids = ["SC_026", "SC_026", "SC_031", "SC_026", "SC_031", "SC_040", "SC_040"]
    st = ["S1", "S1", "S2", "S2", "S2", "S9", "S2"]
    tm = [t(1), t(2), t(3), t(9), t(10), t(4), t(20)]
    ch = capture_histories(ids, st, tm, op)
    assert ch.individuals == ("SC_026", "SC_031")
    assert ch.counts.shape == (2, 2, 2)
    np.testing.assert_array_equal(ch.counts[0], [[2, 0], [0, 0]])  # days 9 and 10 at S2: no effort
    np.testing.assert_array_equal(ch.counts[1], [[0, 1], [0, 0]])
    assert ch.no_effort == 2 and ch.outside == 2  # S9 unknown, day 20 after the survey
    np.testing.assert_array_equal(ch.histories(), [[1, 0], [1, 0]])
    with pytest.raises(CaptureError, match="time zone"):
        capture_histories(["a"], ["S1"], [datetime(2024, 3, 2)], op)


def test_mnka_counts_animals_known_alive_but_missed():
    """Krebs (1966): seen in the year, or seen both before and after it."""
    rows = [("A", 2019), ("A", 2021), ("B", 2019), ("B", 2020), ("C", 2020), ("C", 2021), ("D", 2021)]
    years = individuals_by_year([r[0] for r in rows], [r[1] for r in rows])
    by = {y.year: y for y in years}
    assert [y.year for y in years] == [2019, 2020, 2021]
    assert (by[2019].seen, by[2019].mnka, by[2019].new) == (2, 2, 2)
    assert (by[2020].seen, by[2020].mnka, by[2020].new) == (2, 3, 1)  # A was missed in 2020 but alive
    assert by[2020].known_alive_not_seen == ("A",)
    assert (by[2021].seen, by[2021].mnka, by[2021].new) == (3, 3, 1)
    assert by[2019].first_year_of_records and not by[2020].first_year_of_records
    assert individuals_by_year([], []) == []
