"""Tiers as a shop owner sees them: upgrades at the till, the nightly recalc, holds, manual tiers.

Default levels: Bronze 0, Silver 500.00 (1.25×), Gold 1500.00 (1.5×), Platinum
5000.00 (2×); spend basis, rolling 12 months, held 12 months.
"""

from __future__ import annotations

import json

import pytest

from tests.db import connect, count, members, rows, tier_history
from tests.helpers import job_is_running, job_running


@pytest.fixture
def shop(run):
    """A helper to enrol a member and record sales/refunds with one call each."""

    class Shop:
        def member(self, mid, joined="2025-01-01"):
            assert run("members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", joined).exit_code == 0

        def sale(self, mid, amount, at, pid):
            r = run("purchases", "add", mid, amount, "--at", at, "--id", pid, "--json")
            assert r.exit_code == 0, r.stderr
            return json.loads(r.stdout)

        def refund(self, pid, amount, at, rid):
            r = run("purchases", "refund", pid, amount, "--at", at, "--id", rid, "--json")
            assert r.exit_code == 0, r.stderr
            return json.loads(r.stdout)

        def tier(self, mid, as_of=None):
            args = ["members", "show", mid, "--json"] + (["--as-of", as_of] if as_of else [])
            return json.loads(run(*args).stdout)["tier"]

        def recalc(self, as_of, *extra):
            r = run("tiers", "recalc", "--as-of", as_of, "--json", *extra)
            assert r.exit_code == 0, r.stderr
            return json.loads(r.stdout)

    return Shop()


def test_crossing_silver_mid_year_earns_the_next_sale_at_silver(shop, run):
    shop.member("M1")
    assert shop.sale("M1", "450.00", "2025-03-01T10:00", "P1")["points"] == 450
    lifting = shop.sale("M1", "100.00", "2025-06-15T10:00", "P2")
    assert lifting["points"] == 100  # the sale that lifts earns at the old tier
    assert lifting["tier"] == "Silver"
    assert shop.sale("M1", "100.00", "2025-06-16T10:00", "P3")["points"] == 125  # 100 earn + 25 tier:Silver
    history = json.loads(run("tiers", "history", "M1", "--json").stdout)
    assert [(h["from"], h["to"], h["reason"], h["at"][:10]) for h in history] == [("Bronze", "Silver", "purchase", "2025-06-15")]
    statement = json.loads(run("points", "history", "M1", "--json").stdout)
    assert [(e["kind"], e["points"], e["note"]) for e in statement if e["ref"] == "P3"] == [
        ("earn", 100, None), ("bonus", 25, "tier:Silver")]


def test_members_show_as_of_a_date_gives_the_tier_held_then_and_since_when(shop, run):
    shop.member("M1", joined="2025-01-01")
    shop.sale("M1", "600.00", "2025-03-10T10:00", "P1")   # Silver from 2025-03-10
    shop.sale("M1", "1000.00", "2025-05-20T10:00", "P2")  # Gold from 2025-05-20

    def shown(as_of):
        doc = json.loads(run("members", "show", "M1", "--json", "--as-of", as_of).stdout)
        return doc["tier"], doc["tier_since"]

    assert shown("2025-02-01") == ("Bronze", "2025-01-01")
    assert shown("2025-04-01") == ("Silver", "2025-03-10")
    assert shown("2025-06-01") == ("Gold", "2025-05-20")


def test_a_member_who_stops_buying_keeps_gold_until_the_hold_ends(shop):
    shop.member("M1")
    shop.sale("M1", "1600.00", "2025-03-01T10:00", "P1")
    shop.sale("M1", "600.00", "2025-09-01T10:00", "P2")
    assert shop.tier("M1") == "Gold"
    # A year after 2025-03-01 the big sale leaves the window, but the hold runs to 2026-03-01.
    assert shop.recalc("2026-02-28")["downgraded"] == 0
    assert shop.tier("M1") == "Gold"
    result = shop.recalc("2026-03-01")
    assert result["changes"] == [{"member_id": "M1", "from": "Gold", "to": "Silver"}]  # 600.00 still in the window
    assert (result["upgraded"], result["downgraded"]) == (0, 1)
    assert shop.tier("M1") == "Silver"
    assert shop.tier("M1", as_of="2026-02-28") == "Gold"


