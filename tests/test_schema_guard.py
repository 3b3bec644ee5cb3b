"""The schema guards itself (issue 17): every table of history refuses UPDATE, DELETE and REPLACE,
and `db check` finds any trigger, table, view or index that is missing, changed or added by hand.

The file is opened through tests.db (plain SQL) to do what the tool never does; `db check` must
then name the object (exit 4); after everything the tool itself does, the schema is exactly the
one its migrations make.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only  # SQLite's own schema text and triggers (PostgreSQL's: test_postgres.py)

from loyalty_cli import ledger
from loyalty_cli.store import imports as import_rows
from loyalty_cli.store.migrations import MIGRATIONS
from tests.db import connect, count, member, raw, row
from tests.helpers import ok, run, undo_chain, undo_history_guards, small_shop
from tests.test_import_bulk import head_of

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def check_ok(db) -> None:
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def schema_problems(db) -> list[str]:
    """db check must fail (exit 4): the messages of its schema problems."""
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    return [p["message"] for p in json.loads(result.stdout)["problems"] if p["check"] == "schema"]


def schema(db) -> list[tuple]:
    return raw(db, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")


@pytest.fixture
def shop(tmp_path):
    """A small shop with a row in every table of history: purchases with a refund, a tier change, a
    programme version, a recalc run, an erasure, a setting, a used voucher, feedback."""
    db = small_shop(tmp_path, 60)
    ok(db, "points", "redeem", "M0001", "--reward", "MUG", "--at", "2025-06-01")
    code = json.loads(ok(db, "vouchers", "list", "--json").stdout)[0]["code"]
    ok(db, "vouchers", "use", code, "--at", "2025-06-02")
    ok(db, "tiers", "set", "M0002", "Gold", "--at", "2025-06-03")
    ok(db, "tiers", "recalc", "--as-of", "2025-07-01")
    ok(db, "feedback", "add", "M0003", "9", "--comment", "lovely bread", "--at", "2025-06-04")
    ok(db, "members", "erase", "M0004", "--yes")
    return db


# -- an extra object, a missing or changed one -------------------------------------------------------
def test_an_extra_trigger_copying_names_before_an_erasure_is_reported_with_its_table(shop):
    with connect(shop) as conn:
        conn.execute("CREATE TABLE stash (member_id TEXT, name TEXT, email TEXT)")
        conn.execute("CREATE TRIGGER members_copy BEFORE UPDATE ON members "
                     "BEGIN INSERT INTO stash VALUES (OLD.member_id, OLD.name, OLD.email); END")
    ok(shop, "members", "erase", "M0005", "--yes")
    assert member(shop, "M0005").name is None
    assert row(shop, "stash", member_id="M0005").name is not None  # what the check is there to find

    problems = schema_problems(shop)
    assert ("an extra trigger members_copy on members that loyalty did not make: it may copy personal data or "
            "change rows behind the tool's back; drop it (DROP TRIGGER members_copy) after looking at what it does"
            in problems), problems
    assert any(m.startswith("an extra table stash that loyalty did not make: it may hold copies of personal data; "
                            "drop it (DROP TABLE stash)") for m in problems), problems
    assert len(problems) == 2
    result = run(shop, "db", "check")
    assert result.exit_code == 4 and "schema: an extra trigger members_copy" in result.stderr


@pytest.mark.parametrize("statement, name", [
    ("CREATE VIEW everyone AS SELECT name, email FROM members", "an extra view everyone"),
    ("CREATE INDEX members_email_copy ON members(email, name)", "an extra index members_email_copy on members"),
    ("CREATE TRIGGER feedback_copy AFTER INSERT ON feedback BEGIN SELECT 1; END", "an extra trigger feedback_copy"),
])
def test_any_extra_view_index_or_trigger_is_reported(shop, statement, name):
    with connect(shop) as conn:
        conn.execute(statement)
    problems = schema_problems(shop)
    assert len(problems) == 1 and problems[0].startswith(name), problems


@pytest.mark.parametrize("name, table", [
    ("ledger_no_update", "ledger"), ("purchases_no_delete", "purchases"), ("tier_changes_no_replace", "tier_changes"),
    ("program_versions_no_update", "program_versions"), ("lot_uses_no_update", "lot_uses"),
    ("lots_no_update", "lots"), ("feedback_no_delete", "feedback"),
])
def test_a_dropped_guard_is_reported(shop, name, table):
    with connect(shop) as conn:
        conn.execute(f"DROP TRIGGER {name}")
    problems = schema_problems(shop)
    assert problems == [f"trigger {name} on {table} is missing: what it refuses (editing or deleting history) "
                        "is no longer refused"]


def test_a_trigger_with_the_same_name_and_another_body_is_reported(shop):
    with connect(shop) as conn:  # still there by name, but refusing nothing
        conn.execute("DROP TRIGGER purchases_no_delete")
        conn.execute("CREATE TRIGGER purchases_no_delete BEFORE DELETE ON purchases WHEN 0 "
                     "BEGIN SELECT RAISE(ABORT, 'purchases is append-only: record a refund instead'); END")
        conn.execute("DELETE FROM purchases WHERE kind = 'refund'")
    problems = schema_problems(shop)
    assert len(problems) == 1 and problems[0].startswith(
        "trigger purchases_no_delete on purchases is not as loyalty made it (its definition was changed behind the "
        "tool's back); loyalty made it as: CREATE TRIGGER purchases_no_delete BEFORE DELETE ON purchases BEGIN"), problems


def test_a_dropped_index_and_a_changed_table_are_reported(shop):
    with connect(shop) as conn:
        conn.execute("DROP INDEX purchases_refund_of")
        conn.execute("ALTER TABLE members ADD COLUMN notes TEXT")
    problems = schema_problems(shop)
    assert any(m.startswith("index purchases_refund_of on purchases is missing") for m in problems), problems
    assert any(m.startswith("table members is not as loyalty made it") for m in problems), problems


def test_deleting_the_migration_row_does_not_make_a_dropped_guard_expected_to_be_absent(shop):
    with connect(shop) as conn:  # user_version still says every migration ran
        undo_history_guards(conn)
    problems = schema_problems(shop)
    assert "trigger purchases_no_update on purchases is missing: what it refuses (editing or deleting history) " \
           "is no longer refused" in problems


# -- the history refuses to be rewritten --------------------------------------------------------------
HISTORY = {  # table: (an edit, a deletion, a replacement) that the tool never makes
    "purchases": ("UPDATE purchases SET amount = amount * 10 WHERE kind = 'sale'",
                  "DELETE FROM purchases WHERE kind = 'refund'",
                  "INSERT OR REPLACE INTO purchases SELECT * FROM purchases WHERE purchase_id = 'S1'"),
    "tier_changes": ("UPDATE tier_changes SET to_tier = 'Platinum'", "DELETE FROM tier_changes",
                     "INSERT OR REPLACE INTO tier_changes SELECT * FROM tier_changes LIMIT 1"),
    "program_versions": ("UPDATE program_versions SET rules = json_set(rules, '$.earn.points_per_unit', '100')",
                         "DELETE FROM program_versions",
                         "INSERT OR REPLACE INTO program_versions SELECT * FROM program_versions LIMIT 1"),
    "recalc_runs": ("UPDATE recalc_runs SET upgraded = 0", "DELETE FROM recalc_runs",
                    "INSERT OR REPLACE INTO recalc_runs SELECT * FROM recalc_runs LIMIT 1"),
    "erasures": ("UPDATE erasures SET by = 'someone else'", "DELETE FROM erasures",
                 "INSERT OR REPLACE INTO erasures SELECT * FROM erasures LIMIT 1"),
    "settings": ("UPDATE settings SET value = '0'", "DELETE FROM settings",
                 "INSERT OR REPLACE INTO settings SELECT * FROM settings LIMIT 1"),
    "lot_uses": ("UPDATE lot_uses SET lot_id = lot_id + 1", "DELETE FROM lot_uses",
                 "INSERT OR REPLACE INTO lot_uses (rowid, entry_id, lot_id, points) "
                 "SELECT rowid, entry_id, lot_id, points FROM lot_uses LIMIT 1"),
}


@pytest.mark.parametrize("table", list(HISTORY))
def test_every_table_of_history_refuses_update_delete_and_replace(shop, table):
    assert count(shop, table) > 0
    before = raw(shop, f"SELECT * FROM {table} ORDER BY 1")
    with connect(shop) as conn:
        for statement in HISTORY[table]:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        conn.execute("PRAGMA recursive_triggers = ON")  # whoever connects chooses it: REPLACE is refused either way
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(HISTORY[table][2])
    assert raw(shop, f"SELECT * FROM {table} ORDER BY 1") == before
    check_ok(shop)


@pytest.mark.parametrize("table, refused", [
    ("lots", ["UPDATE lots SET points = points + 100", "UPDATE lots SET member_id = 'M0002'",
              "UPDATE lots SET expires_on = '2099-12-31'", "DELETE FROM lots",
              "INSERT OR REPLACE INTO lots SELECT * FROM lots LIMIT 1"]),
    ("vouchers", ["UPDATE vouchers SET points = 1", "UPDATE vouchers SET status = 'issued'",
                  "UPDATE vouchers SET member_id = 'M0002'", "DELETE FROM vouchers",
                  "INSERT OR REPLACE INTO vouchers SELECT * FROM vouchers LIMIT 1"]),
    ("feedback", ["UPDATE feedback SET score = 10", "UPDATE feedback SET comment = 'changed'", "DELETE FROM feedback",
                  "INSERT OR REPLACE INTO feedback SELECT * FROM feedback LIMIT 1"]),
])
def test_the_tables_of_current_state_refuse_what_the_tool_never_does(shop, table, refused):
    assert count(shop, table) > 0
    before = raw(shop, f"SELECT * FROM {table} ORDER BY 1")
    with connect(shop) as conn:
        for statement in refused:
            with pytest.raises(sqlite3.IntegrityError, match=f"{table} keeps its history"):
                conn.execute(statement)
    assert raw(shop, f"SELECT * FROM {table} ORDER BY 1") == before


def test_what_the_tool_does_to_lots_vouchers_and_feedback_is_still_allowed(shop):
    ok(shop, "points", "redeem", "M0002", "10", "--at", "2025-06-05")  # takes from a lot's remaining points
    ok(shop, "points", "redeem", "M0002", "--reward", "MUG", "--at", "2025-06-06")
    code = [v["code"] for v in json.loads(ok(shop, "vouchers", "list", "--json").stdout) if v["status"] == "issued"][0]
    ok(shop, "vouchers", "cancel", code, "--at", "2025-06-07")
    ok(shop, "members", "erase", "M0003", "--yes")  # erases the feedback's comment
    assert row(shop, "feedback", member_id="M0003").comment is None
    check_ok(shop)


# -- every normal use leaves exactly the schema the migrations make -----------------------------------
def test_db_check_passes_after_every_kind_of_normal_use_on_the_sample_data(tmp_path, monkeypatch):
    deferred: list[list[str]] = []
    original = ledger.Book.defer_indexes

    def spy(book, expected_rows):
        names = original(book, expected_rows)
        deferred.append(names)
        return names

    monkeypatch.setattr(ledger.Book, "defer_indexes", spy)
    monkeypatch.setattr(import_rows, "DEFER_FROM_ROWS", 0)  # every import drops and rebuilds
    db = tmp_path / "shop.db"
    ok(db, "-q", "init")
    fresh = schema(db)
    ok(db, "-q", "program", "load", SAMPLE / "program.toml", "--from", "2024-01-01")
    ok(db, "members", "import", SAMPLE / "members.csv")
    ok(db, "purchases", "import", head_of(SAMPLE / "purchases.csv", tmp_path / "first.csv", 0, 3000))
    assert count(db, "purchases", kind="refund") > 0
    check_ok(db)
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "50", "--stock", "5")
    ok(db, "points", "redeem", "M0001", "--reward", "MUG", "--at", "2025-11-01")
    ok(db, "points", "redeem", "M0002", "--reward", "MUG", "--at", "2025-11-01")
    first, second = [v["code"] for v in json.loads(ok(db, "vouchers", "list", "--json").stdout)]
    ok(db, "vouchers", "use", first, "--at", "2025-11-02")
    ok(db, "vouchers", "cancel", second, "--at", "2025-11-02")
    ok(db, "points", "transfer", "M0001", "M0003", "5", "--at", "2025-11-03")
    ok(db, "points", "expire", "--as-of", "2025-11-04")
    ok(db, "tiers", "recalc", "--as-of", "2025-11-05")
    ok(db, "tiers", "set", "M0005", "Platinum", "--until", "2026-06-30", "--at", "2025-11-05")
    ok(db, "feedback", "add", "M0009", "8", "--comment", "friendly staff", "--at", "2025-11-06")
    ok(db, "members", "erase", "M0009", "--yes")  # no purchase of theirs in the second import
    check_ok(db)
    backup = tmp_path / "backup.db"
    ok(db, "db", "backup", backup)
    check_ok(backup)
    ok(db, "points", "award", "M0007", "10", "--reason", "after the backup", "--at", "2025-11-07")
    ok(db, "db", "restore", backup, "--yes")
    check_ok(db)
    ok(db, "purchases", "import", head_of(SAMPLE / "purchases.csv", tmp_path / "rest.csv", 3000, 6006))
    assert deferred[0] and deferred[-1], deferred  # both imports dropped indexes (and triggers) and built them again
    check_ok(db)
    assert schema(db) == fresh  # every command, import and restore left loyalty's own schema as init made it


def test_a_database_made_before_the_guards_gets_them_when_opened_and_passes_check(shop):
    with connect(shop) as conn:  # as the previous version left it
        undo_history_guards(conn)
        undo_chain(conn)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    with connect(shop) as conn:  # the previous version let this happen; the guards come with the next command
        conn.execute("UPDATE purchases SET category = 'bakery' WHERE purchase_id = 'S3'")
    check_ok(shop)
    assert row(shop, "migrations", name="m007_history_guards") is not None
    with connect(shop) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="purchases is append-only: record a refund instead"):
            conn.execute("DELETE FROM purchases WHERE kind = 'refund'")


def test_a_backup_made_before_the_guards_is_restored_and_gets_them(shop, tmp_path):
    backup = tmp_path / "old.db"
    ok(shop, "db", "backup", backup)
    with connect(backup) as conn:  # as loyalty made it before m007 (and so before every later one)
        undo_history_guards(conn)
        undo_chain(conn)
        conn.execute("DELETE FROM migrations WHERE name = 'm008_lot_available_on'")
        conn.execute("ALTER TABLE lots DROP COLUMN available_on")
        conn.execute(f"PRAGMA user_version = {[m.__name__ for m in MIGRATIONS].index('m007_history_guards')}")
    ok(shop, "db", "restore", backup, "--yes")  # checked first as what it is: made before m007
    assert row(shop, "migrations", name="m007_history_guards") is not None
    check_ok(shop)
    assert {"purchases_no_update", "settings_no_replace", "feedback_no_update"} <= {
        name for (name,) in raw(shop, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
