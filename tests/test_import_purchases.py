"""`loyalty purchases import` (SPEC §5, §11): exactly once, all or nothing, the till's CSV dialects.

CSVs are written inside each test; what was written is read back from the
database file (tests/db.py).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.db import count, entries, members, purchases
from tests.helpers import as_json, ok, one_error_line, run, fresh_db

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
SUMMARY_KEYS = {"rows", "imported", "duplicates", "rejected", "points_awarded", "points_reversed", "members_created",
                "errors"}

# -- small local helpers (independent of conftest) ------------------------------------

@pytest.fixture
def dbp(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


@pytest.fixture
def shop(dbp):
    """Members A and B, joined 2025-01-01, default rules (1 point per 1.00, no bonuses)."""
    for mid in ("A", "B"):
        ok(dbp, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    return dbp


def write(tmp_path, text, name="purchases.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def import_json(db, path, *extra):
    """(exit code, summary JSON) of an import run with --json."""
    result = run(db, "purchases", "import", path, *extra, "--json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def snapshot(db):
    """Everything an import may touch."""
    return (purchases(db),
            [(e.id, e.member_id, e.at, e.kind, e.points, e.ref) for e in entries(db)],
            [(m.member_id, m.balance, m.tier) for m in members(db)],
            count(db, "lots"))


def balances(db):
    return dict([(m.member_id, m.balance) for m in members(db)])


HEADER = "purchase_id,member_id,purchased_at,amount,category,kind,refund_of\n"
CLEAN = HEADER + (
    "P1,A,2025-03-01,10.00,grocery,sale,\n"
    "P2,B,2025-03-02T10:30,20.50,bakery,sale,\n"
    "P3,A,2025-03-03T09:15:00,5.00,,,\n"
)


# -- clean import and re-import ------------------------------------------------------------------


def test_clean_import_summary_json(shop, tmp_path):
    code, doc = import_json(shop, write(tmp_path, CLEAN))
    assert code == 0
    assert set(doc) == SUMMARY_KEYS
    assert doc == {"rows": 3, "imported": 3, "duplicates": 0, "rejected": 0, "points_awarded": 35,
                   "points_reversed": 0, "members_created": 0, "errors": []}
    assert [(p.purchase_id, p.member_id, p.kind, p.amount, p.purchased_at, p.category) for p in purchases(shop)] == [
        ("P1", "A", "sale", 1000, "2025-03-01T00:00:00", "grocery"),
        ("P2", "B", "sale", 2050, "2025-03-02T10:30:00", "bakery"),
        ("P3", "A", "sale", 500, "2025-03-03T09:15:00", None),
    ]
    assert balances(shop) == {"A": 15, "B": 20}
    assert run(shop, "db", "check").exit_code == 0


def test_clean_import_prints_summary_without_json(shop, tmp_path):
    result = run(shop, "purchases", "import", write(tmp_path, CLEAN))
    assert result.exit_code == 0
    assert "3" in result.stdout and result.stderr == ""


def test_reimport_changes_nothing(shop, tmp_path):
    path = write(tmp_path, CLEAN)
    assert import_json(shop, path)[0] == 0
    before = snapshot(shop)
    code, doc = import_json(shop, path)
    assert code == 0
    assert doc["duplicates"] == doc["rows"] == 3
    assert (doc["imported"], doc["points_awarded"], doc["points_reversed"], doc["rejected"]) == (0, 0, 0, 0)
    assert snapshot(shop) == before


def test_duplicate_with_other_time_and_category_is_still_a_duplicate(shop, tmp_path):
    assert import_json(shop, write(tmp_path, CLEAN))[0] == 0
    before = snapshot(shop)
    code, doc = import_json(shop, write(tmp_path, HEADER + "P1,A,2025-03-01T18:45,10.00,dairy,sale,\n", "again.csv"))
    assert code == 0
    assert doc["duplicates"] == 1
    assert snapshot(shop) == before


@pytest.mark.parametrize(
    "row",
    [
        "P1,A,2025-03-01,11.00,grocery,sale,",      # amount differs
        "P1,B,2025-03-01,10.00,grocery,sale,",      # member differs
        "P1,A,2025-03-02,10.00,grocery,sale,",      # calendar date differs
    ],
)
def test_conflicting_duplicate_rejects_the_whole_file(shop, tmp_path, row):
    assert import_json(shop, write(tmp_path, CLEAN))[0] == 0
    before = snapshot(shop)
    path = write(tmp_path, HEADER + "P9,B,2025-04-01,50.00,,,\n" + row + "\n", "conflict.csv")
    result = run(shop, "purchases", "import", path)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "line 3" in result.stderr
    assert "P1" in result.stderr
    assert snapshot(shop) == before


# -- all or nothing, --skip-bad, --dry-run --------------------------------------------------------

MIXED = HEADER + (
    "P1,A,2025-03-01,10.00,,,\n"       # line 2: good
    "P2,A,2025-03-02,abc,,,\n"         # line 3: bad amount
    "P3,B,2025-03-03,20.00,,,\n"       # line 4: good
    "P4,NOBODY,2025-03-04,5.00,,,\n"   # line 5: unknown member
    "P5,B,2025-03-05,7.00,,,\n"        # line 6: good
)


def test_one_bad_row_rejects_the_file_and_every_bad_row_is_reported(shop, tmp_path):
    before = snapshot(shop)
    path = write(tmp_path, MIXED)
    code, doc = import_json(shop, path)
    assert code == 3
    assert set(doc) == SUMMARY_KEYS
    assert [e["line"] for e in doc["errors"]] == [3, 5]
    assert all(e["message"] for e in doc["errors"])
    assert doc["rejected"] == 2
    assert snapshot(shop) == before

    result = run(shop, "purchases", "import", path)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")
    assert "line 3" in result.stderr and "line 5" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(shop) == before


def test_skip_bad_imports_good_rows_and_writes_rejects(shop, tmp_path):
    rejects = tmp_path / "rejects.csv"
    old = os.umask(0)
    try:
        code, doc = import_json(shop, write(tmp_path, MIXED), "--skip-bad", "--rejects", rejects)
    finally:
        os.umask(old)
    assert code == 3
    assert (doc["rows"], doc["imported"], doc["rejected"], doc["points_awarded"]) == (5, 3, 2, 37)
    assert [e["line"] for e in doc["errors"]] == [3, 5]
    assert [p.purchase_id for p in purchases(shop)] == ["P1", "P3", "P5"]
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    import csv

    rows = list(csv.reader(rejects.open(encoding="utf-8")))
    assert rows[0][:2] == ["line", "reason"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("3", "P2"), ("5", "P4")]
    assert all(r[1] for r in rows[1:])
    assert run(shop, "db", "check").exit_code == 0


def test_dry_run_writes_nothing(shop, tmp_path):
    before = snapshot(shop)
    code, doc = import_json(shop, write(tmp_path, CLEAN), "--dry-run")
    assert code == 0
    assert set(doc) == SUMMARY_KEYS
    assert (doc["rows"], doc["imported"], doc["rejected"], doc["points_awarded"]) == (3, 3, 0, 35)
    assert snapshot(shop) == before

    code, doc = import_json(shop, write(tmp_path, MIXED, "mixed.csv"), "--dry-run")
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [3, 5]
    assert snapshot(shop) == before


# -- dialects ---------------------------------------------------------------------------------------


def test_bom_semicolon_decimal_comma(shop, tmp_path):
    text = "\ufeffpurchase_id;member_id;purchased_at;amount\nP1;A;2025-03-01;1.234,56\nP2;A;2025-03-02;12,50\nP3;B;2025-03-03;7\n"
    code, doc = import_json(shop, write(tmp_path, text), "--delimiter", ";", "--decimal-comma")
    assert code == 0, doc
    assert doc["imported"] == 3
    assert [(p.purchase_id, p.amount) for p in purchases(shop)] == [
        ("P1", 123456), ("P2", 1250), ("P3", 700)]
    # 1234.56 lifts A into Silver (500.00), so the next sale earns at Silver: 12.50 × 1.25 = 15.625 → 15
    assert balances(shop) == {"A": 1234 + 15, "B": 7}


@pytest.mark.parametrize(
    "text, extra",
    [
        ('purchase_id,member_id,purchased_at,amount\nP1,A,2025-03-01,"12,50"\n', []),
        ("purchase_id;member_id;purchased_at;amount\nP1;A;2025-03-01;12,50\n", ["--delimiter", ";"]),
        ("purchase_id;member_id;purchased_at;amount\nP1;A;2025-03-01;1.234,56\n", ["--delimiter", ";"]),
    ],
)
def test_decimal_comma_without_the_flag_is_an_error(shop, tmp_path, text, extra):
    code, doc = import_json(shop, write(tmp_path, text), *extra)
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [2]
    assert count(shop, "purchases") == 0


def test_map_columns(shop, tmp_path):
    text = "Receipt,member_id,purchased_at,Total\nT1,A,2025-03-01,10.00\n"
    code, doc = import_json(shop, write(tmp_path, text), "--map", "purchase_id=Receipt", "--map", "amount=Total")
    assert code == 0, doc
    assert [(p.purchase_id, p.amount) for p in purchases(shop)] == [("T1", 1000)]


def test_headers_are_case_insensitive_and_in_any_order(shop, tmp_path):
    text = "AMOUNT,Refund_Of,Member_ID,Kind,purchased_AT,Purchase_Id\n10.00,,A,SALE,2025-03-01,P1\n4.00,P1,A,refund,2025-03-02,R1\n"
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 0, doc
    assert [(p.purchase_id, p.member_id, p.kind, p.amount, p.refund_of) for p in purchases(shop)] == [
        ("P1", "A", "sale", 1000, None), ("R1", "A", "refund", 400, "P1")]
    assert balances(shop)["A"] == 6


@pytest.mark.parametrize("missing", ["purchase_id", "member_id", "purchased_at", "amount"])
def test_missing_required_column_names_it(shop, tmp_path, missing):
    cols = [c for c in ("purchase_id", "member_id", "purchased_at", "amount") if c != missing]
    vals = {"purchase_id": "P1", "member_id": "A", "purchased_at": "2025-03-01", "amount": "1.00"}
    text = ",".join(cols) + "\n" + ",".join(vals[c] for c in cols) + "\n"
    result = run(shop, "purchases", "import", write(tmp_path, text))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")
    assert missing in result.stderr
    assert count(shop, "purchases") == 0


@pytest.mark.parametrize("header", ["purchase_id,member_id,purchased_at,amount,amount",
                                    "purchase_id,member_id,purchased_at,amount,Amount"])
def test_duplicate_header_rejects_the_file(shop, tmp_path, header):
    result = run(shop, "purchases", "import", write(tmp_path, header + "\nP1,A,2025-03-01,1.00,2.00\n"))
    assert result.exit_code == 3
    assert "amount" in result.stderr.lower()
    assert count(shop, "purchases") == 0


def test_date_format(shop, tmp_path):
    text = "purchase_id,member_id,purchased_at,amount\nP1,A,01/03/2025 14:30,10.00\nP2,A,31/12/2025 08:05,1.00\n"
    code, doc = import_json(shop, write(tmp_path, text), "--date-format", "%d/%m/%Y %H:%M")
    assert code == 0, doc
    assert [(p.purchase_id, p.purchased_at) for p in purchases(shop)] == [
        ("P1", "2025-03-01T14:30:00"), ("P2", "2025-12-31T08:05:00")]


def test_date_format_mismatch_is_a_bad_row(shop, tmp_path):
    text = "purchase_id,member_id,purchased_at,amount\nP1,A,2025-03-01,10.00\n"
    code, doc = import_json(shop, write(tmp_path, text), "--date-format", "%d/%m/%Y %H:%M")
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [2]


@pytest.mark.parametrize("when", ["2025-03-01T10:00+01:00", "2025-02-30", "yesterday", ""])
def test_bad_dates_are_bad_rows(shop, tmp_path, when):
    code, doc = import_json(shop, write(tmp_path, f"purchase_id,member_id,purchased_at,amount\nP1,A,{when},1.00\n"))
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [2]


# -- members ------------------------------------------------------------------------------------


def test_create_members_enrols_as_of_first_purchase_with_signup_bonus(shop, tmp_path):
    ok(shop, "program", "set", "earn.signup_bonus", "50")
    text = HEADER + "P1,Z,2025-03-05T11:00,10.00,,,\nP2,Z,2025-03-09,20.00,,,\nP3,A,2025-03-09,1.00,,,\n"
    code, doc = import_json(shop, write(tmp_path, text), "--create-members")
    assert code == 0, doc
    assert doc["members_created"] == 1
    assert doc["imported"] == 3
    show = as_json(shop, "members", "show", "Z")
    assert show["joined_on"] == "2025-03-05"
    assert show["balance"] == 50 + 10 + 20
    signup = [(e.at, e.points) for e in entries(shop, "Z", kind="signup")]
    assert signup == [("2025-03-05T00:00:00", 50)]
    assert run(shop, "db", "check").exit_code == 0
    # a second import of the same file creates nobody
    code, doc = import_json(shop, write(tmp_path, text), "--create-members")
    assert (code, doc["members_created"], doc["duplicates"]) == (0, 0, 3)


def test_unknown_member_without_create_members_rejects_the_file(shop, tmp_path):
    code, doc = import_json(shop, write(tmp_path, HEADER + "P1,A,2025-03-01,1.00,,,\nP2,Z,2025-03-05,10.00,,,\n"))
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [3]
    assert "Z" in doc["errors"][0]["message"]
    assert count(shop, "members", member_id="Z") == 0
    assert count(shop, "purchases") == 0


# -- bad amounts ---------------------------------------------------------------------------------


def test_every_bad_amount_is_a_reported_bad_row(shop, tmp_path):
    text = ("purchase_id,member_id,purchased_at,amount\n"
            "P1,A,2025-03-01,1e3\n"       # 2
            "P2,A,2025-03-01,-5\n"        # 3
            "P3,A,2025-03-01,12.345\n"    # 4
            "P4,A,2025-03-01,\n"          # 5
            "P5,A,2025-03-01,abc\n"       # 6
            "P6,A,2025-03-01,12.50\n"     # 7 good
            "P7,A,2025-03-01,+5\n"        # 8
            "P8,A,2025-03-01,1 000\n"     # 9
            "P9,A,2025-03-01,10000000000.01\n")  # 10: more than 10^12 minor units
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [2, 3, 4, 5, 6, 8, 9, 10]
    assert count(shop, "purchases") == 0


def test_amount_with_spaces_and_zero_sale(shop, tmp_path):
    text = "purchase_id,member_id,purchased_at,amount\nP1,A,2025-03-01, 12.5 \nP2,A,2025-03-02,0\nP3,A,2025-03-03,0.00\n"
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 0, doc
    assert [(p.purchase_id, p.amount, p.points) for p in purchases(shop)] == [
        ("P1", 1250, 12), ("P2", 0, 0), ("P3", 0, 0)]


# -- refunds in the file ---------------------------------------------------------------------------


def test_refund_rows_in_the_same_file_as_their_sale(shop, tmp_path):
    text = HEADER + (
        "P1,A,2025-03-01,100.00,,sale,\n"
        "R1,A,2025-03-05,30.00,,refund,P1\n"
        "P2,B,2025-03-02,37.99,,,\n"
        "R2,B,2025-03-06,10.00,,refund,P2\n"
        "R3,B,2025-03-07,27.99,,refund,P2\n"
    )
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 0, doc
    assert (doc["imported"], doc["points_awarded"], doc["points_reversed"]) == (5, 137, 30 + 9 + 28)
    assert balances(shop) == {"A": 70, "B": 0}
    assert [(p.purchase_id, p.points) for p in purchases(shop, kind="refund")] == [
        ("R1", 30), ("R2", 9), ("R3", 28)]
    assert run(shop, "db", "check").exit_code == 0
    code, doc = import_json(shop, write(tmp_path, text))
    assert (code, doc["duplicates"], doc["points_reversed"]) == (0, 5, 0)
    assert balances(shop) == {"A": 70, "B": 0}


def test_several_refunds_of_one_sale_in_one_file_reverse_like_the_counter(shop, tmp_path):
    """R₀ (what was refunded before) counts refunds earlier in the same file: 0.50 + 0.50 + 9.00 of 10.00 → 0, 1, 9."""
    text = HEADER + (
        "P1,A,2025-03-01,10.00,,,\n"
        "R1,A,2025-03-02,0.50,,refund,P1\n"
        "R2,A,2025-03-03,0.50,,refund,P1\n"
        "R3,A,2025-03-04,9.00,,refund,P1\n"
    )
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 0, doc
    assert [(p.purchase_id, p.points) for p in purchases(shop, kind="refund")] == [
        ("R1", 0), ("R2", 1), ("R3", 9)]
    assert doc["points_reversed"] == 10
    assert balances(shop)["A"] == 0
    # the same at the counter
    ok(shop, "purchases", "add", "B", "10.00", "--id", "Q1", "--at", "2025-03-01")
    got = [as_json(shop, "purchases", "refund", "Q1", amt, "--id", rid, "--at", "2025-03-05")["points_reversed"]
           for rid, amt in (("QR1", "0.50"), ("QR2", "0.50"), ("QR3", "9.00"))]
    assert got == [0, 1, 9]


@pytest.mark.parametrize(
    "rows, line",
    [
        ("R1,A,2025-03-05,30.00,,refund,\n", 2),                                      # no refund_of
        ("R1,A,2025-03-05,30.00,,refund,NOPE\n", 2),                                  # unknown sale
        ("P1,A,2025-03-01,10.00,,,\nR1,A,2025-03-05,10.01,,refund,P1\n", 3),        # more than the sale
        ("P1,A,2025-03-01,10.00,,,\nR1,A,2025-02-28,1.00,,refund,P1\n", 3),         # before the sale
        ("P1,A,2025-03-01,10.00,,,\nR1,B,2025-03-05,1.00,,refund,P1\n", 3),         # another member's sale
        ("P1,A,2025-03-01,10.00,,,\nR1,A,2025-03-05,1.00,,refund,P1\nR2,A,2025-03-05,1.00,,refund,R1\n", 4),  # of a refund
        ("P1,A,2025-03-01,0.00,,,\nR1,A,2025-03-05,0.00,,refund,P1\n", 3),          # zero refund of a zero sale
        ("P1,A,2025-03-01,10.00,,,\nR1,A,2025-03-05,5.00,,refund,P1\nR2,A,2025-03-05,5.01,,refund,P1\n", 4),
        ("P1,A,2025-03-01,10.00,,sale,P0\n", 2),                                      # a sale with refund_of
        ("P1,A,2025-03-01,10.00,,return,\n", 2),                                      # unknown kind
    ],
)
def test_bad_refund_rows(shop, tmp_path, rows, line):
    code, doc = import_json(shop, write(tmp_path, HEADER + rows))
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [line]
    assert count(shop, "purchases") == 0
    assert count(shop, "ledger") == 0


def test_same_purchase_id_twice_in_one_file(shop, tmp_path):
    """Within one file: identical rows are a duplicate; a differing one is an error."""
    code, doc = import_json(shop, write(tmp_path, HEADER + "P1,A,2025-03-01,10.00,,,\nP1,A,2025-03-01,10.00,,,\n"))
    assert (code, doc["imported"], doc["duplicates"]) == (0, 1, 1)
    assert balances(shop)["A"] == 10
    code, doc = import_json(shop, write(tmp_path, HEADER + "P2,A,2025-03-01,10.00,,,\nP2,A,2025-03-01,11.00,,,\n", "b.csv"))
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [3]
    assert balances(shop)["A"] == 10


# -- the sample data ---------------------------------------------------------------------------------


def test_sample_data_imports_and_checks(dbp):
    ok(dbp, "program", "load", SAMPLE / "program.toml")
    ok(dbp, "members", "import", SAMPLE / "members.csv")
    code, doc = import_json(dbp, SAMPLE / "purchases.csv")
    assert code == 0, doc["errors"][:5]
    assert doc["rejected"] == 0 and doc["errors"] == []
    assert doc["imported"] == doc["rows"] > 1000
    assert doc["points_awarded"] > 0
    assert run(dbp, "db", "check").exit_code == 0
    before = snapshot(dbp)
    code, again = import_json(dbp, SAMPLE / "purchases.csv")
    assert code == 0
    assert again["duplicates"] == again["rows"] == doc["rows"]
    assert (again["imported"], again["points_awarded"], again["points_reversed"]) == (0, 0, 0)
    assert snapshot(dbp) == before


# -- what a script reads back from a rejected or partly rejected file -----------------------------


def test_a_rejected_file_reports_nothing_written(shop, tmp_path):
    # All or nothing: the good row P1 was rolled back with the bad one, and the report says so.
    code, doc = import_json(shop, write(tmp_path, HEADER + "P1,A,2025-03-01,12.50,,,\nP2,A,2025-03-01,x,,,\n"))
    assert code == 3
    assert (doc["rows"], doc["imported"], doc["rejected"], doc["points_awarded"], doc["members_created"]) == (2, 0, 1, 0, 0)
    assert count(shop, "purchases") == 0


@pytest.mark.parametrize("text, line", [
    ("purchase_id,member_id,purchased_at,amount,Amount\nP1,A,2025-03-01,1.00,2\n", 1),  # a column named twice
    ("purchase_id,member_id,amount\nP1,A,1.00\n", 1),                                   # a required column missing
    (HEADER + "P1,A,2025-03-01,1.00,,,\nP2,A,2025-03-01,\"2.00\n", 3),                   # quoting never closed
    ("", None),                                                                         # empty file
])
def test_a_file_refused_as_a_whole_still_gives_the_json_report(shop, tmp_path, text, line):
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 3
    assert set(doc) == SUMMARY_KEYS
    assert (doc["imported"], doc["points_awarded"]) == (0, 0)
    assert [e["line"] for e in doc["errors"]] == [line] and doc["errors"][0]["message"]
    assert count(shop, "purchases") == 0


def test_skip_bad_without_json_still_tells_what_was_imported(shop, tmp_path):
    result = run(shop, "purchases", "import", write(tmp_path, MIXED), "--skip-bad")
    assert result.exit_code == 3 and result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error:") and "2 bad rows skipped" in first
    assert "5 rows read: 3 imported, 0 duplicates, 2 rejected; 37 points awarded" in first


def test_bad_rows_are_reported_in_line_order(shop, tmp_path):
    # Line 2 is a conflicting duplicate and line 3 an unknown member (found on the second pass over
    # the rows), line 4 a bad amount (found on the first): reported 2, 3, 4 all the same.
    ok(shop, "purchases", "import", write(tmp_path, HEADER + "P1,A,2025-03-01,1.00,,,\n", "first.csv"))
    rejects = tmp_path / "rejects.csv"
    text = HEADER + "P1,A,2025-03-01,9.00,,,\nP2,NOBODY,2025-03-01,1.00,,,\nP3,A,2025-03-01,x,,,\n"
    code, doc = import_json(shop, write(tmp_path, text), "--skip-bad", "--rejects", rejects)
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [2, 3, 4]
    assert [row.split(",")[0] for row in rejects.read_text().splitlines()[1:]] == ["2", "3", "4"]


def test_a_refund_for_an_unknown_member_enrols_nobody(shop, tmp_path):
    ok(shop, "program", "set", "earn.signup_bonus", "50")
    text = HEADER + "R1,GHOST,2025-03-01,5.00,,refund,NOPE\nP1,NEW,2025-03-01,5.00,,,\n"
    code, doc = import_json(shop, write(tmp_path, text), "--create-members", "--skip-bad")
    assert code == 3
    assert (doc["imported"], doc["rejected"], doc["members_created"], doc["points_awarded"]) == (1, 1, 1, 55)
    assert "GHOST" in doc["errors"][0]["message"]
    assert count(shop, "members", member_id="GHOST") == 0
    assert count(shop, "ledger", member_id="GHOST") == 0
    assert run(shop, "db", "check").exit_code == 0


@pytest.mark.parametrize("fmt, says", [
    ("%Y-%m-%dT%H:%M%z", "offset or zone"), ("%Y-%m-%dT%H:%M%Z", "offset or zone"),  # times are shop-local
    ("%H:%M", "whole date"), ("%j", "whole date"), ("%d/%m", "whole date"),  # strptime would say 1900
    ("%Y-%m-%Q", "%Q"), ("%Y-%m-%d %", "lone %"),
])
def test_a_date_format_that_cannot_give_a_shop_local_date_is_a_usage_error(shop, tmp_path, fmt, says):
    text = "purchase_id,member_id,purchased_at,amount\nP1,A,10:30,1.00\n"
    for command in ("purchases", "members"):
        result = run(shop, command, "import", write(tmp_path, text), "--date-format", fmt)
        assert result.exit_code == 2 and says in one_error_line(result)
    result = run(shop, "purchases", "import", write(tmp_path, text), env={"LOYALTY_DATE_FORMAT": fmt})
    assert result.exit_code == 2
    assert count(shop, "purchases") == 0


@pytest.mark.parametrize("delimiter", ["\n", "\r", '"', ";;"])
def test_a_delimiter_that_cannot_split_cells_is_a_usage_error(shop, tmp_path, delimiter):
    result = run(shop, "purchases", "import", write(tmp_path, HEADER + "P1,A,2025-03-01,1.00,,,\n"), "--delimiter", delimiter)
    assert result.exit_code == 2 and "--delimiter" in one_error_line(result)


def test_map_giving_two_fields_one_column_is_a_usage_error(shop, tmp_path):
    path = write(tmp_path, "purchase_id,member_id,purchased_at,amount\nX1,A,2025-03-01,1.00\n")
    result = run(shop, "purchases", "import", path, "--map", "purchase_id=member_id")
    assert result.exit_code == 2 and "both read column 'member_id'" in one_error_line(result)
    assert count(shop, "purchases") == 0


def test_decimal_comma_also_takes_plain_amounts(shop, tmp_path):
    text = "purchase_id;member_id;purchased_at;amount\nP1;A;2025-03-01;12.50\nP2;A;2025-03-01;1.234,50\nP3;A;2025-03-01;2,5\n"
    code, doc = import_json(shop, write(tmp_path, text), "--delimiter", ";", "--decimal-comma")
    assert code == 0, doc
    assert [(p.purchase_id, p.amount) for p in purchases(shop)] == [
        ("P1", 1250), ("P2", 123450), ("P3", 250)]


def test_rows_of_empty_cells_are_skipped_like_blank_lines(shop, tmp_path):
    text = HEADER + "P1,A,2025-03-01,1.00,,,\n,,,,,,\n , ,,,,,\n\nP2,A,2025-03-02,2.00,,,\n"
    code, doc = import_json(shop, write(tmp_path, text))
    assert (code, doc["rows"], doc["imported"]) == (0, 2, 2)


def test_a_bad_byte_is_reported_on_its_own_line(shop, tmp_path):
    lines = [HEADER.strip()] + [f"P{i},A,2025-03-01,1.00,,," for i in range(3000)]
    lines[2500] = "P2499x,A,2025-03-01,1.00,caf\xe9,,"  # line 2501, written as latin-1 below
    path = tmp_path / "latin.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    code, doc = import_json(shop, path)
    assert code == 3
    assert doc["errors"][-1]["line"] == 2501
    assert "--encoding" in doc["errors"][-1]["message"]


def test_an_unwritable_rejects_file_is_a_usage_error(shop, tmp_path):
    (tmp_path / "afile").write_text("")
    result = run(shop, "purchases", "import", write(tmp_path, MIXED), "--skip-bad", "--rejects", tmp_path / "afile" / "r.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot write --rejects") and "Traceback" not in result.output
    assert count(shop, "purchases") == 0


def test_a_sale_earning_absurd_points_is_a_bad_row(shop, tmp_path):
    ok(shop, "program", "set", "earn.points_per_unit", "100000000000")
    code, doc = import_json(shop, write(tmp_path, HEADER + "P1,A,2025-03-01,9999999999.99,,,\n"))
    assert code == 3
    assert "more than" in doc["errors"][0]["message"]
    assert count(shop, "ledger", kind="earn") == 0


def test_create_members_joins_on_the_earliest_sale_of_an_unsorted_file(shop, tmp_path):
    ok(shop, "program", "set", "earn.signup_bonus", "50")
    text = HEADER + "P2,Z,2025-03-09,20.00,,,\nP1,Z,2025-03-05T11:00,10.00,,,\n"
    code, doc = import_json(shop, write(tmp_path, text), "--create-members")
    assert (code, doc["members_created"]) == (0, 1)
    assert as_json(shop, "members", "show", "Z")["joined_on"] == "2025-03-05"
    assert [e.at for e in entries(shop, "Z", kind="signup")] == ["2025-03-05T00:00:00"]


def test_create_members_does_not_join_on_a_rejected_rows_date(shop, tmp_path):
    ok(shop, "purchases", "add", "A", "5.00", "--at", "2025-01-01", "--id", "P0")
    # P0 is already A's sale: this row conflicts and is skipped; Z joins on its first *imported* sale
    text = HEADER + "P0,Z,2025-02-01,5.00,,,\nP1,Z,2025-03-05,10.00,,,\n"
    code, doc = import_json(shop, write(tmp_path, text), "--create-members", "--skip-bad")
    assert (code, doc["imported"], doc["rejected"], doc["members_created"]) == (3, 1, 1, 1)
    assert as_json(shop, "members", "show", "Z")["joined_on"] == "2025-03-05"


def test_create_members_enrols_nobody_for_a_sale_that_is_then_rejected(shop, tmp_path):
    ok(shop, "program", "set", "earn.points_per_unit", "1000000000")
    text = HEADER + "P1,NEW1,2026-01-05,5000.00,,,\nP2,NEW2,2026-01-05,1.00,,,\n"
    code, doc = import_json(shop, write(tmp_path, text), "--create-members", "--skip-bad")
    assert (code, doc["rejected"], doc["members_created"]) == (3, 1, 1)
    assert [m.member_id for m in members(shop) if m.member_id.lower().startswith("new")] == ["NEW2"]


def test_a_file_refused_midway_reports_the_bad_rows_before_it_and_no_summary(shop, tmp_path):
    text = "purchase_id,member_id,purchased_at,amount\nA1,A,2026-02-01,1.00\nA2,A,2026-02-01,abc\nA3,A,2026-02-01,\"2.00\n"
    code, doc = import_json(shop, write(tmp_path, text))
    assert code == 3
    assert [e["line"] for e in doc["errors"]] == [3, 4]
    result = run(shop, "purchases", "import", write(tmp_path, text, "again.csv"), "--skip-bad")
    assert result.exit_code == 3 and "rows read" not in result.stderr  # nothing was imported
    assert count(shop, "purchases") == 0


@pytest.mark.parametrize("encoding", ["hex", "rot13", "no-such-codec"])
def test_an_encoding_that_is_not_for_text_is_a_usage_error(shop, tmp_path, encoding):
    result = run(shop, "purchases", "import", write(tmp_path, CLEAN), "--encoding", encoding)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --encoding")


def test_utf16_named_for_a_utf8_file_is_a_rejected_file(shop, tmp_path):
    code, doc = import_json(shop, write(tmp_path, CLEAN), "--encoding", "utf-16")
    assert code == 3 and "UTF-16" in doc["errors"][0]["message"].upper()


@pytest.mark.parametrize("target", [pytest.param("db", marks=pytest.mark.sqlite_only),  # the database as a file
                                    pytest.param("wal", marks=pytest.mark.sqlite_only), "input", "dir"])
def test_rejects_never_overwrites_the_database_or_the_file_being_imported(shop, tmp_path, target):
    ok(shop, "purchases", "add", "A", "5.00", "--at", "2025-02-01", "--id", "KEEP")
    csv_path = write(tmp_path, HEADER + "P1,A,2025-03-01,10.00,,,\nP2,A,2025-03-01,abc,,,\n")
    text_before, snap = csv_path.read_bytes(), snapshot(shop)
    rejects = {"db": shop, "wal": Path(f"{shop}-wal"), "input": csv_path, "dir": tmp_path}[target]
    for path in ([rejects, f"{rejects}/../{rejects.name}"] if target != "dir" else [rejects]):
        result = run(shop, "purchases", "import", csv_path, "--skip-bad", "--rejects", path)
        assert result.exit_code == 2, result.output
        assert one_error_line(result).startswith("Error: --rejects")
    assert csv_path.read_bytes() == text_before and snapshot(shop) == snap
    assert run(shop, "db", "check").exit_code == 0
    # the same for the members import
    members_csv = write(tmp_path, "member_id,name\nZ1,Zed\n", "members.csv")
    result = run(shop, "members", "import", members_csv, "--skip-bad", "--rejects", members_csv)
    assert result.exit_code == 2 and members_csv.read_text() == "member_id,name\nZ1,Zed\n"


def test_a_line_without_end_is_refused_before_it_fills_memory(shop, tmp_path):
    # csv alone would read the whole line first (a file of NULs from /dev/zero: gigabytes)
    path = tmp_path / "endless.csv"
    path.write_text(HEADER + "P1,A,2025-03-01,1.00,,,\n" + "x" * 3_000_000)
    code, doc = import_json(shop, path)
    assert code == 3 and doc["errors"] == [{"line": 3, "message": "a line is longer than 1,048,576 characters: "
                                                                   "not a till's CSV file"}]
    assert count(shop, "purchases") == 0
    path.write_text("member_id,name\nM1,Ann\n" + "x" * 3_000_000)  # the members import's reading too
    result = run(shop, "members", "import", path)
    assert result.exit_code == 3 and result.stderr.startswith(f"Error: {path}: line 3: a line is longer")


def test_utf16_and_bom_spellings(shop, tmp_path):
    body = "purchase_id,member_id,purchased_at,amount\nP1,A,2025-03-01,2.00\n"
    no_bom = tmp_path / "u16.csv"
    no_bom.write_bytes(body.encode("utf-16-le"))
    code, doc = import_json(shop, no_bom)
    assert code == 3 and "looks like UTF-16" in doc["errors"][0]["message"]
    assert import_json(shop, no_bom, "--encoding", "utf-16-le", "--dry-run")[0] == 0
    with_bom = tmp_path / "u16bom.csv"
    with_bom.write_bytes(b"\xff\xfe" + body.encode("utf-16-le"))
    assert import_json(shop, with_bom, "--encoding", "utf-16-le", "--dry-run")[0] == 0  # the codec keeps the BOM
    utf8_bom = write(tmp_path, "\ufeff" + body, "bom.csv")
    for spelling in ("U8", "UTF_8", "utf-8"):
        assert import_json(shop, utf8_bom, "--encoding", spelling, "--dry-run")[0] == 0
    assert run(shop, "purchases", "import", "").exit_code == 3


def test_create_members_joins_on_the_earliest_sale_anywhere_in_the_file(shop, tmp_path):
    ok(shop, "program", "set", "earn.signup_bonus", "50")
    rows = ["X1,NEWM,2026-11-05,5.00,,,"] + [f"F{i},A,2026-11-01,1.00,,," for i in range(2500)]
    rows += ["X2,NEWM,2026-11-01T09:30,5.00,,,", "X3,NEWM,2026-10-01,1.00,,refund,X1"]  # a refund never counts
    code, doc = import_json(shop, write(tmp_path, HEADER + "\n".join(rows) + "\n"), "--create-members", "--skip-bad")
    assert (code, doc["members_created"], doc["rejected"]) == (3, 1, 1)  # the refund dated before its sale
    assert as_json(shop, "members", "show", "NEWM")["joined_on"] == "2026-11-01"
    assert [e.at for e in entries(shop, "NEWM", kind="signup")] == ["2026-11-01T00:00:00"]
    assert run(shop, "db", "check").exit_code == 0


def test_a_dash_reads_the_file_from_standard_input(shop, loyalty_proc):
    text = HEADER + "P2,NEWM,2025-03-09,20.00,,,\nP1,NEWM,2025-03-05,10.00,,,\n"
    result = loyalty_proc("--db", shop, "purchases", "import", "-", "--create-members", "--json", input=text)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported"] == 2
    assert as_json(shop, "members", "show", "NEWM")["joined_on"] == "2025-03-05"  # a pipe: joined within the block
    again = loyalty_proc("--db", shop, "purchases", "import", "-", "--json", input=text)
    assert json.loads(again.stdout)["duplicates"] == 2
    members = loyalty_proc("--db", shop, "members", "import", "-", input="member_id,name\nQ1,Quinn\n")
    assert members.returncode == 0 and as_json(shop, "members", "show", "Q1")["name"] == "Quinn"


def test_create_members_joins_alike_from_a_file_and_a_pipe(shop, tmp_path, loyalty_proc):
    # only sales the import keeps count: not a bad amount, not a bad category (the review's case)
    text = ("purchase_id,member_id,purchased_at,amount,category\nA1,M1,2024-01-05,abc,\nA2,M1,2024-03-01,10.00,\n"
            "A3,M2,2024-01-02,5.00,bad\x01cat\nA4,M2,2024-04-01,5.00,\n")
    code, _ = import_json(shop, write(tmp_path, text), "--create-members", "--skip-bad")
    assert code == 3
    joined = {m: as_json(shop, "members", "show", m)["joined_on"] for m in ("M1", "M2")}
    assert joined == {"M1": "2024-03-01", "M2": "2024-04-01"}
    piped = fresh_db(tmp_path / "piped.db")
    loyalty_proc("--db", piped, "purchases", "import", "-", "--create-members", "--skip-bad", input=text)
    assert {m: as_json(piped, "members", "show", m)["joined_on"] for m in ("M1", "M2")} == joined


def test_rejects_keep_numbers_as_they_were_and_neutralise_formulas(shop, tmp_path):
    import csv

    rejects = tmp_path / "rejects.csv"
    text = HEADER + "P1,A,2025-03-01,-3,,,\nP2,A,2025-03-01,=1+2,,,\nP3,A,2025-03-01,\"-2+3+cmd|' /C calc'!A0\",,,\n"
    code, _ = import_json(shop, write(tmp_path, text), "--skip-bad", "--rejects", rejects)
    assert code == 3
    amounts = [r[5] for r in list(csv.reader(rejects.open(encoding="utf-8")))[1:]]
    assert amounts == ["-3", "'=1+2", "'-2+3+cmd|' /C calc'!A0"]  # SPEC §9: numbers stay numbers
