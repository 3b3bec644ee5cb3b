"""`members merge DUP --into KEEP` (issue 20): the same person enrolled twice.

The worked example, checked by hand (1 point per 1.00, lots expire 12 months on at the month's end,
Gold from 500.00 spent in a rolling year):

    M2 (the duplicate)  S1 100.00 on 2025-10-15 -> lot of 100 expiring 2026-10-31
                        S2 300.00 on 2026-02-10 -> lot of 300 expiring 2027-02-28
                        S3 200.00 on 2026-06-20 -> lot of 200 expiring 2027-06-30 (and Gold: 600.00 in the year)
                        redeems 50 on 2026-07-01 -> from the S1 lot (earliest expiry): 50 left there
    M1 (kept)           S4  50.00 on 2026-03-01 -> lot of 50 expiring 2027-03-31 (Bronze)

    merge on 2026-11-15: the 50 left of S1's lot lapsed on 2026-10-31 and are written off on M2 first;
    the 300 and the 200 move to M1 with their dates (merge_out -500 on M2, merge_in +500 on M1):
    M1 holds 50 + 300 + 200 = 550, M2 0; M1 is Gold (M2's tier) until the next recalc.
    refund of S2 on 2026-11-20: its 300 points come back from M1, from the lot S2's points moved to: 250.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import db as dbr
from tests.helpers import as_json, fresh_db, ok, one_error_line, run

pytestmark = pytest.mark.any_backend  # every database made with fresh_db

RULES = """
[earn]
points_per_unit = "1"
signup_bonus = 0
referral_bonus = 100
first_purchase_multiplier = "1"
[expiry]
months = 12
round_to = "month_end"
[tiers]
basis = "spend"
window = "rolling_12m"
hold_months = 12
levels = [
  { name = "Bronze", min = "0", multiplier = "1" },
  { name = "Gold", min = "500", multiplier = "1" },
]
"""


def shop(tmp_path, name="shop.db"):
    db = fresh_db(tmp_path / name)
    toml = tmp_path / f"{name}.toml"
    toml.write_text(RULES)
    ok(db, "program", "load", toml)
    for mid, who in (("M1", "Kept"), ("M2", "Duplicate")):
        ok(db, "members", "add", "--name", who, "--id", mid, "--joined", "2025-01-01")
    return db


def worked_example(tmp_path, name="shop.db"):
    db = shop(tmp_path, name)
    ok(db, "purchases", "add", "M2", "100.00", "--id", "S1", "--at", "2025-10-15T10:00")
    ok(db, "purchases", "add", "M2", "300.00", "--id", "S2", "--at", "2026-02-10T10:00")
    ok(db, "purchases", "add", "M2", "200.00", "--id", "S3", "--at", "2026-06-20T10:00")
    ok(db, "points", "redeem", "M2", "50", "--at", "2026-07-01T10:00")
    ok(db, "purchases", "add", "M1", "50.00", "--id", "S4", "--at", "2026-03-01T10:00")
    return db


def check_passes(db):
    result = run(db, "db", "check")
    assert result.exit_code == 0, result.stdout + result.stderr


def open_lots(db, member_id):
    return sorted((lot.expires_on, lot.remaining, lot.purchase_id) for lot in dbr.lots(db, member_id) if lot.remaining)


def test_merging_moves_exactly_the_remaining_lots_with_their_dates(tmp_path):
    db = worked_example(tmp_path)
    assert dbr.balance(db, "M2") == 550 and dbr.member(db, "M2").tier == "Gold"
    assert dbr.balance(db, "M1") == 50 and dbr.member(db, "M1").tier == "Bronze"
    r = ok(db, "members", "merge", "M2", "--into", "M1", "--at", "2026-11-15T10:00", "--yes")
    assert r.stdout == "merged M2 into M1: 500 points moved in 2 lots (balance 550); tier Bronze → Gold\n"
    assert open_lots(db, "M1") == [("2027-02-28", 300, "S2"), ("2027-03-31", 50, "S4"), ("2027-06-30", 200, "S3")]
    assert open_lots(db, "M2") == []
    assert (dbr.balance(db, "M1"), dbr.balance(db, "M2")) == (550, 0)
    # The lapsed 50 were written off on M2 (never moved); then one entry on each side.
    assert [(e.kind, e.points) for e in dbr.entries(db, "M2")][-2:] == [("expire", -50), ("merge_out", -500)]
    assert [(e.kind, e.points, e.ref) for e in dbr.entries(db, "M1")][-1] == ("merge_in", 500, "M2")
    assert dbr.member(db, "M1").tier == "Gold" and dbr.tier_history(db, "M1")[-1].reason == "merge"
    assert dbr.member(db, "M2").merged_into == "M1"
    # M2's purchases stay in its history.
    assert {p.purchase_id for p in dbr.purchases(db, member_id="M2")} == {"S1", "S2", "S3"}
    check_passes(db)


def test_a_later_refund_of_a_duplicate_sale_reverses_from_the_member_kept(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "merge", "M2", "--into", "M1", "--at", "2026-11-15T10:00", "--yes")
    r = ok(db, "purchases", "refund", "S2", "--id", "R1", "--at", "2026-11-20T10:00")
    assert r.stdout == "R1: refunded 300.00 of S2; 300 points reversed (balance 250)\n"
    assert dbr.balance(db, "M1") == 250 and dbr.balance(db, "M2") == 0
    # From the lot S2's points moved to; the rest untouched.
    assert open_lots(db, "M1") == [("2027-03-31", 50, "S4"), ("2027-06-30", 200, "S3")]
    [refund] = dbr.purchases(db, purchase_id="R1")
    assert (refund.member_id, refund.refund_of, refund.points) == ("M1", "S2", 300)
    # A partial refund of S3 takes half of its 200 points back, from its moved lot.
    ok(db, "purchases", "refund", "S3", "100.00", "--id", "R2", "--at", "2026-11-21T10:00")
    assert open_lots(db, "M1") == [("2027-03-31", 50, "S4"), ("2027-06-30", 100, "S3")]
    check_passes(db)


def test_sales_and_imports_naming_the_duplicate_are_recorded_for_the_member_kept(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "merge", "m2", "--into", "m1", "--at", "2026-11-15T10:00", "--yes")
    r = ok(db, "purchases", "add", "M2", "10.00", "--id", "S5", "--at", "2026-11-21T10:00")
    assert r.stdout == "S5: 10 points to M1 (balance 560)\n"
    f = tmp_path / "till.csv"
    # S1 was recorded for M2 before the merge: importing the old file again is a duplicate, not a conflict.
    f.write_text("purchase_id,member_id,purchased_at,amount\n"
                 "S1,M2,2025-10-15T10:00,100.00\n"
                 "P6,m2,2026-11-22T10:00,20.00\n"
                 "P7,M1,2026-11-22T11:00,5.00\n")
    r = ok(db, "purchases", "import", f)
    assert r.stdout.startswith("3 rows read: 2 imported, 1 duplicate, 0 rejected; 25 points awarded")
    assert {p.purchase_id: p.member_id for p in dbr.purchases(db)} == {
        "S1": "M2", "S2": "M2", "S3": "M2", "S4": "M1", "S5": "M1", "P6": "M1", "P7": "M1"}
    assert dbr.balance(db, "M1") == 585 and dbr.balance(db, "M2") == 0
    # Other activity naming M2 lands on M1 too; its statement stays its own.
    ok(db, "points", "award", "M2", "15", "--reason", "goodwill", "--at", "2026-11-23T10:00")
    assert dbr.balance(db, "M1") == 600
    statement = as_json(db, "points", "history", "M2")
    assert [e["kind"] for e in statement][-2:] == ["expire", "merge_out"]
    check_passes(db)


def test_members_show_says_the_duplicate_is_an_alias(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "merge", "M2", "--into", "M1", "--at", "2026-11-15T10:00", "--yes")
    shown = ok(db, "members", "show", "M2").stdout
    assert "merged into      M1 on 2026-11-15: this id is an alias, its new activity is" in shown
    doc = as_json(db, "members", "show", "M2")
    assert (doc["merged_into"], doc["merged_at"], doc["balance"]) == ("M1", "2026-11-15T10:00:00", 0)
    kept = as_json(db, "members", "show", "M1")
    assert (kept["aliases"], kept["merged_into"], kept["balance"]) == (["M2"], None, 550)


def test_referrals_follow_and_the_tier_lasts_until_the_next_recalc(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "add", "--name", "Friend", "--id", "M3", "--joined", "2026-11-01", "--referred-by", "M2")
    r = as_json(db, "members", "merge", "M2", "--into", "M1", "--at", "2026-11-15T10:00", "--yes")
    assert r["referrals_moved"] == ["M3"] and dbr.member(db, "M3").referred_by == "M1"
    # M3's first sale pays the referral bonus (100) to M1, who referred them now.
    ok(db, "purchases", "add", "M3", "10.00", "--id", "S9", "--at", "2026-11-16T10:00")
    assert dbr.balance(db, "M1") == 650 and dbr.balance(db, "M2") == 0
    assert dbr.entries(db, "M1")[-1].kind == "referral"
    # Gold came from M2's spend: the next recalc judges M1's own (50.00 in the year) and takes it back.
    ok(db, "tiers", "recalc", "--as-of", "2026-12-01")
    assert dbr.member(db, "M1").tier == "Bronze"
    check_passes(db)


def test_refusals_write_nothing(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "add", "--name", "Gone", "--id", "M4", "--joined", "2025-01-01")
    ok(db, "members", "erase", "M4", "--yes")
    ok(db, "members", "add", "--name", "Third", "--id", "M5", "--joined", "2025-01-01")
    ok(db, "members", "merge", "M5", "--into", "M1", "--yes", "--at", "2026-11-01T10:00")
    blocks = dbr.count(db, "chain")
    cases = {
        ("M2", "M2"): "Error: member M2 cannot be merged into themself",
        ("m2", "M2"): "Error: member M2 cannot be merged into themself",
        ("M2", "M4"): "Error: member M4 (the member kept) was erased; an erased member is never merged",
        ("M4", "M2"): "Error: member M4 (the duplicate) was erased; an erased member is never merged",
        ("M2", "M5"): "Error: member M5 (the member kept) was already merged into M1: merge into M1 instead",
        ("M5", "M2"): "Error: member M5 (the duplicate) was already merged into M1: a member is merged once",
        ("M2", "M9"): "Error: member M9 not found",
    }
    for (dup, keep), message in cases.items():
        r = run(db, "members", "merge", dup, "--into", keep, "--yes", "--at", "2026-11-15T10:00")
        assert r.exit_code == 1, (dup, keep, r.stderr)
        assert one_error_line(r).startswith(message), (dup, keep, r.stderr)
    assert dbr.count(db, "chain") == blocks and dbr.member(db, "M2").merged_into is None
    # Not on a terminal, --yes is needed (exit 2); a date after today needs --allow-future.
    r = run(db, "members", "merge", "M2", "--into", "M1")
    assert r.exit_code == 2 and one_error_line(r) == "Error: merging members needs --yes (it cannot be undone)"
    r = run(db, "members", "merge", "M2", "--into", "M1", "--yes", "--at", "2999-01-01")
    assert r.exit_code == 2 and "--allow-future" in one_error_line(r)
    assert dbr.count(db, "chain") == blocks
    check_passes(db)


def test_a_duplicate_below_zero_is_refused(tmp_path):
    db = shop(tmp_path)
    ok(db, "purchases", "add", "M2", "100.00", "--id", "S1", "--at", "2026-10-01T10:00")
    ok(db, "points", "redeem", "M2", "100", "--at", "2026-10-02T10:00")
    ok(db, "purchases", "refund", "S1", "--at", "2026-10-03T10:00")
    r = run(db, "members", "merge", "M2", "--into", "M1", "--yes", "--at", "2026-11-01T10:00")
    assert r.exit_code == 1
    assert one_error_line(r) == ("Error: member M2 is 100 points below zero (a refund took back points already "
                                 "spent): clear that first (loyalty points transfer M1 M2 100), then merge")


def test_pending_points_move_still_pending(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    toml = tmp_path / "p.toml"
    toml.write_text('[earn]\npoints_per_unit = "1"\nsignup_bonus = 0\npending_days = 14\n')
    ok(db, "program", "load", toml)
    for mid in ("M1", "M2"):
        ok(db, "members", "add", "--name", mid, "--id", mid, "--joined", "2026-01-01")
    ok(db, "purchases", "add", "M2", "80.00", "--id", "S1", "--at", "2026-11-01T10:00")
    ok(db, "members", "merge", "M2", "--into", "M1", "--yes", "--at", "2026-11-02T10:00")
    [lot] = [lot for lot in dbr.lots(db, "M1")]
    assert (lot.points, lot.available_on, lot.purchase_id) == (80, "2026-11-15", "S1")
    r = run(db, "points", "redeem", "M1", "80", "--at", "2026-11-03T10:00")
    assert r.exit_code == 1 and "8" in one_error_line(r)
    ok(db, "points", "redeem", "M1", "80", "--at", "2026-11-15T10:00")
    check_passes(db)


def test_db_check_fails_on_a_forged_merge(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "merge", "M2", "--into", "M1", "--at", "2026-11-15T10:00", "--yes")
    check_passes(db)
    # An alias written behind the tool's back (M1 made an alias of M2) is found.
    dbr.raw(db, "UPDATE members SET merged_into = 'M2' WHERE member_id = 'M1'")
    r = run(db, "db", "check", "--json")
    assert r.exit_code == 4
    messages = [p["message"] for p in json.loads(r.stdout)["problems"]]
    assert any("merged_into is 'M2' but the chain recorded NULL" in m for m in messages), messages
    dbr.raw(db, "UPDATE members SET merged_into = NULL WHERE member_id = 'M1'")
    check_passes(db)
    # A merge_in entry added behind the tool's back (points out of nowhere) is found.
    last = dbr.entries(db)[-1]
    dbr.raw(db, "INSERT INTO ledger (id, member_id, at, kind, points, ref, note, by, hash) "
                "VALUES (?, 'M1', '2026-11-16T10:00:00', 'merge_in', 1000, 'M2', NULL, NULL, ?)", last.id + 1, last.hash)
    r = run(db, "db", "check", "--json")
    assert r.exit_code == 4
    problems = json.loads(r.stdout)["problems"]
    assert {"check": "merges", "member_id": "M1",
            "message": f"entry {last.id + 1} (merge_in, 1,000 points) is not one of a recorded merge's"} in problems


@pytest.mark.sqlite_only  # lots edited with SQLite's own triggers off
def test_db_check_fails_when_a_moved_lot_does_not_match(tmp_path):
    db = worked_example(tmp_path)
    ok(db, "members", "merge", "M2", "--into", "M1", "--at", "2026-11-15T10:00", "--yes")
    [moved] = [lot for lot in dbr.lots(db, "M1") if lot.purchase_id == "S2"]
    with dbr.connect(db) as conn:
        conn.execute("DROP TRIGGER lots_no_update")
        conn.execute("UPDATE lots SET expires_on = '2030-12-31' WHERE id = ?", (moved.id,))
    r = run(db, "db", "check", "--json")
    messages = [p["message"] for p in json.loads(r.stdout)["problems"] if p["check"] == "merges"]
    assert messages == [f"merge 1 (M2 into M1): the lots entry {moved.entry_id} made (300 to 2030-12-31, 200 to "
                        f"2027-06-30) are not the lots entry {moved.entry_id - 1} took (300 to 2027-02-28, 200 to "
                        "2027-06-30)"]


# -- the property --------------------------------------------------------------------------------
MEMBERS = ("A", "B", "C", "D")
operations = st.lists(st.one_of(
    st.tuples(st.just("sale"), st.sampled_from(MEMBERS), st.integers(1, 500)),
    st.tuples(st.just("redeem"), st.sampled_from(MEMBERS), st.integers(1, 300)),
    st.tuples(st.just("merge"), st.sampled_from(MEMBERS), st.sampled_from(MEMBERS)),
), min_size=1, max_size=12)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=operations)
def test_merges_conserve_points_and_no_lot_goes_below_zero(tmp_path_factory, ops):
    tmp_path = tmp_path_factory.mktemp("prop")
    db = fresh_db(tmp_path / "shop.db")
    for mid in MEMBERS:
        ok(db, "members", "add", "--name", mid, "--id", mid, "--joined", "2026-01-01")
    merged: dict[str, str] = {}
    sale = 0
    for day, (kind, a, b) in enumerate(ops, 1):
        at = f"2026-03-{day:02d}T10:00"
        if kind == "sale":
            sale += 1
            ok(db, "purchases", "add", a, f"{b}.00", "--id", f"S{sale}", "--at", at)
        elif kind == "redeem":
            r = run(db, "points", "redeem", a, b, "--at", at)
            assert r.exit_code in (0, 1), r.stderr
        else:
            total = sum(dbr.balance(db, m) for m in MEMBERS)
            kept_before = dbr.balance(db, merged.get(b, b))
            moved = dbr.balance(db, a)
            r = run(db, "members", "merge", a, "--into", b, "--yes", "--at", at)
            if a == b or a in merged or b in merged:
                assert r.exit_code == 1, r.stderr
                continue
            assert r.exit_code == 0, r.stderr
            merged[a] = b
            for dup, kept in list(merged.items()):
                if kept == a:
                    merged[dup] = b
            assert sum(dbr.balance(db, m) for m in MEMBERS) == total  # conserved exactly
            assert dbr.balance(db, a) == 0 and dbr.balance(db, b) == kept_before + moved
    assert all(0 <= lot.remaining <= lot.points for lot in dbr.lots(db))
    assert sum(dbr.balance(db, m) for m in MEMBERS) == sum(e.points for e in dbr.entries(db))
    for dup, kept in merged.items():
        assert dbr.member(db, dup).merged_into == kept
    check_passes(db)
