"""Field models: the explicit, checksummed download (against a loopback server) and the ONNX runners."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from pardus.models.download import DownloadError, download
from pardus.models.registry import MEGADETECTOR_V5A, MEGADETECTOR_V1000, ModelUnavailableError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB standing in for a weights file


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/md_v5a.0.0.pt":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_the_checksum_and_keeps_nothing_wrong(server: str, tmp_path: Path) -> None:
    good = hashlib.sha256(PAYLOAD).hexdigest()
    info = replace(MEGADETECTOR_V5A, url=f"{server}/md_v5a.0.0.pt")
    with pytest.raises(ModelUnavailableError, match="--sha256"):
        download(info, tmp_path)  # no checksum known: nothing is fetched
    with pytest.raises(DownloadError, match="deleted"):
        download(info, tmp_path, sha256="0" * 64)
    assert not list(tmp_path.iterdir()), "a file that does not match is not kept, not even partly"
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(info, tmp_path, url=f"{server}/nope.pt", sha256=good)
    seen: list[int] = []
    path = download(info, tmp_path, sha256=good, progress=lambda d, _t: seen.append(d))
    assert path == tmp_path / "md_v5a.0.0.pt" and path.read_bytes() == PAYLOAD and seen[-1] == len(PAYLOAD)
    assert MEGADETECTOR_V5A.weights_path(tmp_path) == path, "the stage finds the downloaded file"


def _constant_model(path: Path, out: np.ndarray, input_shape: list[int]) -> None:
    """An ONNX graph that returns ``out`` for any image: stands in for real weights of that layout."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(out.astype(np.float32), "const")
    nodes = [helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "zero"], ["z"]), helper.make_node("Add", ["const", "z"], ["output"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
                              [const, numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_megadetector_runner_reads_both_output_layouts(tmp_path: Path) -> None:
    from pardus.models.field import OnnxMegaDetector

    # A 640x480 photo letterboxed into 64 px: scale 0.1. One animal (twice, overlapping) and one person.
    rows = np.array([[20, 20, 10, 10, 0.9, 0.95, 0.01, 0.0], [21, 20, 10, 10, 0.8, 0.9, 0.0, 0.0],
                     [50, 10, 6, 12, 0.7, 0.0, 0.8, 0.1], [5, 5, 2, 2, 0.05, 0.5, 0.0, 0.0]])
    _constant_model(tmp_path / "v5.onnx", rows[None], [1, 3, 64, 64])
    v5 = OnnxMegaDetector(tmp_path / "v5.onnx")
    boxes = v5.detect(np.zeros((480, 640, 3), np.uint8))
    assert [b.category for b in boxes] == ["animal", "person"], boxes
    a = boxes[0]
    assert abs(a.score - 0.9 * 0.95) < 1e-5 and abs(a.x - 150 / 640) < 1e-4 and abs(a.w - 100 / 640) < 1e-4
    v9rows = np.hstack([rows[:, :4], rows[:, 5:]]).T[None]  # [1, 7, N], no objectness
    _constant_model(tmp_path / "v9.onnx", v9rows, [1, 3, 64, 64])
    v9 = OnnxMegaDetector(tmp_path / "v9.onnx", MEGADETECTOR_V1000)
    cats = [(b.category, round(b.score, 2)) for b in v9.detect(np.zeros((480, 640, 3), np.uint8))]
    assert cats == [("animal", 0.95), ("person", 0.8), ("animal", 0.5)]


def test_speciesnet_runner_names_the_best_label(tmp_path: Path) -> None:
    from pardus.models.field import OnnxSpeciesNet

    _constant_model(tmp_path / "speciesnet.onnx", np.array([[0.1, 3.0, -1.0]]), [1, 32, 32, 3])
    (tmp_path / "labels.txt").write_text("u1;mammalia;carnivora;felidae;panthera;tigris;tiger\n"
                                         "u2;mammalia;carnivora;felidae;panthera;pardus;leopard\n"
                                         "u3;;;;;;blank\n")
    clf = OnnxSpeciesNet(tmp_path / "speciesnet.onnx")
    [(name, p, common)] = clf.classify([np.zeros((50, 70, 3), np.uint8)])
    assert (name, common) == ("Panthera pardus", "leopard") and p > 0.9
    # a label that names no taxon gives no scientific name, only its common name
    (tmp_path / "labels.txt").write_text("u1;;;;;;animal\nu2;;;;;;blank\nu3;no cv result;no cv result;no cv result;"
                                         "no cv result;no cv result;no cv result\n")
    [(name, _, common)] = OnnxSpeciesNet(tmp_path / "speciesnet.onnx").classify([np.zeros((50, 70, 3), np.uint8)])
    assert (name, common) == (None, "blank")
