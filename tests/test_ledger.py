"""Points, lots and expiry, redemption, vouchers and transfers through the CLI (SPEC §3, §6, §7, §11).

Every scenario uses numbers a shop owner can check by hand. With the default
programme (expiry.months = 12, round_to = "month_end") a credit dated D expires
at the end of the month twelve months after D: 2025-01-15 -> 2026-01-31. "E" is
the last day the points can be used; `points expire --as-of D` writes off lots
with E before D.

Each scenario ends with `db check` passing, and reads the database file back
(tests/db.py) to check what was (or was not) written.
"""

from __future__ import annotations

import getpass
import json

import pytest

from tests.db import count, entries, lots, members, raw, row, rows
from tests.helpers import ok, run, as_json as js, fresh_db

# -- small helpers (kept here so this file does not depend on conftest) -------------------------
@pytest.fixture
def db(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


def refused(db, *args, code=1, env=None) -> str:
    """The command fails with `code`, stdout empty, stderr one `Error:` line; returns that line."""
    result = run(db, *args, env=env)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    if code == 1:
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error:"), result.stderr
        return lines[0]
    assert any(line.startswith("Error:") for line in lines), result.stderr
    return [line for line in lines if line.startswith("Error:")][0]


def ledger_count(db) -> int:
    return count(db, "ledger")


def snapshot(db):
    """Everything a refused command must leave exactly as it was."""
    return (
        entries(db),
        lots(db),
        raw(db, "SELECT * FROM lot_uses ORDER BY rowid"),
        [(m.member_id, m.balance) for m in members(db)],
        rows(db, "vouchers"),
        rows(db, "rewards"),
    )


def balance(db, member) -> int:
    return js(db, "points", "balance", member)["balance"]


def expiring(db, member, *extra) -> list[dict]:
    return js(db, "points", "balance", member, *extra)["expiring"]


def history(db, member) -> list[dict]:
    return js(db, "points", "history", member)


def check_ok(db) -> None:
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def member(db, mid, joined="2025-01-01"):
    ok(db, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", joined)


def award(db, mid, points, at, reason="goodwill"):
    ok(db, "points", "award", mid, points, "--reason", reason, "--at", at)


def program_set(db, key, value, from_="2000-01-01"):
    ok(db, "program", "set", key, value, "--from", from_)


def exp(date, points):
    return {"date": date, "points": points}


# -- the issue's worked example ------------------------------------------------------------------
def test_issue_example_redeem_then_expire(db):
    member(db, "M1", joined="2025-01-01")
    award(db, "M1", 120, "2025-01-15")  # E = 2026-01-31
    award(db, "M1", 80, "2025-03-02")   # E = 2026-03-31
    assert js(db, "points", "balance", "M1", "--as-of", "2025-03-31") == {
        "member_id": "M1", "balance": 200, "expiring": [exp("2026-01-31", 120), exp("2026-03-31", 80)], "pending": []}

    r = js(db, "points", "redeem", "M1", "150", "--at", "2025-04-01")
    assert r == {"member_id": "M1", "points": 150, "balance": 50, "voucher": None}
    # FIFO by expiry: the 120 of January go first, then 30 of the 80.
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 50,
                                                 "expiring": [exp("2026-03-31", 50)], "pending": []}
    check_ok(db)

    before = ledger_count(db)
    assert js(db, "points", "expire", "--as-of", "2026-03-31") == {"members": 0, "points": 0}
    assert ledger_count(db) == before  # 2026-03-31 is the last day the 50 can be used

    assert js(db, "points", "expire", "--as-of", "2026-04-01") == {"members": 1, "points": 50}
    assert ledger_count(db) == before + 1
    last = history(db, "M1")[-1]
    assert (last["kind"], last["points"], last["balance_after"]) == ("expire", -50, 0)
    assert last["at"].startswith("2026-04-01")
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 0, "expiring": [], "pending": []}
    # As of the day before, the 50 were still there.
    assert js(db, "points", "balance", "M1", "--as-of", "2026-03-31")["balance"] == 50

    assert js(db, "points", "expire", "--as-of", "2026-04-01") == {"members": 0, "points": 0}
    assert ledger_count(db) == before + 1
    check_ok(db)


