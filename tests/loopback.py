"""A loopback HTTP server for the remote-input tests and benchmarks (issue 18).

:class:`LoopbackServer` serves the files of one folder on ``127.0.0.1`` (a free port: every
server has its own URLs, so GDAL's /vsicurl/ cache of one test never answers another) with
``Range`` requests (single ranges and GDAL's multi-range requests), ``HEAD`` and a log of every
request with the bytes of body it sent. It can also misbehave on purpose: answer a path with a
given status (404, 403, 500), drop the connection half-way through the next bodies of a path, or
stall: answer the ranges of a path that reach a given byte with a status line and headers and then
no body (a server that hangs mid-read), until the server stops.

Use as a context manager::

    with LoopbackServer(folder) as srv:
        url = srv.url("a.tif")
        ...
        srv.bytes_sent("a.tif")
"""

from __future__ import annotations

import http.server
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_RANGE = re.compile(r"(\d*)-(\d*)")


@dataclass
class Request:
    """One request the server answered."""

    method: str
    path: str
    range: Optional[str]
    status: int
    body_bytes: int
    dropped: bool = False
    stalled: bool = False


class LoopbackServer:
    """A threaded HTTP server of ``root`` on 127.0.0.1 with Range support and a request log.

    Parameters
    ----------
    root : path
        The folder served (``/name`` -> ``root/name``; nothing outside it).
    routes : dict of str to bytes, optional
        Extra paths answered with fixed bodies (a JSON document, a fake STAC API page);
        values may also be callables ``(path, query) -> (status, content_type, bytes)``.
    """

    def __init__(self, root: str | Path, routes: Optional[dict] = None) -> None:
        self.root = Path(root).resolve()
        self.routes = dict(routes or {})
        self.log: list[Request] = []
        self.status: dict[str, int] = {}  # path -> status to answer (404, 403, 500 ...)
        self.drops: dict[str, int] = {}  # path -> how many more bodies to cut short (-1: every one)
        self.drop_min_bytes = 0  # only bodies of at least this size are cut (0: any; e.g. tiles, not headers)
        self.stall: dict[str, float] = {}  # path -> seconds to wait before answering (a time-out)
        # path -> a byte: a range request that reaches it (or beyond) gets its headers and then no
        # body until the server stops; ranges that end before it (a header, overviews) are served
        self.stall_from: dict[str, int] = {}
        self.stopping = threading.Event()
        self.errors: list[str] = []  # exceptions of request handlers (a client hanging up mid-body ...)
        self._lock = threading.Lock()
        self._httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> "LoopbackServer":
        handler = _handler(self)
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd.errors = self.errors
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="loopback-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()  # stalled answers end
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return int(self._httpd.server_address[1])

    def url(self, name: str = "") -> str:
        """The URL of ``name`` (a path relative to the served folder)."""
        return f"http://127.0.0.1:{self.port}/{name.lstrip('/')}"

    # -- the log ----------------------------------------------------------------------------------
    def _record(self, req: Request) -> None:
        with self._lock:
            self.log.append(req)

    def bytes_sent(self, name: Optional[str] = None) -> int:
        """Bytes of body sent (for ``name`` only when given)."""
        with self._lock:
            return sum(r.body_bytes for r in self.log if name is None or r.path == "/" + name.lstrip("/"))

    def requests(self, name: Optional[str] = None, method: Optional[str] = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if (name is None or r.path == "/" + name.lstrip("/"))
                    and (method is None or r.method == method)]

    def stalled(self, name: Optional[str] = None) -> list[Request]:
        """The requests left without their body (:attr:`stall_from`)."""
        return [r for r in self.requests(name) if r.stalled]

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _take_drop(self, path: str) -> bool:
        with self._lock:
            n = self.drops.get(path, 0)
            if n == 0:
                return False
            if n > 0:
                self.drops[path] = n - 1
            return True


class _Server(http.server.ThreadingHTTPServer):
    """Keeps the exceptions of its handlers (a client that hangs up mid-body) in ``errors``
    instead of printing them to stderr, where they would read as the program's own output."""

    errors: list[str]

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        exc = sys.exc_info()[1]
        self.errors.append(f"{client_address}: {exc!r}")


def _handler(server: LoopbackServer) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(head=False)

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            self._answer(head=False, post=body)

        def _send(self, status: int, body: bytes, ctype: str, head: bool, extra: Optional[dict] = None,
                  rng: Optional[str] = None, length: Optional[int] = None, stall: bool = False) -> None:
            # the request is logged before its answer is sent: a client that has its answer finds
            # it in the log (logged after, a test could look before the server thread had logged it)
            path = self.path.split("?", 1)[0]
            drop = not head and bool(body) and len(body) >= server.drop_min_bytes and server._take_drop(path)
            stall = stall and not head
            sent = 0 if head or stall else len(body) // 2 if drop else len(body)
            server._record(Request(self.command, path, rng, status, sent, dropped=drop, stalled=stall))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.send_header("Accept-Ranges", "bytes")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if head:
                return
            if stall:  # the headers, then silence until the server stops; the connection is not reused
                self.wfile.flush()
                server.stopping.wait()
                self.close_connection = True
                return
            if drop:  # half the body, then the connection is closed under the client
                self.wfile.write(body[:sent])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            self.wfile.write(body)

        def _answer(self, head: bool, post: Optional[bytes] = None) -> None:
            path, _, query = self.path.partition("?")
            if path in server.stall:
                import time

                time.sleep(server.stall[path])
            if path in server.status:
                code = server.status[path]
                self._send(code, f"status {code}\n".encode(), "text/plain", head)
                return
            if path in server.routes:
                route = server.routes[path]
                if callable(route):
                    code, ctype, body = route(path, query, post)
                else:
                    code, ctype, body = 200, "application/json", route
                self._send(code, body, ctype, head)
                return
            target = (server.root / path.lstrip("/")).resolve()
            if server.root not in target.parents or not target.is_file():
                self._send(404, b"not found\n", "text/plain", head)
                return
            size = target.stat().st_size
            rng = self.headers.get("Range")
            if not rng:
                self._send(200, b"" if head else target.read_bytes(), "application/octet-stream", head, length=size)
                return
            spans = []
            for part in rng.removeprefix("bytes=").split(","):
                m = _RANGE.fullmatch(part.strip())
                if not m:
                    self._send(416, b"", "text/plain", head, rng=rng)
                    return
                a, b = m.groups()
                if a == "":
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start, end = int(a), min(size - 1, int(b) if b else size - 1)
                if start >= size or start > end:
                    self._send(416, b"", "text/plain", head, {"Content-Range": f"bytes */{size}"}, rng=rng)
                    return
                spans.append((start, end))
            stall = path in server.stall_from and max(e for _, e in spans) >= server.stall_from[path]
            with open(target, "rb") as fh:
                def chunk(s: int, e: int) -> bytes:
                    fh.seek(s)
                    return fh.read(e - s + 1)

                if len(spans) == 1:
                    s, e = spans[0]
                    self._send(206, chunk(s, e), "application/octet-stream", head,
                               {"Content-Range": f"bytes {s}-{e}/{size}"}, rng=rng, stall=stall)
                    return
                boundary = "rs-change-loopback-" + os.urandom(6).hex()
                parts = []
                for s, e in spans:
                    parts.append(f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                                 f"Content-Range: bytes {s}-{e}/{size}\r\n\r\n".encode() + chunk(s, e) + b"\r\n")
                body = b"".join(parts) + f"--{boundary}--\r\n".encode()
                self._send(206, body, f"multipart/byteranges; boundary={boundary}", head, rng=rng, stall=stall)

    return Handler
