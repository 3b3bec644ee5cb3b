"""What the commands say back (issue 15 audit): the member's stored id, never the one typed with
its stray spaces or case; number ranges in words in the help; a value given to a global switch
refused as such; one wording for a refund's AMOUNT; masked JSON exports that say they are
masked; counts grouped in thousands."""

from __future__ import annotations

import json

import pytest

from tests.db import count


@pytest.fixture
def shop(run):
    """Two members with points, a sale to refund and a reward to redeem."""
    assert run("init").exit_code == 0
    for mid, name, email in (("M0002", "Ana Li", "ana@shop.example"), ("M0003", "Bo Chen", "bo@shop.example")):
        assert run("members", "add", "--id", mid, "--name", name, "--email", email,
                   "--birthday", "1990-12-10", "--joined", "2026-01-01").exit_code == 0
    assert run("points", "award", "M0002", "500", "--reason", "welcome").exit_code == 0
    assert run("purchases", "add", "M0002", "10.00", "--id", "P1").exit_code == 0
    assert run("rewards", "add", "COFFEE", "--name", "Free coffee", "--cost", "10").exit_code == 0
    return run


def _done(result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout + result.stderr


# -- 1. the stored id ------------------------------------------------------------------------
def test_transfer_names_both_members_by_their_stored_ids(shop):
    said = _done(shop("points", "transfer", " m0002", "M0003 ", "1"))
    assert said.startswith("moved 1 point from M0002 (balance ")
    assert " to M0003 (balance " in said
    doc = json.loads(_done(shop("points", "transfer", " m0002", "m0003", "1", "--json")))
    assert doc == {"from": "M0002", "to": "M0003", "points": 1, "from_balance": doc["from_balance"],
                   "to_balance": doc["to_balance"]}


def test_statements_and_tier_histories_are_titled_with_the_stored_id(shop):
    assert "statement of M0002\n" in _done(shop("points", "history", " m0002"))
    assert _done(shop("tiers", "history", " m0003 ")) == "M0003 has held their first tier since joining\n"


def test_refunds_rewards_and_vouchers_echo_the_stored_codes(shop):
    assert " of P1; " in _done(shop("purchases", "refund", " P1 ", "1.00"))
    assert _done(shop("rewards", "edit", " coffee", "--cost", "5")).strip() == "updated reward COFFEE"
    first = json.loads(_done(shop("points", "redeem", "M0002", "--reward", "coffee", "--json")))["voucher"]
    second = json.loads(_done(shop("points", "redeem", "M0002", "--reward", "COFFEE", "--json")))["voucher"]
    assert _done(shop("vouchers", "use", f" {first.lower()}")).strip() == f"voucher {first} used"
    assert _done(shop("vouchers", "cancel", f"{second.lower()} ")).startswith(f"voucher {second} cancelled: 5 points "
                                                                             "back to M0002")
    assert _done(shop("rewards", "retire", "Coffee ")).strip() == "retired reward COFFEE"
    assert "from M0003 (" in _done(shop("feedback", "add", " m0003", "9"))


# -- 2. ranges in words ----------------------------------------------------------------------
# Every --help is walked once, in tests/test_usage_errors.py::test_every_help_shows_real_placeholders,
# which also refuses a range in the validation library's notation (`x>=1`).


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path, words", [
    (("members", "list"), "--limit N At most this many (a terminal shows 100 by default); a positive whole number."),
    (("report", "churn"), "of; a whole number from 0 to 36,500. [default: 365]"),
    (("dashboard",), "--period DAYS The period: this many days ending with --as-of; a whole number from 1 to 36,500."),
    (("points", "transfer"), "POINTS A positive whole number. [required]"),
    (("rewards", "list"), "--limit N A positive whole number."),
])
def test_the_help_says_the_range_in_words(cli, path, words):
    assert words in _flat(cli(*path, "--help").stdout)


