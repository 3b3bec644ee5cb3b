"""The database file: created only by `init` (or a restore), recognised positively, damage named.

Issue 15: a mistyped `--db` must not create an empty database that `points expire` then
"succeeds" on every night; another application's SQLite file must be refused without a byte,
a -wal file or a mode bit changing; a damaged database or a full disk is the user's problem to
fix, said in one line with its own exit code, not "unexpected … please report it".
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from loyalty_cli import store as store_module
from loyalty_cli.store.migrations import APPLICATION_ID, MIGRATIONS
from loyalty_cli.store import Store

from tests.db import connect, count, members, raw, rows
from tests.helpers import ok, one_error_line, run, undo_chain, undo_history_guards

# Commands that open the database, readers and writers, nightly jobs (with their job locks) included.
COMMANDS = [
    ("members", "list"),
    ("members", "add", "--name", "Ana Li"),
    ("members", "show", "M1"),
    ("points", "expire", "--as-of", "2026-10-31"),
    ("tiers", "recalc", "--as-of", "2026-10-31"),
    ("program", "show"),
    ("rewards", "list"),
    ("dashboard", "--as-of", "2026-10-31"),
    ("db", "check"),
    ("db", "backup", "backup.db"),
]


def snapshot(folder):
    """Every file under `folder` with its bytes' hash, mode and mtime: what "untouched" means."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.stat(path)
            digest = None
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            found[os.path.relpath(path, folder)] = (digest, st.st_mode, st.st_mtime_ns)
    return found


def header(path) -> tuple[int, int]:
    """(user_version, application_id) from the 100-byte SQLite header."""
    with open(path, "rb") as f:
        head = f.read(100)
    return int.from_bytes(head[60:64], "big"), int.from_bytes(head[68:72], "big")


# -- only init creates a database ------------------------------------------------------


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_on_a_mistyped_path_creates_nothing(tmp_path, args):
    """`--db shops/shpo.db`: one line naming the path and `loyalty init --db`, exit 1, and no
    file, folder or job lock file made."""
    shop = tmp_path / "shop"
    shop.mkdir()
    before = snapshot(tmp_path)
    db = shop / "missing" / "shpo.db"
    line = one_error_line(run(db, *args) if args[:2] != ("db", "backup") else run(db, "db", "backup", shop / "b.db"))
    assert line == (f"Error: no loyalty database at {db} (given by --db); nothing was created: check the path, "
                    f"or create the database with: loyalty init --db {db}")
    assert run(db, *args).exit_code == 1
    assert snapshot(tmp_path) == before


def test_a_mistyped_loyalty_db_in_cron_fails_every_night(tmp_path, cli, monkeypatch):
    typo = tmp_path / "shpo.db"
    monkeypatch.setenv("LOYALTY_DB", str(typo))
    before = snapshot(tmp_path)
    for _night in range(2):
        result = cli("-q", "points", "expire", "--as-of", "2026-10-31")
        assert result.exit_code == 1
        assert one_error_line(result).startswith(f"Error: no loyalty database at {typo} (from LOYALTY_DB);")
    assert snapshot(tmp_path) == before


def test_the_default_location_is_not_created_behind_the_users_back(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("LOYALTY_DB")
    default = tmp_path / "xdg" / "loyalty" / "loyalty.db"
    result = cli("members", "list")
    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: no loyalty database at {default} (the default location: neither --db nor LOYALTY_DB is set); "
        f"nothing was created: give --db the path of your database, or create one here with: "
        f"loyalty init --db {default}")
    assert not (tmp_path / "xdg").exists()
    assert cli("init").exit_code == 0  # init there, on purpose
    assert default.exists() and cli("members", "list").exit_code == 0


def test_init_creates_then_every_command_works_and_init_again_keeps_the_data(tmp_path):
    db = tmp_path / "new" / "shop.db"
    assert ok(db, "init").stdout == f"database ready at {db}\n"
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    assert header(db) == (len(MIGRATIONS), APPLICATION_ID)
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li")
    ok(db, "init")  # migrates an existing database, changes nothing else
    assert [m.member_id for m in members(db)] == ["M1"]


def test_restore_into_a_new_file_creates_the_database(tmp_path):
    db = tmp_path / "shop.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li")
    ok(db, "db", "backup", tmp_path / "b.db")
    fresh = tmp_path / "elsewhere" / "shop.db"
    ok(fresh, "db", "restore", tmp_path / "b.db", "--yes")
    assert [m.member_id for m in members(fresh)] == ["M1"]
    assert header(fresh)[1] == APPLICATION_ID


