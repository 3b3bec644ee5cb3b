"""Edits behind the tool's back, the append-only triggers, and backup/restore (SPEC §7, §10, §3 `db`).

The database file is opened with plain sqlite3 to do what the tool never does;
`db check` must then find it (exit 4), and `db restore` must refuse a backup
that fails the check.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.db import DatabaseError, IntegrityError, connect, count, entries, members, raw
from tests.helpers import drop_trigger, fresh_db, is_postgres, ok, run

@pytest.fixture
def db(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


def balance(db, member) -> int:
    return json.loads(ok(db, "points", "balance", member, "--json").stdout)["balance"]


def check_ok(db) -> None:
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def some_activity(db) -> None:
    """Two members, a few entries: M1 ends with 70 points, M2 with 30."""
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-01-01")
    ok(db, "members", "add", "--id", "M2", "--name", "Bo Chen", "--joined", "2025-01-01")
    ok(db, "points", "award", "M1", "100", "--reason", "opening", "--at", "2025-01-10")  # entry 1
    ok(db, "points", "award", "M2", "50", "--reason", "opening", "--at", "2025-01-11")   # entry 2
    ok(db, "points", "redeem", "M1", "30", "--at", "2025-02-01")                         # entry 3
    ok(db, "points", "transfer", "M2", "M1", "20", "--at", "2025-02-02")                 # entries 4, 5
    ok(db, "points", "transfer", "M1", "M2", "20", "--at", "2025-02-03")                 # entries 6, 7


def tamper(path) -> None:
    """What someone with sqlite3 could do: drop the guard and give M2 one more point in entry 2."""
    with connect(path) as conn:
        drop_trigger(conn, "ledger_no_update")
        conn.execute("UPDATE ledger SET points = points + 1 WHERE id = 2")


# -- db check finds an edit ---------------------------------------------------------------------
def test_the_ledger_refuses_update_and_delete_while_the_triggers_are_in_place(db):
    some_activity(db)
    with connect(db) as conn:
        with pytest.raises(DatabaseError):  # IntegrityError is a DatabaseError
            conn.execute("UPDATE ledger SET points = points + 1 WHERE id = 2")
        with pytest.raises(DatabaseError):
            conn.execute("UPDATE ledger SET note = 'changed' WHERE id = 1")
        with pytest.raises(DatabaseError):
            conn.execute("DELETE FROM ledger WHERE id = 7")
        with pytest.raises(DatabaseError):
            conn.execute("DELETE FROM ledger")
        with pytest.raises(DatabaseError):
            conn.execute("UPDATE lot_uses SET points = points + 1")
        with pytest.raises(DatabaseError):
            conn.execute("DELETE FROM lot_uses")
        if not is_postgres(conn):  # (autocommit there: a refused statement left nothing to roll back)
            conn.rollback()
    assert (len(entries(db)), sum(e.points for e in entries(db))) == (7, 120)
    check_ok(db)


def test_update_raises_integrity_error(db):
    some_activity(db)
    with connect(db) as conn:
        with pytest.raises(IntegrityError, match="append-only"):
            conn.execute("UPDATE ledger SET points = 0 WHERE id = 1")
        with pytest.raises(IntegrityError, match="append-only"):
            conn.execute("DELETE FROM ledger WHERE id = 1")


# -- backup and restore -------------------------------------------------------------------------
@pytest.mark.sqlite_only
def test_backup_is_private_passes_check_and_refuses_an_existing_file(db, tmp_path):
    some_activity(db)
    target = tmp_path / "backups" / "shop-2025-02-03.db"
    target.parent.mkdir()
    result = ok(db, "db", "backup", target)
    assert target.exists()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    check_ok(target)
    assert json.loads(ok(target, "points", "balance", "M1", "--json").stdout)["balance"] == 70

    before = target.read_bytes()
    result = run(db, "db", "backup", target)
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("Error:")
    assert target.read_bytes() == before


@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file
def test_restore_brings_the_old_balance_back(db, tmp_path):
    some_activity(db)
    target = tmp_path / "before-the-sale.db"
    ok(db, "db", "backup", target)
    ok(db, "points", "award", "M1", "500", "--reason", "big sale", "--at", "2025-03-01")
    ok(db, "points", "redeem", "M2", "10", "--at", "2025-03-02")
    assert (balance(db, "M1"), balance(db, "M2")) == (570, 40)

    before = count(db, "ledger")
    result = run(db, "db", "restore", target)  # no --yes
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert count(db, "ledger") == before

    ok(db, "db", "restore", target, "--yes")
    assert (balance(db, "M1"), balance(db, "M2")) == (70, 50)
    assert count(db, "ledger") == 7
    check_ok(db)
    # The restored ledger goes on: new entries chain on to the restored ones.
    ok(db, "points", "award", "M1", "5", "--reason", "after restore", "--at", "2025-03-03")
    assert balance(db, "M1") == 75
    check_ok(db)


@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file
def test_restore_refuses_a_tampered_backup_and_changes_nothing(db, tmp_path):
    some_activity(db)
    target = tmp_path / "backup.db"
    ok(db, "db", "backup", target)
    ok(db, "points", "award", "M1", "500", "--reason", "big sale", "--at", "2025-03-01")
    tamper(target)
    before = (entries(db), [(m.member_id, m.balance) for m in members(db)])

    result = run(db, "db", "restore", target, "--yes")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[0].startswith("Error:")
    assert (entries(db), [(m.member_id, m.balance) for m in members(db)]) == before
    assert balance(db, "M1") == 570
    check_ok(db)


@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file; *_no_replace triggers are SQLite's
def test_a_backup_made_before_the_replace_triggers_is_restored_and_gets_them(db, tmp_path):
    some_activity(db)
    target = tmp_path / "old-backup.db"
    ok(db, "db", "backup", target)
    # What a backup from before migration m003 looks like: no REPLACE triggers, no record of m003.
    with connect(target) as conn:
        conn.execute("DROP TRIGGER ledger_no_replace")
        conn.execute("DROP TRIGGER lot_uses_no_replace")
        conn.execute("DELETE FROM migrations WHERE name IN ('m003_no_replace', 'm004_lot_uses_no_replace')")
        conn.execute("PRAGMA user_version = 2")
    ok(db, "points", "award", "M1", "500", "--reason", "after the backup", "--at", "2025-03-01")
    ok(db, "db", "restore", target, "--yes")
    assert balance(db, "M1") == 70
    triggers = {name for (name,) in raw(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"ledger_no_replace", "lot_uses_no_replace"} <= triggers
    check_ok(db)


@pytest.mark.sqlite_only  # lot_uses_no_replace is SQLite's (a primary key refuses REPLACE on PostgreSQL)
def test_a_database_from_before_m004_passes_check_and_gets_the_lot_uses_trigger_when_opened(db):
    some_activity(db)
    with connect(db) as conn:
        conn.execute("DROP TRIGGER lot_uses_no_replace")
        conn.execute("DELETE FROM migrations WHERE name = 'm004_lot_uses_no_replace'")
        conn.execute("PRAGMA user_version = 3")
    check_ok(db)  # opening it migrates it: the trigger is back, and required from now on
    assert raw(db, "SELECT name FROM sqlite_master WHERE name = 'lot_uses_no_replace'") == [("lot_uses_no_replace",)]
