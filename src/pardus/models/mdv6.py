"""MegaDetector v6 (``MDV6-yolov10-c``) on the CPU, from the only MDv6 file these machines have:
a full-integer TFLite compiled for the Coral Edge TPU.

The file (``MDV6-yolov10-c_full_integer_quant_edgetpu.tflite``, see the PROVENANCE.md beside it)
is genuine MegaDetector v6: YOLOv10-c, int8, classes animal / person / vehicle, input
``[1, 640, 640, 3]`` RGB in 0..1. 506 of its 507 operators are ordinary TFLite int8 operators,
which :mod:`pardus.models.tflite_graph` reads and runs in float. The first one is an
``edgetpu-custom-op``: the first layer (PAD 1 -> CONV_2D 3->16, 3x3, stride 2 -> LOGISTIC)
compiled into an Edge TPU executable, so its 448 parameters are not ordinary tensors.

How they are recovered (:func:`recover_first_layer`), all from the file itself:

- The custom op's options are a FlexBuffer map whose value is a DarwiNN ``Package`` flatbuffer
  (identifier ``DWN1``, public schema ``executable.fbs`` of libedgetpu). Its ``MultiExecutable``
  holds two executables; the ``PARAMETER_CACHING`` one carries the parameter stream (640 bytes).
- Layout, found by inspection and checked on photos: 16 little-endian int32 biases (one per output
  channel), then for each of the 9 kernel taps in row-major order (ky, kx) a row of 16 output
  channels x 4 lanes, the lanes being the input channels R, G, B and one zero pad. Weight bytes are
  stored with the sign bit flipped (``byte ^ 0x80`` is the int8 weight). Checks that hold: every pad
  lane is 0, and the largest |weight| is exactly 127 once (per-tensor symmetric int8, as every other
  convolution in this file is). The transposed tap order, or BGR, score the animals lower on photos
  no evaluation uses (docs/detection.md).
- Not in the parameter stream: the weight scale ``s_w`` (a per-tensor float). The bias is in units
  of ``s_in * s_w`` (``s_in = 1/255``), so one number is missing. It was fitted by a 1-D search on
  photos left out of every evaluation (``bench/mdv6_fit.py``: the camtrap-dp heron frames with
  their human boxes). The result is consistent with the conv output's calibrated quantization
  range in the file (-47.0 .. 57.2): at 0.18 the fit photos give -37.7 .. 48.9, inside it.
  The value is :data:`WEIGHT_SCALE`; ``pardus models fit-mdv6`` writes it with the parameters.

The float conv is then ``y = s_w * (W_int * x + b_int / 255)`` and its sigmoid feeds the rest of the
graph in place of the custom op's two outputs. The NMS-free post-processing the file ends with
(top-k and gathers over int64 indices) is done here in numpy from the decoded head tensor
``[1, 8400, 7]`` (x1, y1, x2, y2 normalised to the 640 canvas, then three class scores).
"""

from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pardus.models.detectors import Box
from pardus.models.registry import MEGADETECTOR_V6_C, ModelInfo, ModelUnavailableError
from pardus.models.tflite_graph import Graph, read_tflite, root_table

MDV6_CATEGORIES = ("animal", "person", "vehicle")
# Fitted on the camtrap-dp-example heron frames (left out of every evaluation) by bench/mdv6_fit.py:
# the mean matched score is flat within 0.01 from 0.16 to 0.185 and highest at 0.18.
WEIGHT_SCALE = 0.18
FIRST_LAYER_FILE = "mdv6-yolov10-c-first-layer.npz"
HEAD_TENSOR_SHAPE = (1, 8400, 7)


class RecoveryError(ValueError):
    """The Edge TPU first layer could not be read out of the file in the layout we know."""


