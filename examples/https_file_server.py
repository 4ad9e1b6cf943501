"""A static-file HTTP/1.1 server: a sans-I/O protocol driven by one fiber per connection.

``h11`` knows HTTP and does no I/O: you hand it the bytes you received and it
hands back events (a request, the end of a message, a closed connection); you
give it your response and it hands back the bytes to send. The connection's
fiber is the loop around it -- ``yield stream.read()`` whenever h11 says
``NEED_DATA``, ``yield stream.write(...)`` for what it returns -- and
keep-alive is just that loop going round again (``start_next_cycle``). Nothing
in the protocol code knows about fibers, so the same h11 code runs on asyncio,
trio or threads; here the executor interleaves all connections' fibers.

A file's body goes out with ``rocket.sendfile``: on a plain connection the
kernel moves the pages from the page cache to the socket (splice on io_uring,
``os.sendfile`` on the readiness engine) and Python never sees a byte; over
TLS it must be encrypted, so sendfile reads and writes it in chunks. h11 is
told the body's *length* (``send_with_data_passthrough``, h11's sendfile
support), so it keeps counting while the bytes bypass it.

Run it: ``python examples/https_file_server.py DIRECTORY --port 8000`` and fetch
``curl http://127.0.0.1:8000/some/file``; with ``--cert cert.pem --key key.pem``
it serves HTTPS. Needs ``pip install h11`` (rocket's ``http`` extra). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import ssl
import stat
import urllib.parse
from collections.abc import Generator
from http import HTTPStatus
from typing import Any

import h11

import rocket

#: How long a keep-alive connection may sit idle before the server closes it.
IDLE_SECONDS = 30.0
SERVER = b"rocket-file-server"

Body = Generator[Any, Any, Any]


class Length:
    """A stand-in for a body that h11 must count but never sees (it goes by sendfile)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def resolve(root: str, target: bytes) -> str | None:
    """The file a request target names under ``root``; None if it is outside ``root``."""
    path = urllib.parse.unquote(target.decode("ascii", "replace").partition("?")[0])
    full = os.path.realpath(os.path.join(root, path.lstrip("/")))
    return full if os.path.commonpath([root, full]) == root else None


def next_event(conn: h11.Connection, stream: Any) -> Body:
    """The next h11 event, reading from the stream as often as h11 needs (None: idle too long)."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        with rocket.move_on_after(IDLE_SECONDS) as idle:
            data = yield stream.read()
        if idle.timed_out:
            return None
        conn.receive_data(data)  # b"" tells h11 the peer closed


def send(conn: h11.Connection, stream: Any, event: Any) -> Body:
    data = conn.send(event)
    if data:
        yield stream.write(data)


def respond(conn: h11.Connection, stream: Any, root: str, request: h11.Request) -> Body:
    """Answer one request: the file (GET, HEAD), 404, or 405 for other methods."""
    if request.method not in (b"GET", b"HEAD"):
        yield from error(conn, stream, 405, b"only GET and HEAD\n", [(b"allow", b"GET, HEAD")])
        return
    path = resolve(root, request.target)
    info = None
    if path is not None:
        try:
            info = yield rocket.stat(path)
            if stat.S_ISDIR(info.mode):
                path = os.path.join(path, "index.html")
                info = yield rocket.stat(path)
        except FileNotFoundError:
            info = None
    if path is None or info is None or not stat.S_ISREG(info.mode):
        yield from error(conn, stream, 404, b"not found\n")
        return
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    headers = [
        (b"content-type", kind.encode()),
        (b"content-length", str(info.size).encode()),
        (b"server", SERVER),
    ]
    f = yield rocket.open_file(path)  # before the headers: a file that vanished is a 404
    with f:
        yield from send(conn, stream, h11.Response(status_code=200, headers=headers, reason=b"OK"))
        if request.method == b"GET" and info.size:
            conn.send_with_data_passthrough(h11.Data(data=Length(info.size)))  # type: ignore[arg-type]
            sent = yield rocket.sendfile(stream, f, 0, info.size)
            if sent != info.size:  # the file shrank meanwhile: the response cannot be finished
                raise ConnectionError(f"{path} shrank while being sent")
        yield from send(conn, stream, h11.EndOfMessage())


def error(
    conn: h11.Connection,
    stream: Any,
    status: int,
    text: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> Body:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    headers += [(b"server", SERVER), *(extra or [])]
    reason = HTTPStatus(status).phrase.encode()
    yield from send(conn, stream, h11.Response(status_code=status, headers=headers, reason=reason))
    yield from send(conn, stream, h11.Data(data=text))
    yield from send(conn, stream, h11.EndOfMessage())


def handler(root: str) -> Any:
    """The serve_tcp handler: one fiber per connection, one h11 state machine each."""

    def connection(stream: Any) -> Body:
        conn = h11.Connection(h11.SERVER)
        request = None
        try:
            while True:
                event = yield from next_event(conn, stream)
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    yield from respond(conn, stream, root, request)  # (a body was skipped)
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return  # "Connection: close" or HTTP/1.0: no keep-alive
                    conn.start_next_cycle()  # keep-alive: the same loop, the next request
                elif not isinstance(event, h11.Data):
                    return  # the peer closed, or was idle too long
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                yield from error(conn, stream, exc.error_status_hint, b"bad request\n")

    return connection


def serve(root: str, host: str, port: int, context: ssl.SSLContext | None, ready: Any) -> Body:
    server = yield rocket.serve_tcp(handler(root), host, port, ssl=context)
    ready(server.port)
    yield server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the directory to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--cert", help="certificate chain (PEM): serve HTTPS")
    parser.add_argument("--key", help="the certificate's private key (PEM)")
    parser.add_argument("--engine", default="auto", choices=["auto", "io_uring", "selector"])
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    root = os.path.realpath(args.root)
    scheme = "https" if context else "http"

    def ready(port: int) -> None:
        print(f"serving {root} on {scheme}://{args.host}:{port} ({args.engine} engine)", flush=True)

    try:
        rocket.run(serve(root, args.host, args.port, context, ready), engine=args.engine)
    except KeyboardInterrupt:
        print("bye")


if __name__ == "__main__":
    main()