# -- another application's file is refused untouched ------------------------------------


def impostor(path):
    """Another tool's database with a `migrations(name, applied_at)` table, as sqlite-utils, llm,
    or any hand-rolled migrator makes (loyalty's old check took it for its own)."""
    with connect(path) as conn:
        conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.execute("INSERT INTO migrations VALUES ('0001_create_notes', '2024-01-01')")
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("PRAGMA user_version = 1")


def laravel(path):
    with connect(path) as conn:
        conn.execute("CREATE TABLE migrations (id INTEGER PRIMARY KEY, migration TEXT NOT NULL, batch INTEGER NOT NULL)")
        conn.execute("INSERT INTO migrations (migration, batch) VALUES ('2014_10_12_000000_create_users_table', 1)")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")


def no_tables(path):
    with connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")


def text_file(path):
    path.write_text("milk, eggs, flour\n" * 50)


def empty_file(path):
    path.write_bytes(b"")


FOREIGN = {
    "migrations(name, applied_at) impostor": (impostor, "another application's SQLite database"),
    "Laravel database": (laravel, "another application's SQLite database"),
    "SQLite file without tables": (no_tables, "another application's SQLite database"),
    "text file": (text_file, "not an SQLite database file"),
}


@pytest.mark.parametrize("name", FOREIGN)
@pytest.mark.parametrize("args", [("init",), ("members", "list"), ("members", "add", "--name", "Ana Li"),
                                  ("points", "expire", "--as-of", "2026-10-31"), ("db", "check")],
                         ids=lambda a: " ".join(a[:2]))
def test_another_applications_file_is_refused_and_left_exactly_as_it_was(tmp_path, name, args):
    make, what = FOREIGN[name]
    folder = tmp_path / "theirs"
    folder.mkdir()
    path = folder / "app.db"
    make(path)
    os.chmod(path, 0o644)
    before = snapshot(folder)
    result = run(path, *args)
    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: {path} is not a loyalty database ({what}); nothing was changed: give --db the path of your "
        "loyalty database, or a new file to create with: loyalty init --db PATH")
    assert snapshot(folder) == before  # same bytes, mode and mtime; no -wal, -shm or lock file


@pytest.mark.parametrize("args", [("members", "list"), ("points", "expire", "--as-of", "2026-10-31")],
                         ids=lambda a: a[0])
def test_an_empty_file_is_refused_by_every_command_but_init(tmp_path, args):
    folder = tmp_path / "f"
    folder.mkdir()
    path = folder / "shop.db"
    path.write_bytes(b"")
    before = snapshot(folder)
    result = run(path, *args)
    assert result.exit_code == 1
    assert one_error_line(result) == (f"Error: {path} is an empty file, not a loyalty database; nothing was changed: "
                                      f"to make a new database of it: loyalty init --db {path}")
    assert snapshot(folder) == before


def test_init_makes_a_database_of_an_empty_file(tmp_path):
    """`touch shop.db` or `mktemp`, then `loyalty init`: a 0-byte file holds nothing to lose."""
    path = tmp_path / "shop.db"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    ok(path, "init")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert header(path) == (len(MIGRATIONS), APPLICATION_ID)
    ok(path, "members", "add", "--id", "M1", "--name", "Ana Li")


def test_a_database_of_a_newer_loyalty_is_refused_untouched(tmp_path):
    path = tmp_path / "shop.db"
    ok(path, "init")
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    before = snapshot(tmp_path)
    result = run(path, "members", "list")
    assert result.exit_code == 1
    assert "was made by a newer version of loyalty" in one_error_line(result)
    assert snapshot(tmp_path) == before


