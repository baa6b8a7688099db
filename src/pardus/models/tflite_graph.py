"""A TensorFlow Lite model read without TensorFlow, and run in float with PyTorch.

Why: the MegaDetector v6 file Pardus can get (see :mod:`pardus.models.mdv6`) is a full-integer
TFLite flatbuffer. No TFLite runtime installs on the CPU torch machines here, and the file's first
layer is an Edge TPU custom op that no CPU runtime can execute anyway. So we read the flatbuffer
ourselves (the layout is the public ``schema.fbs`` of TFLite: tables with vtables, little-endian),
dequantize every constant tensor (``real = scale * (q - zero_point)``) and run the graph in float32
with PyTorch ops. Running in float leaves out the int8 rounding of activations; it is the network
the int8 file approximates, and it is differentiable, which re-fitting a layer needs.

Only the operators that MegaDetector v6 (YOLOv10-c) uses are implemented; an unknown one raises
:class:`UnsupportedOpError` naming it. Tensors are kept in TFLite's own NHWC layout; convolutions
and pools permute to a channels-last NCHW *view* (no copy) for torch and back.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# TFLite BuiltinOperator codes (schema.fbs) of the operators implemented here.
OPS = {
    0: "ADD", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED",
    14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 22: "RESHAPE", 25: "SOFTMAX", 32: "CUSTOM", 34: "PAD",
    39: "TRANSPOSE", 41: "SUB", 45: "STRIDED_SLICE", 49: "SPLIT", 53: "CAST", 58: "LESS", 36: "GATHER",
    69: "TILE", 48: "TOPK_V2", 82: "REDUCE_MAX", 83: "PACK", 95: "FLOOR_MOD", 97: "RESIZE_NEAREST_NEIGHBOR",
    107: "GATHER_ND", 114: "QUANTIZE",
}
# TensorType → numpy dtype.
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16, 9: np.int8}


class UnsupportedOpError(NotImplementedError):
    """The graph uses an operator this reader does not implement."""


class _Table:
    """One flatbuffer table: field ``i`` is found through the table's vtable."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        vlen = struct.unpack_from("<H", buf, vt)[0]
        self.offsets = struct.unpack_from(f"<{(vlen - 4) // 2}H", buf, vt + 4)

    def _at(self, i: int) -> int | None:
        if i >= len(self.offsets) or self.offsets[i] == 0:
            return None
        return self.pos + self.offsets[i]

    def scalar(self, i: int, fmt: str, default: float | int = 0) -> float | int:
        p = self._at(i)
        return default if p is None else struct.unpack_from("<" + fmt, self.buf, p)[0]

    def _target(self, i: int) -> int | None:
        p = self._at(i)
        return None if p is None else p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, i: int) -> _Table | None:
        t = self._target(i)
        return None if t is None else _Table(self.buf, t)

    def vector(self, i: int, dtype: str) -> np.ndarray:
        t = self._target(i)
        if t is None:
            return np.zeros(0, dtype)
        n = struct.unpack_from("<I", self.buf, t)[0]
        return np.frombuffer(self.buf, dtype, n, t + 4)

    def raw(self, i: int) -> bytes:
        t = self._target(i)
        if t is None:
            return b""
        n = struct.unpack_from("<I", self.buf, t)[0]
        return self.buf[t + 4:t + 4 + n]

    def string(self, i: int) -> str:
        return self.raw(i).decode("utf-8", "replace")

    def tables(self, i: int) -> list[_Table]:
        t = self._target(i)
        if t is None:
            return []
        n = struct.unpack_from("<I", self.buf, t)[0]
        out = []
        for k in range(n):
            p = t + 4 + 4 * k
            out.append(_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out


def root_table(buf: bytes) -> _Table:
    """The root table of a flatbuffer (used for TFLite models and for the Edge TPU package)."""
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    scale: np.ndarray
    zero_point: np.ndarray
    data: np.ndarray | None  # constant contents (raw, still quantized), or None for activations

    def dequantized(self) -> np.ndarray:
        """The constant as float32 (``scale * (q - zero_point)``; integer index tensors stay integers)."""
        assert self.data is not None
        if self.scale.size and self.dtype in (np.int8, np.uint8, np.int16, np.int32):
            q = self.data.astype(np.float32)
            if self.scale.size > 1:  # per-channel (axis 0 for conv weights)
                bshape = (-1,) + (1,) * (q.ndim - 1)
                return (q - self.zero_point.reshape(bshape)) * self.scale.reshape(bshape)
            return (q - float(self.zero_point[0] if self.zero_point.size else 0)) * float(self.scale[0])
        return self.data


@dataclass
class Operator:
    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: _Table | None
    custom_code: str = ""
    custom_options: bytes = b""


@dataclass
class Graph:
    """The first subgraph of a TFLite model: tensors, operators in execution order, inputs, outputs."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    unknown_ops: list[str] = field(default_factory=list)


def read_tflite(path: Path | str) -> Graph:
    """Parse a ``.tflite`` flatbuffer (the Ultralytics metadata zip appended after it is ignored)."""
    buf = Path(path).read_bytes()
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
    model = root_table(buf)
    codes = []
    for oc in model.tables(1):
        code = max(int(oc.scalar(0, "b")), int(oc.scalar(3, "i")))
        codes.append((code, oc.string(1)))
    buffers = model.tables(4)
    sub = model.tables(2)[0]
    tensors = []
    for i, t in enumerate(sub.tables(0)):
        dtype = DTYPES.get(int(t.scalar(1, "b")), np.uint8)
        shape = tuple(int(s) for s in t.vector(0, "<i4"))
        q = t.table(4)
        scale = q.vector(2, "<f4").astype(np.float32) if q else np.zeros(0, np.float32)
        zp = q.vector(3, "<i8").astype(np.int64) if q else np.zeros(0, np.int64)
        b = buffers[int(t.scalar(2, "I"))].raw(0) if buffers else b""
        data = np.frombuffer(b, dtype).reshape(shape).copy() if b else None
        tensors.append(Tensor(i, t.string(3), shape, dtype, scale, zp, data))
    ops, unknown = [], []
    for i, o in enumerate(sub.tables(3)):
        code, custom = codes[int(o.scalar(0, "I"))]
        name = OPS.get(code, f"BUILTIN_{code}")
        if name not in _IMPL and name != "CUSTOM":
            unknown.append(name)
        ops.append(Operator(i, name, [int(x) for x in o.vector(1, "<i4")], [int(x) for x in o.vector(2, "<i4")],
                            o.table(4), custom, o.raw(5)))
    return Graph(tensors, ops, [int(x) for x in sub.vector(1, "<i4")], [int(x) for x in sub.vector(2, "<i4")],
                 sorted(set(unknown)))


# ---- the operators, in float, on NHWC torch tensors ------------------------------------------------

_ACT = {0: None, 1: "relu", 3: "relu6"}


def _fused(x, opts, slot: int):  # noqa: ANN001, ANN202 - torch types imported lazily
    import torch

    a = int(opts.scalar(slot, "b")) if opts else 0
    if a == 0:
        return x
    if a == 1:
        return torch.relu(x)
    if a == 3:
        return torch.clamp(x, 0, 6)
    raise UnsupportedOpError(f"fused activation {a}")


def _pad_same(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _conv(x, w, b, opts, depthwise: bool):  # noqa: ANN001, ANN202
    import torch.nn.functional as F

    padding = int(opts.scalar(0, "b"))
    sw, sh = int(opts.scalar(1, "i", 1)), int(opts.scalar(2, "i", 1))
    dw, dh = (int(opts.scalar(5, "i", 1)), int(opts.scalar(6, "i", 1))) if depthwise else \
        (int(opts.scalar(4, "i", 1)), int(opts.scalar(5, "i", 1)))
    xc = x.permute(0, 3, 1, 2)
    if depthwise:  # TFLite [1, kh, kw, C*m] → torch [C*m, 1, kh, kw]
        wt = w.permute(3, 0, 1, 2)
        groups = xc.shape[1]
    else:  # [O, kh, kw, I] → [O, I, kh, kw]
        wt = w.permute(0, 3, 1, 2)
        groups = 1
    if padding == 0:  # SAME
        ph = _pad_same(xc.shape[2], wt.shape[2], sh, dh)
        pw = _pad_same(xc.shape[3], wt.shape[3], sw, dw)
        if ph[0] == ph[1] and pw[0] == pw[1]:
            y = F.conv2d(xc, wt, b, (sh, sw), (ph[0], pw[0]), (dh, dw), groups)
        else:
            y = F.conv2d(F.pad(xc, (pw[0], pw[1], ph[0], ph[1])), wt, b, (sh, sw), 0, (dh, dw), groups)
    else:
        y = F.conv2d(xc, wt, b, (sh, sw), 0, (dh, dw), groups)
    return _fused(y.permute(0, 2, 3, 1), opts, 4 if depthwise else 3)


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


def _strided_slice(x, begin, end, strides, opts):  # noqa: ANN001, ANN202
    bm, em = int(opts.scalar(0, "i")), int(opts.scalar(1, "i"))
    if int(opts.scalar(2, "i")) or int(opts.scalar(3, "i")):
        raise UnsupportedOpError("STRIDED_SLICE with ellipsis or new-axis masks")
    shrink = int(opts.scalar(4, "i"))
    idx = []
    for d in range(x.dim()):
        s = int(strides[d])
        b = None if bm >> d & 1 else int(begin[d])
        e = None if em >> d & 1 else int(end[d])
        if shrink >> d & 1:
            idx.append(int(begin[d]))
            continue
        idx.append(slice(b, e, s))
    return x[tuple(idx)]


def _run_op(op: Operator, ins: list, graph: Graph):  # noqa: ANN202, C901 - one dispatch table
    import torch
    import torch.nn.functional as F

    o = op.options
    name = op.op
    if name in ("ADD", "SUB", "MUL"):
        a, b = ins
        y = a + b if name == "ADD" else a - b if name == "SUB" else a * b
        return [_fused(y, o, 0)]
    if name == "LOGISTIC":
        return [torch.sigmoid(ins[0])]
    if name == "CONV_2D":
        return [_conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, o, False)]
    if name == "DEPTHWISE_CONV_2D":
        return [_conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, o, True)]
    if name == "PAD":
        p = ins[1].long().tolist()
        flat = [v for pair in reversed(p) for v in pair]
        return [F.pad(ins[0], flat)]
    if name == "MAX_POOL_2D":
        sw, sh = int(o.scalar(1, "i", 1)), int(o.scalar(2, "i", 1))
        fw, fh = int(o.scalar(3, "i", 1)), int(o.scalar(4, "i", 1))
        xc = ins[0].permute(0, 3, 1, 2)
        if int(o.scalar(0, "b")) == 0:
            ph, pw = _pad_same(xc.shape[2], fh, sh, 1), _pad_same(xc.shape[3], fw, sw, 1)
            xc = F.pad(xc, (pw[0], pw[1], ph[0], ph[1]), value=float("-inf"))
        return [F.max_pool2d(xc, (fh, fw), (sh, sw)).permute(0, 2, 3, 1)]
    if name == "CONCATENATION":
        return [_fused(torch.cat(ins, _axis(int(o.scalar(0, "i")), ins[0].dim())), o, 1)]
    if name == "STRIDED_SLICE":
        return [_strided_slice(ins[0], ins[1].long().tolist(), ins[2].long().tolist(), ins[3].long().tolist(), o)]
    if name == "SPLIT":
        axis, x = int(ins[0].reshape(-1)[0]), ins[1]
        n = int(o.scalar(0, "i"))
        return list(torch.chunk(x, n, _axis(axis, x.dim())))
    if name == "RESHAPE":
        shape = graph.tensors[op.outputs[0]].shape
        return [ins[0].reshape(shape)]
    if name == "TRANSPOSE":
        return [ins[0].permute(*ins[1].long().tolist())]
    if name == "FULLY_CONNECTED":
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 and ins[2] is not None else None
        keep = bool(o.scalar(2, "b")) if o else False
        y = F.linear(x.reshape(-1, w.shape[1]), w, b)
        if keep:
            y = y.reshape(*x.shape[:-1], w.shape[0])
        return [_fused(y, o, 0)]
    if name == "PACK":
        return [torch.stack(ins, _axis(int(o.scalar(1, "i")), ins[0].dim() + 1))]
    if name == "SOFTMAX":
        beta = float(o.scalar(0, "f", 1.0)) if o else 1.0
        return [torch.softmax(ins[0] * beta, -1)]
    if name == "RESIZE_NEAREST_NEIGHBOR":
        h, w = (int(v) for v in ins[1].long().tolist())
        # half-pixel centres pick source floor((i + 0.5) / f) = i // f for a whole factor f: plain nearest
        whole = h % ins[0].shape[1] == 0 and w % ins[0].shape[2] == 0
        if o and (int(o.scalar(0, "b")) or (int(o.scalar(1, "b")) and not whole)):
            raise UnsupportedOpError("RESIZE_NEAREST_NEIGHBOR with align_corners or a fractional factor")
        return [F.interpolate(ins[0].permute(0, 3, 1, 2), size=(h, w), mode="nearest").permute(0, 2, 3, 1)]
    if name == "REDUCE_MAX":
        axes = [_axis(int(a), ins[0].dim()) for a in ins[1].reshape(-1).tolist()]
        keep = bool(o.scalar(0, "b")) if o else False
        return [torch.amax(ins[0], dim=axes, keepdim=keep)]
    if name in ("QUANTIZE", "DEQUANTIZE"):
        return [ins[0].float() if ins[0].dtype in (torch.int32, torch.int64) else ins[0]]
    raise UnsupportedOpError(name)


_IMPL = {"ADD", "SUB", "MUL", "LOGISTIC", "CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "MAX_POOL_2D", "CONCATENATION",
         "STRIDED_SLICE", "SPLIT", "RESHAPE", "TRANSPOSE", "FULLY_CONNECTED", "PACK", "SOFTMAX",
         "RESIZE_NEAREST_NEIGHBOR", "REDUCE_MAX", "QUANTIZE", "DEQUANTIZE"}


class FloatGraph:
    """A TFLite graph as a float PyTorch function from its input tensor to chosen tensors.

    ``stop`` names the tensor to return (default: the graph output); ops not needed for it are
    skipped, which is how MegaDetector v6's NMS-free post-processing (top-k, gathers and int64 index
    arithmetic) is left to Python. ``overrides`` maps tensor indices to callables that produce them
    from the input (the Edge TPU first layer is supplied that way).
    """

    def __init__(self, graph: Graph, stop: Sequence[int] | None = None,
                 overrides: dict[int, Callable] | None = None, fake_quant: bool = False) -> None:
        import torch

        self.graph = graph
        self.fake_quant = fake_quant
        self.stop = list(stop) if stop is not None else list(graph.outputs)
        self.overrides = overrides or {}
        producer = {t: op for op in graph.operators for t in op.outputs}
        needed, order, todo = set(), [], list(self.stop)
        while todo:
            t = todo.pop()
            if t in needed:
                continue
            needed.add(t)
            if t in self.overrides or t not in producer:
                continue
            todo.extend(i for i in producer[t].inputs if i >= 0)
        for op in graph.operators:
            if any(t in needed for t in op.outputs) and not all(t in self.overrides for t in op.outputs):
                if op.op not in _IMPL:
                    raise UnsupportedOpError(f"operator {op.index} is {op.op} ({op.custom_code or 'builtin'})")
                order.append(op)
        self.order = order
        self.consts: dict[int, torch.Tensor] = {}
        for op in order:
            for t in op.inputs:
                tt = graph.tensors[t] if t >= 0 else None
                if tt is not None and tt.data is not None and t not in self.consts:
                    self.consts[t] = torch.from_numpy(np.ascontiguousarray(tt.dequantized()))
        last_use: dict[int, int] = {}
        for k, op in enumerate(order):
            for t in op.inputs:
                last_use[t] = k
        self.last_use = last_use

    def __call__(self, x):  # noqa: ANN001, ANN204 - torch.Tensor in, tuple of torch.Tensor out
        vals = {self.graph.inputs[0]: x}
        for t, fn in self.overrides.items():
            vals[t] = fn(x)
        keep = set(self.stop)
        for k, op in enumerate(self.order):
            ins = [vals[t] if t in vals else self.consts.get(t) for t in op.inputs]
            outs = _run_op(op, ins, self.graph)
            for t, v in zip(op.outputs, outs, strict=False):
                vals[t] = self._round(t, v) if self.fake_quant else v
            for t in op.inputs:
                if self.last_use.get(t) == k and t not in keep and t in vals and t != self.graph.inputs[0]:
                    del vals[t]
        return tuple(vals[t] for t in self.stop)

    def _round(self, t: int, v):  # noqa: ANN001, ANN202 - torch.Tensor
        """Snap an activation to its int8 grid (scale, zero point, -128..127), as the int8 model holds it.

        With ``fake_quant`` the float run reproduces the int8 file's activation rounding and clipping
        (not its integer rescaling arithmetic); without it the graph is the float network it approximates."""
        import torch

        tt = self.graph.tensors[t]
        if tt.dtype != np.int8 or tt.scale.size != 1 or not torch.is_floating_point(v):
            return v
        s, z = float(tt.scale[0]), float(tt.zero_point[0]) if tt.zero_point.size else 0.0
        q = torch.clamp(torch.round(v / s) + z, -128, 127)
        return (q - z) * s if not v.requires_grad else v + ((q - z) * s - v).detach()
