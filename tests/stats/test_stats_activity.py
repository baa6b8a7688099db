"""Activity densities, overlap and sun time against known truth and almanac values."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import integrate, stats

from pardus.stats.activity import (
    TWO_PI,
    ActivityError,
    activity_density,
    bandwidth,
    clock_radians,
    dhat1,
    dhat4,
    kernel_density,
    overlap,
    solar_times,
    sunrise_sunset,
)


def _minutes(dt: datetime) -> float:
    return dt.hour * 60 + dt.minute + dt.second / 60


@pytest.mark.parametrize(
    ("day", "rise", "set_"),
    [
        (date(2024, 6, 21), "03:43", "20:21"),  # London (51.507 N, 0.128 W): 04:43 and 21:21 BST
        (date(2024, 12, 21), "08:04", "15:53"),  # 08:04 and 15:53 GMT
    ],
)
def test_sunrise_sunset_london(day, rise, set_):
    sr, ss = sunrise_sunset(day, 51.5074, -0.1278)
    for got, want in ((sr, rise), (ss, set_)):
        h, m = map(int, want.split(":"))
        assert abs(_minutes(got) - (h * 60 + m)) <= 2


def test_equinox_day_is_a_little_over_twelve_hours_and_polar_night_has_no_sunrise():
    sr, ss = sunrise_sunset(date(2024, 3, 20), 0.0, 0.0)
    length = (ss - sr).total_seconds() / 3600
    assert 12.0 < length < 12.2  # refraction and the sun's radius add ~7 minutes
    assert sunrise_sunset(date(2024, 12, 21), 80.0, 0.0) == (None, None)


def test_solar_times_anchor_sunrise_and_sunset():
    lat, lon = 43.1, 131.9  # Land of the Leopard
    sr, ss = sunrise_sunset(date(2024, 6, 21), lat, lon)
    mid_day = sr + (ss - sr) / 2
    got = solar_times([sr + timedelta(seconds=1), mid_day, ss - timedelta(seconds=1)], lat, lon)
    np.testing.assert_allclose(got, [math.pi / 2, math.pi, 3 * math.pi / 2], atol=1e-3)
    night = solar_times([ss + timedelta(hours=1)], lat, lon)[0]
    assert 3 * math.pi / 2 < night < TWO_PI


def test_clock_radians_uses_local_time():
    t = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)  # 22:00 in Vladivostok
    assert clock_radians([t], 600)[0] == pytest.approx(22 / 24 * TWO_PI)
    assert clock_radians([t.astimezone(timezone(timedelta(hours=3)))], 600)[0] == pytest.approx(22 / 24 * TWO_PI)


def test_kernel_density_integrates_to_one_and_bandwidth_grows_with_n():
    rng = np.random.default_rng(0)
    x = rng.vonmises(1.0, 3.0, 200) % TWO_PI
    bw = bandwidth(x)
    total, _ = integrate.quad(lambda a: float(kernel_density(x, np.array([a]), bw)[0]), 0, TWO_PI, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert bandwidth(rng.vonmises(1.0, 3.0, 2000)) > bw  # more data, less smoothing
    d = activity_density(x)
    assert d.n == 200 and d.density.shape == d.grid.shape


def _true_overlap(mu_a: float, k_a: float, mu_b: float, k_b: float) -> float:
    g = np.linspace(0, TWO_PI, 40001)[:-1]
    f = np.minimum(stats.vonmises.pdf(g, k_a, loc=mu_a), stats.vonmises.pdf(g, k_b, loc=mu_b))
    return float(f.sum() * TWO_PI / g.size)


def test_overlap_estimators_recover_the_true_coefficient():
    rng = np.random.default_rng(5)
    truth = _true_overlap(1.5, 2.0, 3.0, 1.0)
    a = rng.vonmises(1.5, 2.0, 400) % TWO_PI
    b = rng.vonmises(3.0, 1.0, 400) % TWO_PI
    assert dhat4(a, b) == pytest.approx(truth, abs=0.05)
    assert dhat1(a, b) == pytest.approx(truth, abs=0.05)
    same = rng.vonmises(1.0, 2.0, 300) % TWO_PI
    assert dhat4(same, same) == pytest.approx(1.0)


def test_overlap_picks_dhat1_for_small_samples_and_its_interval_covers_truth():
    rng = np.random.default_rng(8)
    truth = _true_overlap(math.pi / 2, 1.5, math.pi, 1.5)
    small = overlap(
        rng.vonmises(math.pi / 2, 1.5, 40) % TWO_PI, rng.vonmises(math.pi, 1.5, 60) % TWO_PI, n_boot=200, rng=rng
    )
    assert small.estimator == "Dhat1"
    assert small.estimate.lcl < truth < small.estimate.ucl
    big = overlap(
        rng.vonmises(math.pi / 2, 1.5, 100) % TWO_PI, rng.vonmises(math.pi, 1.5, 120) % TWO_PI, n_boot=100, rng=rng
    )
    assert big.estimator == "Dhat4"
    assert 0 <= big.estimate.lcl < big.estimate.value < big.estimate.ucl <= 1
    with pytest.raises(ActivityError, match="at least 2"):
        overlap(np.array([1.0]), np.array([1.0, 2.0]))


def test_large_samples_take_the_binned_grid_density_and_agree_with_the_direct_sum():
    """The FFT path for big samples (bench/store_scale.py: the direct sum was 95% of a report at
    100,000 photos) gives the direct sum's densities to 1e-3 and the same overlap to 3 decimals."""
    import numpy as np

    from pardus.stats.activity import BINNED_FROM, TWO_PI, _dhat4_batch, _kde, _kde_on_grid

    rng = np.random.default_rng(7)
    x = np.mod(rng.vonmises(1.0, 1.5, size=(2, 3 * BINNED_FROM)), TWO_PI)
    c = np.array([4.0, 25.0])
    direct = _kde(x, np.arange(128) * TWO_PI / 128, c)
    binned = _kde_on_grid(x, 128, c)
    assert np.max(np.abs(direct - binned) / np.maximum(direct, 1e-3)) < 2e-3
    y = np.mod(rng.vonmises(2.5, 1.0, size=(1, 2 * BINNED_FROM)), TWO_PI)
    import pardus.stats.activity as act

    fast = float(_dhat4_batch(x[:1], y)[0])
    old, act.BINNED_FROM = act.BINNED_FROM, 10**9
    try:
        slow = float(_dhat4_batch(x[:1], y)[0])
    finally:
        act.BINNED_FROM = old
    assert abs(fast - slow) < 1e-3


