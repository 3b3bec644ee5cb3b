"""`tiers.pooling = "household"` with a merged member, and `purchases explain` of a duplicate's sale
refunded after the merge (issues 19 and 20 together).

The programme: 1 point per 1.00, no signup bonus, Gold from 500.00 of combined household spend in
a rolling 12 months; points expire 12 months on at the month's end. Checked by hand:

    M4 (KEEP, in no household)  S4 150.00 on 2026-01-05 -> lot 150 expiring 2027-01-31
    FAM from 2026-01-01: M1 (head) and M3 (the duplicate)
    M1  S1 300.00 on 2026-01-10 -> lot 300 expiring 2027-01-31
    M3  S3 100.00 on 2026-01-15 -> lot 100 expiring 2027-01-31; FAM combined 400.00: Bronze
    2026-02-01  M3 merged into M4: M4 takes M3's place in FAM, M3's 100 points move to M4
                (combined now M1 300 + M4 150 = 450.00: each id's own purchases; still Bronze)
    2026-02-10  a sale naming M3, S5 60.00, is M4's: combined 510.00, M1 and M4 Gold on it
    2026-02-20  M4 redeems 300 from the pool: lots expiring 2027-01-31, oldest first:
                150 of M4's S4 lot, then 150 of M1's S1 lot
    2026-03-05  S3 refunded 40.00: 40 points back from M4 (from the lot M3's points moved to: 60 left)
"""

from __future__ import annotations

import pytest

from tests.db import raw
from tests.helpers import as_json, fresh_db, ok, run

pytestmark = pytest.mark.any_backend

RULES = """
[earn]
points_per_unit = "1"
signup_bonus = 0
first_purchase_multiplier = "1"
[expiry]
months = 12
round_to = "month_end"
[tiers]
basis = "spend"
window = "rolling_12m"
hold_months = 12
pooling = "household"
levels = [
  { name = "Bronze", min = "0", multiplier = "1" },
  { name = "Gold", min = "500", multiplier = "1" },
]
"""


@pytest.fixture
def db(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    (tmp_path / "rules.toml").write_text(RULES)
    ok(db, "-q", "program", "load", tmp_path / "rules.toml")
    for mid in ("M1", "M3", "M4"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "-q", "households", "create", "FAM", "--head", "M1", "--at", "2026-01-01T09:00")
    ok(db, "-q", "households", "add", "FAM", "M3", "--at", "2026-01-01T09:00")
    ok(db, "-q", "purchases", "add", "M4", "150.00", "--id", "S4", "--at", "2026-01-05T10:00")
    ok(db, "-q", "purchases", "add", "M1", "300.00", "--id", "S1", "--at", "2026-01-10T10:00")
    ok(db, "-q", "purchases", "add", "M3", "100.00", "--id", "S3", "--at", "2026-01-15T10:00")
    return db


def tiers(db):
    return dict(raw(db, "SELECT member_id, tier FROM members ORDER BY member_id"))


def test_a_merged_member_pools_as_the_member_kept(db):
    assert tiers(db) == {"M1": "Bronze", "M3": "Bronze", "M4": "Bronze"}
    ok(db, "-q", "members", "merge", "M3", "--into", "M4", "--at", "2026-02-01T10:00", "--yes")
    fam = as_json(db, "households", "show", "FAM", "--as-of", "2026-02-01")
    assert [m["member_id"] for m in fam["members"]] == ["M1", "M4"]
    assert (fam["pool"], fam["combined_in_window"], fam["qualifies_for"]) == (550, "450.00", "Bronze")
    ok(db, "-q", "purchases", "add", "M3", "60.00", "--id", "S5", "--at", "2026-02-10T10:00")
    assert raw(db, "SELECT member_id FROM purchases WHERE purchase_id = 'S5'") == [("M4",)]
    assert tiers(db) == {"M1": "Gold", "M3": "Bronze", "M4": "Gold"}
    assert raw(db, "SELECT member_id, ref FROM tier_changes WHERE to_tier = 'Gold' ORDER BY member_id") == \
        [("M1", "S5"), ("M4", "S5")]
    recalc = as_json(db, "tiers", "recalc", "--as-of", "2026-03-01")
    assert recalc["changes"] == []  # recalc agrees, and never judges the alias M3
    redeemed = as_json(db, "points", "redeem", "M4", "300", "--household", "--at", "2026-02-20T10:00")
    assert [(e["member_id"], e["points"]) for e in redeemed["entries"]] == [("M4", 150), ("M1", 150)]
    assert redeemed["pool"] == 610 - 300
    assert run(db, "db", "check", "--full").exit_code == 0


def test_explain_shows_a_duplicates_sale_refunded_after_the_merge_reversing_from_the_member_kept(db):
    ok(db, "-q", "members", "merge", "M3", "--into", "M4", "--at", "2026-02-01T10:00", "--yes")
    ok(db, "-q", "purchases", "refund", "S3", "40.00", "--id", "R3", "--at", "2026-03-05T10:00")
    doc = as_json(db, "purchases", "explain", "R3")
    assert (doc["purchase_id"], doc["asked_for"], doc["member_id"]) == ("S3", "R3", "M3")
    assert doc["merged"] == {"into": "M4", "at": "2026-02-01T10:00:00"}
    assert doc["agrees"] is True and doc["points"] == 100
    assert [(lot["member_id"], lot["points"], lot["remaining"], lot["returned"]) for lot in doc["lots"]] == \
        [("M3", 100, 0, None), ("M4", 100, 60, "merge")]
    (refund,) = doc["refunds"]
    assert (refund["refund_id"], refund["member_id"], refund["points_reversed"]) == ("R3", "M4", 40)
    assert raw(db, "SELECT member_id, points FROM ledger WHERE kind = 'reversal'") == [("M4", -40)]
    text = ok(db, "purchases", "explain", "S3").stdout
    assert "merged       M3 was merged into M4 on 2026-02-01: its points moved there, and" in text
    assert "lot          lot 4: 100 points, expires 2027-01-31 (moved to M4 by the merge);" in text
    assert "refund       R3 on 2026-03-05, 40.00 (refunded so far 40.00): reversed 40 from" in text
    assert "returned by cancelled voucher" not in text
    assert run(db, "db", "check", "--full").exit_code == 0
