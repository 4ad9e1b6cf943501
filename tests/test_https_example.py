"""examples/https_file_server.py against curl: plain HTTP and HTTPS, keep-alive, 404, big files.

The server runs as a subprocess on a free port (on each engine); curl fetches
files from it and the test compares their bytes with the originals. The
certificate is made here with the ``openssl`` command line, as in test_tls.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("h11", reason="the example needs h11 (rocket's http extra)")

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="needs the curl command line")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "https_file_server.py"
TIMEOUT = 30.0  # seconds any server or curl process may live


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory to serve: an index page, a text file, a 3 MiB binary file, a subdirectory."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<h1>rocket</h1>\n")
    (root / "notes.txt").write_text("plain text\n" * 100)
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (root / "docs").mkdir()
    (root / "docs" / "page.html").write_text("<p>a page</p>\n")
    (root / "empty.txt").write_bytes(b"")
    (root.parent / "secret.txt").write_text("outside the root\n")
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(engine: str, root: Path, *tls: str) -> Iterator[str]:
    """Run the example; yield its base URL once it printed its banner; stop it after."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(root), "--port", str(port), "--engine", engine, *tls],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        scheme = "https" if tls else "http"
        assert f"on {scheme}://127.0.0.1:{port} ({engine} engine)" in banner, server.stderr
        yield f"{scheme}://127.0.0.1:{port}"
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=TIMEOUT)
        assert "bye" in out
        assert "Traceback" not in err, err
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.fixture
def plain(engine: str, site: Path) -> Iterator[str]:
    """The example serving ``site`` over plain HTTP."""
    yield from _start(engine, site)


@pytest.fixture
def https(engine: str, site: Path, certificate: tuple[Path, Path]) -> Iterator[str]:
    """The example serving ``site`` over HTTPS (with the certificate above)."""
    cert, key = certificate
    yield from _start(engine, site, "--cert", str(cert), "--key", str(key))


def _curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "--silent", "--show-error", *args], capture_output=True, timeout=TIMEOUT, check=False
    )


def _fetch_all(base: str, names: list[str], out: Path, *options: str) -> list[list[str]]:
    """Fetch every name with ONE curl (one connection, kept alive); [status, new connections]."""
    args: list[str] = [*options, "--write-out", "%{http_code} %{num_connects}\n"]
    for i, name in enumerate(names):
        args += ["--output", str(out / f"{i}.out"), f"{base}/{name}"]
    result = _curl(*args)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.decode().splitlines()]


NAMES = ["index.html", "notes.txt", "big.bin", "docs/page.html", "", "empty.txt"]
FILES = ["index.html", "notes.txt", "big.bin", "docs/page.html", "index.html", "empty.txt"]


def test_curl_fetches_several_files_on_one_kept_alive_connection(
    plain: str, site: Path, tmp_path: Path
) -> None:
    """Six files (one of 3 MiB, an empty one, a directory's index) on one connection, byte-exact."""
    answers = _fetch_all(plain, NAMES, tmp_path)
    assert answers == [["200", "1"]] + [["200", "0"]] * 5  # 0: curl reused the connection
    for i, name in enumerate(FILES):
        assert (tmp_path / f"{i}.out").read_bytes() == (site / name).read_bytes(), name


def test_curl_over_https_gets_the_same_bytes(
    https: str, site: Path, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """Over TLS (curl --cacert) the same files arrive, kept alive, the big one included."""
    answers = _fetch_all(https, NAMES, tmp_path, "--cacert", str(certificate[0]))
    assert answers == [["200", "1"]] + [["200", "0"]] * 5
    for i, name in enumerate(FILES):
        assert (tmp_path / f"{i}.out").read_bytes() == (site / name).read_bytes(), name


def test_missing_files_and_paths_outside_the_root_are_404(plain: str, tmp_path: Path) -> None:
    """A missing file is 404, and so is ../secret.txt (curl --path-as-is sends the dots)."""
    answers = _fetch_all(plain, ["missing.txt", "../secret.txt", "%2e%2e/secret.txt"], tmp_path,
                         "--path-as-is")  # fmt: skip
    assert [status for status, _ in answers] == ["404", "404", "404"]
    assert (tmp_path / "0.out").read_bytes() == b"not found\n"


def test_head_and_other_methods(plain: str) -> None:
    """HEAD gives the headers of a file (its length, no body); POST is 405 with Allow."""
    head = _curl("--head", f"{plain}/big.bin")
    assert head.returncode == 0, head.stderr
    headers = head.stdout.decode().lower()
    assert "200 ok" in headers
    assert f"content-length: {3 * 1024 * 1024 + 17}" in headers
    post = _curl("--include", "--data", "x=1", f"{plain}/notes.txt")
    assert b" 405 " in post.stdout.splitlines()[0]
    assert b"allow: get, head" in post.stdout.lower()