def test_big_samples_bootstrap_on_bin_counts_like_the_record_by_record_bootstrap():
    """A million-photo plot has 10^5 records a species; its overlap bootstrap draws bin counts
    (multinomial from the kernel density) instead of every record. The estimate from counts equals
    the record path's to 1e-3, and the interval matches the record-by-record bootstrap's."""
    import pardus.stats.activity as act

    rng = np.random.default_rng(11)
    a = rng.vonmises(1.0, 1.2, 3000) % TWO_PI
    b = rng.vonmises(2.2, 0.8, 2500) % TWO_PI
    from_counts = float(act._binned_dhat4(act._bin_counts(a)[None, :], act._bin_counts(b)[None, :])[0])
    assert from_counts == pytest.approx(float(act._dhat4_batch(a[None, :], b[None, :])[0]), abs=1e-3)
    binned = overlap(a, b, n_boot=400, rng=np.random.default_rng(1))
    old, act.BINNED_FROM = act.BINNED_FROM, 10**9  # force the record-by-record bootstrap
    try:
        direct = overlap(a, b, n_boot=400, rng=np.random.default_rng(1))
    finally:
        act.BINNED_FROM = old
    assert binned.estimate.value == pytest.approx(direct.estimate.value, abs=1e-4)
    assert binned.estimate.se == pytest.approx(direct.estimate.se, rel=0.2)
    assert binned.estimate.lcl == pytest.approx(direct.estimate.lcl, abs=0.01)
    assert binned.estimate.ucl == pytest.approx(direct.estimate.ucl, abs=0.01)
    truth = _true_overlap(1.0, 1.2, 2.2, 0.8)
    assert binned.estimate.lcl < truth < binned.estimate.ucl
