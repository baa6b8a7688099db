"""Which processor runs the models: the GPU where PyTorch or onnxruntime sees one, else the CPU.

``PARDUS_DEVICE=cpu`` forces the CPU (a shared GPU, a driver problem), ``cuda`` insists on the GPU.
These machines have no GPU, so only the CPU path is exercised by the tests; the GPU path is kept to
these two functions and the few lines that call them (the YOLOX detector and the ONNX embedders
and field detectors), and MegaDetector v6's graph interpreter stays on the CPU.
"""

from __future__ import annotations

import os


def _wanted() -> str:
    value = os.environ.get("PARDUS_DEVICE", "auto").strip().lower()
    if value not in ("auto", "cpu", "cuda"):
        raise ValueError(f"PARDUS_DEVICE must be auto, cpu or cuda, not {value[:20]!r}")
    return value


def torch_device() -> str:
    """"cuda" when a GPU is there and not refused, else "cpu"."""
    wanted = _wanted()
    if wanted == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        raise RuntimeError("PARDUS_DEVICE=cuda but PyTorch sees no GPU (a CPU build, or no driver)")
    return "cpu"


def ort_providers() -> list[str]:
    """onnxruntime's providers, the GPU's first when its build has one and it is not refused."""
    if _wanted() != "cpu":
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