# -- lots: FIFO by expiry ------------------------------------------------------------------------
def test_debits_take_the_earliest_expiry_first_not_the_oldest_credit(db):
    # From 2025-06-01 points expire after 3 months: a newer credit can expire first.
    program_set(db, "expiry.months", "3", from_="2025-06-01")
    member(db, "M1")
    award(db, "M1", 100, "2025-02-10")  # 12 months: E = 2026-02-28
    award(db, "M1", 100, "2025-06-15")  # 3 months:  E = 2025-09-30
    assert expiring(db, "M1") == [exp("2025-09-30", 100), exp("2026-02-28", 100)]

    ok(db, "points", "redeem", "M1", "50", "--at", "2025-07-01")
    assert expiring(db, "M1") == [exp("2025-09-30", 50), exp("2026-02-28", 100)]
    ok(db, "points", "redeem", "M1", "70", "--at", "2025-08-01")  # 50 of Sept, then 20 of Feb
    assert expiring(db, "M1") == [exp("2026-02-28", 80)]
    assert js(db, "points", "expire", "--as-of", "2025-10-01") == {"members": 0, "points": 0}
    assert balance(db, "M1") == 80
    check_ok(db)


def test_equal_expiry_dates_consume_the_oldest_credit_first(db):
    member(db, "M1")
    award(db, "M1", 30, "2025-01-05")  # E = 2026-01-31
    award(db, "M1", 40, "2025-01-20")  # E = 2026-01-31 too
    ok(db, "points", "redeem", "M1", "35", "--at", "2025-02-01")
    assert [(lot.points, lot.remaining) for lot in lots(db)] == [(30, 0), (40, 35)]
    redeem_id = entries(db, kind="redeem")[0].id
    assert raw(db, "SELECT l.points, u.points FROM lot_uses u JOIN lots l ON l.id = u.lot_id "
                   "WHERE u.entry_id = ? ORDER BY l.id", redeem_id) == [(30, 30), (40, 5)]
    assert expiring(db, "M1") == [exp("2026-01-31", 35)]
    check_ok(db)


def test_round_to_day_keeps_the_day_and_clamps_to_month_end(db):
    program_set(db, "expiry.round_to", '"day"')
    member(db, "M1", joined="2024-01-01")
    award(db, "M1", 100, "2025-01-15")  # E = 2026-01-15
    award(db, "M1", 10, "2024-02-29")   # E = 2025-02-28 (no 29 February in 2025)
    assert expiring(db, "M1") == [exp("2025-02-28", 10), exp("2026-01-15", 100)]

    assert js(db, "points", "expire", "--as-of", "2025-02-28") == {"members": 0, "points": 0}
    assert js(db, "points", "expire", "--as-of", "2025-03-01") == {"members": 1, "points": 10}
    assert js(db, "points", "expire", "--as-of", "2026-01-15") == {"members": 0, "points": 0}
    assert js(db, "points", "expire", "--as-of", "2026-01-16") == {"members": 1, "points": 100}
    assert balance(db, "M1") == 0
    check_ok(db)


def test_months_zero_never_expires_and_never_expiring_lots_are_used_last(db):
    program_set(db, "expiry.months", "0")
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")
    assert expiring(db, "M1") == [exp(None, 100)]
    assert js(db, "points", "expire", "--as-of", "2099-12-31", "--allow-future") == {"members": 0, "points": 0}

    # From 2025-06-01 points expire again after 12 months.
    program_set(db, "expiry.months", "12", from_="2025-06-01")
    award(db, "M1", 50, "2025-07-01")  # E = 2026-07-31
    assert expiring(db, "M1") == [exp("2026-07-31", 50), exp(None, 100)]
    ok(db, "points", "redeem", "M1", "60", "--at", "2025-08-01")  # the 50 that expire, then 10 that don't
    assert expiring(db, "M1") == [exp(None, 90)]
    assert js(db, "points", "expire", "--as-of", "2026-08-01") == {"members": 0, "points": 0}
    assert balance(db, "M1") == 90
    check_ok(db)


