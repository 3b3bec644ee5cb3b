"""`db check` (SPEC §7): each check finds what was edited behind the tool's back, and passes on a sound shop.

The database file is opened through tests.db (plain SQL) to do what the tool never does; the
check must then name the problem (exit 4, problems on stderr or in --json).
"""

from __future__ import annotations

import json
from pathlib import Path

from loyalty_cli import checks, purchases
from loyalty_cli.store import Store
from tests.db import connect
from tests.helpers import drop_trigger, is_postgres, ok, run
from tests.test_outstanding_consistency import day, ledger_balances, shop  # noqa: F401 (shop: a fixture)
from tests.test_report_summaries import open_shop
from tests.test_tamper import balance, check_ok, db, some_activity, tamper  # noqa: F401 (db: a fixture)


# -- edits to the ledger, its triggers and the tiers ------------------------------------------------
def test_an_edited_entry_breaks_the_hash_chain_and_the_balance(db):
    some_activity(db)
    assert (balance(db, "M1"), balance(db, "M2")) == (70, 50)
    check_ok(db)
    tamper(db)

    result = run(db, "db", "check")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    # SPEC §3: on failure stdout stays empty (but for --json); the problems follow the error line.
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert err[0].startswith("Error:") and not any(line.startswith("Error:") for line in err[1:])
    text = result.stderr.lower()
    assert "hash" in text and "entry 2" in text
    assert "balance" in text and "M2" in result.stderr

    result = run(db, "db", "check", "--json")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["problems"], doc
    for p in doc["problems"]:
        assert set(p) == {"check", "message", "member_id"}
    by_check = {p["check"]: p for p in doc["problems"]}
    assert "hash_chain" in by_check and by_check["hash_chain"]["member_id"] == "M2"
    assert "entry 2" in by_check["hash_chain"]["message"]
    assert "balance" in by_check and by_check["balance"]["member_id"] == "M2"
    # The missing trigger is reported as well.
    assert any("ledger_no_update" in p["message"] for p in doc["problems"])


def test_a_deleted_entry_is_found(db):
    some_activity(db)
    with connect(db) as conn:  # foreign keys are off in a plain sqlite3 session
        drop_trigger(conn, "ledger_no_delete")
        if is_postgres(conn):  # its foreign keys always hold: the entry's lot uses go first
            drop_trigger(conn, "lot_uses_no_delete")
            conn.execute("DELETE FROM lot_uses WHERE entry_id = 3")
        conn.execute("DELETE FROM ledger WHERE id = 3")  # M1's redeem of 30
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    checks = {p["check"] for p in doc["problems"]}
    assert {"hash_chain", "balance"} <= checks, doc
    assert any(p["check"] == "balance" and p["member_id"] == "M1" for p in doc["problems"])


def test_a_failed_check_keeps_stdout_empty_and_lists_problems_on_stderr(db):
    some_activity(db)
    tamper(db)
    result = run(db, "db", "check")
    assert result.exit_code == 4
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: db check found")
    assert any("hash_chain: entry 2" in line for line in lines[1:])


def test_a_tier_changed_behind_the_tools_back_is_found(db):
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-01-01")
    ok(db, "purchases", "add", "M1", "600.00", "--at", "2025-03-01")  # upgraded to Silver
    check_ok(db)
    with connect(db) as conn:
        conn.execute("UPDATE members SET tier = 'Platinum' WHERE member_id = 'M1'")
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 4
    problems = json.loads(result.stdout)["problems"]
    assert [(p["check"], p["member_id"]) for p in problems] == [("tiers", "M1")]


