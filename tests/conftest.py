"""Shared fixtures: a private home for every test, a fresh database, two ways to run the CLI.

No test may touch a real user's data: the autouse `isolated_env` fixture points
HOME, XDG_DATA_HOME, XDG_CONFIG_HOME (where `db seal` keeps its anchors) and LOYALTY_DB into the
test's own temporary directory and
clears every environment variable the tool reads, so each test starts from the
documented defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loyalty_cli.cli import app

# Everything the tool (or rich/click underneath it) reads from the environment.
TOOL_ENV = (
    "LOYALTY_DB", "LOYALTY_BUSY_TIMEOUT", "LOYALTY_OPERATOR", "LOYALTY_ENCODING", "LOYALTY_DELIMITER",
    "LOYALTY_DATE_FORMAT", "LOYALTY_DEBUG", "LOYALTY_STRESS",
    "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "TERM", "XDG_DATA_HOME",
    "XDG_CONFIG_HOME", "LOYALTY_ANCHORS", "LOYALTY_KEY_FILE", "LOYALTY_STORE",
    "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGSSLMODE",
    "LOYALTY_LANG", "LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE",  # English unless a test asks for Chinese
)


def pytest_addoption(parser):
    parser.addoption("--backend", choices=("sqlite", "postgresql"), default=None,
                     help="the database the tests run on (default: LOYALTY_TEST_BACKEND, else sqlite)")


DB_FIXTURES = {"db", "dbp", "run", "shop", "big_shop"}


def pytest_configure(config):
    from tests import backend

    chosen = config.getoption("--backend")
    if chosen:
        backend.BACKEND = chosen
        os.environ["LOYALTY_TEST_BACKEND"] = chosen  # for the tests' child processes
    config.addinivalue_line("markers", "sqlite_only: about SQLite's files themselves; not run on PostgreSQL")
    config.addinivalue_line("markers", "postgres_only: about the PostgreSQL backend; run on PostgreSQL only")
    config.addinivalue_line("markers", "any_backend: makes its databases with fresh_db (not the db fixtures): "
                                       "runs on PostgreSQL too")


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL: the tests that make a database through the `db` fixtures, less those about
    SQLite's files; on SQLite: every test but those about PostgreSQL."""
    from tests import backend

    skip_pg = pytest.mark.skip(reason="about the PostgreSQL backend (run with --backend postgresql)")
    for item in items:
        pg_only = item.get_closest_marker("postgres_only") is not None
        if not backend.postgres():
            if pg_only:
                item.add_marker(skip_pg)
            continue
        if item.get_closest_marker("sqlite_only") is not None:
            item.add_marker(pytest.mark.skip(reason="about SQLite's files"))
        elif not pg_only and item.get_closest_marker("any_backend") is None \
                and not (DB_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.skip(reason="opens no database: run once, on SQLite"))


def pytest_sessionstart(session):
    """The PostgreSQL run starts its server first: one that cannot start fails the run, once."""
    from tests import backend

    if backend.postgres():
        try:
            backend.server()
        except Exception as exc:
            pytest.exit(f"the PostgreSQL test server did not start: {exc}", returncode=1)


def pytest_sessionfinish(session, exitstatus):
    from tests import backend

    backend.stop()


@pytest.fixture(autouse=True)
def drop_test_databases():
    """On PostgreSQL: the databases a test made are dropped when it ends."""
    yield
    from tests import backend

    if backend.postgres():
        backend.drop_made()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """HOME, XDG_DATA_HOME, XDG_CONFIG_HOME and LOYALTY_DB inside tmp_path; nothing else of the user's environment."""
    for name in TOOL_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LOYALTY_DB", str(tmp_path / "env" / "loyalty.db"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def db(tmp_path) -> Path:
    """The path of a fresh, empty database, made as `loyalty init` makes it (no other command
    creates one). A test of what happens without a database uses a path of its own."""
    from tests.helpers import fresh_db

    return fresh_db(tmp_path / "shop.db")


@pytest.fixture
def cli():
    """`cli(*args, input=None)`: invoke the app in-process exactly as given (no --db added).

    Typer (0.29 vendors its own Click as `typer._click`) ships a CliRunner that
    keeps `result.stdout` and `result.stderr` apart (`result.output` is the two
    interleaved), so tests can check that data goes to stdout and messages to
    stderr. Standard streams are not terminals inside the runner.
    """
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def run(cli, db):
    """`run(*args, input=None) -> Result` with `--db <db>` prepended; exit_code, stdout, stderr apart."""

    def invoke(*args, input=None):
        return cli("--db", db, *args, input=input)

    return invoke


@pytest.fixture
def loyalty_proc(tmp_path):
    """`loyalty_proc(*args, input=None, env=None)`: the real CLI in a child process (`python -m loyalty_cli`).

    For tests that need real processes: locks held by another connection, pipes,
    exit codes as the shell sees them. Arguments are passed as given (add
    `--db` yourself); `env` adds to the test's isolated environment.
    """

    def invoke(*args, input=None, env=None, timeout=120):
        environ = dict(os.environ)
        environ.update(env or {})
        return subprocess.run([sys.executable, "-m", "loyalty_cli", *map(str, args)], input=input,
                              capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=timeout)

    return invoke


@pytest.fixture
def umask_zero():
    """Run with umask 0, so a file or directory is private only if the tool made it so."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)