# -- a debit writes off lapsed lots first ------------------------------------------------------
def test_lapsed_points_cannot_be_spent_and_a_refusal_writes_nothing(db):
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    before = snapshot(db)
    refused(db, "points", "redeem", "M1", "50", "--at", "2026-02-05")
    refused(db, "points", "adjust", "M1", "-50", "--reason", "fix", "--at", "2026-02-05")
    refused(db, "points", "transfer", "M1", "M2", "50", "--at", "2026-02-05")
    assert snapshot(db) == before  # not even the write-off: the whole command was refused
    # Not yet written off by an expiry run, so the balance still shows them (as lapsed).
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 100,
                                                 "expiring": [exp("2026-01-31", 100)], "pending": []}
    # Before the expiry date the same points can be spent.
    ok(db, "points", "redeem", "M1", "50", "--at", "2026-01-31T18:00")
    assert balance(db, "M1") == 50
    check_ok(db)


def test_a_debit_writes_off_lapsed_lots_before_spending(db):
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    award(db, "M2", 100, "2025-01-10")  # E = 2026-01-31
    award(db, "M2", 80, "2025-06-10")   # E = 2026-06-30
    r = js(db, "points", "redeem", "M2", "50", "--at", "2026-02-05")
    assert r["balance"] == 30  # 180 - 100 lapsed - 50 redeemed
    assert [(h["kind"], h["points"], h["balance_after"], h["at"][:10]) for h in history(db, "M2")] == [
        ("award", 100, 100, "2025-01-10"), ("award", 80, 180, "2025-06-10"),
        ("expire", -100, 80, "2026-02-05"), ("redeem", -50, 30, "2026-02-05")]
    assert expiring(db, "M2") == [exp("2026-06-30", 30)]
    # The nightly run then writes off only M1's lapsed lot: one entry for one member.
    assert js(db, "points", "expire", "--as-of", "2026-02-05") == {"members": 1, "points": 100}
    assert js(db, "points", "expire", "--as-of", "2026-02-05") == {"members": 0, "points": 0}
    check_ok(db)


# -- redeem, adjust, award ---------------------------------------------------------------------
def test_redeem_more_than_the_balance_is_refused_and_writes_nothing(db):
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")
    n = ledger_count(db)
    before = snapshot(db)
    line = refused(db, "points", "redeem", "M1", "101", "--at", "2025-02-01")
    assert "100" in line  # says what is available
    refused(db, "points", "redeem", "M1", "101", "--at", "2025-02-01", "--json")
    assert ledger_count(db) == n
    assert snapshot(db) == before
    assert js(db, "points", "redeem", "M1", "100", "--at", "2025-02-01")["balance"] == 0
    refused(db, "points", "redeem", "M1", "1", "--at", "2025-02-02")
    assert ledger_count(db) == n + 1
    check_ok(db)


def test_adjust_takes_a_negative_number_as_written_and_never_goes_below_zero(db):
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")
    r = js(db, "points", "adjust", "M1", "-20", "--reason", "double-scanned receipt", "--at", "2025-02-01")
    assert r["balance"] == 80
    last = history(db, "M1")[-1]
    assert (last["kind"], last["points"], last["note"]) == ("adjust", -20, "double-scanned receipt")
    # Options before the number work too.
    ok(db, "points", "adjust", "M1", "--reason", "till error", "--at", "2025-02-02", "-5")
    assert balance(db, "M1") == 75
    ok(db, "points", "adjust", "M1", "25", "--reason", "goodwill", "--at", "2025-02-03")
    assert balance(db, "M1") == 100
    before = snapshot(db)
    refused(db, "points", "adjust", "M1", "-101", "--reason", "too much", "--at", "2025-02-04")
    assert snapshot(db) == before
    ok(db, "points", "adjust", "M1", "-100", "--reason", "all of it", "--at", "2025-02-04")
    assert balance(db, "M1") == 0
    # A positive adjustment is a credit with its own expiry date.
    ok(db, "points", "adjust", "M1", "10", "--reason", "goodwill", "--at", "2025-03-15")
    assert expiring(db, "M1") == [exp("2026-03-31", 10)]
    check_ok(db)