def test_recalc_twice_for_the_same_date_changes_nothing_the_second_time(shop, db):
    shop.member("M1")
    shop.member("M2")
    shop.sale("M1", "1600.00", "2025-03-01T10:00", "P1")
    first = shop.recalc("2026-03-02")
    assert first["downgraded"] == 1
    changes = tier_history(db)
    second = shop.recalc("2026-03-02")
    assert (second["upgraded"], second["downgraded"], second["unchanged"], second["changes"]) == (0, 0, 2, [])
    assert tier_history(db) == changes


def test_a_recalc_dated_before_the_latest_is_refused_unless_dry_run(shop, run, db):
    shop.member("M1")
    shop.recalc("2026-01-31")
    r = run("tiers", "recalc", "--as-of", "2026-01-30")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error:") and r.stdout == ""
    assert run("tiers", "recalc", "--as-of", "2026-01-30", "--dry-run").exit_code == 0
    assert [r.as_of for r in rows(db, "recalc_runs")] == ["2026-01-31"]


def test_dry_run_reports_changes_but_writes_none(shop, db):
    shop.member("M1")
    shop.sale("M1", "1600.00", "2025-03-01T10:00", "P1")
    result = shop.recalc("2026-03-02", "--dry-run")
    assert result["changes"] == [{"member_id": "M1", "from": "Gold", "to": "Bronze"}]
    assert shop.tier("M1") == "Gold"
    assert count(db, "recalc_runs") == 0


def test_manual_platinum_holds_against_recalc_and_lapses_after_its_date(shop, run):
    shop.member("M1")
    shop.sale("M1", "100.00", "2026-01-05T10:00", "P1")
    r = run("tiers", "set", "M1", "Platinum", "--until", "2026-06-30", "--at", "2026-01-10", "--by", "owner")
    assert r.exit_code == 0, r.stderr
    assert shop.tier("M1") == "Platinum"
    assert shop.sale("M1", "10.00", "2026-02-01T10:00", "P2")["points"] == 20  # Platinum earns 2×
    assert shop.recalc("2026-06-30")["changes"] == []
    assert shop.recalc("2026-07-01")["changes"] == [{"member_id": "M1", "from": "Platinum", "to": "Bronze"}]
    history = json.loads(run("tiers", "history", "M1", "--json").stdout)
    assert [(h["to"], h["reason"], h["by"]) for h in history] == [("Platinum", "manual", "owner"), ("Bronze", "recalc", None)]



def test_manual_tier_applies_downwards_at_once(shop, run):
    shop.member("M1")
    shop.sale("M1", "600.00", "2025-03-01T10:00", "P1")
    assert shop.tier("M1") == "Silver"
    assert run("tiers", "set", "M1", "bronze", "--at", "2025-03-02").exit_code == 0  # names match case-insensitively
    assert shop.tier("M1") == "Bronze"
    result = run("tiers", "set", "M1", "Diamond")  # a bad argument, as `members list --tier Diamond`
    assert result.exit_code == 2 and "there is no tier 'Diamond'" in result.stderr
    assert shop.tier("M1") == "Bronze"


def test_upgrade_undone_by_refunds_is_not_protected_by_the_hold(shop):
    shop.member("M1")
    shop.sale("M1", "600.00", "2025-06-01T10:00", "P1")
    assert shop.tier("M1") == "Silver"
    shop.refund("P1", "200.00", "2025-06-10T10:00", "R1")
    result = shop.recalc("2025-07-01")
    assert result["changes"] == [{"member_id": "M1", "from": "Silver", "to": "Bronze"}]