def test_the_range_checks_and_their_messages_stay(shop):
    for args, line in ((("members", "list", "--limit", "0"), "Error: --limit must be a positive whole number, got 0"),
                       (("report", "churn", "--days", "36501"),
                        "Error: --days must be a whole number from 0 to 36,500, got 36501"),
                       (("points", "transfer", "M0002", "M0003", "0"),
                        "Error: POINTS must be a positive whole number, got 0")):
        result = shop(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", line + "\n")


# -- 3. a global switch given a value --------------------------------------------------------
@pytest.mark.parametrize("given, flag", [("--json=1", "--json"), ("--csv=1", "--csv"), ("-q=1", "-q"),
                                         ("--quiet=x", "--quiet"), ("--json=", "--json")])
@pytest.mark.parametrize("where", ["after", "before"])
def test_a_global_switch_given_a_value_is_refused_as_a_switch(shop, given, flag, where):
    args = ("members", "list", given) if where == "after" else (given, "members", "list")
    result = shop(*args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: {flag} takes no value (it is a switch: give {flag} alone)\n"


# -- 4. a refund's AMOUNT ---------------------------------------------------------------------
@pytest.mark.parametrize("amount", ["-0.5", "0", "0.00", "-2"])
def test_a_refund_amount_must_be_more_than_zero_in_one_wording(shop, db, amount):
    before = count(db, "purchases"), count(db, "ledger")
    result = shop("purchases", "refund", "P1", amount)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: AMOUNT must be more than 0 (the amount refunded), got {amount}\n"
    assert (count(db, "purchases"), count(db, "ledger")) == before


# -- 5. masked JSON says so ---------------------------------------------------------------------
def test_members_list_json_names_masked_values_as_masked(shop):
    rows = json.loads(_done(shop("members", "list", "--json")))
    assert rows[0]["member_id"] == "M0002"
    assert rows[0]["email_masked"] == "a***@shop.example"
    assert "email" not in rows[0] and "phone" not in rows[0] and rows[0]["phone_masked"] is None
    shown = json.loads(_done(shop("members", "list", "--json", "--show-pii")))
    assert shown[0]["email"] == "ana@shop.example" and "email_masked" not in shown[0]


@pytest.mark.parametrize("report", [("report", "birthdays", "--days", "30", "--as-of", "2026-12-01"),
                                    ("report", "expiring", "--days", "36500"),
                                    ("report", "churn", "--days", "0", "--as-of", "2030-01-01"),
                                    ("dashboard",)])
def test_report_documents_say_whether_they_are_masked(shop, report):
    doc = json.loads(_done(shop(*report, "--json")))
    assert doc["masked"] is True
    people = doc.get("members") if isinstance(doc.get("members"), list) else doc["top_members"]
    assert people and "a***@shop.example" in [p["email"] for p in people]
    doc = json.loads(_done(shop(*report, "--json", "--show-pii")))
    assert doc["masked"] is False
    people = doc.get("members") if isinstance(doc.get("members"), list) else doc["top_members"]
    assert "ana@shop.example" in [p["email"] for p in people]


# -- 6. counts grouped -------------------------------------------------------------------------
def test_the_dashboard_groups_a_long_period(shop):
    assert "Last 1,000 days against the 1,000 before" in _done(shop("dashboard", "--period", "1000"))


def test_a_future_dated_credit_groups_its_points_and_names_the_member_as_stored(shop, db):
    before = count(db, "ledger")
    result = shop("points", "award", " m0002", "12000", "--reason", "prize", "--at", "2999-01-01")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "this would credit 12,000 points to M0002 dated then;" in result.stderr
    result = shop("points", "transfer", "m0002 ", " m0003", "1", "--at", "2999-01-01")
    assert "this would move 1 point from M0002 to M0003 dated then;" in result.stderr
    result = shop("tiers", "set", " m0003", "Gold", "--at", "2999-01-01")
    assert "this would record M0003's change to Gold dated then;" in result.stderr
    assert count(db, "ledger") == before


def test_a_future_dated_refusal_without_a_database_names_the_member_trimmed(cli, tmp_path):
    result = cli("--db", tmp_path / "none.db", "points", "award", " m0002", "5", "--reason", "x", "--at", "2999-01-01")
    assert result.exit_code == 2
    assert "this would credit 5 points to m0002 dated then;" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_an_empty_by_is_a_usage_error_not_the_os_user(shop, db):
    before = count(db, "ledger")
    result = shop("points", "award", "M0002", "5", "--reason", "x", "--by", "")
    assert result.exit_code == 2 and result.stderr.startswith("Error: --by was given an empty name")
    assert count(db, "ledger") == before