@pytest.mark.parametrize("verb,points", [("award", "10"), ("adjust", "10"), ("adjust", "-10")])
def test_award_and_adjust_need_a_reason(db, verb, points):
    member(db, "M1")
    award(db, "M1", 50, "2025-01-10")
    before = snapshot(db)
    refused(db, "points", verb, "M1", points, "--at", "2025-02-01", code=2)
    refused(db, "points", verb, "M1", points, "--reason", "  ", "--at", "2025-02-01", code=2)
    assert snapshot(db) == before
    check_ok(db)


def test_the_operator_is_recorded_in_the_by_column(db, monkeypatch):
    monkeypatch.delenv("LOYALTY_OPERATOR", raising=False)
    member(db, "M1")
    member(db, "M2")
    ok(db, "points", "award", "M1", "100", "--reason", "a", "--at", "2025-01-10", "--by", "alice")
    ok(db, "points", "award", "M1", "100", "--reason", "b", "--at", "2025-01-11", env={"LOYALTY_OPERATOR": "bob"})
    ok(db, "points", "award", "M1", "100", "--reason", "c", "--at", "2025-01-12", "--by", "carol",
       env={"LOYALTY_OPERATOR": "bob"})
    ok(db, "points", "award", "M1", "100", "--reason", "d", "--at", "2025-01-13")
    ok(db, "points", "adjust", "M1", "-5", "--reason", "e", "--at", "2025-01-14", env={"LOYALTY_OPERATOR": "dan"})
    ok(db, "points", "redeem", "M1", "5", "--at", "2025-01-15", env={"LOYALTY_OPERATOR": "erin"})
    ok(db, "points", "transfer", "M1", "M2", "5", "--at", "2025-01-16", "--by", "fay")
    assert [(e.kind, e.note, e.by) for e in entries(db)] == [
        ("award", "a", "alice"), ("award", "b", "bob"), ("award", "c", "carol"), ("award", "d", getpass.getuser()),
        ("adjust", "e", "dan"), ("redeem", None, "erin"), ("transfer_out", None, "fay"), ("transfer_in", None, "fay"),
    ]
    check_ok(db)


def test_history_json_has_the_documented_fields_and_a_running_balance(db):
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 100, "2025-01-10", reason="opening balance")
    award(db, "M1", 50, "2025-02-10")
    ok(db, "points", "redeem", "M1", "30", "--at", "2025-03-01")
    ok(db, "points", "adjust", "M1", "-20", "--reason", "fix", "--at", "2025-03-05")
    ok(db, "points", "transfer", "M1", "M2", "10", "--at", "2025-03-06")
    rows = history(db, "M1")
    for entry in rows:
        assert {"id", "at", "kind", "points", "balance_after", "ref", "note"} <= set(entry)
        assert isinstance(entry["id"], int) and isinstance(entry["points"], int)
    assert [(r["kind"], r["points"], r["balance_after"]) for r in rows] == [
        ("award", 100, 100), ("award", 50, 150), ("redeem", -30, 120), ("adjust", -20, 100),
        ("transfer_out", -10, 90)]
    assert [r["at"] for r in rows] == ["2025-01-10T00:00:00", "2025-02-10T00:00:00", "2025-03-01T00:00:00",
                                       "2025-03-05T00:00:00", "2025-03-06T00:00:00"]
    assert rows[0]["note"] == "opening balance"
    assert rows[-1]["ref"] == "M2"
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert rows[-1]["balance_after"] == balance(db, "M1") == 90
    other = history(db, "M2")
    assert [(r["kind"], r["points"], r["balance_after"], r["ref"]) for r in other] == [("transfer_in", 10, 10, "M1")]
    check_ok(db)


