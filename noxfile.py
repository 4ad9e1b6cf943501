"""Every check rocket's CI runs: ``nox`` runs them all; ``nox -s NAME`` runs one.

Sessions install the package into a fresh virtualenv, so the tests see what a
user would install, not the source tree.
"""

from __future__ import annotations

import nox

nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "tests_multishot",
    "tests_guest",
    "examples",
    "docs",
]
nox.options.error_on_external_run = True
nox.options.reuse_existing_virtualenvs = False

PYTHON = "3.11"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install(".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the typing tests, examples and this file."""
    session.install(".[typecheck]", "nox")
    session.run("mypy", "--strict", "rocket", "tests", "examples", "benchmarks", "noxfile.py")


def _pytest(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Install the package with its test extra, then run pytest on ``args``."""
    session.install(".[test]")
    session.run("pytest", "-p", "no:cacheprovider", *args, *session.posargs, env=env)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (every engine that works here), minus the examples."""
    _pytest(session, "--ignore=tests/test_examples.py")


#: What tests_guest runs: the executor, cancellation, timeouts, I/O of every kind.
GUEST_TESTS = [
    f"tests/test_{name}.py"
    for name in [
        "executor",
        "cancel",
        "timeouts",
        "sync",
        "group",
        "ported_tasks",
        "ported_sync",
        "ported_streams",
        "net",
        "sendall",
        "tls",
        "files",
        "pipes",
        "process",
        "threads",
        "faults_engines",
        "from_threads",
        "watchdog",
        "scopes",
        "groups_more",
        "sync_more",
        "queue_more",
        "sendfile",
    ]
]

#: What tests_multishot runs: streams, servers and engine faults.
MULTISHOT_TESTS = [
    f"tests/test_{name}.py"
    for name in [
        "multishot",
        "net",
        "ported_streams",
        "stream_usability",
        "faults_engines",
        "tls",
        "sendfile",
    ]
]


@nox.session(python=PYTHON)
def tests_guest(session: nox.Session) -> None:
    """A subset of the suite with every rocket.run as a guest of asyncio (ROCKET_GUEST=1)."""
    _pytest(session, *GUEST_TESTS, env={"ROCKET_GUEST": "1"})


@nox.session(python=PYTHON)
def tests_multishot(session: nox.Session) -> None:
    """The stream, server and fault tests again with io_uring's multishot receive on."""
    _pytest(session, *MULTISHOT_TESTS, env={"ROCKET_MULTISHOT": "1"})


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    """Run every example on every engine and check its output."""
    _pytest(session, "tests/test_examples.py")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation; any warning is an error."""
    session.install(".[docs]")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session(python=PYTHON, default=False)
def soak(session: nox.Session) -> None:
    """The long reliability runs (load, soak); not part of the default set."""
    _pytest(session, "-s", "--soak", "tests/test_reliability.py")