def test_an_undone_upgrade_falls_to_the_manual_floor_and_keeps_it(shop, run, db):
    shop.member("K", joined="2024-01-01")
    assert run("tiers", "set", "K", "Silver", "--until", "2026-12-31", "--at", "2025-01-01", "--by", "owner").exit_code == 0
    shop.sale("K", "1600.00", "2025-02-01T10:00", "K1")            # Gold
    shop.refund("K1", "1200.00", "2025-03-01T10:00", "KR1")        # 400 left: the upgrade is undone
    assert shop.recalc("2025-03-02")["changes"] == [{"member_id": "K", "from": "Gold", "to": "Silver"}]
    assert [(m.tier, m.floor_tier, m.floor_until) for m in members(db)] == [("Silver", "Silver", "2026-12-31")]


def test_undone_upgrade_counts_refunds_in_the_window_of_older_sales(shop):
    # On the upgrade date (2025-04-01) the window holds B (800) and the refund RA (-200, of a sale
    # from before the window, counted on its own date): 600, Silver. RB (-150) since: 450 < 500.
    shop.member("U", joined="2024-01-01")
    shop.sale("U", "200.00", "2024-03-01T10:00", "A")
    shop.refund("A", "200.00", "2025-03-05T10:00", "RA")
    assert shop.sale("U", "800.00", "2025-04-01T10:00", "B")["tier"] == "Silver"
    shop.refund("B", "150.00", "2025-05-01T10:00", "RB")
    assert shop.recalc("2025-05-02")["changes"] == [{"member_id": "U", "from": "Silver", "to": "Bronze"}]


def test_refunds_of_other_sales_do_not_undo_an_upgrade(shop):
    shop.member("M1")
    shop.sale("M1", "100.00", "2025-05-01T10:00", "P0")
    shop.sale("M1", "450.00", "2025-06-01T10:00", "P1")
    assert shop.tier("M1") == "Silver"
    shop.refund("P0", "40.00", "2025-06-10T10:00", "R0")  # 510.00 on the upgrade date still qualifies
    assert shop.recalc("2025-07-01")["changes"] == []


def test_calendar_year_window(shop, run):
    assert run("program", "set", "tiers.window", "calendar_year").exit_code == 0
    assert run("program", "set", "tiers.hold_months", "0", "--from", "2000-01-01").exit_code == 0
    shop.member("M1")
    shop.sale("M1", "600.00", "2025-06-01T10:00", "P1")
    assert shop.tier("M1") == "Silver"
    assert shop.recalc("2025-12-31")["changes"] == []
    assert shop.recalc("2026-01-01")["changes"] == [{"member_id": "M1", "from": "Silver", "to": "Bronze"}]


def test_lifetime_window_counts_everything(shop, run):
    assert run("program", "set", "tiers.window", "lifetime").exit_code == 0
    shop.member("M1", joined="2023-01-01")
    shop.sale("M1", "300.00", "2023-06-01T10:00", "P1")
    assert shop.sale("M1", "300.00", "2026-06-01T10:00", "P2")["tier"] == "Silver"


def test_points_basis_counts_points_earned_not_the_balance(shop, run, tmp_path):
    program = tmp_path / "points.toml"
    program.write_text(
        '[tiers]\nbasis = "points"\nlevels = [\n'
        '  { name = "Bronze", min = "0", multiplier = "1" },\n'
        '  { name = "Silver", min = "500", multiplier = "1.5" },\n]\n')
    assert run("program", "load", program).exit_code == 0, run("program", "load", program).stderr
    shop.member("M1")
    shop.sale("M1", "400.00", "2025-06-01T10:00", "P1")
    assert run("points", "redeem", "M1", "400", "--at", "2025-06-02").exit_code == 0
    lifting = shop.sale("M1", "150.00", "2025-06-03T10:00", "P2")
    assert lifting["balance"] == 150
    assert shop.tier("M1") == "Silver"  # 550 points earned, balance only 150
    shown = json.loads(run("members", "show", "M1", "--json", "--as-of", "2025-06-03").stdout)
    assert shown["next_tier"] is None and shown["to_next_tier"] is None


