"""A purchases import whose refunds name sales a few rows earlier, still in the import's buffer: the
sale's facts, its refunds so far, its own lot and what expiry took of it are answered from the
buffer (ledger.Book.unwritten_*), with no flush and no round trip to a database server, and with
the results the database would give. Every test runs on both backends with the same expectations.

The worked file (1 point per 1.00, no bonuses, points expire 12 months on at the month's end):

    S1 M1 2025-01-10 100.00   +100 (lot expiring 2026-01-31)
    R1 M1 2025-01-11  40.00   refund of S1: -40
    S2 M1 2025-02-01  50.00   +50
    R2 M1 2025-02-02  50.00   refund of S2 (all of it): -50           M1: 60
    S3 M2 2025-03-01  30.00   +30
    R3 M2 2025-03-01  10.00   refund of S3: -10
    R4 M2 2025-03-02  20.00   refund of the rest of S3: -20          M2: 0
    R5 M2 2025-03-03   5.00   refused: larger than what is left of S3 (0.00 left to refund)
    S4 M3 2025-01-05  80.00   +80 (lot expiring 2026-01-31)
    S5 M3 2026-03-01  20.00   +20
    R6 M3 2026-03-02  80.00   refund of S4: its 80 points lapsed on 2026-01-31 and are written off
                              first (-80 expire); expiry took them all, so the refund reverses 0   M3: 20
"""

from __future__ import annotations

import json

import pytest

from tests import db as dbr
from tests.helpers import as_json, count_statements, fresh_db, ok, run

pytestmark = pytest.mark.any_backend  # every database made with fresh_db

RULES = """
[earn]
points_per_unit = "1"
signup_bonus = 0
referral_bonus = 0
first_purchase_multiplier = "1"
[expiry]
months = 12
round_to = "month_end"
[tiers]
basis = "spend"
window = "rolling_12m"
hold_months = 12
levels = [{ name = "Bronze", min = "0", multiplier = "1" }]
"""
HEADER = "purchase_id,member_id,purchased_at,amount,category,kind,refund_of\n"
WORKED = (HEADER
          + "S1,M1,2025-01-10T10:00,100.00,,sale,\n"
          + "R1,M1,2025-01-11T10:00,40.00,,refund,S1\n"
          + "S2,M1,2025-02-01T10:00,50.00,,sale,\n"
          + "R2,M1,2025-02-02T10:00,50.00,,refund,S2\n"
          + "S3,M2,2025-03-01T10:00,30.00,,sale,\n"
          + "R3,M2,2025-03-01T11:00,10.00,,refund,S3\n"
          + "R4,M2,2025-03-02T10:00,20.00,,refund,S3\n"
          + "R5,M2,2025-03-03T10:00,5.00,,refund,S3\n"
          + "S4,M3,2025-01-05T10:00,80.00,,sale,\n"
          + "S5,M3,2026-03-01T10:00,20.00,,sale,\n"
          + "R6,M3,2026-03-02T10:00,80.00,,refund,S4\n")


