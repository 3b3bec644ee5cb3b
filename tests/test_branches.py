"""Branches (issue 18): purchases carry the store they were rung up at, from the till's CSV (a
`store` column), `--store NAME` or LOYALTY_STORE; the dashboard and the reports about purchases show
one branch with `--store`, and the dashboard lists each branch of the period when there are several.

The shop below is small enough to check by hand: Harbour sells 40.00 (M1) and 25.50 (M2), Hill sells
12.00 (M1) and takes back 10.00 of M1's Harbour sale, so Harbour's net is 65.50 from 2 sales and 2
buyers, Hill's 2.00 from 1 sale and 1 buyer, the shop's 67.50 from 3 sales.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.db import connect, raw
from tests.helpers import fresh_db, as_json, chain_key, guards_dropped, ok, one_error_line, rechain, run

AS_OF = "2026-11-30"
TILL = """purchase_id,member_id,purchased_at,amount,kind,refund_of,store
S1,M1,2026-11-10T10:00,40.00,sale,,Harbour
S2,M2,2026-11-12T11:00,25.50,sale,,Harbour
S3,M1,2026-11-15T12:00,12.00,sale,, Hill
R1,M1,2026-11-20T13:00,10.00,refund,S1,Hill
"""


@pytest.fixture
def shop(tmp_path):
    db = fresh_db(tmp_path / "shop.db")  # as loyalty init makes it (a PostgreSQL database on that run)
    for mid, name in (("M1", "Ann"), ("M2", "Bo"), ("M3", "Cy")):
        ok(db, "-q", "members", "add", "--id", mid, "--name", name, "--joined", "2026-01-01")
    till = tmp_path / "till.csv"
    till.write_text(TILL)
    ok(db, "purchases", "import", till)
    return db


def stores_of(db) -> dict:
    return dict(raw(db, "SELECT purchase_id, store FROM purchases"))


def db_check_passes(db) -> None:
    for mode in ((), ("--full",)):
        result = run(db, "db", "check", *mode)
        assert result.exit_code == 0, (mode, result.stderr)


def test_the_csv_store_column_is_recorded_trimmed_and_a_refund_keeps_its_own_branch(shop):
    assert stores_of(shop) == {"S1": "Harbour", "S2": "Harbour", "S3": "Hill", "R1": "Hill"}
    db_check_passes(shop)


def test_dashboard_store_shows_only_that_branchs_sales_and_the_breakdown_lists_both(shop):
    whole = as_json(shop, "dashboard", "--as-of", AS_OF)
    assert whole["sales"] == {"count": 3, "net": "67.50", "average_order_value": "22.50"}
    assert whole["stores"] == [{"store": "Harbour", "sales": 2, "net": "65.50", "buyers": 2},
                               {"store": "Hill", "sales": 1, "net": "2.00", "buyers": 1}]
    assert "store" not in whole

    harbour = as_json(shop, "dashboard", "--as-of", AS_OF, "--store", "Harbour")
    assert harbour["store"] == "Harbour"
    assert harbour["sales"] == {"count": 2, "net": "65.50", "average_order_value": "32.75"}
    assert harbour["members"]["active"] == 2
    # The refund was rung up at Hill: it counts there, not against the Harbour sale it refunds.
    assert [(t["member_id"], t["net_spend"]) for t in harbour["top_members"]] == [("M1", "40.00"), ("M2", "25.50")]
    assert harbour["stores"] == [{"store": "Harbour", "sales": 2, "net": "65.50", "buyers": 2}]

    hill = as_json(shop, "dashboard", "--as-of", AS_OF, "--store", "Hill")
    assert hill["sales"]["count"] == 1 and hill["sales"]["net"] == "2.00" and hill["members"]["active"] == 1
    assert [m["net_sales"] for m in hill["monthly"] if m["month"] == "2026-11"] == ["2.00"]
    # Members, points, tiers belong to no branch: the whole shop's whatever --store says.
    for key in ("points", "liability", "tiers", "redemption_rate", "nps"):
        assert hill[key] == whole[key] == harbour[key], key
    assert hill["members"]["total"] == whole["members"]["total"] == 3

    text = ok(shop, "dashboard", "--as-of", AS_OF, env={"COLUMNS": "80"}).stdout
    lines = text.splitlines()
    assert len(lines) <= 23 and max(map(len, lines)) <= 80, text
    assert "By branch" in text
    harbour_line = next(line for line in lines if "Harbour" in line)
    hill_line = next(line for line in lines if " Hill " in line + " ")
    assert harbour_line.split()[-3:] == ["65.50", "2", "2"] and hill_line.split()[-3:] == ["2.00", "1", "1"]
    full = ok(shop, "dashboard", "--as-of", AS_OF, "--full").stdout
    assert "By branch (last 30 days)" in full and "65.50" in full
    one = ok(shop, "dashboard", "--as-of", AS_OF, "--store", "Hill", env={"COLUMNS": "80"}).stdout
    assert one.startswith(f"Loyalty dashboard · as of {AS_OF} · Hill\n") and "By branch" not in one


def test_one_branch_or_none_changes_nothing_on_the_dashboard(tmp_path):
    db = tmp_path / "one.db"
    ok(db, "-q", "init")
    ok(db, "-q", "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2026-01-01")
    ok(db, "-q", "purchases", "add", "M1", "10.00", "--at", "2026-11-10")
    plain = ok(db, "dashboard", "--as-of", AS_OF).stdout
    assert as_json(db, "dashboard", "--as-of", AS_OF)["stores"] == []
    ok(db, "-q", "purchases", "add", "M1", "5.00", "--at", "2026-11-11", "--store", "Harbour")
    text = ok(db, "dashboard", "--as-of", AS_OF).stdout
    assert "By branch" not in text and "RFM segments" in text and "By branch" not in plain
    assert as_json(db, "dashboard", "--as-of", AS_OF)["stores"] == [
        {"store": "Harbour", "sales": 1, "net": "5.00", "buyers": 1}]


def test_an_unknown_store_is_one_error_line_naming_the_stores(shop):
    for args in (("dashboard",), ("report", "rfm"), ("report", "churn"), ("report", "segments"), ("report", "pareto")):
        result = run(shop, *args, "--as-of", AS_OF, "--store", "Harbor")
        assert result.exit_code == 1, (args, result.stderr)
        assert one_error_line(result) == ("Error: no purchase was rung up at store 'Harbor'; the stores are: "
                                          "Harbour, Hill")


def test_reports_about_purchases_take_one_branch(shop):
    rfm = as_json(shop, "report", "rfm", "--as-of", AS_OF, "--store", "Hill")
    assert rfm["store"] == "Hill"
    assert [(m["member_id"], m["frequency"], m["monetary"]) for m in rfm["members"]] == [("M1", 1, "2.00")]
    assert [m["member_id"] for m in as_json(shop, "report", "rfm", "--as-of", AS_OF)["members"]] == ["M1", "M2"]
    assert as_json(shop, "report", "pareto", "--as-of", AS_OF, "--store", "Harbour")["total_spend"] == "65.50"
    assert as_json(shop, "report", "segments", "--as-of", AS_OF, "--store", "Harbour")["spend"] == "65.50"
    # Churn at one branch: M1's last sale at Harbour was 20 days before, M2's 18 (M1 bought at Hill since).
    churn = as_json(shop, "report", "churn", "--as-of", AS_OF, "--days", "15", "--store", "Harbour")
    assert [(m["member_id"], m["last_sale"], m["lifetime_spend"]) for m in churn["members"]] == [
        ("M1", "2026-11-10", "40.00"), ("M2", "2026-11-12", "25.50")]
    assert as_json(shop, "report", "churn", "--as-of", AS_OF, "--days", "16", "--store", "Hill")["members"] == []
    # Points and birthdays belong to members, not branches: no --store, and the help says why.
    for report in ("liability", "expiring", "birthdays"):
        result = run(shop, "report", report, "--store", "Hill")
        assert result.exit_code == 2, report
        assert "--store" in ok(shop, "report", report, "--help").stdout, report


def test_store_on_add_and_refund_and_loyalty_store_with_the_flag_first(shop):
    ok(shop, "-q", "purchases", "add", "M3", "7.00", "--id", "A1", "--at", "2026-11-21", "--store", "Quay")
    ok(shop, "-q", "purchases", "add", "M3", "8.00", "--id", "A2", "--at", "2026-11-21", env={"LOYALTY_STORE": "Hill"})
    ok(shop, "-q", "purchases", "add", "M3", "9.00", "--id", "A3", "--at", "2026-11-21", "--store", "Quay",
       env={"LOYALTY_STORE": "Hill"})
    ok(shop, "-q", "purchases", "add", "M3", "1.00", "--id", "A4", "--at", "2026-11-21")
    doc = as_json(shop, "purchases", "refund", "A1", "2.00", "--id", "B1", "--at", "2026-11-22",
                  env={"LOYALTY_STORE": "Harbour"})
    assert doc["store"] == "Harbour"
    assert as_json(shop, "purchases", "add", "M3", "1.00", "--at", "2026-11-22")["store"] is None
    stores = stores_of(shop)
    assert [stores[p] for p in ("A1", "A2", "A3", "A4", "B1")] == ["Quay", "Hill", "Quay", None, "Harbour"]
    db_check_passes(shop)


@pytest.mark.parametrize("value, env", [("x" * 41, False), ("", False), ("  ", False), ("a\tb", False),
                                        ("a\u202eb", False), ("x" * 41, True)])
def test_a_bad_store_name_is_a_usage_error_and_nothing_is_recorded(shop, value, env):
    before = stores_of(shop)
    args = ("purchases", "add", "M3", "5.00", "--at", "2026-11-21")
    result = run(shop, *args, env={"LOYALTY_STORE": value}) if env else run(shop, *args, "--store", value)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("Error: --store (or LOYALTY_STORE) must be 1-40 characters" if env
                           else "Error: --store must be 1-40 characters"), line
    assert stores_of(shop) == before


def test_import_store_flag_fills_rows_without_one_and_map_reads_another_column(shop, tmp_path):
    till = tmp_path / "more.csv"
    till.write_text("Receipt,member_id,purchased_at,amount,Branch\nT1,M3,2026-11-21,3.00,Quay\nT2,M3,2026-11-21,4.00,\n")
    ok(shop, "purchases", "import", till, "--map", "purchase_id=Receipt", "--map", "store=Branch", "--store", "Hill")
    plain = tmp_path / "plain.csv"
    plain.write_text("purchase_id,member_id,purchased_at,amount\nU1,M3,2026-11-21,1.00\n")
    ok(shop, "purchases", "import", plain, env={"LOYALTY_STORE": "Harbour"})
    stores = stores_of(shop)
    assert (stores["T1"], stores["T2"], stores["U1"]) == ("Quay", "Hill", "Harbour")
    help_text = ok(shop, "purchases", "import", "--help").stdout
    assert "a row's own store column wins" in " ".join(help_text.split())
    db_check_passes(shop)


def test_a_bad_store_in_a_row_rejects_the_file_and_skip_bad_keeps_the_others(shop, tmp_path):
    long = "x" * 41
    till = tmp_path / "bad.csv"
    till.write_text(f'purchase_id,member_id,purchased_at,amount,store\nV1,M3,2026-11-21,3.00,Quay\n'
                    f'V2,M3,2026-11-21,4.00,{long}\nV3,M3,2026-11-21,5.00,"a\tb"\n')
    result = run(shop, "purchases", "import", till)
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"Error: {till} rejected, nothing imported: line 3: store must be 1-40 characters without control "
        "characters, line separators or bidirectional marks (and 1 more bad row)")
    assert not {"V1", "V2", "V3"} & set(stores_of(shop))
    result = run(shop, "purchases", "import", till, "--skip-bad")
    assert result.exit_code == 3
    assert stores_of(shop)["V1"] == "Quay" and not {"V2", "V3"} & set(stores_of(shop))
    db_check_passes(shop)


def test_a_purchases_store_changed_behind_the_tools_back_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "purchases"):
        conn.execute("UPDATE purchases SET store = 'Hill' WHERE purchase_id = 'S2'")
    for mode in ((), ("--full",)):
        result = run(shop, "db", "check", "--json", *mode)
        assert result.exit_code == 4
        messages = [p["message"] for p in json.loads(result.stdout)["problems"]]
        assert any("purchase S2 (purchases): store is 'Hill' but the chain recorded 'Harbour'" in m
                   for m in messages), (mode, messages)
    with connect(shop) as conn, guards_dropped(conn, "purchases"):
        conn.execute("UPDATE purchases SET store = NULL WHERE purchase_id = 'S2'")
    result = run(shop, "db", "check", "--full")
    assert result.exit_code == 4 and "store is NULL but the chain recorded 'Harbour'" in result.stderr


def _as_before_m010(db, key: bytes) -> None:
    """Make the shop look as an earlier loyalty left it: no store column, no m010, and every purchase
    record of the chain ten fields long (re-signed with the key, as that version signed them)."""
    from loyalty_cli.store.chain import body_of

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("DROP INDEX purchases_store")
        conn.execute("ALTER TABLE purchases DROP COLUMN store")
        conn.execute("DELETE FROM migrations WHERE name = 'm010_store'")
        conn.execute("DROP TABLE variant_entries")  # and what the migrations after it made (m011)
        conn.execute("DROP TABLE experiments")
        conn.execute("DELETE FROM migrations WHERE name = 'm011_experiments'")
        conn.execute("PRAGMA user_version = 9")
        for trigger in ("chain_no_update",):
            conn.execute(f"DROP TRIGGER {trigger}")
        for block_id, body in conn.execute("SELECT id, body FROM chain WHERE kinds LIKE '%,purchases,%'").fetchall():
            doc = body_of(body)
            doc["rows"]["purchases"] = [rec[:10] for rec in doc["rows"]["purchases"]]
            conn.execute("UPDATE chain SET body = ? WHERE id = ?", (json.dumps(doc, separators=(",", ":")), block_id))
        rechain(conn, 1, key)
        conn.execute("CREATE TRIGGER chain_no_update BEFORE UPDATE ON chain "
                     "BEGIN SELECT RAISE(ABORT, 'the chain is append-only: a block is never changed'); END")
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_chain_written_before_the_store_column_still_verifies(tmp_path):
    db = tmp_path / "old.db"
    ok(db, "-q", "init")
    ok(db, "-q", "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2026-01-01")
    ok(db, "-q", "purchases", "add", "M1", "10.00", "--id", "S1", "--at", "2026-11-10")
    ok(db, "-q", "purchases", "refund", "S1", "4.00", "--id", "R1", "--at", "2026-11-11")
    _as_before_m010(db, chain_key())
    backup = tmp_path / "backup-before-m010.db"
    raw(db, "VACUUM INTO ?", str(backup))
    # An old backup is checked as it is (no store column) before it is restored.
    target = tmp_path / "restored.db"
    ok(target, "-q", "init")
    ok(target, "db", "restore", backup, "--yes")
    # Opened by this version: migrated, the old purchases have no branch, and the old blocks verify.
    db_check_passes(db)
    assert stores_of(db) == {"S1": None, "R1": None}
    ok(db, "-q", "purchases", "add", "M1", "3.00", "--id", "S2", "--at", "2026-11-12", "--store", "Quay")
    db_check_passes(db)
    with connect(db) as conn, guards_dropped(conn, "purchases"):
        conn.execute("UPDATE purchases SET store = 'Quay' WHERE purchase_id = 'S1'")
    result = run(db, "db", "check", "--full")
    assert result.exit_code == 4 and "purchase S1 (purchases): store is 'Quay' but the chain recorded NULL" in result.stderr
