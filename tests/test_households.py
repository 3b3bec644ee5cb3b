"""Households (issue 20, "1+N"): worked examples with numbers checked by hand.

The shop runs the default programme: 1 point per 1.00, points expire 12 months after their
credit at the month's end, Silver from 500.00 of spend in a rolling 12 months (x1.25).

The household LEE of the examples (awards dated 2025, so nothing has lapsed by July 2025):

    M1  300 points awarded 2025-01-10  -> one lot expiring 2026-01-31
    M3  400 points awarded 2025-02-10  -> one lot expiring 2026-02-28
    M2  100 points awarded 2025-03-10  -> one lot expiring 2026-03-31
    M4 1000 points awarded 2025-01-05  -> not in the household (an outsider)

A pooled redemption of 500 by M2 takes the lots earliest expiry first: all 300 of M1's, then
200 of M3's 400; M2's own lot (latest) is untouched. Pool after: 0 + 100 + 200 = 300.
"""

from __future__ import annotations

import json

import pytest

from tests.db import connect, count, entries, lots, raw, rows, tier_history
from tests.helpers import as_json, guards_dropped, ok, one_error_line, run


def check_ok(db):
    result = run(db, "db", "check", "--full")
    assert result.exit_code == 0, result.stderr
    assert "ok: every check passed" in result.stdout


def check_fails(db) -> str:
    result = run(db, "db", "check", "--full")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    return result.stderr


def refused(db, *args, code: int = 1) -> str:
    result = run(db, *args)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return one_error_line(result)


