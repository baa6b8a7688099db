"""The season's captures (what captures.csv holds and the photos show) follow the SECR model,
with effort taken from the cameras' true working time: failed cameras catch nothing after they
die, and a paired station counts as one detector. Checked without rendering, over many seasons.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from pardus.simulate import simulate_season
from pardus.simulate.captures import half_normal
from pardus.simulate.season import _design, _leopards_and_tigers, _params, _usage
from pardus.simulate.shapes import BOAR, LEOPARD, SIKA

DAYS = 20


def _season(seed: int, **over: float):
    p = _params({"leopard_density_per_km2": 0.15, "leopard_lambda0": 0.12, "tiger_density_per_km2": 0.05,
                 "cubs": 0, "new_leopard_arrival": 0.0, **over})
    stations = _design(12, DAYS, seed, p)
    usage = _usage(stations, DAYS, p)
    animals, _visits, rows, _ = _leopards_and_tigers(stations, usage, DAYS, seed, p)
    return p, stations, usage, animals, rows


def test_usage_is_the_working_time_of_the_station() -> None:
    p, stations, usage, _, _ = _season(3)
    failed = [(k, c) for k, s in enumerate(stations) for c in s.cameras if c.failed]
    assert failed
    for k, cam in failed:
        if len(stations[k].cameras) == 1:
            day = int((cam.working_until - cam.setup).total_seconds() // 86400) + 1
            assert usage[k, day + 1:].sum() == 0 and usage[k, 1:day - 1].min() == 1.0
    assert 0 < usage[0, 0] < 1  # set up during the first day


def test_season_captures_follow_the_hazard_half_normal_with_true_usage() -> None:
    d_all, y_all, mu_all, mu_wrong = [], [], [], []
    for seed in range(25):
        p, stations, usage, animals, rows = _season(seed)
        leo = [a for a in animals if a.species == LEOPARD]
        traps = np.array([(s.x, s.y) for s in stations])
        index = {a.id: i for i, a in enumerate(leo)}
        st_index = {s.id: k for k, s in enumerate(stations)}
        y = np.zeros((len(leo), len(stations)))
        for ind, sp, _occ, det, n in rows:
            if sp == LEOPARD:
                y[index[ind], st_index[det]] += n
        xy = np.array([(a.x, a.y) for a in leo])
        d = np.hypot(xy[:, None, 0] - traps[None, :, 0], xy[:, None, 1] - traps[None, :, 1])
        effort = usage.sum(axis=1)[None, :]
        d_all.append(d.ravel())
        y_all.append(y.ravel())
        mu_all.append((half_normal(d, p.leopard_lambda0, p.leopard_sigma_m) * effort).ravel())
        mu_wrong.append((half_normal(d, p.leopard_lambda0, p.leopard_sigma_m * 0.85) * effort).ravel())
    d, y, mu, wrong = (np.concatenate(v) for v in (d_all, y_all, mu_all, mu_wrong))
    edges = np.linspace(0, 3 * 2500, 11)
    idx = np.digitize(d, edges) - 1

    def chi2(m: np.ndarray) -> tuple[float, int]:
        total, bins = 0.0, 0
        for b in range(len(edges) - 1):
            sel = idx == b
            if m[sel].sum() >= 5:
                total += (y[sel].sum() - m[sel].sum()) ** 2 / m[sel].sum()
                bins += 1
        return total, bins

    c, bins = chi2(mu)
    assert bins >= 6 and stats.chi2.sf(c, bins) > 0.001, (c, bins)
    c_wrong, _ = chi2(wrong)
    assert stats.chi2.sf(c_wrong, bins) < 1e-4, c_wrong


def test_more_prey_and_blanks_do_not_change_the_cats(tmp_path) -> None:
    """Each concern draws from its own random stream: busier cards, same leopards and captures."""
    kw = {"cameras": 3, "days": 6, "seed": 5, "frame_size": (160, 90), "workers": 1}
    quiet = simulate_season(tmp_path / "quiet", **kw)
    busy = simulate_season(tmp_path / "busy", blank_rate=0.6, prey_rates={SIKA: 1.5, BOAR: 1.0}, **kw)
    assert busy.images > quiet.images
    for name in ("captures.csv", "animals.csv", "usage.csv", "effort.csv"):
        assert (quiet.truth / name).read_bytes() == (busy.truth / name).read_bytes(), name
