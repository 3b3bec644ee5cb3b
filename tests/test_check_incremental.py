"""`db check` after a seal (issue 17): the rows written since the seal are compared with the chain,
with the cached figures of the members and days they touched and whole-database sums; `--full`
compares every row. What each mode finds, and what only `--full` finds, shop-owner style."""

from __future__ import annotations

import json

import pytest

from tests.db import connect
from tests.helpers import fresh_db, is_postgres, ok, run, trigger_table


@pytest.fixture
def shop(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    for mid in ("M1", "M2", "M3"):
        ok(db, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "purchases", "add", "M1", "100.00", "--id", "S1", "--at", "2025-02-01")
    ok(db, "purchases", "add", "M2", "50.00", "--id", "S2", "--at", "2025-02-02")
    ok(db, "db", "seal")
    ok(db, "purchases", "add", "M3", "30.00", "--id", "S3", "--at", "2025-03-01")  # after the seal
    return db


def check(db, *args):
    result = run(db, "db", "check", "--json", *args)
    assert "Traceback" not in result.output
    return result.exit_code, [p["message"] for p in json.loads(result.stdout)["problems"]]


def edit(db, sql: str, trigger: str | None = None) -> None:
    """An edit made with the sqlite3 shell, its guard dropped for the moment and put back."""
    with connect(db) as conn:
        saved = None
        if trigger and is_postgres(conn):  # the same guard, disabled for the moment and enabled again
            table = trigger_table(conn, trigger)
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
            conn.execute(sql)
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
            return
        if trigger:
            (saved,), = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (trigger,)).fetchall()
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute(sql)
        if saved:
            conn.execute(saved)


def test_after_a_seal_check_says_it_compared_from_the_seal_and_full_says_nothing_more(shop):
    result = ok(shop, "db", "check")
    assert result.stdout.startswith("ok: every check passed (rows compared from the seal at block ")
    assert result.stdout.rstrip().endswith("; --full compares every row)")
    assert ok(shop, "db", "check", "--full").stdout == "ok: every check passed\n"
    assert json.loads(ok(shop, "db", "check", "--json").stdout) == {"ok": True, "problems": []}


def test_a_row_written_since_the_seal_and_edited_is_found_by_both(shop):
    edit(shop, "UPDATE purchases SET amount = 999999 WHERE purchase_id = 'S3'", "purchases_no_update")
    for args in ((), ("--full",)):
        code, problems = check(shop, *args)
        assert code == 4
        assert any(m.startswith("purchase S3 (purchases): amount is 999999 but the chain recorded 3000") for m in problems), problems


def test_a_sealed_row_edited_with_its_guard_put_back_is_found_by_full_only(shop):
    """The limit of the incremental check, as the README says: history before the seal is compared
    by --full (weekly); the nightly check compares what changed since."""
    edit(shop, "UPDATE lots SET expires_on = '9999-12-31' WHERE purchase_id = 'S1'", "lots_no_update")
    assert check(shop) == (0, [])
    code, problems = check(shop, "--full")
    assert code == 4 and any("expires_on is '9999-12-31' but the chain recorded" in m for m in problems), problems


def test_a_sealed_members_balance_edited_is_found_by_the_whole_database_sums(shop):
    edit(shop, "UPDATE members SET balance = balance + 500 WHERE member_id = 'M1'")
    code, problems = check(shop)
    assert code == 4
    assert any(m.startswith("the members' balances add up to ") and "(loyalty db check --full names the members)" in m
               for m in problems), problems
    code, problems = check(shop, "--full")
    assert code == 4 and "balance shown is 600 but the entries add up to 100" in problems, problems


def test_a_voucher_or_reward_edited_before_the_seal_is_found_by_every_check(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2025-01-01")
    ok(db, "points", "award", "M1", "500", "--reason", "welcome", "--at", "2025-02-01")
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "100", "--stock", "5")
    code = json.loads(ok(db, "points", "redeem", "M1", "--reward", "MUG", "--at", "2025-02-02", "--json").stdout)
    voucher = code["voucher"]
    ok(db, "vouchers", "use", voucher, "--at", "2025-02-03")
    ok(db, "db", "seal")
    edit(db, f"UPDATE vouchers SET status = 'issued', closed_at = NULL WHERE code = '{voucher}'", "vouchers_no_update")
    edit(db, "UPDATE rewards SET stock = 50 WHERE code = 'MUG'")
    for args in ((), ("--full",)):
        code, problems = check(db, *args)
        assert code == 4
        assert any(m.startswith(f"voucher {voucher}: status is 'issued' but the chain recorded 'used'") for m in problems), problems
        assert any(m.startswith("reward MUG: stock is 50 but the chain recorded 4") for m in problems), problems


def test_a_tier_forged_on_a_sealed_member_is_found_by_every_check(shop):
    edit(shop, "UPDATE members SET tier = 'Platinum' WHERE member_id = 'M2'")
    for args in ((), ("--full",)):
        code, problems = check(shop, *args)
        assert code == 4 and any(m.startswith("member M2: tier is 'Platinum' but the chain recorded") for m in problems), problems
