"""Small real inputs shared by the live tests: camera JPEGs made on the spot, an app over a workspace."""

from __future__ import annotations

from datetime import datetime

from pardus.ingest.synthetic import camera_jpeg


def jpeg(seed: int = 0, when: datetime | None = datetime(2024, 7, 14, 23, 5, 0),
         size: tuple[int, int] = (640, 480)) -> bytes:
    return camera_jpeg(when, seed=seed, size=size, serial=None)


def unique(data: bytes, tag: str) -> bytes:
    """The same picture with a JPEG comment (COM segment) after SOI: other bytes, same photo."""
    text = tag.encode()
    return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]


class Receiver:
    """A small HTTP server on loopback that records every POST (a webhook or EarthRanger stand-in).

    ``fail_first`` answers 500 to that many requests first, to exercise retries.
    """

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        self.fail_first = fail_first
        self.status = status
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "at": time.time()})
                code = 500 if len(outer.requests) <= outer.fail_first else outer.status
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"{}")
                if code < 300:
                    outer.arrived.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