def test_redeem_json_shape(db):
    member(db, "M1")
    award(db, "M1", 500, "2025-01-10")
    ok(db, "rewards", "add", "COFFEE", "--name", "Free coffee", "--cost", "150")
    plain = js(db, "points", "redeem", "M1", "100", "--at", "2025-02-01")
    assert plain == {"member_id": "M1", "points": 100, "balance": 400, "voucher": None}
    reward = js(db, "points", "redeem", "M1", "--reward", "COFFEE", "--at", "2025-02-02")
    assert set(reward) == {"member_id", "points", "balance", "voucher"}
    assert (reward["member_id"], reward["points"], reward["balance"]) == ("M1", 150, 250)
    assert isinstance(reward["voucher"], str) and reward["voucher"]
    assert [v["code"] for v in js(db, "vouchers", "list", "--member", "M1")] == [reward["voucher"]]
    check_ok(db)


# -- rewards and vouchers ----------------------------------------------------------------------
def test_rewards_add_list_edit_retire(db):
    r = js(db, "rewards", "add", "COFFEE", "--name", "Free coffee", "--cost", "150", "--stock", "2")
    assert (r["code"], r["name"], r["cost"], r["stock"]) == ("COFFEE", "Free coffee", 150, 2)
    ok(db, "rewards", "add", "CAKE", "--name", "Slice of cake", "--cost", "300")
    listed = js(db, "rewards", "list")
    assert [(x["code"], x["cost"], x["stock"]) for x in listed] == [("CAKE", 300, None), ("COFFEE", 150, 2)]

    refused(db, "rewards", "add", "COFFEE", "--name", "Again", "--cost", "10")
    ok(db, "rewards", "edit", "COFFEE", "--cost", "120", "--stock", "5", "--name", "Coffee")
    coffee = [x for x in js(db, "rewards", "list") if x["code"] == "COFFEE"][0]
    assert (coffee["name"], coffee["cost"], coffee["stock"]) == ("Coffee", 120, 5)
    refused(db, "rewards", "edit", "NOPE", "--cost", "5")

    ok(db, "rewards", "retire", "CAKE")
    assert [x["code"] for x in js(db, "rewards", "list")] == ["COFFEE"]
    every = {x["code"]: x["retired"] for x in js(db, "rewards", "list", "--all")}
    assert every == {"CAKE": True, "COFFEE": False}
    refused(db, "rewards", "retire", "CAKE")
    check_ok(db)


def test_reward_stock_goes_down_and_out_of_stock_or_retired_is_refused(db):
    member(db, "M1")
    award(db, "M1", 1000, "2025-01-10")
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "100", "--stock", "1")
    ok(db, "rewards", "add", "CAKE", "--name", "Cake", "--cost", "50")
    ok(db, "points", "redeem", "M1", "--reward", "MUG", "--at", "2025-02-01")
    assert row(db, "rewards", code="MUG").stock == 0
    assert balance(db, "M1") == 900

    before = snapshot(db)
    refused(db, "points", "redeem", "M1", "--reward", "MUG", "--at", "2025-02-02")  # out of stock
    assert snapshot(db) == before
    ok(db, "rewards", "retire", "CAKE")
    before = snapshot(db)
    refused(db, "points", "redeem", "M1", "--reward", "CAKE", "--at", "2025-02-02")  # retired
    refused(db, "points", "redeem", "M1", "--reward", "NOPE", "--at", "2025-02-02")  # unknown
    assert snapshot(db) == before

    # Not enough points for a reward: refused, and the stock stays.
    member(db, "M2")
    ok(db, "rewards", "add", "PEN", "--name", "Pen", "--cost", "30", "--stock", "4")
    award(db, "M2", 29, "2025-01-10")
    before = snapshot(db)
    refused(db, "points", "redeem", "M2", "--reward", "PEN", "--at", "2025-02-02")
    assert snapshot(db) == before
    assert row(db, "rewards", code="PEN").stock == 4
    check_ok(db)


def _voucher(db, mid, reward, at):
    return js(db, "points", "redeem", mid, "--reward", reward, "--at", at)["voucher"]


