"""Which database the suite runs on: SQLite files (the default) or PostgreSQL.

`LOYALTY_TEST_BACKEND=postgresql` (or `pytest --backend postgresql`) runs every test that makes its
database through `fresh_db` (the `db` fixtures) against a throwaway PostgreSQL server started for
the session (tests/pg_server.py): each test gets a new database, copied from a template that
`loyalty init` made once, and dropped when the test ends. Tests about SQLite's own files (modes,
WAL, backups of a file, damaged pages) are marked `sqlite_only`; tests that never open a database
do not run twice.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

BACKEND = os.environ.get("LOYALTY_TEST_BACKEND", "sqlite")
TEMPLATE = "loyalty_template"

_server = None
_key: Path | None = None
_made: list[str] = []
_numbers = itertools.count(1)


def postgres() -> bool:
    return BACKEND == "postgresql"


def server():
    """The session's server, started (with the template database) on first use."""
    global _server, _key
    if _server is None:
        import tempfile

        from loyalty_cli import keys
        from loyalty_cli.store import Store
        from tests.pg_server import Server

        started = Server().start()
        try:
            url = started.create_db(TEMPLATE)
            _key = Path(tempfile.mkdtemp(prefix="loyalty-pg-key-")) / "chain.key"
            keys.create(_key)
            Store.open(url, create=True, key_file=_key).close()
        except BaseException:
            started.stop()
            raise
        _server = started
    return _server


def new_database(keep: bool = False) -> str:
    """The URL of a new database made as `loyalty init` makes it, whose chain key is the test's own
    ($XDG_CONFIG_HOME/loyalty/chain.key, copied from the template's)."""
    pg = server()
    name = f"t{os.getpid()}_{next(_numbers)}"
    pg.admin(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE} OWNER shop')
    if not keep:  # kept: a module's template, dropped with the server
        _made.append(name)
    config = os.environ.get("XDG_CONFIG_HOME")
    if config:
        target = Path(config) / "loyalty" / "chain.key"
        if not target.exists():
            for folder in (Path(config), target.parent):  # each made private, as the tool makes them
                folder.mkdir(exist_ok=True, mode=0o700)
            shutil.copyfile(_key, target)
            os.chmod(target, 0o600)
    return pg.url(name)


def clone(url: str) -> str:
    """The URL of a new database copied from the one at `url` (CREATE DATABASE … TEMPLATE): a
    prepared shop, fresh for each test or example. Nothing may be connected to `url` meanwhile."""
    from urllib.parse import urlsplit

    pg = server()
    source = urlsplit(url).path.lstrip("/")
    name = f"t{os.getpid()}_{next(_numbers)}"
    pg.admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}" OWNER shop')
    _made.append(name)
    return pg.url(name)


def key_file() -> Path:
    """The chain key of every database the PostgreSQL run makes."""
    server()
    return _key


def drop_made() -> None:
    """Drop the databases the test made."""
    while _made:
        _server.drop_db(_made.pop())


def stop() -> None:
    global _server, _key
    if _server is not None:
        _server.stop()
        _server = None
    if _key is not None:  # the folder of the session's chain key (a temporary one)
        shutil.rmtree(_key.parent, ignore_errors=True)
        _key = None
