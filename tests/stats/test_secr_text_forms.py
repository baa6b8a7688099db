"""Issue 20: secr's captdata in both of read.capthist's text forms reads back the same (so it gives the
published fit, checked on the XY form in test_stats_secr_captdata.py); bad files end in SecrError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pardus.stats.secr import SecrError, read_secr_text


def _captdata(shared_data: Path) -> Path:
    return shared_data / "secr-captdata"


def test_trapid_form_with_text_ids_reads_like_the_xy_form(shared_data: Path, tmp_path: Path) -> None:
    d = _captdata(shared_data)
    counts, xy, ids = read_secr_text(d / "capt.txt", d / "trap.txt")
    assert counts.sum() > 0 and read_secr_text(d / "capt.txt", d / "trap.txt", fmt="XY")[0].tolist() == counts.tolist()
    # the same captures, detectors named: text trap ids, a comment and a usage column after '/'
    names = {}
    trap_lines = ["# trapID x y / usage"]
    for line in (d / "trap.txt").read_text().splitlines():
        if line.split():
            k, x, y = line.split()[:3]
            names[(x, y)] = f"T{k}"
            trap_lines.append(f"T{k} {x} {y} / 11111")
    (tmp_path / "trap.txt").write_text("\n".join(trap_lines) + "\n")
    capt = []
    for line in (d / "capt.txt").read_text().splitlines():
        p = line.split()
        if p:
            capt.append(" ".join([p[0], p[1], p[2], names[(p[3], p[4])], *p[5:]]))
    (tmp_path / "capt.txt").write_text("\n".join(capt) + "\n")
    for fmt in ("auto", "trapID"):
        c2, xy2, ids2 = read_secr_text(tmp_path / "capt.txt", tmp_path / "trap.txt", fmt=fmt)
        assert np.array_equal(c2, counts) and np.array_equal(xy2, xy) and ids2 == ids


def test_bad_secr_files_are_named_not_tracebacks(tmp_path: Path) -> None:
    (tmp_path / "trap.txt").write_text("A 0 0\nB 10 0\n")
    cases = {
        "1 1 1 C": "detector 'C' is not in the trap file",
        "1 1 x A": "occasion 'x'",
        "1 1 1": "expected",
    }
    for text, msg in cases.items():
        (tmp_path / "capt.txt").write_text(text + "\n")
        with pytest.raises(SecrError, match=msg):
            read_secr_text(tmp_path / "capt.txt", tmp_path / "trap.txt")
    (tmp_path / "traps2.txt").write_text("A 0 zero\n")
    with pytest.raises(SecrError, match="line 1: y 'zero' is not a number"):
        read_secr_text(tmp_path / "capt.txt", tmp_path / "traps2.txt")
    with pytest.raises(SecrError, match="fmt"):
        read_secr_text(tmp_path / "capt.txt", tmp_path / "trap.txt", fmt="xy")


_token = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00\r\n"), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_token, max_size=7), max_size=6), st.lists(st.lists(_token, max_size=5), max_size=4),
       st.sampled_from(["auto", "XY", "trapID"]))
def test_any_text_reads_or_ends_in_secr_error(tmp_path_factory: pytest.TempPathFactory, capt: list[list[str]],
                                              traps: list[list[str]], fmt: str) -> None:
    d = tmp_path_factory.mktemp("secr")
    (d / "capt.txt").write_text("\n".join(" ".join(r) for r in capt), encoding="utf-8")
    (d / "trap.txt").write_text("\n".join(" ".join(r) for r in traps), encoding="utf-8")
    try:
        counts, xy, ids = read_secr_text(d / "capt.txt", d / "trap.txt", fmt=fmt)
    except SecrError as exc:
        assert str(exc)
    else:
        assert counts.shape == (len(ids), counts.shape[1], len(xy)) and counts.sum() >= len(ids)