def test_voucher_use_is_final(db):
    member(db, "M1")
    award(db, "M1", 500, "2025-01-10")
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "100", "--stock", "3")
    code = _voucher(db, "M1", "MUG", "2025-02-01")
    assert [v["status"] for v in js(db, "vouchers", "list")] == ["issued"]
    ok(db, "vouchers", "use", code, "--at", "2025-02-03")
    assert [v["status"] for v in js(db, "vouchers", "list", "--member", "M1")] == ["used"]
    before = snapshot(db)
    refused(db, "vouchers", "use", code, "--at", "2025-02-04")
    refused(db, "vouchers", "cancel", code, "--at", "2025-02-04")
    refused(db, "vouchers", "use", "VNOSUCH00")
    assert snapshot(db) == before
    assert balance(db, "M1") == 400
    assert row(db, "rewards", code="MUG").stock == 2
    check_ok(db)


def test_voucher_cancel_returns_points_with_their_original_expiry_dates(db):
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    award(db, "M1", 100, "2025-05-10")  # E = 2026-05-31
    ok(db, "rewards", "add", "GIFT", "--name", "Gift box", "--cost", "150", "--stock", "3")
    code = _voucher(db, "M1", "GIFT", "2025-06-01")  # takes 100 of January's lot, 50 of May's
    assert expiring(db, "M1") == [exp("2026-05-31", 50)]
    assert row(db, "rewards", code="GIFT").stock == 2

    r = js(db, "vouchers", "cancel", code, "--at", "2025-07-01")
    assert r["balance"] == 200
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 200,
                                                 "expiring": [exp("2026-01-31", 100), exp("2026-05-31", 100)], "pending": []}
    last = history(db, "M1")[-1]
    assert (last["kind"], last["points"], last["balance_after"]) == ("voucher_cancel", 150, 200)
    assert row(db, "rewards", code="GIFT").stock == 3
    assert [v["status"] for v in js(db, "vouchers", "list")] == ["cancelled"]
    before = snapshot(db)
    refused(db, "vouchers", "cancel", code, "--at", "2025-07-02")
    refused(db, "vouchers", "use", code, "--at", "2025-07-02")
    assert snapshot(db) == before
    # The returned points lapse on their original date.
    assert js(db, "points", "expire", "--as-of", "2026-02-01") == {"members": 1, "points": 100}
    assert balance(db, "M1") == 100
    check_ok(db)


def test_voucher_cancel_writes_off_at_once_what_lapsed_by_the_cancel_date(db):
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    award(db, "M1", 100, "2025-05-10")  # E = 2026-05-31
    ok(db, "rewards", "add", "GIFT", "--name", "Gift box", "--cost", "150", "--stock", "3")
    code = _voucher(db, "M1", "GIFT", "2025-06-01")
    assert balance(db, "M1") == 50

    r = js(db, "vouchers", "cancel", code, "--at", "2026-02-10")
    assert r["balance"] == 100  # 50 + 150 returned - 100 whose date (2026-01-31) has passed
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 100,
                                                 "expiring": [exp("2026-05-31", 100)], "pending": []}
    tail = [(h["kind"], h["points"], h["balance_after"], h["at"][:10]) for h in history(db, "M1")[-2:]]
    assert tail == [("voucher_cancel", 150, 200, "2026-02-10"), ("expire", -100, 100, "2026-02-10")]
    assert row(db, "rewards", code="GIFT").stock == 3
    assert js(db, "points", "expire", "--as-of", "2026-02-10") == {"members": 0, "points": 0}
    check_ok(db)


def test_voucher_cancel_writes_off_only_its_own_lapsed_points(db):
    # A cancel is a credit: the member's other lapsed lots wait for the expiry run (SPEC §6).
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    award(db, "M1", 200, "2025-06-01")  # E = 2026-06-30
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "50")
    code = _voucher(db, "M1", "MUG", "2025-12-01")  # takes 50 of the first lot
    r = js(db, "vouchers", "cancel", code, "--at", "2026-02-10")
    assert (r["points_returned"], r["points_expired"], r["balance"]) == (50, 50, 250)
    assert js(db, "points", "expire", "--as-of", "2026-02-11") == {"members": 1, "points": 50}
    assert balance(db, "M1") == 200
    check_ok(db)


