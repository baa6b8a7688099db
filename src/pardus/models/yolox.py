"""YOLOX (Ge et al. 2021, "YOLOX: Exceeding YOLO Series in 2021", arXiv:2107.08430) in plain PyTorch.

Written from the paper's description of the architecture (CSPDarknet backbone with a Focus stem and
SPP, a PAFPN neck and the anchor-free decoupled head) so that a published YOLOX checkpoint loads
with ``strict=True`` without the YOLOX package, which does not install on the CPU torch here.
Module and parameter names follow the checkpoint's state-dict layout; the code is our own.

The default weights are zamba's "MegadetectorLite" (YOLOX-tiny, one class "animal", trained by
DrivenData on camera-trap frames, MIT licence), which ships inside the ``zamba`` wheel.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class ConvBnAct(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3 as YOLOX trains with), then SiLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 then 3x3 convolution, with a residual sum when the shapes allow and it is asked for."""

    def __init__(self, cin: int, cout: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(cin, cout, 1)
        self.conv2 = ConvBnAct(cout, cout, 3)
        self.residual = shortcut and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.residual else y


class CSPBlock(nn.Module):
    """Cross-stage-partial block: half the channels go through ``n`` bottlenecks, half bypass them."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        hidden = cout // 2
        self.conv1 = ConvBnAct(cin, hidden, 1)
        self.conv2 = ConvBnAct(cin, hidden, 1)
        self.conv3 = ConvBnAct(2 * hidden, cout, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, hidden, shortcut) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], dim=1))


class SpatialPyramidPooling(nn.Module):
    """Max-pools of several sizes side by side, widening the receptive field of the last stage."""

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = cin // 2
        self.conv1 = ConvBnAct(cin, hidden, 1)
        self.pools = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernels])
        self.conv2 = ConvBnAct(hidden * (len(kernels) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(p(x) for p in self.pools)], dim=1))


class FocusStem(nn.Module):
    """Space-to-depth: the four pixel phases stacked as channels, then a 3x3 convolution."""

    def __init__(self, cout: int) -> None:
        super().__init__()
        self.conv = ConvBnAct(12, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]]
        return self.conv(torch.cat(phases, dim=1))


class CSPDarknet(nn.Module):
    """Backbone; returns the stride-8, -16 and -32 feature maps."""

    def __init__(self, depth: float, width: float) -> None:
        super().__init__()
        c = int(64 * width)
        n = max(round(3 * depth), 1)
        self.stem = FocusStem(c)
        self.dark2 = nn.Sequential(ConvBnAct(c, 2 * c, 3, 2), CSPBlock(2 * c, 2 * c, n))
        self.dark3 = nn.Sequential(ConvBnAct(2 * c, 4 * c, 3, 2), CSPBlock(4 * c, 4 * c, 3 * n))
        self.dark4 = nn.Sequential(ConvBnAct(4 * c, 8 * c, 3, 2), CSPBlock(8 * c, 8 * c, 3 * n))
        self.dark5 = nn.Sequential(
            ConvBnAct(8 * c, 16 * c, 3, 2),
            SpatialPyramidPooling(16 * c, 16 * c),
            CSPBlock(16 * c, 16 * c, n, shortcut=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        c5 = self.dark5(c4)
        return c3, c4, c5


class PAFPN(nn.Module):
    """Top-down then bottom-up feature pyramid over the backbone's three outputs."""

    def __init__(self, depth: float, width: float) -> None:
        super().__init__()
        c3, c4, c5 = int(256 * width), int(512 * width), int(1024 * width)
        n = max(round(3 * depth), 1)
        self.backbone = CSPDarknet(depth, width)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = ConvBnAct(c5, c4, 1)
        self.C3_p4 = CSPBlock(2 * c4, c4, n, shortcut=False)
        self.reduce_conv1 = ConvBnAct(c4, c3, 1)
        self.C3_p3 = CSPBlock(2 * c3, c3, n, shortcut=False)
        self.bu_conv2 = ConvBnAct(c3, c3, 3, 2)
        self.C3_n3 = CSPBlock(2 * c3, c4, n, shortcut=False)
        self.bu_conv1 = ConvBnAct(c4, c4, 3, 2)
        self.C3_n4 = CSPBlock(2 * c4, c5, n, shortcut=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x3, x4, x5 = self.backbone(x)
        top = self.lateral_conv0(x5)
        mid = self.C3_p4(torch.cat([self.upsample(top), x4], 1))
        mid_r = self.reduce_conv1(mid)
        out3 = self.C3_p3(torch.cat([self.upsample(mid_r), x3], 1))
        out4 = self.C3_n3(torch.cat([self.bu_conv2(out3), mid_r], 1))
        out5 = self.C3_n4(torch.cat([self.bu_conv1(out4), top], 1))
        return out3, out4, out5


class DecoupledHead(nn.Module):
    """Anchor-free head: separate classification and regression branches per pyramid level."""

    strides = (8, 16, 32)

    def __init__(self, num_classes: int, width: float) -> None:
        super().__init__()
        hidden = int(256 * width)
        ins = [int(c * width) for c in (256, 512, 1024)]
        self.stems = nn.ModuleList([ConvBnAct(c, hidden, 1) for c in ins])
        self.cls_convs = nn.ModuleList(
            [nn.Sequential(ConvBnAct(hidden, hidden, 3), ConvBnAct(hidden, hidden, 3)) for _ in ins]
        )
        self.reg_convs = nn.ModuleList(
            [nn.Sequential(ConvBnAct(hidden, hidden, 3), ConvBnAct(hidden, hidden, 3)) for _ in ins]
        )
        self.cls_preds = nn.ModuleList([nn.Conv2d(hidden, num_classes, 1) for _ in ins])
        self.reg_preds = nn.ModuleList([nn.Conv2d(hidden, 4, 1) for _ in ins])
        self.obj_preds = nn.ModuleList([nn.Conv2d(hidden, 1, 1) for _ in ins])

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Rows of (cx, cy, w, h, objectness, class scores...) in input pixels, for every grid cell."""
        rows = []
        for i, f in enumerate(feats):
            x = self.stems[i](f)
            reg_feat = self.reg_convs[i](x)
            out = torch.cat(
                [
                    self.reg_preds[i](reg_feat),
                    self.obj_preds[i](reg_feat).sigmoid(),
                    self.cls_preds[i](self.cls_convs[i](x)).sigmoid(),
                ],
                dim=1,
            )
            b, c, h, w = out.shape
            out = out.flatten(2).permute(0, 2, 1)  # (b, h*w, c), row-major over the grid
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            grid = torch.stack([xs, ys], dim=-1).reshape(1, h * w, 2).to(out.dtype)
            stride = self.strides[i]
            xy = (out[..., :2] + grid) * stride
            wh = torch.exp(out[..., 2:4]) * stride
            rows.append(torch.cat([xy, wh, out[..., 4:]], dim=-1))
        return torch.cat(rows, dim=1)


class YOLOX(nn.Module):
    """Backbone + neck + head. ``tiny`` is depth 0.33, width 0.375."""

    def __init__(self, num_classes: int, depth: float = 0.33, width: float = 0.375) -> None:
        super().__init__()
        self.backbone = PAFPN(depth, width)
        self.head = DecoupledHead(num_classes, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression on (x1, y1, x2, y2) boxes; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return keep


def decode(rows: np.ndarray, min_score: float, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head rows of one image -> (boxes x1y1x2y2 in input pixels, scores, class ids) after NMS.

    The score is objectness times the best class probability, as in the paper.
    """
    cls = rows[:, 5:]
    best = cls.argmax(axis=1)
    score = rows[:, 4] * cls[np.arange(len(rows)), best]
    sel = score >= min_score
    if not sel.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    r, score, best = rows[sel], score[sel], best[sel]
    boxes = np.stack([r[:, 0] - r[:, 2] / 2, r[:, 1] - r[:, 3] / 2, r[:, 0] + r[:, 2] / 2, r[:, 1] + r[:, 3] / 2], 1)
    keep: list[int] = []
    for c in np.unique(best):  # class-aware suppression
        idx = np.flatnonzero(best == c)
        keep.extend(idx[k] for k in nms(boxes[idx], score[idx], iou_threshold))
    keep_arr = np.array(sorted(keep, key=lambda k: -score[k]), dtype=np.int64)
    return boxes[keep_arr].astype(np.float32), score[keep_arr].astype(np.float32), best[keep_arr]


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Scale an RGB uint8 image so its longer side is ``size``, paste it top-left on a black square.

    Returns the (3, size, size) float32 tensor in 0..255 (YOLOX is trained without normalisation)
    and the scale factor to map boxes back.
    """
    import cv2

    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nh, nw = max(1, round(h * r)), max(1, round(w * r))
    interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(img, (nw, nh), interpolation=interp)
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[:nh, :nw] = resized
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)), r


def grid_size(size: int) -> int:
    """YOLOX needs sides divisible by its largest stride, 32."""
    return int(math.ceil(size / 32) * 32)