def as_made_by_the_previous_version(path):
    """A database exactly as loyalty made it before the application id: no id in the header,
    the first four migrations recorded, user_version 4."""
    ok(path, "init")
    ok(path, "members", "add", "--id", "M1", "--name", "Ana Li")
    with connect(path) as conn:
        undo_history_guards(conn)
        undo_chain(conn)
        from tests.helpers import undo_member_hygiene

        undo_member_hygiene(conn)
        conn.execute("DELETE FROM migrations WHERE name NOT IN ('m001_initial', 'm002_summaries', 'm003_no_replace', "
                     "'m004_lot_uses_no_replace')")
        conn.execute("DROP INDEX members_key")
        conn.execute("ALTER TABLE members DROP COLUMN member_key")
        conn.execute("ALTER TABLE lots DROP COLUMN available_on")
        conn.execute("DROP INDEX purchases_store")
        conn.execute("ALTER TABLE purchases DROP COLUMN store")
        conn.execute("DROP INDEX ledger_pooled")
        conn.execute("DROP TABLE household_members")
        conn.execute("DROP TABLE households")
        conn.execute("DROP TABLE variant_entries")
        conn.execute("DROP TABLE experiments")
        conn.execute("PRAGMA application_id = 0")
        conn.execute("PRAGMA user_version = 4")
    assert header(path) == (4, 0)


def test_a_database_of_an_earlier_loyalty_is_recognised_and_stamped(tmp_path):
    path = tmp_path / "shop.db"
    as_made_by_the_previous_version(path)
    result = ok(path, "members", "list", "--csv")
    assert "M1,Ana Li" in result.stdout
    assert header(path) == (len(MIGRATIONS), APPLICATION_ID)
    assert [m.name for m in rows(path, "migrations")] == [m.__name__ for m in MIGRATIONS]


def test_an_earlier_looking_database_with_other_migrations_is_foreign(tmp_path):
    """The same tables, but a migration loyalty never had: not recognised, not touched."""
    path = tmp_path / "shop.db"
    as_made_by_the_previous_version(path)
    with connect(path) as conn:
        conn.execute("UPDATE migrations SET name = 'm002_something_else' WHERE name = 'm002_summaries'")
    before = snapshot(tmp_path)
    result = run(path, "init")
    assert result.exit_code == 1
    assert "is not a loyalty database (another application's SQLite database)" in one_error_line(result)
    assert snapshot(tmp_path) == before


# -- damage and full disks: the user's problem, named --------------------------------------


def shop_with_members(path, count=5):
    ok(path, "init")
    for i in range(1, count + 1):
        ok(path, "members", "add", "--id", f"M{i}", "--name", f"Member {i}")


def overwrite_page(path, page, byte=b"\xa5"):
    size = 4096
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(byte * size)


def test_a_damaged_table_is_exit_4_with_restore_advice_for_every_command(tmp_path):
    path = tmp_path / "shop.db"
    shop_with_members(path)
    (root,) = raw(path, "SELECT rootpage FROM sqlite_master WHERE name = 'members'")[0]
    overwrite_page(path, root)  # the members table's page, in the middle of the file
    expected = (f"Error: {path} is damaged (database disk image is malformed); "
                "restore a backup: loyalty db restore BACKUP --yes")
    for args in (("members", "list"), ("members", "show", "M1"), ("members", "add", "--name", "X"), ("db", "check")):
        result = run(path, *args)
        assert (result.exit_code, one_error_line(result)) == (4, expected), args


