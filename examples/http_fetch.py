"""Fetch several URLs at once over plain HTTP/1.1, each with its own timeout.

Each fetch is a fiber: connect with :func:`rocket.open_connection` (which
resolves the name without blocking the loop), send a GET, read the status
line, headers and body from a :class:`rocket.Stream`. Started together, the
fetches overlap: the total time is about that of the slowest one, not the
sum. ``rocket.fail_after`` bounds each fetch; the one that takes too long is
cancelled where it waits and reports a timeout, while the others go on.

The demo serves a few paths from a local ``http.server`` in a thread (one of
them deliberately slow) so that it needs no network.

Run it: ``python examples/http_fetch.py`` (or ``python examples/http_fetch.py
http://127.0.0.1:8000/ ...`` for your own local server).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import rocket

TIMEOUT = 1.0


def fetch(url: str) -> Generator[Any, Any, tuple[int, bytes]]:
    """GET ``url``; return (status, body)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    stream = yield rocket.open_connection(parts.hostname, parts.port or 80)
    with stream:
        path = parts.path or "/"
        request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        yield stream.write(request.encode())
        status_line = yield stream.readline()
        status = int(status_line.split()[1])
        length = None
        while True:
            header = yield stream.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is not None:
            body = yield stream.read_exactly(length)
        else:  # Connection: close -- the body ends when the server closes
            chunks = []
            while chunk := (yield stream.read()):
                chunks.append(chunk)
            body = b"".join(chunks)
    return status, body


def fetch_with_timeout(url: str) -> Generator[Any, Any, str]:
    """One line of report for ``url``: its status and size, or the error."""
    started = time.monotonic()
    try:
        with rocket.fail_after(TIMEOUT):
            status, body = yield fetch(url)
    except TimeoutError:
        return f"{url}: timed out after {TIMEOUT:g} s"
    except (OSError, ValueError) as exc:
        return f"{url}: failed: {exc}"
    took = time.monotonic() - started
    return f"{url}: {status}, {len(body)} bytes ({'fast' if took < TIMEOUT / 2 else 'slow'})"


def fetch_all(urls: list[str]) -> Generator[Any, Any, list[str]]:
    handles = []
    for url in urls:  # start every fetch before waiting for any
        handles.append((yield rocket.spawn(fetch_with_timeout(url))))
    lines = []
    for handle in handles:
        lines.append((yield rocket.join(handle)))
    return lines


class _DemoHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(3)
        body = {"/": b"<h1>rocket</h1>\n", "/data": b"x" * 100_000}.get(self.path, b"")
        self.send_response(200 if body or self.path == "/slow" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def demo() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DemoHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        urls = [f"{base}/", f"{base}/data", f"{base}/missing", f"{base}/slow"]
        started = time.monotonic()
        lines = rocket.run(fetch_all(urls))
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    for line in lines:
        print(line.replace(base, "http://demo"))
    print(f"all done in under {TIMEOUT + 0.5:g} s: {elapsed < TIMEOUT + 0.5}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        for line in rocket.run(fetch_all(sys.argv[1:])):
            print(line)
    else:
        demo()