@dataclass(frozen=True)
class FirstLayer:
    """The Edge TPU layer's parameters: int8 weights ``[out, in, kh, kw]``, int32 biases, and the scale."""

    weights: np.ndarray
    bias: np.ndarray
    weight_scale: float
    input_scale: float
    stride: int
    pad: int
    source_sha256: str

    def float_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Float conv weight and bias: ``y = s_w * W * x + s_w * s_in * b`` with x in 0..1."""
        w = self.weights.astype(np.float32) * self.weight_scale
        b = self.bias.astype(np.float32) * self.weight_scale * self.input_scale
        return w, b

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, weights=self.weights, bias=self.bias, weight_scale=self.weight_scale,
                 input_scale=self.input_scale, stride=self.stride, pad=self.pad, source_sha256=self.source_sha256)

    @classmethod
    def load(cls, path: Path) -> FirstLayer:
        z = np.load(path)
        return cls(z["weights"], z["bias"], float(z["weight_scale"]), float(z["input_scale"]), int(z["stride"]),
                   int(z["pad"]), str(z["source_sha256"]))


def _edgetpu_parameters(custom_options: bytes) -> bytes:
    """The parameter stream of the PARAMETER_CACHING (or STAND_ALONE) executable in the custom op."""
    at = custom_options.find(b"DWN1")
    if at < 4:
        raise RecoveryError("no DarwiNN package (DWN1) in the custom op's options")
    pkg = custom_options[at - 4:]
    package = root_table(pkg)
    multi = package.raw(1)  # serialized_multi_executable
    if not multi:
        raise RecoveryError("the Edge TPU package has no executables")
    found = []
    for exe_bytes in _strings(multi):
        exe = root_table(exe_bytes)
        kind = int(exe.scalar(13, "h"))  # 0 STAND_ALONE, 1 PARAMETER_CACHING, 2 EXECUTION_ONLY
        params = exe.raw(6)
        if params and kind in (0, 1):
            found.append(params)
    if len(found) != 1:
        raise RecoveryError(f"expected one executable with parameters, found {len(found)}")
    return found[0]


def _strings(buf: bytes) -> list[bytes]:
    """``serialized_executables: [string]`` of a MultiExecutable table."""
    t = root_table(buf)
    vec = t._target(0)  # noqa: SLF001 - the reader's own helper, same package
    if vec is None:
        return []
    n = struct.unpack_from("<I", buf, vec)[0]
    out = []
    for k in range(n):
        p = vec + 4 + 4 * k
        s = p + struct.unpack_from("<I", buf, p)[0]
        size = struct.unpack_from("<I", buf, s)[0]
        out.append(buf[s + 4:s + 4 + size])
    return out


def _custom_op(graph: Graph):  # noqa: ANN202 - returns the Operator dataclass
    ops = [op for op in graph.operators if op.op == "CUSTOM"]
    if len(ops) != 1 or ops[0].custom_code != "edgetpu-custom-op":
        raise RecoveryError(f"expected exactly one edgetpu-custom-op, found {[o.custom_code for o in ops]}")
    return ops[0]


def recover_first_layer(path: Path, weight_scale: float = WEIGHT_SCALE, graph: Graph | None = None) -> FirstLayer:
    """Read the 432 int8 weights and 16 int32 biases of the Edge TPU first layer out of the file."""
    graph = graph or read_tflite(path)
    op = _custom_op(graph)
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    cin, cout = x.shape[-1], y.shape[-1]
    stride = x.shape[1] // y.shape[1]
    k = 3
    params = _edgetpu_parameters(op.custom_options)
    lanes = 4
    if cin > lanes or len(params) != 4 * cout + k * k * cout * lanes:
        raise RecoveryError(f"parameter stream of {len(params)} bytes does not fit a {k}x{k} {cin}->{cout} conv")
    bias = np.frombuffer(params, "<i4", cout).copy()
    raw = np.frombuffer(params, np.uint8, offset=4 * cout) ^ 0x80
    w = raw.view(np.int8).reshape(k, k, cout, lanes)
    if np.any(w[..., cin:]):
        raise RecoveryError("the pad lanes of the weight rows are not zero: unknown layout")
    w = w[..., :cin]
    if int(np.abs(w.astype(np.int16)).max()) != 127:
        raise RecoveryError("no weight reaches |127|: not per-tensor symmetric int8 in the layout we know")
    weights = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # [out, in, ky, kx]
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return FirstLayer(weights, bias, float(weight_scale), float(x.scale[0]), stride, (k - 1) // 2, sha)


def ready(models_dir: Path | None) -> bool:
    """Whether `pardus models fit-mdv6` (or PARDUS_MDV6_PATH with its layer) made MDv6 runnable here,
    without loading it: the detect stage's "auto" choice asks this."""
    from pardus.models.registry import MEGADETECTOR_V6_C, ModelUnavailableError

    try:
        tflite = MEGADETECTOR_V6_C.weights_path(models_dir)
    except ModelUnavailableError:
        return False
    return first_layer_path(tflite).is_file() or (models_dir is not None and (models_dir / FIRST_LAYER_FILE).is_file())


def first_layer_path(tflite: Path) -> Path:
    """Where `pardus models fit-mdv6` writes the recovered layer: beside the model in the models dir."""
    return tflite.parent / FIRST_LAYER_FILE


