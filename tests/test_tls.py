"""TLS streams (rocket.TLSStream) against real peers: openssl s_server/s_client, curl, rocket.

The certificates are made here with the ``openssl`` command line: a CA, a
server certificate for ``localhost``/127.0.0.1 signed by it, and a second CA
that signed nothing (the "wrong CA"). Every subprocess is bounded by a
timeout and killed by its PID in a ``finally``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command line")

TOOL_TIMEOUT = 20.0  # seconds any openssl/curl process may live


@dataclasses.dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(
        [str(OPENSSL), *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30
    )


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN=rocket {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for localhost and 127.0.0.1 it signed, and another CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca, ca_key = _make_ca(directory, "ca")
    other_ca, _ = _make_ca(directory, "other-ca")
    (directory / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
        cwd=directory,
    )  # fmt: skip
    return Pki(ca, directory / "server.pem", directory / "server.key", other_ca)


def _server_context(pki: Pki, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def _client_context(ca: Path, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


@pytest.fixture
def s_server(pki: Pki) -> Iterator[int]:
    """``openssl s_server -www`` on 127.0.0.1; yields its port once it accepts."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(OPENSSL), "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(pki.cert),
         "-key", str(pki.key), "-www", "-naccept", "4"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + TOOL_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while b"ACCEPT" not in seen:  # s_server prints ACCEPT once it listens
                left = deadline - time.monotonic()
                assert left > 0, f"s_server did not start in time: {seen!r}"
                assert selector.select(left), f"s_server did not start in time: {seen!r}"
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, f"s_server exited: {seen!r}"
                seen += chunk
        yield port
    finally:
        _kill(proc)


