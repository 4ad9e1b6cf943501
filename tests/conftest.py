"""Shared fixtures: every test that takes ``engine`` runs once per available engine.

With ``ROCKET_GUEST=1`` (or ``--guest``), ``rocket.run`` runs each program in guest
mode instead: ``asyncio.run(rocket.asyncio.run(main, ...))``, so the suite checks
that rocket inside an asyncio loop behaves as rocket on its own (see
``guest_run`` for what stays on ``rocket.run``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rocket
import rocket.asyncio
from rocket import _context, runner
from rocket.engines import available_engines
from rocket.sched import is_nested_call

ENGINES = available_engines()


_blocking_run = runner.run


def guest_run(main: Any, *, engine: Any = "auto", trace: bool = False, **options: Any) -> Any:
    """``rocket.run`` in guest mode: ``asyncio.run(rocket.asyncio.run(main, ...))``.

    Stays on the blocking ``rocket.run`` where guest mode differs by design: the
    tests in ``BLOCKING_ONLY``, ``dump_signal`` (signals belong to asyncio), an
    engine without ``fileno`` (the virtual-clock engine), and a call that
    ``rocket.run`` refuses (no fiber body; from a fiber or inside a running
    asyncio loop): the test checks that error.
    """
    guest_options = {k: v for k, v in options.items() if k in ("max_threads", "slow_step")}
    if (
        _blocking
        or len(guest_options) != len(options)
        or not is_nested_call(main)  # rocket.run's own TypeError
        or not (isinstance(engine, str) or hasattr(engine, "fileno"))
        or _in_rocket_or_asyncio()
    ):
        return _blocking_run(main, engine=engine, trace=trace, **options)
    return asyncio.run(rocket.asyncio.run(main, engine=engine, trace=trace, **guest_options))


def _in_rocket_or_asyncio() -> bool:
    try:
        _context.running_executor("run")
    except RuntimeError:
        return asyncio.events._get_running_loop() is not None
    return True


GUEST = os.environ.get("ROCKET_GUEST") == "1" or "--guest" in sys.argv
if GUEST:  # before any test module runs 'import rocket' and calls rocket.run
    rocket.run = guest_run

#: Tests that keep the blocking rocket.run in guest mode, and why (node id prefixes).
BLOCKING_ONLY = {
    "tests/test_signals.py": "rocket.signal() and rocket's SIGINT/SIGTERM shutdown are "
    "rocket.run's; under asyncio.run, asyncio owns the signals",
    "tests/test_faults_runner.py::test_sigint_": "the same: asyncio.run handles SIGINT itself",
    "tests/test_faults_runner.py::test_child_of_a_fork_in_a_fiber_can_run_rocket": "the "
    "child inherits asyncio.run's SIGINT handler, where the test wants the default one",
    "tests/test_guest.py": "it runs guest mode and rocket.run each on purpose",
}
_blocking = False  # the running test keeps rocket.run (BLOCKING_ONLY)


@pytest.fixture(autouse=True)
def _guest_routing(request: pytest.FixtureRequest) -> Iterator[None]:
    """In guest mode, leave the BLOCKING_ONLY tests on the blocking rocket.run."""
    global _blocking
    _blocking = request.node.nodeid.startswith(tuple(BLOCKING_ONLY))
    yield
    _blocking = False


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        help="run the long reliability versions (10,000 connections, 60 s soak...)",
    )
    parser.addoption(
        "--guest",
        action="store_true",
        help="run every rocket.run() as a guest of asyncio (as ROCKET_GUEST=1 does)",
    )


def pytest_report_header() -> str:
    mode = "; rocket.run in guest mode (asyncio.run(rocket.asyncio.run(...)))" if GUEST else ""
    return f"rocket engines under test: {', '.join(ENGINES) or 'none'}{mode}"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The name of an engine that works on this machine."""
    return str(request.param)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on 127.0.0.1 with an ephemeral port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 and its key (the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command line")
    directory = tmp_path_factory.mktemp("cert")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key