def test_tier_bonus_points_do_not_count_towards_a_points_tier(shop, run, tmp_path):
    program = tmp_path / "points.toml"
    program.write_text(
        '[tiers]\nbasis = "points"\nlevels = [\n'
        '  { name = "Bronze", min = "0", multiplier = "1" },\n'
        '  { name = "Silver", min = "100", multiplier = "2" },\n'
        '  { name = "Gold", min = "250", multiplier = "2" },\n]\n')
    assert run("program", "load", program).exit_code == 0
    shop.member("M1")
    shop.sale("M1", "100.00", "2025-06-01T10:00", "P1")  # 100 points → Silver
    assert shop.sale("M1", "100.00", "2025-06-02T10:00", "P2")["points"] == 200  # 100 earn + 100 tier bonus
    assert shop.tier("M1") == "Silver"  # 200 qualifying points, not 300


def test_tiers_list_counts_members(shop, run):
    shop.member("M1")
    shop.member("M2")
    shop.sale("M1", "600.00", "2025-06-01T10:00", "P1")
    rows = json.loads(run("tiers", "list", "--json").stdout)
    assert [(r["tier"], r["members"]) for r in rows] == [("Bronze", 1), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    assert rows[1]["multiplier"] == "1.25"
    csv_out = run("tiers", "list", "--csv").stdout.splitlines()
    assert csv_out[0] == "tier,min,multiplier,members"


def test_members_show_progress_to_next_tier(shop, run):
    shop.member("M1")
    shop.sale("M1", "120.50", "2025-06-01T10:00", "P1")
    shown = json.loads(run("members", "show", "M1", "--json", "--as-of", "2025-06-30").stdout)
    assert (shown["tier"], shown["spend_in_window"], shown["next_tier"], shown["to_next_tier"]) == (
        "Bronze", "120.50", "Silver", "379.50")


def test_quiet_recalc_prints_nothing(shop, run):
    shop.member("M1")
    r = run("tiers", "recalc", "--as-of", "2026-01-01", "-q")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    r = run("points", "expire", "--as-of", "2026-01-01", "-q")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.parametrize("job, args", [("recalc", ["tiers", "recalc"]), ("expire", ["points", "expire"])])
def test_a_second_nightly_job_while_one_runs_exits_75_at_once(loyalty_proc, db, job, args):
    assert loyalty_proc("--db", db, "init").returncode == 0
    with job_running(db, job):  # as a running job would
        r = loyalty_proc("--db", db, *args, "-q", env={"LOYALTY_BUSY_TIMEOUT": "30"}, timeout=20)
    assert r.returncode == 75
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error:") and "Traceback" not in r.stderr
    assert loyalty_proc("--db", db, *args, "-q").returncode == 0  # lock released: runs again


def test_two_recalcs_at_once_one_runs_the_other_exits_75(loyalty_proc, db, tmp_path):
    import subprocess
    import sys

    assert loyalty_proc("--db", db, "init").returncode == 0
    # Hold the database itself so the first recalc waits inside its job lock.
    with connect(db, isolation_level=None) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        first = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(db), "tiers", "recalc", "-q"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**__import__("os").environ, "LOYALTY_BUSY_TIMEOUT": "30"})
        try:
            for _ in range(100):  # wait until the first one holds its job lock
                if job_is_running(db, "recalc"):
                    break
                __import__("time").sleep(0.1)
            second = loyalty_proc("--db", db, "tiers", "recalc", "-q", timeout=20)
        finally:
            blocker.execute("ROLLBACK")
    out, err = first.communicate(timeout=60)
    assert (first.returncode, out, err) == (0, "", "")
    assert second.returncode == 75 and "Traceback" not in second.stderr


def test_busy_database_exits_75_with_one_line(loyalty_proc, db):
    assert loyalty_proc("--db", db, "members", "add", "--id", "M1", "--name", "A").returncode == 0
    with connect(db, isolation_level=None) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            r = loyalty_proc("--db", db, "tiers", "recalc", "-q", env={"LOYALTY_BUSY_TIMEOUT": "0.3"})
        finally:
            blocker.execute("ROLLBACK")
    assert r.returncode == 75
    assert r.stderr.startswith("Error:") and r.stderr.count("\n") == 1


