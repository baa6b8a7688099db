"""Decoding in worker processes: same pixels as decoding here, in order, bad files reported by name."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from pardus.pipeline.decode import decode_bytes, decode_many


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (1280, 720)) -> Path:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    path.write_bytes(buf.getvalue())
    return path


def test_workers_give_the_same_pixels_in_order(tmp_path: Path) -> None:
    paths = [str(_jpeg(tmp_path / f"{i}.jpg", i)) for i in range(6)]
    here = list(decode_many(paths, 320, workers=0))
    there = list(decode_many(paths, 320, workers=2))
    assert [e for _, e in there] == [None] * 6
    for (a, _), (b, _), p in zip(here, there, paths, strict=True):
        assert a is not None and b is not None
        assert np.array_equal(a, b)
        assert np.array_equal(b, decode_bytes(Path(p).read_bytes(), 320))
        assert b.shape == (360, 640, 3)  # JPEG draft decoding halved the 1280x720 photo


def test_bad_and_missing_files_fail_alone(tmp_path: Path) -> None:
    good = _jpeg(tmp_path / "good.jpg", 1)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:200])
    out = list(decode_many([str(good), str(cut), str(tmp_path / "gone.jpg"), None, str(good)], 640, workers=2))
    assert out[0][0] is not None and out[4][0] is not None
    assert out[1][0] is None and "could not be decoded" in (out[1][1] or "")
    assert out[2][0] is None and "missing" in (out[2][1] or "")
    assert out[3][0] is None and "missing" in (out[3][1] or "")


def test_a_script_without_the_main_guard_still_decodes_everything(tmp_path: Path) -> None:
    """multiprocessing cannot start workers from an unguarded script; the photos decode here instead."""
    import subprocess
    import sys

    paths = [str(_jpeg(tmp_path / f"{i}.jpg", i)) for i in range(3)]
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pardus.pipeline.decode import decode_many\n"
        f"out = list(decode_many({paths!r}, 320, workers=2))\n"
        "print('RESULT', [None if a is None else a.shape for a, _ in out], [e for _, e in out])\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    shapes = "[(360, 640, 3), (360, 640, 3), (360, 640, 3)]"
    assert run.stdout.strip().splitlines()[-1] == f"RESULT {shapes} [None, None, None]"
    assert "decoding in the main process from now on" in run.stderr