def test_cancelled_voucher_points_go_back_to_the_sales_own_lot_so_a_refund_takes_them_back_first(db):
    """SPEC §6: a cancelled voucher's points "return to the lots they came from", and a refund's
    reversal "first takes back the refunded sale's own lots". So after the cancel, the points a
    sale earned are in that sale's lot again, and refunding the sale takes exactly them back."""
    program_set(db, "expiry.months", "3", from_="2025-05-01")
    member(db, "M1")
    ok(db, "purchases", "add", "M1", "100.00", "--id", "P1", "--at", "2025-03-10")  # 100 points, E = 2026-03-31
    ok(db, "rewards", "add", "GIFT", "--name", "Gift", "--cost", "100")
    code = _voucher(db, "M1", "GIFT", "2025-04-01")  # spends P1's 100
    award(db, "M1", 50, "2025-05-10")  # 3 months from May: E = 2025-08-31
    ok(db, "vouchers", "cancel", code, "--at", "2025-06-01")  # P1's 100 are back, E = 2026-03-31
    assert expiring(db, "M1") == [exp("2025-08-31", 50), exp("2026-03-31", 100)]

    ok(db, "purchases", "refund", "P1", "--at", "2025-06-02")  # reverses P1's 100 points
    # P1's own (returned) points are taken back; the award's 50 stay, with their own date.
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 50,
                                                 "expiring": [exp("2025-08-31", 50)], "pending": []}
    check_ok(db)


def test_sale_points_that_lapse_when_their_voucher_is_cancelled_are_not_reversed_again_by_a_refund(db):
    """SPEC §6: the voucher's points go back to the sale's lot; those that lapsed by the cancel date
    are written off at once; a refund then reverses min(P x refunded / A, P - X) where X counts the
    sale's expired points, so "points that already expired are never taken twice"."""
    member(db, "M1")
    ok(db, "purchases", "add", "M1", "100.00", "--id", "P1", "--at", "2025-03-10")  # 100 points, E = 2026-03-31
    ok(db, "rewards", "add", "GIFT", "--name", "Gift", "--cost", "100")
    code = _voucher(db, "M1", "GIFT", "2025-04-01")
    r = js(db, "vouchers", "cancel", code, "--at", "2026-04-10")  # P1's 100 are back, and lapsed: written off
    assert r["balance"] == 0
    ok(db, "purchases", "refund", "P1", "--at", "2026-04-11")
    # Nothing is left of P1's points to reverse: the balance stays 0 (not -100).
    assert balance(db, "M1") == 0
    assert [h["kind"] for h in history(db, "M1")].count("reversal") == 0
    check_ok(db)


# -- transfers ---------------------------------------------------------------------------------
def test_transfer_keeps_the_senders_expiry_dates(db):
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    award(db, "M1", 50, "2025-03-05")   # E = 2026-03-31
    ok(db, "points", "transfer", "M1", "M2", "120", "--at", "2025-06-01")
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 30,
                                                 "expiring": [exp("2026-03-31", 30)], "pending": []}
    assert js(db, "points", "balance", "M2") == {"member_id": "M2", "balance": 120,
                                                 "expiring": [exp("2026-01-31", 100), exp("2026-03-31", 20)], "pending": []}
    assert [(h["kind"], h["points"], h["ref"]) for h in history(db, "M1")][-1] == ("transfer_out", -120, "M2")
    assert [(h["kind"], h["points"], h["ref"]) for h in history(db, "M2")] == [("transfer_in", 120, "M1")]
    # The gifted points lapse when the sender's would have.
    assert js(db, "points", "expire", "--as-of", "2026-02-01") == {"members": 1, "points": 100}
    assert balance(db, "M2") == 20
    check_ok(db)


def test_transfer_refusals_write_nothing(db):
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 100, "2025-01-10")
    before = snapshot(db)
    refused(db, "points", "transfer", "M1", "M1", "10", "--at", "2025-02-01")   # to oneself
    refused(db, "points", "transfer", "M1", "M2", "101", "--at", "2025-02-01")  # beyond the balance
    refused(db, "points", "transfer", "M1", "M9", "10", "--at", "2025-02-01")   # unknown receiver
    refused(db, "points", "transfer", "M9", "M1", "10", "--at", "2025-02-01")   # unknown sender
    assert snapshot(db) == before
    check_ok(db)