class MegaDetectorV6:
    """MegaDetector v6 compact (YOLOv10-c) in float PyTorch; ``detect(rgb) -> list[Box]``.

    ``tflite`` is the Edge TPU file; ``first_layer`` the recovered layer (``pardus models fit-mdv6``
    writes it to ``<data dir>/models``). Photos are letterboxed to 640 px (centred, grey 114, as
    Ultralytics validates). The head is NMS-free (one-to-one assignment), so boxes are only
    thresholded; a light class-wise NMS (``iou``) removes the rare near-duplicate.
    """

    def __init__(self, tflite: Path, first_layer: FirstLayer | Path | None = None, min_score: float = 0.05,
                 iou: float = 0.6, threads: int | None = None, info: ModelInfo = MEGADETECTOR_V6_C,
                 fake_quant: bool = False) -> None:
        import torch
        import torch.nn.functional as F

        from pardus.models.tflite_graph import FloatGraph

        self.info = info
        self.size = 640
        self.min_score = min_score
        self.iou = iou
        graph = read_tflite(tflite)
        if first_layer is None:
            first_layer = first_layer_path(Path(tflite))
        if isinstance(first_layer, Path) and not first_layer.is_file():
            raise ModelUnavailableError(f"the recovered first layer {first_layer} is missing: run "
                                        f"`pardus models fit-mdv6 {tflite}`")
        layer = first_layer if isinstance(first_layer, FirstLayer) else FirstLayer.load(first_layer)
        if layer.source_sha256 != hashlib.sha256(Path(tflite).read_bytes()).hexdigest():
            raise ModelUnavailableError(f"the recovered first layer was made from another file than {tflite}: "
                                        f"run `pardus models fit-mdv6 {tflite}` again")
        self.first_layer = layer
        w, b = layer.float_params()
        self.weight = torch.from_numpy(w)
        self.bias = torch.from_numpy(b)
        op = _custom_op(graph)
        pad, stride = layer.pad, layer.stride

        def conv(x: torch.Tensor) -> torch.Tensor:
            y = F.conv2d(F.pad(x.permute(0, 3, 1, 2), (pad, pad, pad, pad)), self.weight, self.bias, stride)
            return y.permute(0, 2, 3, 1)

        cache: dict[str, torch.Tensor] = {}

        def conv_out(x: torch.Tensor) -> torch.Tensor:
            cache["y"] = conv(x)
            return cache["y"]

        def sigmoid_out(x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(cache.pop("y") if "y" in cache else conv(x))

        head = [t.index for t in graph.tensors if t.shape == HEAD_TENSOR_SHAPE]
        if len(head) != 1:
            raise RecoveryError(f"expected one decoded head tensor of shape {HEAD_TENSOR_SHAPE}, found {len(head)}")
        self.graph = FloatGraph(graph, stop=head, overrides={op.outputs[0]: conv_out, op.outputs[1]: sigmoid_out},
                                fake_quant=fake_quant)
        if threads:
            torch.set_num_threads(threads)
        self._lock = threading.Lock()

    @classmethod
    def installed(cls, models_dir: Path | None, **kwargs: object) -> MegaDetectorV6:
        """The model `pardus models fit-mdv6` put in ``models_dir`` (or the file ``PARDUS_MDV6_PATH``
        names, with its recovered layer beside it); raises ModelUnavailableError saying what to run."""
        tflite = MEGADETECTOR_V6_C.weights_path(models_dir)
        layer = first_layer_path(tflite)
        if models_dir is not None and (models_dir / FIRST_LAYER_FILE).is_file():
            layer = models_dir / FIRST_LAYER_FILE  # fit-mdv6 writes here even when PARDUS_MDV6_PATH is elsewhere
        return cls(tflite, layer, **kwargs)  # type: ignore[arg-type]

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int], tuple[int, int]]:
        """Centred letterbox to 640 on grey 114, RGB in 0..1 (NHWC, as the TFLite input)."""
        import cv2

        h, w = rgb.shape[:2]
        r = min(self.size / h, self.size / w)
        nh, nw = max(1, round(h * r)), max(1, round(w * r))
        top, left = (self.size - nh) // 2, (self.size - nw) // 2
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        canvas[top:top + nh, left:left + nw] = cv2.resize(
            rgb, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        return canvas.astype(np.float32) / 255.0, r, (left, top), (w, h)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The head rows ``[8400, 7]`` for one prepared canvas."""
        import torch

        with self._lock, torch.inference_mode():
            (out,) = self.graph(torch.from_numpy(x)[None])
        return out[0].numpy()

    def detect(self, rgb: np.ndarray) -> list[Box]:
        x, r, (left, top), (w, h) = self.prepare(rgb)
        return self.decode(self.raw(x), r, left, top, w, h)

    def decode(self, rows: np.ndarray, r: float, left: int, top: int, w: int, h: int) -> list[Box]:
        import cv2

        cls = rows[:, 4:]
        best = cls.argmax(1)
        score = cls[np.arange(len(cls)), best]
        keep = np.nonzero(score >= self.min_score)[0]
        keep = keep[np.argsort(-score[keep])][:300]
        if not len(keep):
            return []
        xyxy = rows[keep, :4] * self.size
        xywh = np.hstack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
        idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), score[keep].tolist(), best[keep].tolist(), self.min_score,
                                      self.iou)
        boxes = []
        for i in np.asarray(idx, int).reshape(-1):
            x1, y1 = max(0.0, float(xyxy[i, 0] - left) / r), max(0.0, float(xyxy[i, 1] - top) / r)
            x2, y2 = min(float(w), float(xyxy[i, 2] - left) / r), min(float(h), float(xyxy[i, 3] - top) / r)
            if x2 > x1 and y2 > y1:
                cat = MDV6_CATEGORIES[int(best[keep[i]])]
                boxes.append(Box(cat, float(score[keep[i]]), x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h, cat,
                                 self.info.key))
        return sorted(boxes, key=lambda b: -b.score)