def _run_tool(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run a command line tool with a time limit (in a worker thread: rocket.to_thread)."""
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(stdin, timeout=TOOL_TIMEOUT)
        return subprocess.CompletedProcess(args, proc.returncode, out, err)
    finally:
        _kill(proc)


def _serve(handler: Any, context: ssl.SSLContext, **kwargs: Any) -> Body:
    """A rocket TLS server on 127.0.0.1 (its serve_forever in a fiber of its own)."""
    server = yield rocket.serve_tcp(handler, "127.0.0.1", 0, ssl=context, **kwargs)
    yield rocket.spawn(server.serve_forever())
    return server


# ------------------------------------------------------ rocket -> openssl


@pytest.mark.parametrize("style", ["generator", "async"])
def test_client_fetches_a_page_from_openssl_s_server(
    engine: str, style: str, pki: Pki, s_server: int
) -> None:
    """open_connection(ssl=context) talks TLS 1.3 to s_server -www and reads to a clean EOF."""
    context = _client_context(pki.ca)

    def generator_client() -> Body:
        tls = yield rocket.open_connection("127.0.0.1", s_server, ssl=context,
                                           server_hostname="localhost")  # fmt: skip
        with tls:
            yield tls.write(b"GET / HTTP/1.0\r\n\r\n")
            status = yield tls.readline()
            rest = b""
            while chunk := (yield tls.read()):
                rest += chunk
            return status, rest, tls.version(), tls.getpeercert()

    async def async_client() -> Any:
        tls = await rocket.open_connection(
            "127.0.0.1", s_server, ssl=context, server_hostname="localhost"
        )
        async with tls:
            await tls.write(b"GET / HTTP/1.0\r\n\r\n")
            status = await tls.readline()
            rest = b""
            while chunk := await tls.read():
                rest += chunk
            return status, rest, tls.version(), tls.getpeercert()

    main = generator_client() if style == "generator" else async_client()
    status, rest, version, cert = rocket.run(main, engine=engine)
    assert status == b"HTTP/1.0 200 ok\r\n"
    assert b"</HTML>" in rest  # the whole page, ended by close_notify (no SSLEOFError)
    assert version == "TLSv1.3"
    assert ("commonName", "localhost") in cert["subject"][0]


def test_true_means_the_default_context_which_verifies(engine: str, s_server: int) -> None:
    """ssl=True uses ssl.create_default_context(): a private CA's server is refused."""

    def main() -> Body:
        yield rocket.open_connection("localhost", s_server, ssl=True)

    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        rocket.run(main(), engine=engine)


# ------------------------------------------------ openssl / curl -> rocket


def test_openssl_s_client_talks_to_a_rocket_server_and_sees_close_notify(
    engine: str, pki: Pki
) -> None:
    """s_client verifies the rocket server, gets its reply, and sees a clean TLS close."""

    def handler(tls: rocket.TLSStream) -> Body:
        line = yield tls.readline()
        yield tls.write(line.upper() + tls.version().encode() + b"\n")  # type: ignore[union-attr]

    def main() -> Body:
        server = yield from _serve(handler, _server_context(pki))
        with server:
            return (yield rocket.to_thread(_run_tool, [
                str(OPENSSL), "s_client", "-connect", f"127.0.0.1:{server.port}",
                "-servername", "localhost", "-CAfile", str(pki.ca), "-verify_return_error",
                "-quiet",  # no session chatter; wait for the server to close
            ], b"hello tls\n"))  # fmt: skip

    done = rocket.run(main(), engine=engine)
    assert done.stdout == b"HELLO TLS\nTLSv1.3\n"
    assert done.returncode == 0, done.stderr  # 1 and "unexpected eof" without close_notify
    assert b"unexpected eof" not in done.stderr


@pytest.mark.skipif(CURL is None, reason="needs curl")
def test_curl_gets_a_page_from_a_rocket_https_server(engine: str, pki: Pki) -> None:
    """curl --cacert fetches from a tiny HTTP/1.0 responder on a rocket TLS server."""

    async def handler(tls: rocket.TLSStream) -> None:
        request = await tls.read_until(b"\r\n\r\n")
        body = b"you asked: " + request.split(b"\r\n")[0]
        await tls.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def main() -> Body:
        server = yield from _serve(handler, _server_context(pki, alpn=["http/1.1"]))
        with server:
            port = server.port
            return (yield rocket.to_thread(_run_tool, [
                str(CURL), "--silent", "--show-error", "--max-time", "10", "--http1.1",
                "--cacert", str(pki.ca), "--resolve", f"localhost:{port}:127.0.0.1",
                f"https://localhost:{port}/hello",
            ]))  # fmt: skip

    done = rocket.run(main(), engine=engine)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"you asked: GET /hello HTTP/1.1"


# --------------------------------------------------------- rocket <-> rocket


@pytest.mark.parametrize("style", ["generator", "async"])
def test_alpn_sni_and_cipher_between_rocket_peers(engine: str, style: str, pki: Pki) -> None:
    """ALPN picks the protocol both offer, the server sees the SNI name, both use TLS 1.3."""
    server_context = _server_context(pki, alpn=["h2", "http/1.1"])
    names: list[str | None] = []
    server_context.sni_callback = lambda obj, name, ctx: names.append(name)
    seen: list[Any] = []

    def generator_handler(tls: rocket.TLSStream) -> Body:
        seen.append((tls.selected_alpn_protocol(), tls.version()))
        yield tls.write((yield tls.readline()))

    async def async_handler(tls: rocket.TLSStream) -> None:
        seen.append((tls.selected_alpn_protocol(), tls.version()))
        await tls.write(await tls.readline())

    async def main() -> Any:
        handler = generator_handler if style == "generator" else async_handler
        server = await rocket.Composite("serve", _serve(handler, server_context))
        with server:
            client_context = _client_context(pki.ca, alpn=["http/1.1", "spdy/3"])
            async with await rocket.open_connection(
                "localhost", server.port, ssl=client_context
            ) as tls:
                await tls.write(b"ping\n")
                return await tls.readline(), tls.selected_alpn_protocol(), tls.cipher()

    line, alpn, cipher = rocket.run(main(), engine=engine)
    assert (line, alpn) == (b"ping\n", "http/1.1")
    assert seen == [("http/1.1", "TLSv1.3")]
    assert names == ["localhost"]
    assert cipher[1] == "TLSv1.3"


@pytest.mark.parametrize(
    ("which", "message"),
    [("wrong CA", "unable to get local issuer certificate"), ("wrong name", "Hostname mismatch")],
)
def test_verification_failures_raise_and_the_server_carries_on(
    engine: str, pki: Pki, which: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong CA or host name raises SSLCertVerificationError; the server logs it at DEBUG."""

    def handler(tls: rocket.TLSStream) -> Body:
        yield tls.write(b"welcome\n")

    def main() -> Body:
        server = yield from _serve(handler, _server_context(pki))
        with server:
            ca = pki.other_ca if which == "wrong CA" else pki.ca
            name = "localhost" if which == "wrong CA" else "wrong.example"
            with pytest.raises(ssl.SSLCertVerificationError, match=message):
                yield rocket.open_connection(
                    "127.0.0.1", server.port, ssl=_client_context(ca), server_hostname=name
                )
            good = yield rocket.open_connection(
                "localhost", server.port, ssl=_client_context(pki.ca)
            )
            with good:
                return (yield good.readline())

    with caplog.at_level(logging.DEBUG, logger="rocket.net"):
        assert rocket.run(main(), engine=engine) == b"welcome\n"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("TLS handshake with client" in r.getMessage() for r in caplog.records)


def test_handshake_timeout_against_a_silent_server(engine: str, listener: socket.socket) -> None:
    """A TCP server that never answers the ClientHello: TimeoutError after the timeout."""
    port = listener.getsockname()[1]

    def main() -> Body:
        yield rocket.open_connection("127.0.0.1", port, ssl=True, ssl_handshake_timeout=0.3)

    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"TLS handshake .* within 0.3 s"):
        rocket.run(main(), engine=engine)
    assert 0.3 <= time.monotonic() - start < 2.0


def test_a_server_drops_a_client_that_never_handshakes(engine: str, pki: Pki) -> None:
    """serve_tcp(ssl_handshake_timeout=...) closes a silent client; the handler never runs."""
    called: list[Any] = []

    def handler(tls: rocket.TLSStream) -> Body:
        called.append(tls)
        yield rocket.sleep(0)

    def main() -> Body:
        server = yield from _serve(handler, _server_context(pki), ssl_handshake_timeout=0.2)
        with server:
            silent = yield rocket.open_connection("127.0.0.1", server.port)  # plain TCP
            with silent, rocket.fail_after(5):
                return (yield silent.read())

    assert rocket.run(main(), engine=engine) == b""  # the server hung up
    assert called == []


def test_close_sends_close_notify_and_a_ragged_eof_raises(engine: str, pki: Pki) -> None:
    """close() ends with close_notify (b""); a bare TCP close is SSLEOFError unless ignored."""

    def handler(tls: rocket.TLSStream) -> Body:
        how = yield tls.readline()
        yield tls.write(b"bye\n")
        if how == b"ragged\n":
            tls.transport.close()  # TCP close, no close_notify
        # else: the server closes the TLS stream when the handler returns

    def client(port: int, how: bytes, context: ssl.SSLContext) -> Body:
        tls = yield rocket.open_connection("localhost", port, ssl=context)
        with tls:
            yield tls.write(how)
            assert (yield tls.readline()) == b"bye\n"
            try:
                return (yield tls.read())
            except ssl.SSLEOFError as exc:
                return exc

    def main() -> Body:
        server = yield from _serve(handler, _server_context(pki))
        with server:
            lenient = _client_context(pki.ca)
            lenient.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
            return [
                (yield from client(server.port, b"clean\n", _client_context(pki.ca))),
                (yield from client(server.port, b"ragged\n", _client_context(pki.ca))),
                (yield from client(server.port, b"ragged\n", lenient)),
            ]

    clean, ragged, lenient = rocket.run(main(), engine=engine)
    assert clean == b""
    assert isinstance(ragged, ssl.SSLEOFError)
    assert lenient == b""


def test_four_mib_both_ways_with_a_reader_and_a_writer_fiber(engine: str, pki: Pki) -> None:
    """4 MiB sent while 4 MiB come back (echo), handshake started by two fibers at once."""
    size = 4 << 20
    payload = os.urandom(size)

    async def echo(tls: rocket.TLSStream) -> None:
        while chunk := await tls.read(100_000):
            await tls.write(chunk)

    async def main() -> bytes:
        server = await rocket.Composite("serve", _serve(echo, _server_context(pki)))
        with server:
            plain = await rocket.open_connection("127.0.0.1", server.port)
            tls = rocket.TLSStream(plain, _client_context(pki.ca), server_hostname="localhost")
            with tls:

                async def writer() -> None:
                    await tls.write(payload)  # the handshake runs on first use, here...

                sender = await rocket.spawn(writer())
                got = await tls.read_exactly(size)  # ...and here, at the same time
                await rocket.join(sender)
                return got

    assert rocket.run(main(), engine=engine) == payload


@pytest.mark.parametrize("style", ["generator", "async"])
def test_start_tls_upgrades_a_plain_connection(engine: str, style: str, pki: Pki) -> None:
    """STARTTLS: plain lines first, then stream.start_tls() on both ends, then TLS lines."""
    server_context = _server_context(pki)

    def generator_handler(stream: rocket.Stream) -> Body:
        assert (yield stream.readline()) == b"STARTTLS\n"
        yield stream.write(b"go ahead\n")
        tls = yield stream.start_tls(server_context, server_side=True)
        with tls:
            yield tls.write((yield tls.readline()).upper())

    async def async_handler(stream: rocket.Stream) -> None:
        assert await stream.readline() == b"STARTTLS\n"
        await stream.write(b"go ahead\n")
        async with await stream.start_tls(server_context, server_side=True) as tls:
            await tls.write((await tls.readline()).upper())

    def main() -> Body:
        handler = generator_handler if style == "generator" else async_handler
        server = yield rocket.serve_tcp(handler, "127.0.0.1", 0)
        yield rocket.spawn(server.serve_forever())
        with server:
            stream = yield rocket.open_connection("127.0.0.1", server.port)
            yield stream.write(b"STARTTLS\n")
            assert (yield stream.readline()) == b"go ahead\n"
            tls = yield stream.start_tls(_client_context(pki.ca), server_hostname="localhost")
            with tls:
                yield tls.write(b"secret\n")
                return (yield tls.readline()), tls.version()

    assert rocket.run(main(), engine=engine) == (b"SECRET\n", "TLSv1.3")


def test_one_reader_at_a_time_and_errors_after_close(engine: str, pki: Pki) -> None:
    """A second reading fiber gets RuntimeError; a read after close() raises ValueError."""

    def handler(tls: rocket.TLSStream) -> Body:
        yield tls.read()  # the client never writes

    def main() -> Body:
        server = yield from _serve(handler, _server_context(pki))
        with server:
            tls = yield rocket.open_connection(
                "localhost", server.port, ssl=_client_context(pki.ca)
            )
            reader = yield rocket.spawn(tls.read())
            yield rocket.yield_now()
            with pytest.raises(RuntimeError, match="another fiber is already reading"):
                yield tls.readline()
            tls.close()
            assert (yield rocket.join(reader)) == b""  # close() ended the waiting read
            with pytest.raises(ValueError, match="closed stream"):
                tls.read()

    rocket.run(main(), engine=engine)


def test_handshake_timeout_is_checked_like_every_duration() -> None:
    """ssl_handshake_timeout: seconds > 0 (inf or None: no limit); anything else a clear error."""
    with pytest.raises(ValueError, match="must be > 0 or None"):
        rocket.open_connection("localhost", 443, ssl=True, ssl_handshake_timeout=0)
    with pytest.raises(ValueError, match=">= 0"):
        rocket.open_connection("localhost", 443, ssl=True, ssl_handshake_timeout=-1)
    with pytest.raises(TypeError, match="number of seconds"):
        rocket.open_connection("localhost", 443, ssl=True, ssl_handshake_timeout="5")  # type: ignore[call-overload]
    for no_limit in (None, math.inf, 5):
        rocket.open_connection("localhost", 443, ssl=True, ssl_handshake_timeout=no_limit)