def test_transfer_monthly_limit_counts_this_transfer_per_sender_per_calendar_month(db):
    program_set(db, "transfers.max_points_per_month", "100")
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 500, "2025-10-01")
    ok(db, "points", "transfer", "M1", "M2", "60", "--at", "2025-11-03")
    ok(db, "points", "transfer", "M1", "M2", "40", "--at", "2025-11-20")  # exactly 100 this month
    before = snapshot(db)
    refused(db, "points", "transfer", "M1", "M2", "1", "--at", "2025-11-30T23:59")
    assert snapshot(db) == before
    ok(db, "points", "transfer", "M1", "M2", "1", "--at", "2025-12-01")  # a new month
    refused(db, "points", "transfer", "M1", "M2", "100", "--at", "2025-12-31")  # 1 + 100 > 100
    # The limit is per sender: M2 may still send 100 in November.
    ok(db, "points", "transfer", "M2", "M1", "100", "--at", "2025-11-30")
    # A single transfer above the limit is refused too.
    refused(db, "points", "transfer", "M1", "M2", "101", "--at", "2026-01-05")
    assert balance(db, "M1") == 500 - 60 - 40 - 1 + 100
    assert balance(db, "M2") == 60 + 40 + 1 - 100
    check_ok(db)


def test_transfers_disabled_are_refused_by_the_rules_in_force_on_the_date(db):
    program_set(db, "transfers.enabled", "false")
    member(db, "M1")
    member(db, "M2")
    award(db, "M1", 100, "2025-01-10")
    before = snapshot(db)
    refused(db, "points", "transfer", "M1", "M2", "10", "--at", "2025-02-01")
    assert snapshot(db) == before
    program_set(db, "transfers.enabled", "true", from_="2025-06-01")
    refused(db, "points", "transfer", "M1", "M2", "10", "--at", "2025-05-31")
    ok(db, "points", "transfer", "M1", "M2", "10", "--at", "2025-06-01")
    assert (balance(db, "M1"), balance(db, "M2")) == (90, 10)
    check_ok(db)


# -- signup bonus ------------------------------------------------------------------------------
def test_signup_bonus_is_an_entry_dated_the_joining_day(db):
    # The first programme version applies from the beginning of time: no --from needed.
    ok(db, "program", "set", "earn.signup_bonus", "50")
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-02-03")
    rows = history(db, "M1")
    assert [(r["kind"], r["points"], r["balance_after"]) for r in rows] == [("signup", 50, 50)]
    assert rows[0]["at"][:10] == "2025-02-03"
    assert js(db, "points", "balance", "M1") == {"member_id": "M1", "balance": 50,
                                                 "expiring": [exp("2026-02-28", 50)], "pending": []}
    check_ok(db)


def test_changing_the_rules_never_changes_expiry_dates_already_given(db):
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")  # E = 2026-01-31
    program_set(db, "expiry.months", "1")  # from 2000-01-01: applies to 2025 too, but only to new credits
    assert expiring(db, "M1") == [exp("2026-01-31", 100)]
    award(db, "M1", 10, "2025-01-10")  # E = 2025-02-28 under the new rules
    assert expiring(db, "M1") == [exp("2025-02-28", 10), exp("2026-01-31", 100)]
    check_ok(db)


def test_unknown_member_is_refused_with_exit_1(db):
    member(db, "M1")
    refused(db, "points", "balance", "M9")
    refused(db, "points", "history", "M9")
    refused(db, "points", "award", "M9", "10", "--reason", "x", "--at", "2025-01-10")
    refused(db, "points", "redeem", "M9", "10", "--at", "2025-01-10")
    assert ledger_count(db) == 0


def test_nightly_expire_is_quiet_with_q(db):
    member(db, "M1")
    award(db, "M1", 100, "2025-01-10")
    result = run(db, "points", "expire", "--as-of", "2026-02-01", "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert balance(db, "M1") == 0
    result = run(db, "points", "expire", "--as-of", "2026-02-01", "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    check_ok(db)
