"""`loyalty members add|show|edit|list` through the CLI, and the global behaviour of SPEC §3.

Every test reads the database file back (tests/db.py) to check what was (or was not) written.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import typer

from loyalty_cli.cli import app
from tests.db import connect, count, is_url, member, members, raw, rows
from tests.helpers import one_error_line

SHOW_KEYS = {"member_id", "name", "email", "phone", "birthday", "joined_on", "tier", "balance", "spend_in_window",
             "next_tier", "to_next_tier"}


@pytest.fixture
def shop(run, db):
    """Four members: Ana (Gold, 1800 points), Bo (Silver, 600), Cy (Bronze, 40), Di (Bronze, 0).

    Tiers and balances are set on the members row directly: these tests are about
    listing, not earning (purchases have their own tests).
    """
    for mid, name, email, phone in [
        ("M1", "Ana Li", "ana@shop.example", "07700 900001"),
        ("M2", "Bo Chen", "bo@shop.example", "07700 900002"),
        ("M3", "Cy Park", "cy@mail.example", "07700 900003"),
        ("M4", "Di Okafor", None, None),
    ]:
        args = ["members", "add", "--id", mid, "--name", name, "--joined", "2025-01-10"]
        if email:
            args += ["--email", email, "--phone", phone]
        assert run(*args).exit_code == 0
    with connect(db) as conn:
        for mid, tier, balance in [("M1", "Gold", 1800), ("M2", "Silver", 600), ("M3", "Bronze", 40)]:
            conn.execute("UPDATE members SET tier = ?, balance = ? WHERE member_id = ?", (tier, balance, mid))


def list_ids(result) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [row["member_id"] for row in json.loads(result.stdout)]


# -- members add ------------------------------------------------------------------------


def test_add_prints_the_generated_id(run, db):
    result = run("members", "add", "--name", "Ana Li")
    assert result.exit_code == 0
    assert re.fullmatch(r"L\d{8}\n", result.stdout)
    member_id = result.stdout.strip()
    assert [(m.member_id, m.name, m.tier, m.balance) for m in members(db)] == [(member_id, "Ana Li", "Bronze", 0)]


def test_add_keeps_the_given_id_exactly(run, db):
    result = run("members", "add", "--id", "00042", "--name", "Bo Chen")
    assert result.exit_code == 0
    assert result.stdout == "00042\n"
    type_of = "pg_typeof(member_id)::text" if is_url(db) else "typeof(member_id)"  # stored as text, not 42
    assert raw(db, f"SELECT member_id, {type_of} FROM members") == [("00042", "text")]


def test_add_stores_every_field(run, db):
    result = run("members", "add", "--id", "M1", "--name", "Ana Li", "--email", "Ana@Shop.Example",
                 "--phone", "+44 7700 900123", "--birthday", "1990-04-12", "--joined", "2025-01-10")
    assert result.exit_code == 0
    assert [(m.member_id, m.name, m.email, m.phone, m.birthday, m.joined_on) for m in members(db)] == [
        ("M1", "Ana Li", "ana@shop.example", "+44 7700 900123", "1990-04-12", "2025-01-10")]


def test_add_with_a_duplicate_id_is_refused_and_changes_nothing(run, db):
    assert run("members", "add", "--id", "M1", "--name", "Ana Li").exit_code == 0
    result = run("members", "add", "--id", "M1", "--name", "Somebody Else")
    assert result.exit_code == 1
    assert "M1" in one_error_line(result)
    assert [(m.member_id, m.name) for m in members(db)] == [("M1", "Ana Li")]


def test_add_with_an_email_already_taken_is_refused(run, db):
    assert run("members", "add", "--id", "M1", "--name", "Ana Li", "--email", "ana@shop.example").exit_code == 0
    result = run("members", "add", "--id", "M2", "--name", "Ana Again", "--email", "ANA@shop.example")
    assert result.exit_code == 1
    one_error_line(result)
    assert [m.member_id for m in members(db)] == ["M1"]


@pytest.mark.parametrize("option, value", [
    ("--email", "ana-at-shop"),
    ("--email", "ana@shop"),
    ("--birthday", "1990-02-30"),
    ("--birthday", "12/04/1990"),
    ("--joined", "2025-13-01"),
    ("--joined", "yesterday"),
    ("--phone", "call me"),
])
def test_add_with_a_bad_value_is_a_usage_error_and_writes_nothing(run, db, option, value):
    assert run("members", "add", "--id", "M1", "--name", "Ana Li").exit_code == 0
    result = run("members", "add", "--id", "M2", "--name", "Bo Chen", option, value)
    assert result.exit_code == 2
    one_error_line(result)
    assert count(db, "members") == 1
    assert count(db, "ledger") == 0


def test_add_referred_by_an_unknown_member_is_refused(run, db):
    result = run("members", "add", "--id", "M2", "--name", "Bo Chen", "--referred-by", "NOBODY")
    assert result.exit_code == 1
    one_error_line(result)
    assert count(db, "members") == 0


def test_add_records_the_referrer(run, db):
    run("members", "add", "--id", "M1", "--name", "Ana Li")
    assert run("members", "add", "--id", "M2", "--name", "Bo Chen", "--referred-by", "M1").exit_code == 0
    assert member(db, "M2").referred_by == "M1"


# -- members show ---------------------------------------------------------------------


def test_show_json_of_a_fresh_member(run):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--email", "ana@shop.example",
        "--phone", "07700 900001", "--birthday", "1990-04-12", "--joined", "2025-01-10")
    result = run("members", "show", "M1", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert SHOW_KEYS <= set(doc)
    assert {k: doc[k] for k in SHOW_KEYS} == {
        "member_id": "M1",
        "name": "Ana Li",
        "email": "ana@shop.example",   # show is not masked
        "phone": "07700 900001",
        "birthday": "1990-04-12",
        "joined_on": "2025-01-10",
        "tier": "Bronze",
        "balance": 0,
        "spend_in_window": "0.00",
        "next_tier": "Silver",
        "to_next_tier": "500.00",
    }


def test_show_plain_text_names_the_member(run):
    run("members", "add", "--id", "M1", "--name", "Ana Li")
    result = run("members", "show", "M1")
    assert result.exit_code == 0
    assert "M1" in result.stdout
    assert "Ana Li" in result.stdout
    assert "Bronze" in result.stdout


def test_show_unknown_member_is_refused(run):
    run("init")
    result = run("members", "show", "NOBODY")
    assert result.exit_code == 1
    assert "NOBODY" in one_error_line(result)


def test_show_with_csv_is_a_usage_error(run):
    run("members", "add", "--id", "M1", "--name", "Ana Li")
    result = run("members", "show", "M1", "--csv")
    assert result.exit_code == 2
    one_error_line(result)


# -- members edit ----------------------------------------------------------------------


def test_edit_changes_only_the_given_fields(run, db):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--email", "ana@shop.example",
        "--phone", "07700 900001", "--birthday", "1990-04-12", "--joined", "2025-01-10")
    result = run("members", "edit", "M1", "--phone", "07700 999999")
    assert result.exit_code == 0
    assert [(m.name, m.email, m.phone, m.birthday, m.joined_on) for m in rows(db, "members", member_id="M1")] == [
        ("Ana Li", "ana@shop.example", "07700 999999", "1990-04-12", "2025-01-10")]

    assert run("members", "edit", "M1", "--name", "Ana Li-Smith", "--email", "ana.li@shop.example").exit_code == 0
    assert [(m.name, m.email, m.phone, m.birthday, m.joined_on) for m in rows(db, "members", member_id="M1")] == [
        ("Ana Li-Smith", "ana.li@shop.example", "07700 999999", "1990-04-12", "2025-01-10")]


def test_edit_json_prints_the_new_profile(run):
    run("members", "add", "--id", "M1", "--name", "Ana Li")
    result = run("members", "edit", "M1", "--birthday", "1990-04-12", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["member_id"] == "M1"
    assert doc["name"] == "Ana Li"
    assert doc["birthday"] == "1990-04-12"


def test_edit_unknown_member_is_refused(run):
    run("init")
    result = run("members", "edit", "NOBODY", "--name", "X")
    assert result.exit_code == 1
    one_error_line(result)


def test_edit_with_a_bad_date_is_a_usage_error(run, db):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--birthday", "1990-04-12")
    result = run("members", "edit", "M1", "--birthday", "1990-04-31")
    assert result.exit_code == 2
    one_error_line(result)
    assert [m.birthday for m in members(db)] == ["1990-04-12"]


def test_edit_with_nothing_to_change_is_a_usage_error(run):
    run("members", "add", "--id", "M1", "--name", "Ana Li")
    result = run("members", "edit", "M1")
    assert result.exit_code == 2
    one_error_line(result)


# -- members list -----------------------------------------------------------------------


def test_list_masks_email_and_phone(run, shop):
    result = run("members", "list")
    assert result.exit_code == 0
    assert "a***@shop.example" in result.stdout
    assert "*******0001" in result.stdout
    assert "ana@shop.example" not in result.stdout
    assert "07700 900001" not in result.stdout


def test_list_show_pii_reveals(run, shop):
    result = run("members", "list", "--show-pii")
    assert result.exit_code == 0
    assert "ana@shop.example" in result.stdout
    assert "07700 900001" in result.stdout


def test_list_json_is_one_masked_document(run, shop):
    result = run("members", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["member_id"] for r in rows] == ["M1", "M2", "M3", "M4"]
    assert rows[0]["email_masked"] == "a***@shop.example"  # the key says so, as the CSV header does
    assert rows[0]["phone_masked"] == "*******0001"
    assert "email" not in rows[0] and "phone" not in rows[0]
    assert rows[0]["tier"] == "Gold"
    assert rows[0]["balance"] == 1800
    assert rows[3]["email_masked"] is None


def test_list_csv_has_a_header_and_one_row_per_member(run, shop):
    result = run("members", "list", "--csv")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["member_id", "name", "email_masked", "phone_masked", "tier", "balance", "joined_on"]
    assert rows[1] == ["M1", "Ana Li", "a***@shop.example", "*******0001", "Gold", "1800", "2025-01-10"]
    assert [r[0] for r in rows[1:]] == ["M1", "M2", "M3", "M4"]


def test_list_csv_neutralises_formulas_and_keeps_numbers(run, db):
    for mid, name in [("F1", '=HYPERLINK("x")'), ("F2", "+cmd"), ("F3", "@SUM(1)"), ("F4", "-2+3"), ("F5", "Plain Name")]:
        assert run("members", "add", "--id", mid, "--name", name).exit_code == 0
    with connect(db) as conn:
        conn.execute("UPDATE members SET balance = -20 WHERE member_id = 'F4'")
    result = run("members", "list", "--csv")
    rows = {r[0]: r for r in csv.reader(io.StringIO(result.stdout))}
    assert rows["F1"][1] == "'=HYPERLINK(\"x\")"
    assert rows["F2"][1] == "'+cmd"
    assert rows["F3"][1] == "'@SUM(1)"
    assert rows["F4"][1] == "'-2+3"
    assert rows["F5"][1] == "Plain Name"
    assert rows["F4"][5] == "-20"  # a number, not text: no quote


def test_list_sort_by_balance_puts_the_highest_first(run, shop):
    assert list_ids(run("members", "list", "--sort", "balance", "--json")) == ["M1", "M2", "M3", "M4"]
    assert list_ids(run("members", "list", "--sort", "name", "--json")) == ["M1", "M2", "M3", "M4"]


def test_list_sort_by_name(run, db):
    for mid, name in [("M1", "Zoe"), ("M2", "adam"), ("M3", "Mia")]:
        run("members", "add", "--id", mid, "--name", name)
    assert list_ids(run("members", "list", "--sort", "name", "--json")) == ["M2", "M3", "M1"]


def test_list_limit(run, shop):
    assert list_ids(run("members", "list", "--limit", "2", "--json")) == ["M1", "M2"]
    assert list_ids(run("members", "list", "--sort", "balance", "--limit", "1", "--json")) == ["M1"]
    result = run("members", "list", "--limit", "0")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_list_tier(run, shop):
    assert list_ids(run("members", "list", "--tier", "Gold", "--json")) == ["M1"]
    assert list_ids(run("members", "list", "--tier", "Bronze", "--json")) == ["M3", "M4"]
    assert list_ids(run("members", "list", "--tier", "Platinum", "--json")) == []


def test_list_search_finds_id_name_and_email(run, shop):
    assert list_ids(run("members", "list", "--search", "chen", "--json")) == ["M2"]
    assert list_ids(run("members", "list", "--search", "mail.example", "--json")) == ["M3"]
    assert list_ids(run("members", "list", "--search", "M4", "--json")) == ["M4"]


def test_list_invalid_sort_is_a_usage_error_and_tables_are_intact(run, shop, db):
    tables = raw(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    result = run("members", "list", "--sort", "name; DROP TABLE members")
    assert result.exit_code == 2
    one_error_line(result)
    assert raw(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") == tables
    assert count(db, "members") == 4


def test_list_search_for_percent_and_quote_is_literal(run):
    for mid, name in [("M1", "100% Cotton Ltd"), ("M2", "O'Brien"), ("M3", "Plain_Name"), ("M4", "Ana Li")]:
        assert run("members", "add", "--id", mid, "--name", name).exit_code == 0
    assert list_ids(run("members", "list", "--search", "%", "--json")) == ["M1"]
    assert list_ids(run("members", "list", "--search", "'", "--json")) == ["M2"]
    assert list_ids(run("members", "list", "--search", "_", "--json")) == ["M3"]
    assert list_ids(run("members", "list", "--search", "' OR '1'='1", "--json")) == []


def test_list_with_no_match_prints_nothing_on_stdout(run, shop):
    result = run("members", "list", "--search", "nobody-has-this")
    assert result.exit_code == 0
    assert result.stdout == ""


# -- global behaviour ---------------------------------------------------------------------


def test_global_options_anywhere(cli, db):
    assert cli("--db", db, "members", "add", "--id", "M1", "--name", "Ana Li").exit_code == 0
    after = cli("members", "show", "M1", "--json", "--db", db)
    before = cli("--db", db, "members", "show", "M1", "--json")
    middle = cli("members", "--db", db, "show", "--json", "M1")
    for result in (after, before, middle):
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["member_id"] == "M1"
    assert cli(f"--db={db}", "members", "show", "M1", "--json").exit_code == 0


def test_without_db_option_the_environment_database_is_used(cli, tmp_path):
    assert cli("init").exit_code == 0
    assert cli("members", "add", "--id", "M1", "--name", "Ana Li").exit_code == 0
    assert [m.member_id for m in members(tmp_path / "env" / "loyalty.db")] == ["M1"]


def test_quiet_prints_nothing_on_success(run, db):
    result = run("members", "add", "--id", "M1", "--name", "Ana Li", "-q")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""
    assert [m.member_id for m in members(db)] == ["M1"]
    result = run("-q", "members", "edit", "M1", "--name", "Ana")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_quiet_still_reports_errors(run):
    run("init")
    result = run("members", "show", "NOBODY", "--quiet")
    assert result.exit_code == 1
    one_error_line(result)


def test_json_wins_over_quiet(run):
    result = run("members", "add", "--id", "M1", "--name", "Ana Li", "-q", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["member_id"] == "M1"
    result = run("-q", "members", "show", "M1", "--json")
    assert json.loads(result.stdout)["name"] == "Ana Li"


def test_piped_output_has_no_colour_codes(run, shop):
    for args in (["members", "list"], ["members", "show", "M1"], ["members", "show", "NOBODY"],
                 ["members", "list", "--help"], ["--help"]):
        result = run(*args)
        assert "\x1b[" not in result.stdout, args
        assert "\x1b[" not in result.stderr, args


def test_messages_go_to_stderr_and_data_to_stdout(run):
    result = run("members", "add", "--id", "M1", "--name", "Ana Li")
    assert result.stdout == "M1\n"
    assert "M1" in result.stderr  # the "enrolled M1 …" note is a message, not data


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"loyalty \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["members", "--help"], ["members", "add", "-h"]])
def test_help_exits_zero(cli, args):
    result = cli(*args)
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_unknown_option_is_a_usage_error(run):
    result = run("members", "list", "--colour")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.output


def command_tree(command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], bool]]:
    """(words after `loyalty`, is it a group) for the root, every group and every command.

    Groups are recognised by their `commands` mapping: Typer ≥ 0.20 builds on its
    own vendored Click, so `isinstance(command, click.Group)` would be False.
    """
    is_group = hasattr(command, "list_commands")  # the root loads its groups lazily: ask, don't peek
    tree = [(path, is_group)]
    for name in sorted(command.list_commands(None)) if is_group else []:
        sub = command.get_command(None, name)
        if not getattr(sub, "hidden", False):
            tree += command_tree(sub, path + (name,))
    return tree


TREE = command_tree(typer.main.get_command(app))
ALL_COMMANDS = [path for path, _ in TREE]
LEAF_COMMANDS = [path for path, group in TREE if not group]
GROUPS = [path for path, group in TREE if group]  # the root `loyalty` is ()


@pytest.mark.parametrize("path", LEAF_COMMANDS, ids=" ".join)
def test_every_command_help_ends_with_an_example(cli, path):
    result = cli(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    tail = result.stdout[result.stdout.rindex("Example"):]
    assert "Options" not in tail and "--help" not in tail  # the example comes after the options


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "loyalty")
def test_every_group_help_has_an_example(cli, path):
    result = cli(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout


def test_the_command_tree_has_the_members_commands():
    assert {("members", verb) for verb in ("add", "import", "show", "list", "edit", "erase")} <= set(ALL_COMMANDS)


def test_a_mistyped_command_gets_a_suggestion(cli):
    result = cli("membres", "list")
    assert result.exit_code == 2
    assert "did you mean members?" in result.stderr


def test_voucher_and_tier_lists_take_sort_and_limit(run):
    assert run("vouchers", "list", "--sort", "member").exit_code == 0
    bad = run("vouchers", "list", "--sort", "points; DROP TABLE vouchers")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error:")
    assert run("members", "add", "--id", "M1", "--name", "A").exit_code == 0
    assert run("tiers", "history", "M1", "--limit", "1", "--csv").stdout.splitlines()[0] == "at,from,to,reason,until,by,ref"


def test_search_ignores_case_beyond_ascii(run):
    assert run("members", "add", "--id", "M1", "--name", "Ayşe Öztürk").exit_code == 0
    assert run("members", "add", "--id", "M2", "--name", "Łukasz Zając").exit_code == 0
    for text, found in (("öztürk", ["M1"]), ("ÖZTÜRK", ["M1"]), ("łukasz", ["M2"]), ("AYŞE", ["M1"]), ("zz", [])):
        assert list_ids(run("members", "list", "--search", text, "--json")) == found, text


def test_an_unknown_tier_filter_is_a_usage_error(run):
    assert run("members", "add", "--id", "M1", "--name", "Ana").exit_code == 0
    assert list_ids(run("members", "list", "--tier", "bronze", "--json")) == ["M1"]
    result = run("members", "list", "--tier", "Diamond")
    assert result.exit_code == 2 and "Diamond" in result.stderr and result.stdout == ""


def test_vouchers_of_an_unknown_member_is_not_found(run):
    result = run("vouchers", "list", "--member", "NOBODY")
    assert result.exit_code == 1 and "NOBODY not found" in result.stderr


def test_program_set_of_a_fixed_key_is_a_usage_error(run):
    assert run("program", "set", "earn.signup_bonus", "10").exit_code == 0
    result = run("program", "set", "currency_decimals", "3")
    assert result.exit_code == 2 and "fixed" in result.stderr


def test_statements_take_sort_and_limit(run):
    assert run("members", "add", "--id", "M1", "--name", "Ana", "--joined", "2025-01-01").exit_code == 0
    for points, day in (("50", "03"), ("10", "01"), ("30", "02")):
        assert run("points", "award", "M1", points, "--reason", "r", "--at", f"2025-02-{day}").exit_code == 0
    history = json.loads(run("points", "history", "M1", "--json", "--sort", "points").stdout)
    assert [e["points"] for e in history] == [10, 30, 50]
    assert [e["balance_after"] for e in history] == [60, 90, 50]  # each entry keeps its own running balance
    last_two = json.loads(run("points", "history", "M1", "--json", "--limit", "2", "--sort", "at").stdout)
    assert [e["at"][:10] for e in last_two] == ["2025-02-01", "2025-02-02"]
    bad = run("points", "history", "M1", "--sort", "balance")
    assert bad.exit_code == 2 and "--sort must be one of" in bad.stderr
    assert run("tiers", "history", "M1", "--sort", "to").exit_code == 0
    assert run("tiers", "history", "M1", "--sort", "x").exit_code == 2