def family(db, with_lee: bool = True):
    """Members M1..M4 with the awards of the module's table; LEE = M1 (head), M2, M3 from 2025-06-01."""
    for mid in ("M1", "M2", "M3", "M4"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    for mid, points, at in (("M1", 300, "2025-01-10"), ("M3", 400, "2025-02-10"), ("M2", 100, "2025-03-10"),
                            ("M4", 1000, "2025-01-05")):
        ok(db, "-q", "points", "award", mid, points, "--reason", "welcome", "--at", at)
    if with_lee:
        ok(db, "households", "create", "LEE", "--head", "M1", "--at", "2025-06-01")
        ok(db, "households", "add", "LEE", "M2", "--at", "2025-06-01")
        ok(db, "households", "add", "lee", "M3", "--at", "2025-06-01")  # names match without regard to case


def lot_of(db, member_id):
    (lot,) = lots(db, member_id)
    return lot


# -- pooled redemption --------------------------------------------------------------------------
def test_a_household_of_three_redeems_500_from_two_members_lots_in_expiry_order(db):
    family(db)
    m1, m2, m3 = lot_of(db, "M1"), lot_of(db, "M2"), lot_of(db, "M3")
    assert (m1.expires_on, m3.expires_on, m2.expires_on) == ("2026-01-31", "2026-02-28", "2026-03-31")
    r = as_json(db, "points", "redeem", "M2", "500", "--household", "--at", "2025-07-01")
    redeems = entries(db, kind="redeem")
    assert [(e.member_id, e.points, e.note) for e in redeems] == [("M1", -300, "pooled by M2"),
                                                                  ("M3", -200, "pooled by M2")]
    first = redeems[0].id
    assert {e.ref for e in redeems} == {f"household:LEE:{first}"}  # one reference for the whole redemption
    assert r == {"member_id": "M2", "points": 500, "balance": 100, "voucher": None, "household": "LEE",
                 "ref": f"household:LEE:{first}", "pool": 300,
                 "entries": [{"member_id": "M1", "points": 300, "entry": first, "balance": 0},
                             {"member_id": "M3", "points": 200, "entry": redeems[1].id, "balance": 200}]}
    # exactly the lots, in expiry order; M2's own lot untouched
    assert [(u.entry_id, u.lot_id, u.points) for u in rows(db, "lot_uses")] == [(first, m1.id, 300),
                                                                                (redeems[1].id, m3.id, 200)]
    assert [lot_of(db, m).remaining for m in ("M1", "M2", "M3")] == [0, 100, 200]
    assert [as_json(db, "points", "balance", m)["balance"] for m in ("M1", "M2", "M3", "M4")] == [0, 100, 200, 1000]
    assert entries(db, "M2", "redeem") == []  # every member keeps their own ledger
    check_ok(db)


def test_lots_expiring_the_same_day_are_taken_oldest_credit_first_whoever_holds_them(db):
    for mid in ("A", "B"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", mid, "--joined", "2025-01-01")
    ok(db, "-q", "points", "award", "B", "100", "--reason", "x", "--at", "2025-01-05")  # lot 1, expires 2026-01-31
    ok(db, "-q", "points", "award", "A", "100", "--reason", "x", "--at", "2025-01-20")  # lot 2, expires 2026-01-31
    ok(db, "households", "create", "AB", "--head", "A", "--at", "2025-02-01")
    ok(db, "households", "add", "AB", "B", "--at", "2025-02-01")
    ok(db, "points", "redeem", "A", "150", "--household", "--at", "2025-03-01")
    assert [(e.member_id, e.points) for e in entries(db, kind="redeem")] == [("B", -100), ("A", -50)]
    assert [(lot.member_id, lot.remaining) for lot in lots(db)] == [("B", 0), ("A", 50)]
    check_ok(db)


def test_a_short_pool_is_refused_and_nothing_is_written(db):
    family(db)
    before = [count(db, t) for t in ("ledger", "lot_uses", "chain", "vouchers")], [lot.remaining for lot in lots(db)]
    line = refused(db, "points", "redeem", "M2", "900", "--household", "--at", "2025-07-01")
    assert line == "Error: household LEE has 800 points available (M1 300, M2 100, M3 400), not enough for 900"
    ok(db, "rewards", "add", "TV", "--name", "A television", "--cost", "801", "--stock", "1")
    before = [count(db, t) for t in ("ledger", "lot_uses", "chain", "vouchers")], [lot.remaining for lot in lots(db)]
    line = refused(db, "points", "redeem", "M2", "--reward", "TV", "--household", "--at", "2025-07-01")
    assert line.endswith("not enough for 801")
    assert ([count(db, t) for t in ("ledger", "lot_uses", "chain", "vouchers")],
            [lot.remaining for lot in lots(db)]) == before
    assert raw(db, "SELECT stock FROM rewards WHERE code = 'TV'") == [(1,)]
    check_ok(db)


def test_a_member_who_left_no_longer_contributes_and_keeps_their_own_lots(db):
    family(db)
    ok(db, "points", "redeem", "M2", "500", "--household", "--at", "2025-07-01")  # M1 -300, M3 -200
    # M3's points were used at 2025-07-01: they can leave after that, not before
    line = refused(db, "households", "remove", "LEE", "M3", "--at", "2025-06-15")
    assert "spent points of M3's" in line
    ok(db, "households", "remove", "LEE", "M3", "--at", "2025-08-01")
    assert as_json(db, "points", "balance", "M3")["balance"] == 200 and lot_of(db, "M3").remaining == 200
    # the pool is now M1 0 + M2 100: M3's 200 are not in it
    line = refused(db, "points", "redeem", "M2", "150", "--household", "--at", "2025-08-02")
    assert line == "Error: household LEE has 100 points available (M1 0, M2 100), not enough for 150"
    ok(db, "points", "redeem", "M1", "100", "--household", "--at", "2025-08-02")
    assert [(e.member_id, e.points) for e in entries(db, kind="redeem")][-1:] == [("M2", -100)]
    assert lot_of(db, "M3").remaining == 200
    line = refused(db, "points", "redeem", "M3", "10", "--household", "--at", "2025-08-03")
    assert line.startswith("Error: member M3 is not in a household at 2025-08-03T00:00:00")
    ok(db, "points", "redeem", "M3", "10", "--at", "2025-08-03")  # their own points, as ever
    history = as_json(db, "households", "show", "LEE", "--as-of", "2025-09-01")["history"]
    assert history == [{"member_id": "M1", "joined_at": "2025-06-01T00:00:00", "left_at": None},
                       {"member_id": "M2", "joined_at": "2025-06-01T00:00:00", "left_at": None},
                       {"member_id": "M3", "joined_at": "2025-06-01T00:00:00", "left_at": "2025-08-01T00:00:00"}]
    check_ok(db)


def test_a_pooled_voucher_cancelled_gives_each_member_their_points_back_with_their_dates(db):
    family(db)
    ok(db, "rewards", "add", "MUG", "--name", "A mug", "--cost", "350", "--stock", "2")
    r = as_json(db, "points", "redeem", "M2", "--reward", "MUG", "--household", "--at", "2025-07-01")
    assert [(e["member_id"], e["points"]) for e in r["entries"]] == [("M1", 300), ("M3", 50)]
    (voucher,) = as_json(db, "vouchers", "list", "--member", "M2")
    assert (voucher["code"], voucher["points"], voucher["status"]) == (r["voucher"], 350, "issued")
    c = as_json(db, "vouchers", "cancel", r["voucher"], "--at", "2025-07-05")
    assert c["returned"] == [{"member_id": "M1", "points": 300, "balance": 300},
                             {"member_id": "M3", "points": 50, "balance": 400}]
    returned = {e.id for e in entries(db, kind="voucher_cancel")}
    back = [(lot.member_id, lot.points, lot.expires_on) for lot in lots(db) if lot.entry_id in returned]
    assert back == [("M1", 300, "2026-01-31"), ("M3", 50, "2026-02-28")]
    assert raw(db, "SELECT stock FROM rewards WHERE code = 'MUG'") == [(2,)]
    check_ok(db)


def test_members_show_and_points_balance_show_the_pool(db):
    family(db)
    doc = as_json(db, "members", "show", "M2", "--as-of", "2025-07-01")
    assert doc["balance"] == 100 and doc["member_id"] == "M2"  # the existing keys, as they were
    assert doc["household"] == {"name": "LEE", "head": "M1", "members": ["M1", "M2", "M3"], "pool": 800,
                                "combined_in_window": None}
    balance = as_json(db, "points", "balance", "M3", "--as-of", "2025-07-01")
    assert balance["balance"] == 400 and balance["household"]["pool"] == 800
    outsider = as_json(db, "points", "balance", "M4", "--as-of", "2025-07-01")
    assert "household" not in outsider and "household" not in as_json(db, "members", "show", "M4")
    text = ok(db, "members", "show", "M2", "--as-of", "2025-07-01").stdout
    assert "household        LEE (head M1; 3 members)" in text and "pool             800 points" in text


def test_households_show_and_list(db):
    family(db)
    doc = as_json(db, "households", "show", "LEE", "--as-of", "2025-07-01")
    assert [(m["member_id"], m["head"], m["balance"], m["tier"]) for m in doc["members"]] == [
        ("M1", True, 300, "Bronze"), ("M2", False, 100, "Bronze"), ("M3", False, 400, "Bronze")]
    assert (doc["pool"], doc["pooling"], doc["basis"], doc["combined_in_window"], doc["qualifies_for"]) == \
        (800, "member", "spend", "0.00", "Bronze")
    assert as_json(db, "households", "list", "--as-of", "2025-07-01") == [
        {"name": "LEE", "head": "M1", "members": 3, "pool": 800, "created_at": "2025-06-01T00:00:00",
         "closed_at": None}]
    csv = ok(db, "households", "list", "--csv", "--as-of", "2025-07-01").stdout
    assert csv.splitlines()[0] == "name,head,members,pool,created,closed"


# -- membership rules ---------------------------------------------------------------------------
def test_membership_rules_refuse_with_one_line_and_the_fix(db):
    family(db)
    assert refused(db, "households", "add", "NOPE", "M4") == (
        "Error: household NOPE not found (see: loyalty households list; create it with: "
        "loyalty households create NOPE --head MEMBER)")
    assert refused(db, "households", "add", "LEE", "M9").startswith("Error: member M9 not found")
    assert refused(db, "households", "create", "KIM", "--head", "M2") == (
        "Error: member M2 is already in household LEE (since 2025-06-01); a member is in one household at a time: "
        "loyalty households remove LEE M2")
    assert refused(db, "households", "create", "Lee", "--head", "M4").startswith(
        "Error: household LEE already exists")
    assert refused(db, "households", "create", "the lees", "--head", "M4", code=2).startswith(
        "Error: a household name must be 1-40 letters")
    assert refused(db, "households", "remove", "LEE", "M1") == (
        "Error: member M1 is the head of household LEE: name the new head, e.g. "
        "loyalty households remove LEE M1 --new-head M2")
    assert refused(db, "households", "remove", "LEE", "M2", "--new-head", "M3", code=2) == (
        "Error: --new-head is only for removing the head (M1); M2 is not the head")
    assert refused(db, "households", "remove", "LEE", "M1", "--new-head", "M4") == (
        "Error: --new-head M4 must be one of household LEE's other members (M2, M3)")
    assert refused(db, "households", "remove", "LEE", "M4") == (
        "Error: member M4 is not in household LEE (its members: M1, M2, M3)")
    ok(db, "members", "erase", "M4", "--yes")
    assert refused(db, "households", "add", "LEE", "M4") == (
        "Error: member M4 was erased; erased members take no new activity")
    assert count(db, "household_members") == 3
    check_ok(db)


def test_the_head_hands_over_and_the_last_one_out_closes_the_household(db):
    family(db)
    r = as_json(db, "households", "remove", "LEE", "M1", "--new-head", "M3", "--at", "2025-07-01")
    assert (r["head"], r["members"], r["closed"]) == ("M3", ["M2", "M3"], False)
    ok(db, "households", "remove", "LEE", "M2", "--at", "2025-07-02")
    text = ok(db, "households", "remove", "LEE", "M3", "--at", "2025-07-03").stdout
    assert text == "removed M3 from household LEE: it has no members now (closed)\n"
    assert as_json(db, "households", "list")[0]["closed_at"] == "2025-07-03T00:00:00"
    assert refused(db, "households", "add", "LEE", "M1") == (
        "Error: household LEE was closed on 2025-07-03 (its last member left); create a new household to pool again")
    ok(db, "households", "create", "LEE2", "--head", "M1", "--at", "2025-07-04")  # M1 may join another now
    assert refused(db, "households", "create", "KIM", "--head", "M2", "--at", "2025-07-01").startswith(
        "Error: member M2 was in household LEE until 2025-07-02T00:00:00")
    check_ok(db)


# -- tiers together ---------------------------------------------------------------------------
def test_combined_spend_upgrades_all_three_on_the_sale_that_crosses_the_threshold_and_recalc_agrees(db):
    family(db)
    ok(db, "-q", "program", "set", "tiers.pooling", "household", "--from", "2024-01-01")
    ok(db, "-q", "members", "add", "--id", "M5", "--name", "Member M5", "--joined", "2025-01-01")
    ok(db, "purchases", "add", "M1", "200.00", "--id", "S1", "--at", "2025-06-10")
    ok(db, "purchases", "add", "M2", "150.00", "--id", "S2", "--at", "2025-06-11")
    ok(db, "purchases", "add", "M4", "450.00", "--id", "S4", "--at", "2025-06-11")  # outsider: alone
    assert tier_history(db) == []  # 350.00 together, below Silver's 500.00
    sale = as_json(db, "purchases", "add", "M3", "200.00", "--id", "S3", "--at", "2025-06-12")
    assert (sale["points"], sale["tier"], sale["upgraded"]) == (200, "Silver", True)  # earned at the old tier
    assert [(t.member_id, t.from_tier, t.to_tier, t.reason, t.ref) for t in tier_history(db)] == [
        ("M3", "Bronze", "Silver", "purchase", "S3"), ("M1", "Bronze", "Silver", "purchase", "S3"),
        ("M2", "Bronze", "Silver", "purchase", "S3")]
    assert [as_json(db, "members", "show", m)["tier"] for m in ("M1", "M2", "M3", "M4")] == \
        ["Silver", "Silver", "Silver", "Bronze"]
    # the next sale earns at Silver: 100 + 25 (x1.25)
    assert as_json(db, "purchases", "add", "M1", "100.00", "--id", "S5", "--at", "2025-06-13")["points"] == 125
    show = as_json(db, "members", "show", "M2", "--as-of", "2025-06-13")
    assert show["household"]["combined_in_window"] == "650.00" and show["spend_in_window"] == "150.00"
    assert show["next_tier"] == "Gold" and show["to_next_tier"] == "850.00"  # 1500.00 - 650.00 together
    recalc = as_json(db, "tiers", "recalc", "--as-of", "2025-06-14")
    assert (recalc["upgraded"], recalc["downgraded"], recalc["changes"]) == (0, 0, [])  # recalc agrees
    # a member joining brings nothing until the next sale or recalc, which then lifts them too
    ok(db, "households", "add", "LEE", "M5", "--at", "2025-06-15")
    recalc = as_json(db, "tiers", "recalc", "--as-of", "2025-06-16")
    assert recalc["changes"] == [{"member_id": "M5", "from": "Bronze", "to": "Silver"}]
    check_ok(db)


def test_combined_spend_upgrades_the_household_in_a_bulk_import_too(db, tmp_path):
    family(db)
    ok(db, "-q", "program", "set", "tiers.pooling", "household", "--from", "2024-01-01")
    sales = tmp_path / "sales.csv"
    sales.write_text("purchase_id,member_id,purchased_at,amount\nS1,M1,2025-06-10,200.00\n"
                     "S2,M2,2025-06-11,150.00\nS4,M4,2025-06-11,450.00\nS3,M3,2025-06-12,200.00\n")
    ok(db, "purchases", "import", sales)
    assert [(t.member_id, t.to_tier, t.ref) for t in tier_history(db)] == [
        ("M3", "Silver", "S3"), ("M1", "Silver", "S3"), ("M2", "Silver", "S3")]
    assert as_json(db, "tiers", "recalc", "--as-of", "2025-06-14")["changes"] == []
    check_ok(db)


def test_a_bad_pooling_value_is_refused_like_any_other_key(db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[tiers]\npooling = "family"\n')
    line = refused(db, "program", "load", str(bad), code=3)
    assert line.endswith('bad.toml: tiers.pooling must be one of member, household, got "family"')
    assert refused(db, "program", "set", "tiers.pooling", "family", code=2) == (
        'Error: tiers.pooling must be one of member, household, got "family"')


# -- db check -----------------------------------------------------------------------------------
def test_db_check_fails_on_a_forged_pooled_debit_of_an_outsider(db):
    family(db)
    ok(db, "points", "redeem", "M2", "500", "--household", "--at", "2025-07-01")
    check_ok(db)
    from loyalty_cli.ledger import Book
    from loyalty_cli.store import Store

    store = Store.open(db)  # written through the tool's own ledger, so the chain signs it: only the rule can tell
    try:
        with store.write() as conn:
            book = Book(conn)
            eid, _ = book.debit(book.member("M4"), "2025-07-01T00:00:00", "redeem", 250, ref="household:LEE:5",
                                note="pooled by M2")
            book.flush()
    finally:
        store.close()
    stderr = check_fails(db)
    assert (f"households: entry {eid} (redeem, 2025-07-01) is a pooled redemption of household LEE, but it debits "
            "M4, who was not in the household then (a forged pooled debit) (member M4)") in stderr


def test_db_check_fails_on_a_membership_changed_behind_the_tools_back(db):
    family(db)
    ok(db, "households", "remove", "LEE", "M3", "--at", "2025-08-01")
    with connect(db) as conn:
        with guards_dropped(conn, "household_members"):
            conn.execute("UPDATE household_members SET left_at = NULL WHERE member_id = 'M3'")
    stderr = check_fails(db)
    assert "household membership row 3 (household_members): left_at is NULL but the chain recorded " \
           "'2025-08-01T00:00:00'" in stderr


def test_households_and_memberships_refuse_being_rewritten(db):
    family(db)
    with connect(db) as conn:
        with pytest.raises(Exception, match="a membership is never deleted"):
            conn.execute("DELETE FROM household_members WHERE member_id = 'M2'")
    with connect(db) as conn:
        with pytest.raises(Exception, match="only the head changes"):
            conn.execute("UPDATE households SET name = 'KIM'")
    check_ok(db)


# -- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["create", "add", "remove", "show", "list"])
def test_every_households_command_has_help_ending_with_an_example(db, command):
    text = ok(db, "households", command, "--help").stdout
    assert "Example" in text and f"loyalty households {command}" in text


def test_redeem_help_shows_household_and_output_fits_80_columns(db, monkeypatch):
    assert "--household" in ok(db, "points", "redeem", "--help").stdout
    family(db)
    monkeypatch.setenv("COLUMNS", "80")
    for args in (("households", "show", "LEE"), ("households", "list"), ("members", "show", "M1")):
        text = ok(db, *args).stdout
        assert max(map(len, text.splitlines())) <= 80, text
    result = ok(db, "points", "redeem", "M2", "500", "--household", "--at", "2025-07-01")
    assert result.stdout == ("redeemed 500 points from household LEE for M2: M1 300 (balance 0), M3 200 "
                             "(balance 200); pool 300\n")
    assert json.loads(ok(db, "households", "show", "LEE", "--json").stdout)["name"] == "LEE"


def test_db_copy_takes_the_households_along(db, tmp_path):
    family(db)
    ok(db, "points", "redeem", "M2", "500", "--household", "--at", "2025-07-01")
    ok(db, "households", "remove", "LEE", "M3", "--at", "2025-08-01")
    copy = tmp_path / "copy.db"
    ok(db, "db", "copy", "--to", copy)  # checked (households included) before it commits
    for args in (("households", "show", "LEE", "--as-of", "2025-09-01"), ("households", "list")):
        assert as_json(copy, *args) == as_json(db, *args)


def test_db_check_names_a_pooled_debit_that_took_an_outsiders_lot(db):
    family(db)
    r = as_json(db, "points", "redeem", "M2", "500", "--household", "--at", "2025-07-01")
    first = r["entries"][0]["entry"]
    outsider = lot_of(db, "M4")
    with connect(db) as conn:  # M1's pooled entry made to take 50 of the outsider M4's points as well
        with guards_dropped(conn, "lot_uses", "lots"):
            conn.execute("INSERT INTO lot_uses (entry_id, lot_id, points) VALUES (?, ?, 50)", (first, outsider.id))
            conn.execute("UPDATE lots SET remaining = remaining - 50 WHERE id = ?", (outsider.id,))
    stderr = check_fails(db)
    assert (f"households: entry {first} (redeem, 2025-07-01) is a pooled redemption of household LEE, but it took 50 "
            f"points of lot {outsider.id} of M4, who was not in the household then (a forged pooled debit) "
            "(member M4)") in stderr


def test_recalc_holds_or_drops_the_household_together_on_its_combined_value_after_refunds(db):
    family(db)
    ok(db, "-q", "program", "set", "tiers.pooling", "household", "--from", "2024-01-01")
    for sale, mid, amount, at in (("S1", "M1", "200.00", "2025-06-10"), ("S2", "M2", "150.00", "2025-06-11"),
                                  ("S3", "M3", "200.00", "2025-06-12")):
        ok(db, "-q", "purchases", "add", mid, amount, "--id", sale, "--at", at)
    ok(db, "-q", "purchases", "refund", "S3", "20.00", "--at", "2025-06-20")  # 530.00 together: still Silver
    assert as_json(db, "tiers", "recalc", "--as-of", "2025-06-21")["changes"] == []
    ok(db, "-q", "purchases", "refund", "S3", "100.00", "--at", "2025-06-22")  # 430.00: the upgrade is undone
    changes = as_json(db, "tiers", "recalc", "--as-of", "2025-06-23")["changes"]
    assert changes == [{"member_id": m, "from": "Silver", "to": "Bronze"} for m in ("M1", "M2", "M3")]
    check_ok(db)


def test_the_combined_spend_is_shown_with_thousands_separators(db):
    for mid, name in (("M1", "Ann"), ("M2", "Bo")):
        ok(db, "members", "add", "--id", mid, "--name", name, "--joined", "2025-01-01")
    ok(db, "households", "create", "LEE", "--head", "M1", "--at", "2025-01-02")
    ok(db, "households", "add", "LEE", "M2", "--at", "2025-01-02")
    ok(db, "purchases", "add", "M1", "600.25", "--at", "2025-02-01")
    ok(db, "purchases", "add", "M2", "700.50", "--at", "2025-02-02")
    shown = ok(db, "households", "show", "LEE", "--as-of", "2025-03-01").stdout
    assert "spend in window  1,300.75 combined" in shown
    assert as_json(db, "households", "show", "LEE", "--as-of", "2025-03-01")["combined_in_window"] == "1300.75"