# -- the as-of balances the reports read (issue 15) ----------------------------------------------
def problems(db) -> list[dict]:
    result = run(db, "db", "check", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == (4 if doc["problems"] else 0), result.stderr
    return doc["problems"]


def test_db_check_passes_on_a_shop_with_future_entries(shop):
    assert problems(shop) == []


def test_db_check_finds_reports_that_miss_the_entries_dated_after_today(shop):
    # The per-day totals tell the reports whether any entry is dated after D; without them the
    # dashboard counts the future expiry run as done today.
    with connect(shop) as conn:
        conn.execute("DELETE FROM daily_points WHERE day > ?", (day(0),))
    found = [p for p in problems(shop) if p["check"] == "outstanding"]
    truth = ledger_balances(shop, day(0))
    should = sum(b for b in truth.values() if b > 0)
    assert any(p["member_id"] is None and p["message"].startswith(f"outstanding points as of {day(0)}: the reports show ")
               and p["message"].endswith(f"balances dated up to then add up to {should:,}") for p in found)
    assert {p["member_id"] for p in found if p["member_id"]} == {"M1", "M2", "M3"}

    result = run(shop, "db", "check")
    assert result.exit_code == 4 and result.stdout == ""
    assert f"  outstanding: balance as of {day(0)} is shown as 0 but the entries dated up to then add up to 400 " \
           "(member M1)" in result.stderr.splitlines()


def test_db_check_finds_a_cached_balance_edited_behind_the_tools_back(shop):
    with connect(shop) as conn:
        conn.execute("UPDATE members SET balance = balance + 7 WHERE member_id = 'M2'")
    found = [p for p in problems(shop) if p["check"] == "outstanding"]
    assert [p["member_id"] for p in found if p["member_id"]] == ["M2"]
    assert any(p["message"].startswith(f"outstanding points as of {day(0)}:") for p in found)


# -- the cached totals the reports read -----------------------------------------------------------
def tamper_totals(path: Path, sql: str) -> list:
    with connect(path) as conn:
        conn.execute(sql)
    store = Store.open(path, create=True)
    try:
        return [p for p in checks.run_checks(store) if p.check == "summaries"]
    finally:
        store.close()


def test_db_check_finds_edited_totals(tmp_path):
    path = tmp_path / "shop.db"
    store = open_shop(path)
    purchases.add_sale(store, "A", 1000, "2025-03-01T10:00:00", "S1", None)
    purchases.add_sale(store, "A", 500, "2025-03-05T10:00:00", "S2", None)
    store.close()
    found = tamper_totals(path, "UPDATE member_totals SET net_spend = net_spend + 1 WHERE member_id = 'A'")
    assert [p.member_id for p in found] == ["A"] and "purchase totals" in found[0].message
    tamper_totals(path, "UPDATE member_totals SET net_spend = net_spend - 1 WHERE member_id = 'A'")
    found = tamper_totals(path, "UPDATE member_totals SET prev_sale_at = NULL WHERE member_id = 'A'")
    assert [p.member_id for p in found] == ["A"]
    tamper_totals(path, "UPDATE member_totals SET prev_sale_at = '2025-03-01T10:00:00' WHERE member_id = 'A'")
    found = tamper_totals(path, "DELETE FROM member_totals WHERE member_id = 'A'")
    assert [p.member_id for p in found] == ["A"]
    found = tamper_totals(path, "INSERT INTO member_totals VALUES ('A', 2, 1500, '2025-03-01T10:00:00', '2025-03-05T10:00:00', "
                         "'2025-03-05T10:00:00', '2025-03-01T10:00:00'), "
                         "('B', 1, 5, '2025-01-01T00:00:00', '2025-01-01T00:00:00', '2025-01-01T00:00:00', NULL)")
    assert [p.member_id for p in found] == ["B"]  # A is right again; B has no purchases
    tamper_totals(path, "DELETE FROM member_totals WHERE member_id = 'B'")
    found = tamper_totals(path, "UPDATE daily_sales SET sales_amount = 1 WHERE day = '2025-03-05'")
    assert len(found) == 1 and "daily_sales" in found[0].message and "2025-03-05" in found[0].message
    tamper_totals(path, "UPDATE daily_sales SET sales_amount = 500 WHERE day = '2025-03-05'")
    found = tamper_totals(path, "DELETE FROM daily_points WHERE kind = 'signup'")
    assert len(found) == 1 and "daily_points" in found[0].message and "2024-01-01" in found[0].message
