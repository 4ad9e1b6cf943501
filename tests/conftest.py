"""Shared fixtures: every test that takes ``engine`` runs once per available engine."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from rocket.engines import create_engine
from rocket.errors import EngineUnavailable


def _available_engines() -> list[str]:
    names = []
    for name in ("io_uring", "selector"):
        try:
            create_engine(name).close()
        except (EngineUnavailable, ImportError):
            continue
        names.append(name)
    return names


ENGINES = _available_engines()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        help="run the long reliability versions (10,000 connections, 60 s soak...)",
    )


def pytest_report_header() -> str:
    return f"rocket engines under test: {', '.join(ENGINES) or 'none'}"


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
