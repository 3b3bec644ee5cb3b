"""The store: where the database lives, file modes, pragmas, migrations, transactions, busy.

SPEC §2 (location, modes, pragmas), §7.1 (append-only ledger) and §10
(BEGIN IMMEDIATE, no transaction left open, exit 75 when busy).
"""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only  # the SQLite file itself: location, modes, pragmas, WAL, backups

from loyalty_cli import store
from loyalty_cli.errors import Busy
from loyalty_cli.store.migrations import MIGRATIONS
from loyalty_cli.store import Store, default_path
from tests.db import balance, connect, count, members, open_connection, raw, rows


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def other_connection(path: Path) -> sqlite3.Connection:
    """A second, independent connection that never waits for a lock."""
    return open_connection(path, timeout=0, isolation_level=None)


def add_member(conn, member_id: str) -> None:
    conn.execute("INSERT INTO members (member_id, joined_on, tier, tier_since) VALUES (?, '2025-01-01', 'Bronze', '2025-01-01')",
                 (member_id,))


# -- where the database is ------------------------------------------------------


def test_db_option_beats_environment_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_DB", str(tmp_path / "from-env.db"))
    assert store.resolve_path(tmp_path / "given.db") == tmp_path / "given.db"


def test_environment_beats_default(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_DB", str(tmp_path / "from-env.db"))
    assert store.resolve_path(None) == tmp_path / "from-env.db"


def test_default_is_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv("LOYALTY_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert store.resolve_path(None) == tmp_path / "data" / "loyalty" / "loyalty.db"


def test_default_without_xdg_is_under_home_local_share(tmp_path, monkeypatch):
    monkeypatch.delenv("LOYALTY_DB")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert store.resolve_path(None) == tmp_path / "home" / ".local" / "share" / "loyalty" / "loyalty.db"


def init_path(cli, *args) -> Path:
    result = cli(*args, "init", "--json")
    assert result.exit_code == 0, result.stderr
    return Path(json.loads(result.stdout)["path"])


def test_init_prints_where_the_database_is_by_precedence(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("LOYALTY_DB")
    assert init_path(cli) == (tmp_path / "xdg" / "loyalty" / "loyalty.db").resolve()

    monkeypatch.setenv("LOYALTY_DB", str(tmp_path / "from-env.db"))
    assert init_path(cli) == (tmp_path / "from-env.db").resolve()

    assert init_path(cli, "--db", tmp_path / "given.db") == (tmp_path / "given.db").resolve()
    for created in ("xdg/loyalty/loyalty.db", "from-env.db", "given.db"):
        assert (tmp_path / created).is_file()


def test_an_empty_db_option_is_a_usage_error(cli, tmp_path):
    result = cli("--db", "", "init")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error:") or "Usage:" in result.stderr
    assert not (tmp_path / "env" / "loyalty.db").exists()


def test_init_plain_output_names_the_path(cli, db):
    result = cli("--db", db, "init")
    assert result.exit_code == 0
    assert result.stdout == f"database ready at {db.resolve()}\n"


# -- files and directories are private -------------------------------------------


def test_new_database_file_is_0600(db, umask_zero):
    s = Store.open(db)
    try:
        assert mode(db) == 0o600
    finally:
        s.close()


def test_wal_and_shm_files_are_0600_while_open(db, umask_zero):
    s = Store.open(db)
    try:
        with s.write() as conn:
            add_member(conn, "M1")
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        assert mode(wal) == 0o600
        assert mode(shm) == 0o600
    finally:
        s.close()


def test_directories_created_for_the_database_are_0700(tmp_path, umask_zero):
    path = tmp_path / "shop" / "data" / "loyalty.db"
    s = Store.open(path, create=True)  # as loyalty init does
    s.close()
    assert mode(tmp_path / "shop") == 0o700
    assert mode(tmp_path / "shop" / "data") == 0o700
    assert mode(path) == 0o600


def test_default_location_directories_are_0700(tmp_path, monkeypatch, umask_zero):
    monkeypatch.delenv("LOYALTY_DB")
    s = Store.open(None, create=True)  # as loyalty init does
    s.close()
    assert mode(tmp_path / "xdg") == 0o700
    assert mode(tmp_path / "xdg" / "loyalty") == 0o700
    assert mode(tmp_path / "xdg" / "loyalty" / "loyalty.db") == 0o600


def test_a_directory_given_as_the_database_is_an_error_not_a_traceback(cli, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    result = cli("--db", folder, "init")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


# -- pragmas and migrations -------------------------------------------------------


def test_connection_pragmas(db):
    s = Store.open(db)
    try:
        c = s.conn
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert c.execute("PRAGMA secure_delete").fetchone()[0] == 1
    finally:
        s.close()


def test_busy_timeout_comes_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("LOYALTY_BUSY_TIMEOUT", "0.25")
    s = Store.open(db)
    try:
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    finally:
        s.close()


def test_default_busy_timeout_is_five_seconds(db):
    s = Store.open(db)
    try:
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    finally:
        s.close()


def test_migrations_are_recorded_in_a_table_and_user_version(db):
    Store.open(db).close()
    names = [m.name for m in rows(db, "migrations")]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert names[0] == "m001_initial"
    assert raw(db, "PRAGMA user_version")[0][0] == len(MIGRATIONS)


def test_reopening_does_not_run_migrations_again(db):
    Store.open(db).close()
    before = rows(db, "migrations")
    s = Store.open(db)
    try:
        assert s.migrate() == []
    finally:
        s.close()
    after = rows(db, "migrations")
    assert after == before


def test_first_open_reports_the_migrations_it_ran(tmp_path):
    s = Store.open(tmp_path / "new.db", migrate=False, create=True)
    try:
        assert s.migrate() == [m.__name__ for m in MIGRATIONS]
        assert s.migrate() == []
    finally:
        s.close()


def test_a_file_that_is_not_a_database_is_an_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("this is a shopping list, not a database\n" * 100)
    with pytest.raises(Exception) as info:
        Store.open(path)
    assert "not a loyalty database" in str(info.value)


# -- the ledger is append-only, enforced by the database ----------------------------


@pytest.fixture
def ledger_entry(db):
    """A database with member M1 and one ledger entry (id 1) of 50 points."""
    s = Store.open(db)
    with s.write() as conn:
        add_member(conn, "M1")
        conn.execute("INSERT INTO ledger (id, member_id, at, kind, points, hash) "
                     "VALUES (1, 'M1', '2025-01-01T00:00:00', 'award', 50, 'x')")
    s.close()
    return db


def test_ledger_update_is_refused_by_the_database(ledger_entry):
    with connect(ledger_entry) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE ledger SET points = 5000 WHERE id = 1")
        conn.rollback()
        assert conn.execute("SELECT points FROM ledger WHERE id = 1").fetchone() == (50,)


def test_ledger_delete_is_refused_by_the_database(ledger_entry):
    with connect(ledger_entry) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM ledger WHERE id = 1")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (1,)


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO ledger SELECT id, member_id, at, kind, points + 1, ref, note, by, hash FROM ledger WHERE id = 1",
    "REPLACE INTO ledger SELECT * FROM ledger WHERE id = 1",
    "INSERT INTO ledger SELECT * FROM ledger WHERE id = 1 ON CONFLICT (id) DO UPDATE SET points = 5000",
])
def test_replacing_a_ledger_entry_is_refused_by_the_database(ledger_entry, statement):
    # REPLACE deletes without firing the delete trigger: a trigger of its own refuses it.
    with connect(ledger_entry) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
        conn.rollback()
        assert conn.execute("SELECT id, points FROM ledger").fetchall() == [(1, 50)]


def test_replacing_a_lot_use_is_refused_by_the_database(ledger_entry):
    with connect(ledger_entry) as conn:
        conn.execute("INSERT INTO lots (id, entry_id, member_id, expires_on, points, remaining) VALUES (1, 1, 'M1', NULL, 50, 50)")
        conn.execute("INSERT INTO lot_uses (entry_id, lot_id, points) VALUES (1, 1, 5)")
        conn.commit()
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("INSERT OR REPLACE INTO lot_uses (rowid, entry_id, lot_id, points) SELECT rowid, entry_id, lot_id, 50 "
                         "FROM lot_uses")
        conn.rollback()
        assert conn.execute("SELECT points FROM lot_uses").fetchall() == [(5,)]


def test_foreign_keys_are_enforced_on_the_ledger(db):
    s = Store.open(db)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            with s.write() as conn:
                conn.execute("INSERT INTO ledger (member_id, at, kind, points, hash) "
                             "VALUES ('NOBODY', '2025-01-01T00:00:00', 'award', 5, 'x')")
        assert s.conn.execute("SELECT count(*) FROM ledger").fetchone() == (0,)
    finally:
        s.close()


# -- transactions --------------------------------------------------------------------


def test_write_begins_immediate(db):
    """Inside write(), before any statement, another writer is already shut out."""
    s = Store.open(db)
    other = other_connection(db)
    try:
        with s.write():
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once write() has committed
        other.execute("ROLLBACK")
    finally:
        other.close()
        s.close()


def test_write_commits_and_leaves_no_transaction_open(db):
    s = Store.open(db)
    try:
        with s.write() as conn:
            add_member(conn, "M1")
            assert s.conn.in_transaction
        assert not s.conn.in_transaction
    finally:
        s.close()
    assert [m.member_id for m in members(db)] == ["M1"]


def test_write_rolls_back_on_an_exception_and_leaves_no_transaction_open(db):
    s = Store.open(db)
    try:
        with pytest.raises(ZeroDivisionError):
            with s.write() as conn:
                add_member(conn, "M1")
                1 / 0
        assert not s.conn.in_transaction
        assert s.conn.execute("SELECT count(*) FROM members").fetchone() == (0,)
    finally:
        s.close()
    other = other_connection(db)
    other.execute("BEGIN IMMEDIATE")  # no lock left behind
    other.execute("ROLLBACK")
    other.close()


def test_nested_write_joins_the_outer_transaction(db):
    s = Store.open(db)
    try:
        with pytest.raises(RuntimeError):
            with s.write() as conn:
                add_member(conn, "M1")
                with s.write() as inner:
                    add_member(inner, "M2")
                raise RuntimeError("the outer unit of work fails after the inner one finished")
        assert s.conn.execute("SELECT count(*) FROM members").fetchone() == (0,)
        assert not s.conn.in_transaction
    finally:
        s.close()


def test_write_raises_busy_when_another_connection_writes(db, monkeypatch):
    Store.open(db).close()
    monkeypatch.setenv("LOYALTY_BUSY_TIMEOUT", "0")
    other = other_connection(db)
    other.execute("BEGIN IMMEDIATE")
    s = Store.open(db)
    try:
        with pytest.raises(Busy) as info:
            with s.write():
                pass
        assert info.value.exit_code == 75
        assert not s.conn.in_transaction
    finally:
        other.execute("ROLLBACK")
        other.close()
        s.close()


def test_bad_busy_timeout_is_an_error(db, monkeypatch):
    monkeypatch.setenv("LOYALTY_BUSY_TIMEOUT", "soon")
    with pytest.raises(Exception, match="LOYALTY_BUSY_TIMEOUT"):
        Store.open(db)


def test_cli_exits_75_with_one_line_when_the_database_is_busy(db, loyalty_proc):
    assert loyalty_proc("--db", db, "init").returncode == 0
    other = other_connection(db)
    other.execute("BEGIN IMMEDIATE")
    try:
        result = loyalty_proc("--db", db, "members", "add", "--name", "Ana Li", env={"LOYALTY_BUSY_TIMEOUT": "0.2"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.returncode == 75
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error:")
    assert "busy" in lines[0]
    assert "Traceback" not in result.stderr
    assert count(db, "members") == 0


def test_an_empty_loyalty_db_is_a_usage_error_not_the_default_database(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_DB", "")
    result = cli("init")
    assert result.exit_code == 2 and result.stderr.startswith("Error: LOYALTY_DB is set but empty")
    assert not (tmp_path / "xdg" / "loyalty" / "loyalty.db").exists()


def test_a_relative_xdg_data_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    assert default_path() == tmp_path / ".local" / "share" / "loyalty" / "loyalty.db"


def test_a_bad_busy_timeout_is_exit_2(cli, db, monkeypatch):
    monkeypatch.setenv("LOYALTY_BUSY_TIMEOUT", "soon")
    result = cli("--db", db, "init")
    assert result.exit_code == 2 and "LOYALTY_BUSY_TIMEOUT" in result.stderr


def test_a_backup_that_cannot_be_written_is_one_error_line(cli, db, tmp_path):
    assert cli("--db", db, "init").exit_code == 0
    (tmp_path / "afile").write_text("")
    result = cli("--db", db, "db", "backup", tmp_path / "afile" / "backup.db")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot write the backup") and "Traceback" not in result.output


@pytest.mark.parametrize("value", ["2147484", "inf", "1e308", "nan", "-1"])
def test_a_busy_timeout_sqlite_cannot_honour_is_exit_2(cli, db, monkeypatch, value):
    # beyond 2**31 milliseconds SQLite waited not at all, while the message said to raise it
    monkeypatch.setenv("LOYALTY_BUSY_TIMEOUT", value)
    result = cli("--db", db, "init")
    assert result.exit_code == 2 and "from 0 to 2,147,483 seconds" in result.stderr


def test_another_applications_sqlite_file_is_refused_untouched(cli, tmp_path):
    path = tmp_path / "shop-app.db"
    with connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    before = path.read_bytes()
    for args in (["members", "list"], ["init"]):
        result = cli("--db", path, *args)
        assert result.exit_code == 1 and "another application's SQLite database" in result.stderr
    assert path.read_bytes() == before and not Path(f"{path}-wal").exists()  # not even switched to WAL


def test_a_database_from_a_newer_loyalty_is_refused(cli, db):
    Store.open(db).close()
    with connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    result = cli("--db", db, "members", "add", "--name", "Ann")
    assert result.exit_code == 1 and "newer version of loyalty" in result.stderr, result.stderr
    assert count(db, "members") == 0


def test_a_read_only_database_is_one_error_line(cli, db, monkeypatch):
    Store.open(db).close()
    configure = Store._configure

    def read_only(self):  # as a file the user cannot write: SQLite says "attempt to write a readonly database"
        configure(self)
        self.conn.execute("PRAGMA query_only = ON")
    monkeypatch.setattr(Store, "_configure", read_only)
    result = cli("--db", db, "members", "add", "--name", "Ann")
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot write to {db}: the file or its folder is read-only (SQLite also writes " \
                            f"{db.name}-wal and -shm beside it)\n"


def test_bytes_that_are_not_utf8_in_an_argument_are_a_usage_error(cli, db):
    result = cli("--db", db, "members", "add", "--name", "A\udcffB")  # how Python passes the byte 0xff
    assert result.exit_code == 2 and result.stderr.startswith("Error: a value given is not valid UTF-8 text")


def test_bare_loyalty_prints_the_help_on_stdout(loyalty_proc):
    result = loyalty_proc()
    assert result.returncode == 0 and "Usage: loyalty" in result.stdout and result.stderr == ""
    for args in (["points"], ["--db", "x.db", "-q", "points"]):
        result = loyalty_proc(*args)
        assert result.returncode == 0 and "Usage: loyalty points" in result.stdout and result.stderr == ""


# -- interruptions ------------------------------------------------------------------------------
def test_ctrl_c_after_the_commit_says_the_change_was_saved(cli, db, monkeypatch):
    from loyalty_cli import render

    cli("--db", db, "members", "add", "--id", "A", "--name", "Ann")
    cli("--db", db, "points", "award", "A", "100", "--reason", "seed")

    def interrupted(self, message, result):  # Ctrl-C while the result is printed, after COMMIT
        raise KeyboardInterrupt
    monkeypatch.setattr(render.Output, "done", interrupted)
    result = cli("--db", db, "points", "redeem", "A", "30")
    assert result.exit_code == 130
    assert result.stderr.startswith("Interrupted after the change was saved: it is written")
    assert balance(db, "A") == 70


def test_ctrl_c_before_the_commit_says_nothing_was_written(cli, db, monkeypatch):
    from loyalty_cli.ledger import Book

    cli("--db", db, "members", "add", "--id", "A", "--name", "Ann")
    cli("--db", db, "points", "award", "A", "100", "--reason", "seed")  # a commit in this process: forgotten

    def interrupted(self, members=True):
        raise KeyboardInterrupt
    monkeypatch.setattr(Book, "flush", interrupted)
    result = cli("--db", db, "points", "redeem", "A", "30")
    assert result.exit_code == 130 and result.stderr == "Interrupted: nothing was written by the unfinished command.\n"
    assert balance(db, "A") == 100


def test_ctrl_c_is_heard_while_waiting_for_another_writer(db, loyalty_proc, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    Store.open(db).close()
    holder = other_connection(db)
    holder.execute("BEGIN IMMEDIATE")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(db), "members", "add", "--name", "Ann"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**__import__("os").environ, "LOYALTY_BUSY_TIMEOUT": "30"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(1.5)  # started, and waiting for the lock
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err == "Interrupted: nothing was written by the unfinished command.\n"
        assert time.perf_counter() - sent < 2  # SQLite's own wait would have held it for the 30 s
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_two_paths_to_one_database_share_the_nightly_job_lock(db):
    Store.open(db).close()
    link = db.with_name("link.db")
    link.symlink_to(db)
    first, second = Store.open(link), Store.open(db)
    try:
        with first.job_lock("expire"):
            with pytest.raises(Busy):
                with second.job_lock("expire"):
                    pass
    finally:
        first.close()
        second.close()


def test_an_interrupted_backup_leaves_no_file_behind(db, tmp_path):
    s = Store.open(db)
    real = s.conn

    class Failing:
        def backup(self, dest):
            raise KeyboardInterrupt

        def __getattr__(self, name):
            return getattr(real, name)
    s.conn = Failing()
    target = tmp_path / "backups" / "tonight.db"
    target.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        s.backup_to(target)
    s.conn = real
    assert list(target.parent.iterdir()) == []  # neither the name cron uses nor a partial file
    s.backup_to(target)  # and the next run makes it
    assert target.exists() and mode(target) == 0o600 and list(target.parent.iterdir()) == [target]
    s.close()


def test_restoring_a_newer_loyaltys_backup_is_refused_before_anything_is_copied(cli, db, tmp_path):
    cli("--db", db, "members", "add", "--id", "A", "--name", "Ann")
    backup = tmp_path / "newer.db"
    assert cli("--db", db, "db", "backup", backup).exit_code == 0
    with connect(backup) as conn:
        conn.execute("PRAGMA user_version = 99")
    cli("--db", db, "members", "add", "--id", "B", "--name", "Bo")
    result = cli("--db", db, "db", "restore", backup, "--yes")
    assert result.exit_code == 3 and "newer version of loyalty" in result.stderr
    assert cli("--db", db, "members", "show", "B").exit_code == 0  # the database is as it was


def test_a_backup_name_is_placed_without_hard_links(cli, db, tmp_path, monkeypatch):
    import os

    def no_links(*args):  # FAT and exFAT sticks, many network shares
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    cli("--db", db, "members", "add", "--id", "A", "--name", "Ann")
    target = tmp_path / "usb" / "backup.db"
    target.parent.mkdir()
    result = cli("--db", db, "db", "backup", target)
    assert result.exit_code == 0, result.output
    assert [p.name for p in target.parent.iterdir()] == ["backup.db"] and mode(target) == 0o600
    assert cli("--db", db, "db", "backup", target).exit_code == 1  # never overwritten
    assert [p.name for p in target.parent.iterdir()] == ["backup.db"]


def test_ctrl_c_on_a_new_database_says_nothing_was_written(cli, tmp_path, monkeypatch):
    from loyalty_cli.ledger import Book

    def interrupted(self, members=True):  # the migration run on opening committed before this
        raise KeyboardInterrupt
    assert cli("--db", tmp_path / "new.db", "init").exit_code == 0
    with connect(tmp_path / "new.db") as conn:  # as the previous version left it: one migration to run
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
        assert "m010_store" in [m.__name__ for m in MIGRATIONS]  # undo what it made, so that it runs again
        conn.execute("DROP INDEX purchases_store")
        conn.execute("ALTER TABLE purchases DROP COLUMN store")
        conn.execute("DELETE FROM migrations WHERE name = 'm010_store'")
    monkeypatch.setattr(Book, "flush", interrupted)
    result = cli("--db", tmp_path / "new.db", "members", "add", "--name", "Ann")
    assert result.exit_code == 130 and result.stderr.endswith("Interrupted: nothing was written by the unfinished "
                                                              "command.\n")
