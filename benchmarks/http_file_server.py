"""Requests/s of examples/https_file_server.py vs the same server on asyncio + h11, under wrk.

Both servers run the same h11 loop with keep-alive and send the file body with
their loop's sendfile (rocket.sendfile; asyncio's ``loop.sendfile``, which falls
back to read + write over TLS just as rocket's does). The asyncio server is
written below (``serve_asyncio``) and run as a subprocess of this script, as
the example is. ``wrk -t2 -c50 -d<seconds>`` fetches one file over plain HTTP,
then over HTTPS (a self-signed certificate made with the ``openssl`` command).
Prints figures; asserts nothing. wrk, the servers and whatever else runs on the
machine share its cores: the figures are noisy, compare them within one run.

Run it: ``python benchmarks/http_file_server.py [--seconds 3] [--file-size 16384]``
(needs ``wrk``, ``openssl`` and h11).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h11

from rocket.engines import available_engines

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "https_file_server.py"
NAME = "file.bin"


# ------------------------------------------------------------ the asyncio server


async def _asyncio_connection(
    root: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One keep-alive connection: h11 events in, files out with loop.sendfile."""
    loop = asyncio.get_running_loop()
    conn = h11.Connection(h11.SERVER)
    request = None
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                path = root / request.target.decode().lstrip("/").partition("?")[0]
                if not path.is_file():
                    writer.write(conn.send(h11.Response(status_code=404, headers=[
                        (b"content-length", b"0")])) or b"")  # fmt: skip
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                else:
                    size = path.stat().st_size
                    headers = [(b"content-type", b"application/octet-stream"),
                               (b"content-length", str(size).encode())]  # fmt: skip
                    writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
                    with open(path, "rb") as f:
                        conn.send_with_data_passthrough(h11.Data(data=_Length(size)))  # type: ignore[arg-type]
                        await loop.sendfile(writer.transport, f, 0, size)
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
            elif not isinstance(event, h11.Data):
                return
    except (ConnectionError, h11.RemoteProtocolError):
        pass
    finally:
        writer.close()


class _Length:
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def serve_asyncio(root: Path, port: int, cert: str | None, key: str | None) -> None:
    """The asyncio + h11 server (run as ``--serve-asyncio``); prints a banner, Ctrl-C stops it."""
    context = None
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _asyncio_connection(root, r, w), "127.0.0.1", port, ssl=context
        )
        print(f"serving {root} on 127.0.0.1:{port} (asyncio)", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


# ------------------------------------------------------------- the measurement


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(argv: list[str]) -> Iterator[None]:
    """Run a server command until the block ends; it must print one banner line first.

    Its stderr is dropped: asyncio prints the tasks that SIGINT cancelled.
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        if "serving" not in proc.stdout.readline():
            raise RuntimeError(f"the server did not start: {argv}")
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wrk(url: str, seconds: int) -> tuple[float, str]:
    """Requests/s and transfer/s that wrk reports."""
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if rate is None or transfer is None or errors is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(rate.group(1)), transfer.group(1)


def _certificate(directory: Path) -> tuple[str, str]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return str(cert), str(key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="each wrk run")
    parser.add_argument("--file-size", type=int, default=16384, help="bytes of the file fetched")
    parser.add_argument("--serve-asyncio", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_asyncio:  # ROOT PORT [CERT KEY]: the asyncio server, as a subprocess
        root, port, *tls = args.serve_asyncio
        serve_asyncio(Path(root), int(port), *(tls or [None, None]))
        return
    for tool in ("wrk", "openssl"):
        if shutil.which(tool) is None:
            sys.exit(f"this benchmark needs {tool} (e.g. apt-get install {tool})")
    with tempfile.TemporaryDirectory(prefix="rocket-http-") as directory:
        root = Path(directory)
        (root / NAME).write_bytes(os.urandom(args.file_size))
        cert, key = _certificate(root)
        print(f"wrk -t2 -c50 -d{args.seconds}s, keep-alive, GET /{NAME} ({args.file_size} bytes)")
        print(f"  {'server':28} {'plain req/s':>12} {'':>10} {'TLS req/s':>12} {'':>10}")
        contenders = [("asyncio + h11", [sys.executable, __file__, "--serve-asyncio", str(root)])]
        for engine in available_engines():
            command = [sys.executable, str(EXAMPLE), str(root), "--engine", engine, "--port"]
            contenders.append((f"rocket example ({engine})", command))
        for label, command in contenders:
            row = []
            for tls in (False, True):
                port = _free_port()
                asyncio_server = command[-2] == "--serve-asyncio"
                argv = [*command, str(port)]
                if tls:
                    argv += [cert, key] if asyncio_server else ["--cert", cert, "--key", key]
                with _server(argv):
                    scheme = "https" if tls else "http"
                    rate, transfer = _wrk(f"{scheme}://127.0.0.1:{port}/{NAME}", args.seconds)
                row.append(f"{rate:12.0f} {transfer + '/s':>10}")
            print(f"  {label:28} {row[0]} {row[1]}")


if __name__ == "__main__":
    main()
