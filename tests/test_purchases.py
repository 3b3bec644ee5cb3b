"""`loyalty purchases add|refund` through the CLI (SPEC §6: earning, referral, tiers, refunds, lots).

Each test builds its own small shop, then reads the ledger with `points history
--json` or straight from the database file (tests/db.py).
"""

from __future__ import annotations

import json

import pytest

from tests.db import count, entries, purchases
from tests.helpers import as_json, ok, one_error_line, run, fresh_db

# -- small local helpers (independent of conftest) ------------------------------------

@pytest.fixture
def dbp(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


def member(db, mid, joined="2025-01-01", *extra):
    ok(db, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", joined, *extra)


def sale(db, mid, amount, pid, at, *extra) -> dict:
    return as_json(db, "purchases", "add", mid, amount, "--id", pid, "--at", at, *extra)


def refund(db, pid, amount, rid, at) -> dict:
    args = ["purchases", "refund", pid] + ([amount] if amount is not None else []) + ["--id", rid, "--at", at]
    return as_json(db, *args)


def history(db, mid) -> list[dict]:
    return as_json(db, "points", "history", mid)


def entries_of(db, mid, ref) -> list[tuple]:
    return [(e["kind"], e["note"], e["points"]) for e in history(db, mid) if e["ref"] == ref]


def balance(db, mid) -> int:
    return as_json(db, "points", "balance", mid)["balance"]


def check_ok(db):
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["ok"] is True


def program(db, tmp_path, text, *extra):
    f = tmp_path / "program.toml"
    f.write_text(text)
    ok(db, "program", "load", f, *extra)


# -- first purchase, birthday, referral ----------------------------------------------------------


def test_first_purchase_multiplier_only_on_first_sale_above_zero(dbp, tmp_path):
    program(dbp, tmp_path, '[earn]\nfirst_purchase_multiplier = "2"\n')
    member(dbp, "A")
    assert sale(dbp, "A", "0.00", "P0", "2025-02-01")["points"] == 0
    assert sale(dbp, "A", "10.00", "P1", "2025-02-02")["points"] == 20
    assert sale(dbp, "A", "10.00", "P2", "2025-02-03")["points"] == 10
    assert entries_of(dbp, "A", "P0") == []
    assert entries_of(dbp, "A", "P1") == [("earn", None, 10), ("bonus", "first_purchase", 10)]
    assert entries_of(dbp, "A", "P2") == [("earn", None, 10)]
    check_ok(dbp)


def test_first_purchase_is_per_member(dbp, tmp_path):
    program(dbp, tmp_path, '[earn]\nfirst_purchase_multiplier = "3"\n')
    member(dbp, "A")
    member(dbp, "B")
    assert sale(dbp, "A", "10.00", "P1", "2025-02-01")["points"] == 30
    assert sale(dbp, "B", "10.00", "P2", "2025-02-02")["points"] == 30
    assert sale(dbp, "A", "10.00", "P3", "2025-02-03")["points"] == 10


def test_first_purchase_is_the_first_sale_above_zero_even_below_min_amount(dbp, tmp_path):
    """A 0.50 sale under min_amount earns nothing, but it is the first sale with A > 0."""
    program(dbp, tmp_path, '[earn]\nfirst_purchase_multiplier = "2"\nmin_amount = "1.00"\n')
    member(dbp, "A")
    assert sale(dbp, "A", "0.50", "P1", "2025-02-01")["points"] == 0
    assert sale(dbp, "A", "10.00", "P2", "2025-02-02")["points"] == 10


@pytest.mark.parametrize(
    "at, points",
    [("2026-02-28T23:59:59", 10), ("2026-03-01T00:00:00", 20), ("2026-03-31T23:59:59", 20), ("2026-04-01", 10)],
)
def test_birthday_month(dbp, tmp_path, at, points):
    program(dbp, tmp_path, '[earn]\nbirthday_multiplier = "2"\n')
    member(dbp, "B", "2025-01-01", "--birthday", "1990-03-15")
    got = sale(dbp, "B", "10.00", "P1", at)
    assert got["points"] == points
    if points == 20:
        assert entries_of(dbp, "B", "P1") == [("earn", None, 10), ("bonus", "birthday", 10)]


def test_referral_bonus_on_first_purchase_once_never_reversed(dbp, tmp_path):
    program(dbp, tmp_path, "[earn]\nsignup_bonus = 50\nreferral_bonus = 100\n")
    member(dbp, "A")
    member(dbp, "B", "2025-02-01", "--referred-by", "A")
    assert (balance(dbp, "A"), balance(dbp, "B")) == (50, 50)

    sale(dbp, "B", "0.00", "P0", "2025-03-01")  # a visit, not a first purchase
    assert balance(dbp, "A") == 50
    sale(dbp, "B", "10.00", "P1", "2025-03-02T10:00")
    referral = [e for e in history(dbp, "A") if e["kind"] == "referral"]
    assert [(e["points"], e["at"][:10]) for e in referral] == [(100, "2025-03-02")]
    assert balance(dbp, "A") == 150

    sale(dbp, "B", "10.00", "P2", "2025-03-03")
    assert balance(dbp, "A") == 150
    assert refund(dbp, "P1", None, "R1", "2025-03-04")["points_reversed"] == 10
    sale(dbp, "B", "10.00", "P3", "2025-03-05")  # not a first purchase again
    assert balance(dbp, "A") == 150
    assert [e["kind"] for e in history(dbp, "A")] == ["signup", "referral"]
    assert balance(dbp, "B") == 50 + 10 + 10 - 10 + 10
    check_ok(dbp)


def test_referral_bonus_goes_to_referrer_not_referee(dbp, tmp_path):
    program(dbp, tmp_path, "[earn]\nreferral_bonus = 100\n")
    member(dbp, "A")
    member(dbp, "B", "2025-02-01", "--referred-by", "A")
    assert sale(dbp, "B", "10.00", "P1", "2025-03-02")["points"] == 10
    assert [e["kind"] for e in history(dbp, "B")] == ["earn"]
    assert (balance(dbp, "A"), balance(dbp, "B")) == (100, 10)


# -- tier upgrade on sale ----------------------------------------------------------------------------


def test_sale_that_lifts_into_silver_earns_at_bronze_next_earns_at_silver(dbp):
    member(dbp, "A", "2026-01-01")
    assert sale(dbp, "A", "450.00", "P1", "2026-01-10")["points"] == 450
    lifting = sale(dbp, "A", "100.00", "P2", "2026-01-11")
    assert lifting["points"] == 100
    assert lifting["tier"] == "Silver" and lifting["upgraded"] is True
    assert entries_of(dbp, "A", "P2") == [("earn", None, 100)]

    assert as_json(dbp, "members", "show", "A")["tier"] == "Silver"
    changes = as_json(dbp, "tiers", "history", "A")
    assert len(changes) == 1
    assert (changes[0]["from"], changes[0]["to"], changes[0]["reason"]) == ("Bronze", "Silver", "purchase")
    assert changes[0]["at"][:10] == "2026-01-11"

    nxt = sale(dbp, "A", "100.00", "P3", "2026-01-12")
    assert nxt["points"] == 125
    assert entries_of(dbp, "A", "P3") == [("earn", None, 100), ("bonus", "tier:Silver", 25)]
    check_ok(dbp)


def test_sale_below_threshold_does_not_upgrade(dbp):
    member(dbp, "A", "2026-01-01")
    sale(dbp, "A", "499.99", "P1", "2026-01-10")
    assert as_json(dbp, "members", "show", "A")["tier"] == "Bronze"
    assert as_json(dbp, "tiers", "history", "A") == []


# -- refunds --------------------------------------------------------------------------------------


def test_partial_then_full_refund_reverses_exactly_what_was_earned(dbp):
    member(dbp, "A")
    assert sale(dbp, "A", "100.00", "P1", "2026-01-10")["points"] == 100
    r1 = refund(dbp, "P1", "30.00", "R1", "2026-01-11")
    assert (r1["points_reversed"], r1["balance"]) == (30, 70)
    r2 = refund(dbp, "P1", "70.00", "R2", "2026-01-12")
    assert (r2["points_reversed"], r2["balance"]) == (70, 0)
    assert sum(e.points for e in entries(dbp, kind="reversal")) == -100
    # nothing left to refund
    assert run(dbp, "purchases", "refund", "P1", "--id", "R3", "--at", "2026-01-13").exit_code == 1
    assert run(dbp, "purchases", "refund", "P1", "0.01", "--id", "R4", "--at", "2026-01-13").exit_code == 1
    check_ok(dbp)


def test_proportional_refund_rounds_down_and_rest_reverses_what_is_left(dbp):
    member(dbp, "A")
    assert sale(dbp, "A", "37.99", "P1", "2026-01-10")["points"] == 37
    first = refund(dbp, "P1", "10.00", "R1", "2026-01-11")
    assert first["points_reversed"] == 9  # floor(37 × 10.00 / 37.99) = floor(9.739…)
    rest = refund(dbp, "P1", None, "R2", "2026-01-12")  # no amount: all that is left
    assert rest["amount"] == "27.99"
    assert rest["points_reversed"] == 28
    assert balance(dbp, "A") == 0
    check_ok(dbp)


def test_several_partial_refunds_each_reverse_cumulative_share(dbp):
    """Cumulative: round_down(P × (R₀+R) / A) − already reversed, so three thirds reverse 3, 3, 4 of 10."""
    member(dbp, "A")
    assert sale(dbp, "A", "10.00", "P1", "2026-01-10")["points"] == 10
    got = [refund(dbp, "P1", amt, f"R{i}", "2026-01-11")["points_reversed"]
           for i, amt in enumerate(["3.33", "3.33", "3.34"])]
    assert got == [3, 3, 4]  # floor(3.33) = 3, floor(6.66) − 3 = 3, 10 − 6 = 4


def test_refund_larger_than_what_is_left_is_refused(dbp):
    member(dbp, "A")
    sale(dbp, "A", "100.00", "P1", "2026-01-10")
    refund(dbp, "P1", "60.00", "R1", "2026-01-11")
    result = run(dbp, "purchases", "refund", "P1", "50.00", "--id", "R2", "--at", "2026-01-12")
    assert result.exit_code == 1
    one_error_line(result)
    assert count(dbp, "purchases", kind="refund") == 1
    assert balance(dbp, "A") == 40

    sale(dbp, "A", "10.00", "P2", "2026-01-10")
    result = run(dbp, "purchases", "refund", "P2", "10.01", "--id", "R3", "--at", "2026-01-12")
    assert result.exit_code == 1
    one_error_line(result)


def test_refund_of_a_refund_is_refused(dbp):
    member(dbp, "A")
    sale(dbp, "A", "100.00", "P1", "2026-01-10")
    refund(dbp, "P1", "30.00", "R1", "2026-01-11")
    before = count(dbp, "ledger")
    for args in (["R1"], ["R1", "10.00"]):
        result = run(dbp, "purchases", "refund", *args, "--id", "RR", "--at", "2026-01-12")
        assert result.exit_code == 1
        one_error_line(result)
    assert count(dbp, "ledger") == before


def test_refund_of_a_zero_sale_or_unknown_sale_is_refused(dbp):
    member(dbp, "A")
    sale(dbp, "A", "0.00", "P0", "2026-01-10")
    result = run(dbp, "purchases", "refund", "P0", "--id", "R1", "--at", "2026-01-11")
    assert result.exit_code == 1
    one_error_line(result)
    result = run(dbp, "purchases", "refund", "NOPE", "1.00", "--id", "R2", "--at", "2026-01-11")
    assert result.exit_code == 1
    one_error_line(result)


def test_refund_dated_before_the_sale_is_refused(dbp):
    member(dbp, "A")
    sale(dbp, "A", "100.00", "P1", "2026-01-10T12:00")
    result = run(dbp, "purchases", "refund", "P1", "10.00", "--id", "R1", "--at", "2026-01-09T23:59")
    assert result.exit_code == 1
    one_error_line(result)
    assert count(dbp, "purchases", kind="refund") == 0


def test_refund_of_another_members_sale_is_rejected_on_import(dbp, tmp_path):
    member(dbp, "A")
    member(dbp, "B")
    sale(dbp, "A", "100.00", "P1", "2026-01-10")
    f = tmp_path / "refunds.csv"
    f.write_text("purchase_id,member_id,purchased_at,amount,kind,refund_of\n"
                 "R1,B,2026-01-11,10.00,refund,P1\n")
    result = run(dbp, "purchases", "import", f, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert [e["line"] for e in doc["errors"]] == [2]
    assert doc["imported"] == 0
    assert count(dbp, "purchases", kind="refund") == 0
    assert balance(dbp, "A") == 100 and balance(dbp, "B") == 0


def test_expired_points_are_never_taken_twice(dbp):
    member(dbp, "A")
    assert sale(dbp, "A", "100.00", "P1", "2025-01-10")["points"] == 100  # E = 2026-01-31
    assert as_json(dbp, "points", "expire", "--as-of", "2026-02-01") == {"members": 1, "points": 100}
    assert balance(dbp, "A") == 0
    r = refund(dbp, "P1", None, "R1", "2026-02-02")
    assert (r["points_reversed"], r["balance"]) == (0, 0)
    assert [e["kind"] for e in history(dbp, "A")] == ["earn", "expire"]
    check_ok(dbp)


def test_refund_after_expiry_date_without_expire_run_still_takes_nothing_twice(dbp):
    member(dbp, "A")
    sale(dbp, "A", "100.00", "P1", "2025-01-10")
    r = refund(dbp, "P1", None, "R1", "2026-02-02")  # lapsed lots are written off before the debit
    assert (r["points_reversed"], r["balance"]) == (0, 0)
    check_ok(dbp)


def test_refund_reverses_only_what_has_not_expired(dbp):
    """P = 100, 40 redeemed, 60 expired (X = 60): a full refund reverses min(100, 100 − 60) = 40."""
    member(dbp, "A")
    sale(dbp, "A", "100.00", "P1", "2025-01-10")          # E 2026-01-31
    ok(dbp, "points", "redeem", "A", "40", "--at", "2025-06-01")
    sale(dbp, "A", "50.00", "P2", "2025-12-01")           # E 2026-12-31
    assert as_json(dbp, "points", "expire", "--as-of", "2026-02-01")["points"] == 60
    r = refund(dbp, "P1", None, "R1", "2026-02-02")
    assert (r["points_reversed"], r["balance"]) == (40, 10)
    check_ok(dbp)


def test_refund_may_take_balance_below_zero_and_new_credits_fill_the_hole(dbp):
    member(dbp, "A")
    sale(dbp, "A", "100.00", "P1", "2026-01-10")
    ok(dbp, "points", "redeem", "A", "100", "--at", "2026-01-11")
    r = refund(dbp, "P1", None, "R1", "2026-01-12")
    assert (r["points_reversed"], r["balance"]) == (100, -100)
    doc = as_json(dbp, "points", "balance", "A")
    assert doc["balance"] == -100 and doc["expiring"] == []
    check_ok(dbp)
    # nothing else may go below zero
    assert run(dbp, "points", "redeem", "A", "1", "--at", "2026-01-12").exit_code == 1

    sale(dbp, "A", "30.00", "P2", "2026-01-13")
    assert balance(dbp, "A") == -70
    check_ok(dbp)
    sale(dbp, "A", "150.00", "P3", "2026-01-14")
    doc = as_json(dbp, "points", "balance", "A")
    assert doc["balance"] == 80
    assert sum(e["points"] for e in doc["expiring"]) == 80
    check_ok(dbp)


def test_purchases_add_with_existing_id_is_refused(dbp):
    member(dbp, "A")
    sale(dbp, "A", "10.00", "P1", "2026-01-10")
    result = run(dbp, "purchases", "add", "A", "20.00", "--id", "P1", "--at", "2026-01-11")
    assert result.exit_code == 1
    one_error_line(result)
    assert [(p.purchase_id, p.amount) for p in purchases(dbp)] == [("P1", 1000)]
    assert balance(dbp, "A") == 10


def test_refund_with_existing_id_is_refused(dbp):
    member(dbp, "A")
    sale(dbp, "A", "10.00", "P1", "2026-01-10")
    sale(dbp, "A", "10.00", "P2", "2026-01-10")
    result = run(dbp, "purchases", "refund", "P1", "--id", "P2", "--at", "2026-01-11")
    assert result.exit_code == 1
    one_error_line(result)
    assert balance(dbp, "A") == 20


@pytest.mark.parametrize("amount", ["12.345", "-5", "1e3", "abc", "1,50"])
def test_purchases_add_bad_amount_is_a_usage_error(dbp, amount):
    member(dbp, "A")
    result = run(dbp, "purchases", "add", "A", amount, "--id", "P1", "--at", "2026-01-10")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert count(dbp, "purchases") == 0


def test_purchases_add_unknown_member_is_refused(dbp):
    result = run(dbp, "purchases", "add", "NOBODY", "10.00", "--id", "P1", "--at", "2026-01-10")
    assert result.exit_code == 1
    one_error_line(result)


def test_counter_refund_messages_name_what_the_owner_typed(dbp):
    member(dbp, "A")
    sale(dbp, "A", "10.00", "S1", "2025-03-01")
    sale(dbp, "A", "0.00", "Z1", "2025-03-01")
    result = run(dbp, "purchases", "refund", "S1", "20.00")  # no --id: the generated id was never recorded
    assert result.exit_code == 1
    assert one_error_line(result).startswith("Error: the refund is larger than what is left of S1 (10.00 left")
    result = run(dbp, "purchases", "refund", "Z1")
    assert result.exit_code == 1 and "Z1 is a zero sale: there is nothing to refund" in one_error_line(result)
    result = run(dbp, "purchases", "refund", "S1", "20.00", "--id", "R7")
    assert one_error_line(result).startswith("Error: refund R7 is larger")