def test_tiers_list_as_of_a_date_counts_the_tiers_held_then(shop, run):
    shop.member("M1", joined="2026-01-01")
    shop.member("M2", joined="2026-05-01")
    shop.sale("M1", "600.00", "2026-03-01T10:00", "P1")

    def counts(*extra):
        rows = json.loads(run("tiers", "list", "--json", *extra).stdout)
        return {r["tier"]: r["members"] for r in rows if r["members"]}

    assert counts("--as-of", "2026-02-01") == {"Bronze": 1}            # M2 had not joined; M1 not yet Silver
    assert counts("--as-of", "2026-06-01") == {"Bronze": 1, "Silver": 1}
    dashboard = json.loads(run("dashboard", "--as-of", "2026-02-01", "--json").stdout)["tiers"]
    assert {k: v for k, v in dashboard.items() if v} == counts("--as-of", "2026-02-01")


def test_a_backdated_manual_tier_is_held_today_with_or_without_as_of(shop, run):
    # The upgrade (dated 06-01) was recorded first, the manual Gold (dated 03-01) after it:
    # the last change recorded among those dated up to a day is what the member held.
    shop.member("A", joined="2025-01-10")
    shop.sale("A", "600.00", "2026-06-01T10:00", "P1")  # Silver
    assert run("tiers", "set", "A", "Gold", "--at", "2026-03-01", "--by", "owner").exit_code == 0
    assert shop.tier("A") == "Gold"
    assert shop.tier("A", "2026-11-23") == "Gold"
    assert shop.tier("A", "2026-04-01") == "Gold"
    assert shop.tier("A", "2026-02-01") == "Bronze"
    rows = json.loads(run("tiers", "list", "--as-of", "2026-07-01", "--json").stdout)
    assert {r["tier"]: r["members"] for r in rows}["Gold"] == 1


def test_members_show_uses_the_rules_in_force_today_not_a_future_version(shop, run, tmp_path):
    import datetime as dt

    today = dt.date.today().isoformat()
    shop.member("A", joined="2025-01-01")
    shop.sale("A", "50.00", today, "P1")
    future = tmp_path / "next-year.toml"
    future.write_text('[tiers]\nlevels = [{name = "Bronze", min = "0", multiplier = "1"}, '
                      '{name = "Silver", min = "100", multiplier = "1.25"}]\n')
    assert run("program", "load", future, "--from", "2099-01-01").exit_code == 0
    shown = json.loads(run("members", "show", "A", "--json", "--as-of", today).stdout)
    assert (shown["next_tier"], shown["to_next_tier"]) == ("Silver", "450.00")
    assert json.loads(run("members", "show", "A", "--json").stdout)["to_next_tier"] == "450.00"


def test_recalc_lists_its_changes_on_stdout_and_program_show_its_versions_as_comments(shop, run):
    shop.member("M1")
    shop.sale("M1", "600.00", "2025-03-01T10:00", "P1")
    shop.refund("P1", "600.00", "2025-03-05", "R1")
    result = run("tiers", "recalc", "--as-of", "2025-03-10")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == ["tiers as of 2025-03-10: 0 upgraded, 1 downgraded, 0 unchanged",
                                          "  M1: Silver → Bronze (changed)"]
    shown = run("program", "show")
    assert shown.stderr == "" and shown.stdout.splitlines()[1].startswith("# no programme loaded yet")


def test_a_recalc_dated_after_today_warns_that_it_blocks_earlier_ones(run):
    assert run("tiers", "recalc", "--as-of", "9999-01-01").exit_code == 2  # refused without --allow-future
    result = run("tiers", "recalc", "--as-of", "9999-01-01", "--allow-future")
    assert result.exit_code == 0 and "recalcs dated before 9999-01-01 are now refused" in result.stderr
    assert run("tiers", "recalc").exit_code == 1
    assert "note:" not in run("tiers", "recalc", "--as-of", "2025-01-01", "--dry-run").stderr
