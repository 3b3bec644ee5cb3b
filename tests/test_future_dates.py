"""Writing the future needs --allow-future (issue 15, SPEC §3 'Time').

`points expire --as-of 2027-12-04` (a typo in a cron line) wrote off every balance
in the shop, exit 0, in an append-only ledger. Every command that would write
something dated after today now refuses (exit 2, one `Error:` line saying what it
would have done, nothing written) unless given --allow-future; an import row dated
after today is a bad row. Dates here are relative to the real today, as the CLI's.
"""

from __future__ import annotations

import datetime as dt
import pytest

from tests.db import connect, count, members, purchases
from tests.helpers import as_json, ok, one_error_line, run

TODAY = dt.date.today()
NEXT_YEAR = (TODAY + dt.timedelta(days=364)).isoformat()  # the typo: a year too far
SOON = (TODAY + dt.timedelta(days=30)).isoformat()  # before any of the shop's points lapse
TOMORROW = (TODAY + dt.timedelta(days=1)).isoformat()
LAST_YEAR = (TODAY - dt.timedelta(days=200)).isoformat()


def dump(db) -> list[str]:
    """Everything the database holds, to show that a refused command wrote nothing."""
    with connect(db) as conn:
        return list(conn.iterdump())


@pytest.fixture
def shop(tmp_path):
    """Two members with points, a sale, a reward with an issued voucher."""
    db = tmp_path / "shop.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", LAST_YEAR)
    ok(db, "members", "add", "--id", "M2", "--name", "Ben", "--joined", LAST_YEAR)
    ok(db, "points", "award", "M1", "500", "--reason", "welcome", "--at", LAST_YEAR)
    ok(db, "purchases", "add", "M1", "20.00", "--id", "P1", "--at", LAST_YEAR)
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "100")
    voucher = as_json(db, "points", "redeem", "M1", "--reward", "MUG", "--at", LAST_YEAR)["voucher"]
    members_csv = tmp_path / "members.csv"
    members_csv.write_text("member_id,name\nM9,Cleo\n")
    return db, voucher, members_csv


# Every command that writes something dated: (arguments, the date option's shown value, what it would do)
def commands(voucher: str, members_csv) -> list[tuple[list[str], str]]:
    at = f"{SOON}T00:00:00"
    return [
        (["points", "award", "M1", "10", "--reason", "r", "--at", SOON], f"--at {at}"),
        (["points", "adjust", "M1", "-5", "--reason", "r", "--at", SOON], f"--at {at}"),
        (["points", "redeem", "M1", "10", "--at", SOON], f"--at {at}"),
        (["points", "transfer", "M1", "M2", "10", "--at", SOON], f"--at {at}"),
        (["points", "expire", "--as-of", NEXT_YEAR], f"--as-of {NEXT_YEAR}"),  # the points lapse by then
        (["purchases", "add", "M1", "10.00", "--at", SOON], f"--at {at}"),
        (["purchases", "refund", "P1", "--at", SOON], f"--at {at}"),
        (["tiers", "recalc", "--as-of", SOON], f"--as-of {SOON}"),
        (["tiers", "set", "M1", "Gold", "--at", SOON], f"--at {at}"),
        (["vouchers", "use", voucher, "--at", SOON], f"--at {at}"),
        (["vouchers", "cancel", voucher, "--at", SOON], f"--at {at}"),
        (["rewards", "retire", "MUG", "--at", SOON], f"--at {at}"),
        (["members", "add", "--name", "Dee", "--joined", SOON], f"--joined {SOON}"),
        (["members", "edit", "M2", "--joined", SOON], f"--joined {SOON}"),
        (["members", "erase", "M2", "--yes", "--at", SOON], f"--at {at}"),
        (["members", "import", str(members_csv), "--at", SOON], f"--at {SOON}"),
        (["feedback", "add", "M1", "9", "--at", SOON], f"--at {at}"),
    ]


COMMAND_NAMES = ["award", "adjust", "redeem", "transfer", "expire", "sale", "refund", "recalc", "tiers set",
                 "voucher use", "voucher cancel", "reward retire", "members add", "members edit", "erase",
                 "members import", "feedback"]


@pytest.mark.parametrize("index", range(len(COMMAND_NAMES)), ids=COMMAND_NAMES)
def test_a_command_dated_after_today_refuses_without_allow_future_and_writes_nothing(shop, index):
    db, voucher, members_csv = shop
    args, shown = commands(voucher, members_csv)[index]
    before = dump(db)
    result = run(db, *args)
    assert result.exit_code == 2, (args, result.stdout, result.stderr)
    line = one_error_line(result)
    assert line.startswith(f"Error: {shown} is after today ({TODAY.isoformat()}): this would ")
    assert line.endswith("; pass --allow-future if that is what you mean")
    assert dump(db) == before

    ok(db, *args, "--allow-future")  # the same command, meant: done
    assert dump(db) != before


def test_the_cron_typo_says_it_would_write_off_every_balance(shop):
    db, _, _ = shop
    result = run(db, "points", "expire", "--as-of", NEXT_YEAR, "-q")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"Error: --as-of {NEXT_YEAR} is after today ({TODAY.isoformat()}): this would write off every member's points "
        "that lapse by then; pass --allow-future if that is what you mean")
    assert count(db, "ledger", kind="expire") == 0
    assert as_json(db, "points", "balance", "M1")["balance"] == 500 - 100 + 20


def test_a_sale_dated_9999_12_31_is_refused_at_the_counter(shop):
    db, _, _ = shop
    result = run(db, "purchases", "add", "M1", "12.00", "--id", "FOREVER", "--at", "9999-12-31")
    assert result.exit_code == 2
    assert "this would record a sale by M1 dated then, and its points" in one_error_line(result)
    assert count(db, "purchases", purchase_id="FOREVER") == 0