def test_a_database_damaged_all_through_is_exit_4_when_opened(tmp_path):
    path = tmp_path / "shop.db"
    shop_with_members(path)
    for page in range(2, os.path.getsize(path) // 4096 + 1):
        overwrite_page(path, page)
    for args in (("members", "list"), ("init",), ("db", "check"), ("points", "expire", "--as-of", "2026-10-31")):
        result = run(path, *args)
        assert result.exit_code == 4, args
        assert one_error_line(result) == (f"Error: {path} is damaged (database disk image is malformed); "
                                          "restore a backup: loyalty db restore BACKUP --yes")


def test_a_full_disk_says_so_and_nothing_is_written(tmp_path, monkeypatch):
    path = tmp_path / "shop.db"
    shop_with_members(path, 1)
    members = tmp_path / "members.csv"
    members.write_text("member_id,name,email\n" + "".join(f"N{i:05},Name {i},n{i}@shop.example\n" for i in range(3000)))
    configure = Store._configure

    def no_room(self):  # SQLite's own SQLITE_FULL: the file may not grow by a single page
        configure(self)
        (pages,) = self.conn.execute("PRAGMA page_count").fetchone()
        self.conn.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(Store, "_configure", no_room)
    result = run(path, "members", "import", members)
    assert result.exit_code == 1
    assert one_error_line(result) == (f"Error: the disk holding {path} is full: nothing was written; "
                                      "free some space and run the command again")
    monkeypatch.undo()
    assert count(path, "members") == 1


def test_a_full_output_is_named_not_reported_as_a_bug(tmp_path):
    """`loyalty members list --csv > /mnt/full/list.csv` (here /dev/full: every write is ENOSPC)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    path = tmp_path / "shop.db"
    shop_with_members(path, 200)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(path), "members", "list", "--csv",
                               "--limit", "1000"],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=os.environ, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == ("Error: the disk holding the file or output being written is full (No space left on device): "
                           "what it was writing is incomplete; free some space and run the command again\n")


def sqlite_error(cls, words, code, name):
    exc = cls(words)
    exc.sqlite_errorcode, exc.sqlite_errorname = code, name
    return exc


@pytest.mark.parametrize("exc, code, line", [
    (sqlite_error(sqlite3.OperationalError, "disk I/O error", 266, "SQLITE_IOERR_READ"), 1,
     "Error: cannot read or write {db}: the disk reported an error (disk I/O error); check the disk and its "
     "connection, then run: loyalty db check"),
    (sqlite_error(sqlite3.DatabaseError, "file is not a database", 26, "SQLITE_NOTADB"), 4,
     "Error: {db} is damaged (file is not a database); restore a backup: loyalty db restore BACKUP --yes"),
    (sqlite_error(sqlite3.OperationalError, "unable to open database file", 14, "SQLITE_CANTOPEN"), 1,
     "Error: cannot open {db} (unable to open database file); check that the file and its folder exist and "
     "that you may read and write them"),
    (sqlite_error(sqlite3.OperationalError, "attempt to write a readonly database", 8, "SQLITE_READONLY"), 1,
     "Error: cannot write to {db}: the file or its folder is read-only (SQLite also writes shop.db-wal and -shm "
     "beside it)"),
    (OSError(errno.EIO, "Input/output error", "/mnt/usb/rfm.csv"), 1,
     "Error: cannot read or write /mnt/usb/rfm.csv: the disk reported an input/output error; check the disk and "
     "its connection, then run: loyalty db check"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/cd/rfm.csv"), 1,
     "Error: cannot write /mnt/cd/rfm.csv: it is on a read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/rfm.csv"), 1,
     "Error: permission denied on /srv/rfm.csv; check the owner and mode of the file and its folder"),
], ids=["IOERR", "NOTADB", "CANTOPEN", "READONLY", "EIO", "EROFS", "EACCES"])
def test_each_failure_of_the_disk_or_of_sqlite_has_its_own_line(tmp_path, monkeypatch, exc, code, line):
    """Failures hard to cause for real in a test, raised where a command reads the database: the
    one handler gives each its line and exit code, never "unexpected … please report it"."""
    path = tmp_path / "shop.db"
    ok(path, "init")
    from loyalty_cli import members

    def fails(*_args, **_kwargs):
        raise exc

    monkeypatch.setattr(members, "listing", fails)
    result = run(path, "members", "list")
    assert (result.exit_code, one_error_line(result)) == (code, line.format(db=path))


def test_the_stored_application_id_is_loyaltys_own():
    assert APPLICATION_ID == 0x4C4F5931 == int.from_bytes(b"LOY1", "big")
    assert store_module.SQLITE_MAGIC == b"SQLite format 3\x00"


def test_restore_refuses_another_applications_file_without_touching_it(tmp_path):
    """Even one in WAL mode with a `ledger` and a `migrations` table: opening it read-only to check
    it would have left -wal and -shm files beside it."""
    db = tmp_path / "shop.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    other = theirs / "books.db"
    with connect(other) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER)")
    before = snapshot(theirs)
    result = run(db, "db", "restore", other, "--yes")
    assert result.exit_code == 3
    assert one_error_line(result) == (f"Error: {other} is not a loyalty backup (another application's SQLite "
                                      "database); nothing was restored")
    assert snapshot(theirs) == before
    assert [m.member_id for m in members(db)] == ["M1"]


def test_a_device_given_as_the_database_is_refused_and_left_alone(tmp_path):
    """`loyalty init --db /dev/null` (it reads as empty) must not make a database of it, nor chmod it."""
    before = os.stat("/dev/null").st_mode
    for args in (("init",), ("members", "list")):
        result = run("/dev/null", *args)
        assert result.exit_code == 1
        assert one_error_line(result).startswith("Error: /dev/null is not a loyalty database (not a regular file);")
    assert os.stat("/dev/null").st_mode == before
