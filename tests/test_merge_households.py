"""Where households meet `members merge` (issues 19 and 20): household membership follows a merge,
`members export` holds the household section, and a merged pair is one customer for the
first-purchase multiplier.

The shop runs the default programme (1 point per 1.00). Members M1..M5 joined 2025-01-01; the
household FAM is created on 2025-04-01 with M2 (the duplicate in every case) as its head.
Merges are dated 2026-03-01T10:00.
"""

from __future__ import annotations

import pytest

from tests.db import raw
from tests.helpers import as_json, fresh_db, ok, one_error_line, run

pytestmark = pytest.mark.any_backend

MERGE_AT = "2026-03-01T10:00:00"


def shop(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    for mid in ("M1", "M2", "M3", "M4", "M5"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "-q", "households", "create", "FAM", "--head", "M2", "--at", "2025-04-01T09:00")
    return db


def merge(db, dup="M2", keep="M1"):
    return as_json(db, "members", "merge", dup, "--into", keep, "--at", MERGE_AT, "--yes")


def household(db, name="FAM"):
    doc = as_json(db, "households", "show", name, "--as-of", "2026-03-02")
    return doc["head"], [m["member_id"] for m in doc["members"]], doc


def check_passes(db):
    result = run(db, "db", "check", "--full")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_keep_in_no_household_takes_the_duplicates_place_and_its_head(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "add", "FAM", "M3", "--at", "2025-05-01T09:00")
    r = merge(db)
    assert r["household"] == {"name": "FAM", "left": "M2", "joined": "M1", "head": "M1", "closed": False}
    head, members, doc = household(db)
    assert (head, members) == ("M1", ["M1", "M3"])
    assert [(h["member_id"], h["joined_at"], h["left_at"]) for h in doc["history"]] == [
        ("M2", "2025-04-01T09:00:00", MERGE_AT), ("M3", "2025-05-01T09:00:00", None), ("M1", MERGE_AT, None)]
    # the day before the merge the household was still M2's
    before = as_json(db, "households", "show", "FAM", "--as-of", "2026-02-28")
    assert [m["member_id"] for m in before["members"]] == ["M2", "M3"]
    check_passes(db)


def test_both_in_the_same_household_the_duplicate_leaves_and_keep_becomes_head(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "add", "FAM", "M1", "--at", "2025-05-01T09:00")
    r = merge(db)
    assert r["household"] == {"name": "FAM", "left": "M2", "joined": None, "head": "M1", "closed": False}
    assert household(db)[:2] == ("M1", ["M1"])
    check_passes(db)


def test_keep_in_another_household_the_head_passes_to_the_longest_standing_member(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "add", "FAM", "M4", "--at", "2025-05-01T09:00")  # longest-standing after M2
    ok(db, "-q", "households", "add", "FAM", "M3", "--at", "2025-06-01T09:00")
    ok(db, "-q", "households", "create", "OTHER", "--head", "M1", "--at", "2025-04-01T09:00")
    r = merge(db)
    assert r["household"] == {"name": "FAM", "left": "M2", "joined": None, "head": "M4", "closed": False}
    assert household(db)[:2] == ("M4", ["M3", "M4"])
    assert household(db, "OTHER")[:2] == ("M1", ["M1"])  # KEEP stays where they were
    check_passes(db)


def test_keep_in_another_household_a_duplicate_alone_closes_its_household(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "create", "OTHER", "--head", "M1", "--at", "2025-04-01T09:00")
    r = merge(db)
    assert r["household"]["closed"] is True
    head, members, doc = household(db)
    assert members == [] and doc["closed_at"] == MERGE_AT
    refused = run(db, "households", "add", "FAM", "M5")
    assert refused.exit_code == 1 and "closed" in one_error_line(refused)
    check_passes(db)


def test_the_merge_summary_says_what_happened_to_the_household(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "add", "FAM", "M3", "--at", "2025-05-01T09:00")
    result = run(db, "members", "merge", "M2", "--into", "M1", "--at", MERGE_AT, "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("; M1 takes M2's place in household FAM (head M1)")
    ok(db, "-q", "households", "create", "OTHER", "--head", "M4", "--at", "2025-04-01T09:00")
    result = run(db, "members", "merge", "M4", "--into", "M1", "--at", MERGE_AT, "--yes")
    assert result.stdout.strip().endswith("; M4 left household OTHER, which closed")


def test_a_duplicate_in_no_household_changes_no_household(tmp_path):
    db = shop(tmp_path)
    r = merge(db, "M3", "M1")
    assert r["household"] is None
    assert household(db)[:2] == ("M2", ["M2"])
    check_passes(db)


def test_a_merge_dated_before_a_pooled_redemption_that_spent_the_duplicates_points_is_refused(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "add", "FAM", "M3", "--at", "2025-05-01T09:00")
    ok(db, "-q", "points", "award", "M2", "100", "--reason", "welcome", "--at", "2025-05-02T09:00")
    ok(db, "-q", "points", "redeem", "M3", "60", "--household", "--at", "2026-03-05T09:00")
    result = run(db, "members", "merge", "M2", "--into", "M1", "--at", MERGE_AT, "--yes")
    assert result.exit_code == 1
    assert one_error_line(result) == ("Error: household FAM's redemption at 2026-03-05T09:00:00 spent points of "
                                      "M2's; merge M2 after it, not at 2026-03-01T10:00:00")
    assert raw(db, "SELECT count(*) FROM member_merges")[0][0] == 0
    assert household(db)[:2] == ("M2", ["M2", "M3"])
    check_passes(db)


def test_members_export_holds_current_and_past_household_memberships(tmp_path):
    db = shop(tmp_path)
    ok(db, "-q", "households", "add", "FAM", "M3", "--at", "2025-05-01T09:00")
    merge(db)
    kept = as_json(db, "members", "export", "M1")
    assert kept["household"] == [{"household": "FAM", "joined_at": MERGE_AT, "left_at": None, "head": True}]
    dup = as_json(db, "members", "export", "M2")
    assert dup["household"] == [{"household": "FAM", "joined_at": "2025-04-01T09:00:00", "left_at": MERGE_AT,
                                 "head": False}]
    assert as_json(db, "members", "export", "M4")["household"] == []


FIRST = """
[earn]
points_per_unit = "1"
signup_bonus = 0
first_purchase_multiplier = "2"
"""


def test_keep_who_never_bought_earns_no_first_purchase_multiplier_after_the_duplicates_first_sale(tmp_path):
    """M2 bought 10.00 on its first sale: 20 points (x2). Merged into M1, who never bought: M1's
    10.00 sale earns 10 points, not 20 (one customer, one first purchase)."""
    db = fresh_db(tmp_path / "shop.db")
    (tmp_path / "p.toml").write_text(FIRST)
    ok(db, "-q", "program", "load", tmp_path / "p.toml")
    for mid in ("M1", "M2"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "-q", "purchases", "add", "M2", "10.00", "--id", "S1", "--at", "2026-01-10T10:00")
    merge(db)
    ok(db, "-q", "purchases", "add", "M1", "10.00", "--id", "S2", "--at", "2026-03-10T10:00")
    assert raw(db, "SELECT sum(points) FROM ledger WHERE ref = 'S2'")[0][0] == 10
    assert raw(db, "SELECT first_sale FROM members WHERE member_id = 'M1'")[0][0] == "S1"
    check_passes(db)
    assert run(db, "db", "check").exit_code == 0