def test_later_today_and_dry_runs_need_no_flag(shop):
    db, _, _ = shop
    ok(db, "points", "award", "M1", "5", "--reason", "tonight", "--at", f"{TODAY.isoformat()}T23:59:59")
    ok(db, "points", "expire", "--as-of", TODAY.isoformat())
    dry = ok(db, "tiers", "recalc", "--as-of", NEXT_YEAR, "--dry-run")
    assert "dry run" in dry.stdout
    assert count(db, "recalc_runs") == 0


# -- imports ---------------------------------------------------------------------------------
def test_a_purchase_row_dated_after_today_is_a_bad_row(shop, tmp_path):
    db, _, _ = shop
    csv = tmp_path / "day.csv"
    csv.write_text("purchase_id,member_id,purchased_at,amount\n"
                   f"T1,M1,{LAST_YEAR},10.00\n"
                   f"T2,M1,{TOMORROW}T09:00,10.00\n"
                   "T3,M2,9999-12-31,99.00\n")
    before = dump(db)
    result = run(db, "purchases", "import", str(csv))
    assert result.exit_code == 3 and result.stdout == ""
    assert f"  line 3: purchased_at {TOMORROW}T09:00:00 is after today ({TODAY.isoformat()}): import with " \
           "--allow-future if rows dated after today are meant" in result.stderr.splitlines()
    assert any(line.startswith("  line 4: purchased_at 9999-12-31T00:00:00 is after today")
               for line in result.stderr.splitlines())
    assert dump(db) == before  # all or nothing

    rejects = tmp_path / "rejects.csv"
    skipped = run(db, "purchases", "import", str(csv), "--skip-bad", "--rejects", str(rejects))
    assert skipped.exit_code == 3
    assert [p.purchase_id for p in purchases(db) if p.purchase_id.startswith("T")] == ["T1"]
    assert "--allow-future" in rejects.read_text()

    doc = as_json(db, "purchases", "import", str(csv), "--allow-future")
    assert (doc["imported"], doc["duplicates"]) == (2, 1)
    assert [p.purchase_id for p in purchases(db) if p.purchase_id.startswith("T")] == [
        "T1", "T2", "T3"]


def test_a_dry_run_import_reports_rows_dated_after_today(shop, tmp_path):
    db, _, _ = shop
    csv = tmp_path / "day.csv"
    csv.write_text(f"purchase_id,member_id,purchased_at,amount\nT2,M1,{NEXT_YEAR},10.00\n")
    result = run(db, "purchases", "import", str(csv), "--dry-run")
    assert result.exit_code == 3 and "line 2: purchased_at" in result.stderr


def test_a_member_row_joining_after_today_is_a_bad_row(shop, tmp_path):
    db, _, _ = shop
    csv = tmp_path / "members.csv"
    csv.write_text(f"member_id,name,joined_on\nN1,Ned,{LAST_YEAR}\nN2,Nia,{NEXT_YEAR}\n")
    result = run(db, "members", "import", str(csv))
    assert result.exit_code == 3
    assert f"  line 3: joined_on {NEXT_YEAR} is after today ({TODAY.isoformat()}): import with --allow-future " \
           "if rows dated after today are meant" in result.stderr.splitlines()
    assert [m for m in members(db) if m.member_id in ("N1", "N2")] == []

    ok(db, "members", "import", str(csv), "--allow-future")
    assert [(m.member_id, m.joined_on) for m in members(db) if m.member_id in ("N1", "N2")] == [
        ("N1", LAST_YEAR), ("N2", NEXT_YEAR)]


def test_a_tier_reached_on_a_future_date_is_not_shown_as_held_today(tmp_path):
    """members show without --as-of is the tier held today, as `--as-of today` says, even after a
    sale dated ahead (--allow-future) lifted the member from that date."""
    import datetime as dt

    from tests.helpers import as_json, ok

    db = tmp_path / "shop.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2026-01-01")
    ahead = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    ok(db, "purchases", "add", "M1", "1000.00", "--at", ahead, "--allow-future")
    today = as_json(db, "members", "show", "M1", "--as-of", dt.date.today().isoformat())
    assert today["tier"] == "Bronze"
    assert as_json(db, "members", "show", "M1")["tier"] == "Bronze"
    assert as_json(db, "members", "show", "M1", "--as-of", ahead)["tier"] == "Silver"


def test_a_birthday_after_today_is_refused_at_the_counter_and_in_an_import(tmp_path):
    """A birthday is in the past: 2090 for 1990 is a typo, and the birthday report would show age -64."""
    import datetime as dt

    from tests.helpers import ok, run

    db = tmp_path / "shop.db"
    ok(db, "init")
    ahead = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    result = run(db, "members", "add", "--id", "M1", "--name", "Ann", "--birthday", ahead)
    assert result.exit_code == 2 and f"--birthday {ahead} is after today" in result.stderr
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--birthday", "1990-04-12")
    assert run(db, "members", "edit", "M1", "--birthday", ahead).exit_code == 2
    (tmp_path / "m.csv").write_text(f"member_id,name,birthday\nM2,Bo,{ahead}\n")
    result = run(db, "members", "import", tmp_path / "m.csv")
    assert result.exit_code == 3 and f"line 2: birthday {ahead} is after today" in result.stderr
    assert as_json_birthday(db, "M1") == "1990-04-12"


def as_json_birthday(db, member_id):
    from tests.helpers import as_json

    return as_json(db, "members", "show", member_id)["birthday"]
