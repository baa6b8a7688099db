"""The processor choice (issue 21): the CPU here, where no GPU is; a setting that forces or insists."""

from __future__ import annotations

import pytest

from pardus.models.device import ort_providers, torch_device


def test_no_gpu_here_means_the_cpu_and_insisting_on_one_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("PARDUS_DEVICE", "auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device() == expected
    monkeypatch.setenv("PARDUS_DEVICE", "cpu")
    assert torch_device() == "cpu" and ort_providers() == ["CPUExecutionProvider"]
    monkeypatch.setenv("PARDUS_DEVICE", "tpu")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        torch_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("PARDUS_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="sees no GPU"):
            torch_device()