def shop(tmp_path, members=("M1", "M2", "M3")):
    tmp_path.mkdir(exist_ok=True)
    db = fresh_db(tmp_path / "shop.db")
    toml = tmp_path / "program.toml"
    toml.write_text(RULES)
    ok(db, "program", "load", toml, "--from", "2024-01-01")
    for mid in members:
        ok(db, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2024-06-01")
    return db


def test_refunds_of_sales_in_the_buffer_reverse_what_the_database_would(tmp_path):
    db = shop(tmp_path)
    path = tmp_path / "day.csv"
    path.write_text(WORKED)
    result = run(db, "purchases", "import", path, "--skip-bad", "--json")
    assert result.exit_code == 3, result.stderr
    assert json.loads(result.stdout) == {
        "rows": 11, "imported": 10, "duplicates": 0, "rejected": 1, "points_awarded": 280, "points_reversed": 120,
        "members_created": 0,
        "errors": [{"line": 9, "message": "refund R5 is larger than what is left of S3 (0.00 left to refund)"}]}
    assert [dbr.balance(db, m) for m in ("M1", "M2", "M3")] == [60, 0, 20]
    assert [(e.kind, e.points, e.ref) for e in dbr.entries(db, "M3")] == [
        ("earn", 80, "S4"), ("earn", 20, "S5"), ("expire", -80, None)]
    assert [(p.purchase_id, p.points) for p in dbr.purchases(db, kind="refund")] == [
        ("R1", 40), ("R2", 50), ("R3", 10), ("R4", 20), ("R6", 0)]
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr


def test_the_same_file_in_one_import_or_row_by_row_at_the_counter_gives_the_same_ledger(tmp_path):
    db = shop(tmp_path)
    path = tmp_path / "day.csv"
    path.write_text(WORKED)
    run(db, "purchases", "import", path, "--skip-bad")
    other = shop(tmp_path / "counter")
    for line in WORKED.splitlines()[1:]:
        pid, mid, at, amount, __, kind, refund_of = line.split(",")
        if kind == "sale":
            ok(other, "purchases", "add", mid, amount, "--id", pid, "--at", at)
        elif pid != "R5":
            ok(other, "purchases", "refund", refund_of, amount, "--id", pid, "--at", at)
    ledger = [(e.member_id, e.at, e.kind, e.points, e.ref) for e in dbr.entries(db)]
    assert ledger == [(e.member_id, e.at, e.kind, e.points, e.ref) for e in dbr.entries(other)]
    assert sorted((lot.member_id, lot.points, lot.remaining) for lot in dbr.lots(db)) == \
        sorted((lot.member_id, lot.points, lot.remaining) for lot in dbr.lots(other))


def test_a_refund_after_each_sale_costs_no_flush(tmp_path):
    members = [f"M{i:03d}" for i in range(200)]
    db = shop(tmp_path, members)
    lines = [HEADER.strip()]
    for i, mid in enumerate(members):
        lines.append(f"S{i},{mid},2025-05-01T10:{i % 60:02d},{10 + i}.00,,sale,")
        lines.append(f"R{i},{mid},2025-05-02T10:{i % 60:02d},5.00,,refund,S{i}")
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as patches:
        sent = count_statements(patches)
        summary = as_json(db, "purchases", "import", path)
    assert (summary["imported"], summary["points_reversed"]) == (400, 1000)
    assert dbr.balance(db, "M000") == 5 and dbr.balance(db, "M199") == 204
    # Each refund flushed the buffer and read the sale back: about ten statements a refund (2,000
    # and more); then one a refund, for the member's lapsed lots; now a few for the whole chunk.
    assert len(sent) < 100, len(sent)
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr


def test_refunds_of_recorded_sales_while_the_member_has_buffered_rows(tmp_path):
    """The sale is in the database, the member's newer sale in the buffer: the refund reads the sale's
    lots as the buffer left them, and counts a write-off still in the buffer as expiry's share."""
    db = shop(tmp_path, ("M4", "M5"))
    first = tmp_path / "january.csv"
    first.write_text(HEADER + "S6,M4,2025-01-05T10:00,80.00,,sale,\nS8,M5,2025-05-01T10:00,100.00,,sale,\n")
    ok(db, "purchases", "import", first)
    later = tmp_path / "later.csv"
    later.write_text(HEADER
                     + "S9,M5,2025-06-01T10:00,10.00,,sale,\n"      # M5 has buffered rows: +10
                     + "R8,M5,2025-06-02T10:00,30.00,,refund,S8\n"  # -30 from S8's lot (in the database)
                     + "S7,M4,2026-03-01T10:00,20.00,,sale,\n"      # M4: +20
                     + "R7,M4,2026-03-02T10:00,80.00,,refund,S6\n")  # S6's 80 lapsed: written off, 0 reversed
    summary = as_json(db, "purchases", "import", later)
    assert (summary["imported"], summary["points_reversed"]) == (4, 30)
    assert [dbr.balance(db, m) for m in ("M4", "M5")] == [20, 80]
    assert [(e.kind, e.points, e.ref) for e in dbr.entries(db, "M4")] == [
        ("earn", 80, "S6"), ("earn", 20, "S7"), ("expire", -80, None)]
    assert sorted((lot.purchase_id, lot.remaining) for lot in dbr.lots(db, "M5")) == [("S8", 70), ("S9", 10)]
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr


def test_refunds_of_sales_recorded_earlier_are_read_a_chunk_at_a_time(tmp_path):
    """A day's refunds of sales imported before: each sale's facts, refunds so far, own lots and
    expired points are read for the whole chunk at once (ledger.Book.prefetch_sales), with the
    answers the database would give row by row: a second refund of the same sale in the same file
    sees the first, a refund of a sale whose points lapsed reverses nothing, a refund of a sale
    never recorded is refused."""
    members = [f"M{i:03d}" for i in range(200)]
    db = shop(tmp_path, members)
    sales = tmp_path / "sales.csv"
    sales.write_text(HEADER + "".join(f"S{i},{mid},2025-05-01T10:{i % 60:02d},{10 + i}.00,,sale,\n"
                                      for i, mid in enumerate(members))
                     + "S900,M001,2025-01-05T10:00,80.00,,sale,\n")  # its 80 points lapse on 2026-01-31
    ok(db, "purchases", "import", sales)
    refunds = tmp_path / "refunds.csv"
    refunds.write_text(HEADER + "".join(f"R{i},{mid},2025-05-02T10:{i % 60:02d},5.00,,refund,S{i}\n"
                                        for i, mid in enumerate(members))
                       + "R900,M000,2025-05-03T10:00,2.00,,refund,S0\n"     # S0's second refund: 10.00 - 5 - 2
                       + "R901,M000,2025-05-03T11:00,4.00,,refund,S0\n"     # 3.00 left: refused
                       + "R902,M002,2025-05-03T10:00,1.00,,refund,NOPE\n"   # never recorded: refused
                       + "R903,M001,2026-03-02T10:00,80.00,,refund,S900\n")  # lapsed: 80 written off, 0 reversed
    with pytest.MonkeyPatch.context() as patches:
        sent = count_statements(patches)
        result = run(db, "purchases", "import", refunds, "--skip-bad", "--json")
    assert result.exit_code == 3, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["rejected"], summary["points_reversed"]) == (202, 2, 1002)
    assert [(e["line"], e["message"]) for e in summary["errors"]] == [
        (203, "refund R901 is larger than what is left of S0 (3.00 left to refund)"),
        (204, "refund R902 refunds purchase NOPE, which is not recorded")]
    assert [dbr.balance(db, m) for m in ("M000", "M001", "M199")] == [3, 6, 204]
    assert [(e.kind, e.points, e.ref) for e in dbr.entries(db, "M001")][-2:] == [
        ("reversal", -5, "R1"), ("expire", -80, None)]
    # Read refund by refund it was five statements a refund (over 1,000 here): the sale, its
    # refunds, its lots, their expiry, the member's lapsed lots. Now they are read a chunk at a time.
    assert len(sent) < 100, len(sent)
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr
