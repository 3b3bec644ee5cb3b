"""Plain helpers the test files share: run the CLI in-process against a database (tests/db.py
reads it back).

(conftest.py has the same as fixtures; these are for tests that take `db` as a
path and call helpers directly, which reads better in long worked examples.)
"""

from __future__ import annotations

from pathlib import Path

import json

from typer.testing import CliRunner

from loyalty_cli.cli import app

RUNNER = CliRunner()


def run(db, *args, env=None):
    """The CLI in-process with `--db db`; result.exit_code, result.stdout, result.stderr apart."""
    return RUNNER.invoke(app, ["--db", str(db), *map(str, args)], env=env)


def ok(db, *args, env=None):
    """Run and insist on success."""
    result = run(db, *args, env=env)
    assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result


def as_json(db, *args, env=None):
    """Run with --json and parse the one document on stdout."""
    return json.loads(ok(db, *args, "--json", env=env).stdout)


def one_error_line(result) -> str:
    """A failure prints nothing on stdout and exactly one `Error:` line on stderr."""
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:")
    assert "Traceback" not in result.output
    return lines[0]


def fresh_db(path):
    """A new, empty database at `path`, made as `loyalty init` makes it (no other command creates
    one); returns the path (on the PostgreSQL run, the URL of a new database instead: tests/backend.py)."""
    from loyalty_cli.store import Store
    from tests import backend

    if backend.postgres():
        return backend.new_database()
    Store.open(path, create=True).close()
    return path


def is_postgres(conn) -> bool:
    """Whether an open tests.db connection is the PostgreSQL run's (the store's translating connection)."""
    from loyalty_cli.store import dialect

    return dialect(conn) == "postgresql"


def drop_trigger(conn, name: str, if_exists: bool = False) -> None:
    """DROP TRIGGER `name` on an open tests.db connection, as the sqlite3 shell would. On PostgreSQL a
    trigger is dropped ON its table (looked up here), and SQLite's *_no_replace triggers do not exist
    there (a primary key refuses a second row): dropping one is a no-op."""
    if not is_postgres(conn):
        conn.execute(f"DROP TRIGGER {'IF EXISTS ' if if_exists else ''}{name}")
        return
    table = trigger_table(conn, name)
    if table is None:
        assert if_exists or name.endswith("_no_replace"), f"no trigger {name}"
        return
    conn.execute(f"DROP TRIGGER {name} ON {table}")


def trigger_table(conn, name: str) -> str | None:
    """The table trigger `name` is on, on the PostgreSQL run's connection (None: there is no such trigger)."""
    found = conn.execute("SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
                         "WHERE g.tgname = ? AND c.relnamespace = current_schema()::regnamespace", (name,)).fetchall()
    return found[0][0] if found else None


def undo_history_guards(conn) -> None:
    """Make a database (an open tests.db connection) look as it was before m007_history_guards:
    its triggers dropped and the migration no longer recorded (user_version is the caller's)."""
    from loyalty_cli.store.migrations import m007_history_guards

    for statement in m007_history_guards(conn):
        drop_trigger(conn, statement.split()[2])
    conn.execute("DELETE FROM migrations WHERE name = 'm007_history_guards'")


def undo_chain(conn) -> None:
    """Make a database (an open tests.db connection) look as it was before m009_chain: the chain
    and its triggers dropped and the migration no longer recorded (user_version is the caller's).
    Opening it with the tool then extends a new chain over every row it holds, as the migration
    does for a database of an earlier loyalty."""
    for trigger in ("chain_no_update", "chain_no_delete", "chain_no_replace"):
        drop_trigger(conn, trigger, if_exists=True)
    conn.execute("DROP TABLE IF EXISTS chain")
    conn.execute("DELETE FROM migrations WHERE name = 'm009_chain'")


def guards_dropped(conn, *tables):
    """A context: the triggers guarding `tables` (an open tests.db connection's) dropped for the
    block and put back after it, as a careful attacker with the sqlite3 shell would (a missing
    trigger is itself a problem db check reports)."""
    from contextlib import contextmanager

    @contextmanager
    def dropped():
        if is_postgres(conn):  # the same guards, disabled for the block (`(DISABLED)` in the catalogue meanwhile)
            for table in tables:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield
            for table in tables:
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            return
        saved = []
        for table in tables:
            saved += conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                                  (table,)).fetchall()
        for name, _ in saved:
            conn.execute(f"DROP TRIGGER {name}")
        yield
        for _, sql in saved:
            conn.execute(sql)

    return dropped()


def rechain(conn, first: int, key: bytes | None) -> None:
    """Recompute the hash of chain block `first` and of every later block over their bodies as they
    are now, and their signatures with `key` (None: signatures left as they are): what an attacker
    who read the code, and the key file, would do after editing a block's body. Drop the chain's
    guard first."""
    from loyalty_cli.store.chain import GENESIS, block_hash, block_mac

    prev = GENESIS if first == 1 else conn.execute("SELECT hash FROM chain WHERE id = ?", (first - 1,)).fetchone()[0]
    for block_id, kinds, key_id, counts, body, mac in conn.execute(
            "SELECT id, kinds, key, counts, body, mac FROM chain WHERE id >= ? ORDER BY id", (first,)).fetchall():
        prev = block_hash(prev, block_id, kinds, key_id, counts, body)
        conn.execute("UPDATE chain SET hash = ?, mac = ? WHERE id = ?",
                     (prev, block_mac(key, prev) if key is not None else mac, block_id))


def chain_key(path=None) -> bytes:
    """The chain key in the key file (default: the one the test's XDG_CONFIG_HOME holds)."""
    import os

    from loyalty_cli import keys

    key = keys.read(Path(path) if path is not None else keys.resolve_path(os.environ))
    assert key is not None, "no chain key file"
    return key


def block_text(conn, kind: str, contains: str) -> tuple[int, str]:
    """(id, body as JSON text) of the one block holding records of `kind` whose body contains
    `contains` (bodies of big blocks are stored compressed: read as the tool reads them)."""
    from loyalty_cli.store.chain import body_of

    import json

    found = []
    for block_id, body in conn.execute("SELECT id, body FROM chain WHERE kinds LIKE ?", (f"%,{kind},%",)):
        text = json.dumps(body_of(body), separators=(",", ":"))
        if contains in text:
            found.append((block_id, text))
    assert len(found) == 1, [b for b, _ in found]
    return found[0]


SMALL_SHOP_SALES = ("purchase_id,member_id,purchased_at,amount,category,kind,refund_of\n"
                    "S1,M0001,2025-05-01T10:00,120.00,grocery,sale,\n"
                    "S2,M0002,2025-05-02T10:00,80.00,grocery,sale,\n"
                    "S3,M0003,2025-05-03T10:00,40.00,grocery,sale,\n"
                    "R1,M0001,2025-05-04T10:00,20.00,,refund,S1\n")


def small_shop(tmp_path, members: int, db=None):
    """A shop made the ordinary way: the sample programme, the first `members` sample members, three sales
    and a refund imported from the till (S1..S3, R1 of S1), a reward MUG (cost 50, stock 5). Returns its path
    (`db`, the `db` fixture's database, when given: on the PostgreSQL run a URL; default tmp_path/shop.db)."""
    from tests.test_import_bulk import head_of

    sample = Path(__file__).resolve().parent.parent / "sample_data"
    db = tmp_path / "shop.db" if db is None else db
    ok(db, "-q", "init")
    ok(db, "-q", "program", "load", sample / "program.toml", "--from", "2024-01-01")
    ok(db, "members", "import", head_of(sample / "members.csv", tmp_path / "members.csv", 0, members))
    sales = tmp_path / "sales.csv"
    sales.write_text(SMALL_SHOP_SALES)
    ok(db, "purchases", "import", sales)
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "50", "--stock", "5")
    return db


def job_running(db, name: str):
    """A context: the lock of nightly job `name` ("recalc", "expire") on `db` held for the block, as a
    running job holds it: on SQLite an flock on the file beside the database, on PostgreSQL the
    store's own advisory lock on a session of its own. Taking it while it is held raises
    BlockingIOError or loyalty's Busy."""
    from contextlib import contextmanager

    from tests.db import is_url

    @contextmanager
    def held():
        if is_url(db):
            from loyalty_cli.store import Store

            store = Store.open(db)
            try:
                with store.job_lock(name):
                    yield
            finally:
                store.close()
            return
        import fcntl
        import os

        fd = os.open(f"{db}.{name}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield
        finally:
            os.close(fd)

    return held()


def job_is_running(db, name: str) -> bool:
    """Whether some process holds the lock of nightly job `name` on `db` (probed: taken and let go)."""
    from loyalty_cli.errors import Busy

    try:
        with job_running(db, name):
            return False
    except (BlockingIOError, Busy):
        return True


def copy_database(source, target):
    """A copy of the database `source` at `target`, made behind the tool's back (an attacker's or an
    owner's copy of the file), returned as what --db takes. On PostgreSQL: a database made from
    `source` as its template (dropped when the test ends); a `target` that is a URL is replaced by it
    (an older copy put back), a path names a new database."""
    import shutil

    from tests.db import is_url

    if not is_url(source):
        shutil.copy(source, target)
        return target
    from urllib.parse import urlsplit

    from tests import backend

    pg = backend.server()
    name_of = lambda url: urlsplit(url).path.lstrip("/")  # noqa: E731
    if is_url(target):
        name = name_of(target)
        pg.drop_db(name)
    else:
        name = f"{name_of(source)}_{Path(target).stem}"[:63]
        backend._made.append(name)
    pg.admin(f'CREATE DATABASE "{name}" TEMPLATE "{name_of(source)}" OWNER shop')
    return pg.url(name)


def undo_member_hygiene(conn) -> None:
    """Take out of a SQLite database what migration m013 made (its members columns, its tables, its
    index, its row in migrations), as a database from before it is; opening it runs m013 again (its
    widened CHECK constraints stay: widening them again changes nothing)."""
    conn.execute("DROP INDEX members_merged_into")
    for column in ("merged_into", "email_opt_in", "email_consent_at", "email_consent_source", "sms_opt_in",
                   "sms_consent_at", "sms_consent_source"):
        conn.execute(f"ALTER TABLE members DROP COLUMN {column}")
    for table in ("member_merges", "consent_changes", "campaign_exports"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DELETE FROM migrations WHERE name = 'm013_member_hygiene'")


def count_statements(patches) -> list:
    """Count every statement the store sends to its database (either backend) from now on;
    `patches`: a pytest MonkeyPatch."""
    from loyalty_cli.store import Connection as SqliteConnection
    from loyalty_cli.store import postgres

    sent = []
    for cls in (SqliteConnection, postgres.Connection):
        for name in ("execute", "executemany"):
            def counted(self, sql, *args, _base=getattr(cls, name)):
                sent.append(sql)
                return _base(self, sql, *args)

            patches.setattr(cls, name, counted)
    return sent

