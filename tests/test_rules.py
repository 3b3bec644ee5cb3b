"""Programme rules (SPEC §6, §12): validating a rules document, and programme versions through the CLI.

Validation errors name the key a shop owner has to fix; `program load`, `show` and
`set` keep every version, and points already awarded never change when the rules do.
"""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty_cli import rules
from tests.db import connect, count, purchases, rows
from tests.helpers import as_json, fresh_db, ok, one_error_line, run


@pytest.fixture
def dbp(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


# -- rules validation: errors name the key ---------------------------------------------------------


def test_negative_points_per_unit_names_the_key():
    with pytest.raises(rules.RulesError) as exc:
        rules.validate({"earn": {"points_per_unit": "-1"}})
    assert 'earn.points_per_unit must be a decimal ≥ 0, got "-1"' in str(exc.value)


@pytest.mark.parametrize(
    "doc, key",
    [
        ({"earn": {"points_per_unit": "abc"}}, "earn.points_per_unit"),
        ({"earn": {"rounding": "up"}}, "earn.rounding"),
        ({"earn": {"stacking": "add"}}, "earn.stacking"),
        ({"earn": {"first_purchase_multiplier": "0.5"}}, "earn.first_purchase_multiplier"),
        ({"earn": {"min_amount": "1.234"}}, "earn.min_amount"),
        ({"earn": {"categories": [{"name": "tobacco", "multiplier": "-1"}]}}, "earn.categories[0].multiplier"),
        ({"campaigns": [{"name": "c", "from": "2026-01-01", "to": "2026-01-02", "multiplier": "0.5"}]},
         "campaigns[0].multiplier"),
        ({"expiry": {"months": -1}}, "expiry.months"),
        ({"earn": {"points_per_uint": "1"}}, "earn.points_per_uint"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_validation_errors_name_the_key(doc, key):
    with pytest.raises(rules.RulesError) as exc:
        rules.validate(doc)
    assert key in str(exc.value)


def _levels(*mins):
    return {"tiers": {"levels": [{"name": f"L{i}", "min": m, "multiplier": "1"} for i, m in enumerate(mins)]}}


@pytest.mark.parametrize(
    "mins, key",
    [
        (("10", "500"), "tiers.levels[0].min"),         # the lowest level's minimum must be 0
        (("0", "500", "500"), "tiers.levels[2].min"),   # not strictly increasing
        (("0", "500", "400"), "tiers.levels[2].min"),   # decreasing
    ],
)
def test_levels_must_start_at_zero_and_strictly_increase(mins, key):
    with pytest.raises(rules.RulesError) as exc:
        rules.validate(_levels(*mins))
    assert key in str(exc.value)


def test_valid_levels_pass():
    r = rules.validate(_levels("0", "100", "100.01"))
    assert [lvl.min for lvl in r.levels] == [0, 10000, 10001]


# -- through the CLI: program load / show / set ----------------------------------------------------


def test_program_load_bad_file_exits_3_naming_the_key(dbp, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[earn]\npoints_per_unit = "-1"\n')
    result = run(dbp, "program", "load", bad)
    assert result.exit_code == 3
    line = one_error_line(result)
    assert 'earn.points_per_unit must be a decimal ≥ 0, got "-1"' in line
    assert count(dbp, "program_versions") == 0


@pytest.mark.parametrize(
    "text, key",
    [
        ('[earn]\npoints_per_uint = "1"\n', "earn.points_per_uint"),
        ('[tiers]\nlevels = [{ name = "A", min = "5", multiplier = "1" }]\n', "tiers.levels[0].min"),
        ("[earn\n", "not valid TOML"),
        ("[tiers]\nhold_months = 2026-12-05T10:00:00\n", "tiers.hold_months"),
        ("[expiry]\nround_to = 12:00:00\n", "expiry.round_to"),
        ("anomalies = 5\n", "anomalies must be a table"),
        # beyond 64 bits every enrolment, then db check and every report, overflowed
        ("[earn]\nsignup_bonus = 99999999999999999999999\n", "earn.signup_bonus must be a whole number from 0 to"),
        ("[earn]\nreferral_bonus = 9223372036854775807\n", "earn.referral_bonus must be a whole number from 0 to"),
        ("[earn]\nsignup_bonus = " + "9" * 5000 + "\n", "a number too large to read"),
        ('point_value = "' + "9" * 5000 + '"\n', "point_value must be a decimal of at most 30 characters"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nests tables or arrays too deeply"),
    ],
)
def test_program_load_other_bad_files(dbp, tmp_path, text, key):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    result = run(dbp, "program", "load", bad)
    assert result.exit_code == 3
    assert key in one_error_line(result)


def test_program_show_json_after_load(dbp, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[earn]\nsignup_bonus = 25\npoints_per_unit = "2"\n\n[expiry]\nmonths = 6\n')
    ok(dbp, "program", "load", f)
    doc = as_json(dbp, "program", "show")
    assert doc["rules"]["earn"]["signup_bonus"] == 25
    assert doc["rules"]["earn"]["points_per_unit"] == "2"
    assert doc["rules"]["expiry"]["months"] == 6
    assert doc["rules"]["earn"]["rounding"] == "down"  # defaults fill the rest
    assert doc["rules"]["tiers"]["levels"][1]["name"] == "Silver"
    assert len(doc["versions"]) == 1
    # the first version applies from the beginning of time
    early = as_json(dbp, "program", "show", "--as-of", "1900-01-01")
    assert early["rules"]["earn"]["signup_bonus"] == 25


def test_program_load_takes_toml_dates_and_a_bom(dbp, tmp_path):
    # An owner writes dates unquoted (TOML's own date type), in an editor that may add a BOM.
    f = tmp_path / "p.toml"
    f.write_bytes('\ufeff[[campaigns]]\nname = "winter"\nfrom = 2026-12-01\nto = 2026-12-24\nmultiplier = "2"\n'.encode())
    ok(dbp, "program", "load", f)
    campaign = as_json(dbp, "program", "show")["rules"]["campaigns"][0]
    assert (campaign["from"], campaign["to"]) == ("2026-12-01", "2026-12-24")
    ok(dbp, "members", "add", "--id", "M1", "--name", "Ana")
    assert as_json(dbp, "purchases", "add", "M1", "10.00", "--at", "2026-12-05")["points"] == 20


def test_program_load_refuses_a_toml_datetime_naming_the_key(dbp, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[[campaigns]]\nname = "x"\nfrom = 2026-12-01T10:00:00\nto = 2026-12-24\nmultiplier = "2"\n')
    result = run(dbp, "program", "load", f)
    assert result.exit_code == 3
    assert "campaigns[0].from" in one_error_line(result)


def test_a_programme_without_decimals_needs_no_other_key(dbp, tmp_path):
    # The default small_sale ("2.00") is written with the currency's own decimals.
    f = tmp_path / "p.toml"
    f.write_text("currency_decimals = 0\n")
    ok(dbp, "program", "load", f)
    assert as_json(dbp, "program", "show")["rules"]["anomalies"]["small_sale"] == "2"


def test_dates_before_the_first_version_keep_the_databases_currency(dbp, tmp_path):
    # The first version applies from 2026-01-01; before it the defaults apply, in thousandths.
    f = tmp_path / "d3.toml"
    f.write_text("currency_decimals = 3\n")
    ok(dbp, "program", "load", f, "--from", "2026-01-01")
    ok(dbp, "members", "add", "--id", "A", "--name", "A", "--joined", "2025-01-01")
    assert as_json(dbp, "purchases", "add", "A", "10.005", "--at", "2025-06-01")["points"] == 10
    shown = as_json(dbp, "members", "show", "A", "--as-of", "2025-06-30")
    assert (shown["spend_in_window"], shown["to_next_tier"]) == ("10.005", "489.995")
    ok(dbp, "points", "award", "A", "100", "--reason", "x", "--at", "2025-03-01")
    assert as_json(dbp, "report", "liability", "--as-of", "2025-06-30")["value"] == "1.100"
    assert as_json(dbp, "program", "show", "--as-of", "2025-01-01")["rules"]["currency_decimals"] == 3


def _sum_points(dbp, ref):
    return sum(e.points for e in rows(dbp, "ledger", ref=ref))


def test_program_set_from_date_and_versions_never_change_awarded_points(dbp, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[earn]\npoints_per_unit = "1"\n')
    ok(dbp, "program", "load", f)
    ok(dbp, "members", "add", "--id", "A", "--name", "Ana", "--joined", "2025-01-01")
    ok(dbp, "program", "set", "earn.points_per_unit", "2", "--from", "2026-01-01")

    assert as_json(dbp, "program", "show", "--as-of", "2025-12-31")["rules"]["earn"]["points_per_unit"] == "1"
    assert as_json(dbp, "program", "show", "--as-of", "2026-01-01")["rules"]["earn"]["points_per_unit"] == "2"

    before = as_json(dbp, "purchases", "add", "A", "10.00", "--id", "P1", "--at", "2025-12-31T23:59:59")
    after = as_json(dbp, "purchases", "add", "A", "10.00", "--id", "P2", "--at", "2026-01-01T00:00:00")
    later = as_json(dbp, "purchases", "add", "A", "10.00", "--id", "P3", "--at", "2026-06-01")
    assert (before["points"], after["points"], later["points"]) == (10, 20, 20)

    # a new version (from today, and another dated in the past) never changes what was awarded
    g = tmp_path / "q.toml"
    g.write_text('[earn]\npoints_per_unit = "5"\n')
    ok(dbp, "program", "load", g)
    ok(dbp, "program", "load", g, "--from", "2025-01-01")
    versions = as_json(dbp, "program", "show")["versions"]
    assert len(versions) == 4
    assert dt.date.today().isoformat() in [v["applies_from"] for v in versions]
    assert [_sum_points(dbp, p) for p in ("P1", "P2", "P3")] == [10, 20, 20]
    assert [(p.purchase_id, p.points) for p in purchases(dbp)] == [("P1", 10), ("P2", 20), ("P3", 20)]
    assert as_json(dbp, "points", "balance", "A")["balance"] == 50
    assert run(dbp, "db", "check").exit_code == 0
    # new sales earn under the version in force on their date
    assert as_json(dbp, "purchases", "add", "A", "10.00", "--id", "P4", "--at", "2025-12-30")["points"] == 50


def test_currency_decimals_cannot_change_after_first_load(dbp, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("currency_decimals = 2\n")
    ok(dbp, "program", "load", f)
    g = tmp_path / "three.toml"
    g.write_text("currency_decimals = 3\n")
    result = run(dbp, "program", "load", g, "--from", "2026-01-01")
    assert result.exit_code == 3
    assert "currency_decimals" in one_error_line(result)
    result = run(dbp, "program", "set", "currency_decimals", "3")
    assert result.exit_code != 0
    assert "currency_decimals" in one_error_line(result)
    assert len(as_json(dbp, "program", "show")["versions"]) == 1
    assert as_json(dbp, "program", "show", "--as-of", "2027-01-01")["rules"]["currency_decimals"] == 2


@pytest.mark.parametrize("key, value", [("earn.signup_bonus", "99999999999999999999999"),
                                        ("earn.referral_bonus", "9" * 5000), ("point_value", "9" * 5000)])
def test_program_set_out_of_range_is_a_usage_error(dbp, key, value):
    result = run(dbp, "program", "set", key, value)
    assert result.exit_code == 2 and key in one_error_line(result)


def test_a_stored_version_from_before_todays_limits_still_works(dbp, tmp_path):
    """Limits added later (tier names of 40 printable characters, numbers up to 10^12) check new
    versions; a version the database already holds is read as it was accepted."""
    import json

    ok(dbp, "members", "add", "--id", "A", "--name", "Ann", "--joined", "2025-01-01")
    doc = {"earn": {"signup_bonus": 10**13},
           "tiers": {"levels": [{"name": "Bronze", "min": "0", "multiplier": "1"},
                                {"name": "Platinum (free delivery and early access to sales)", "min": "500",
                                 "multiplier": "2"}]}}
    with connect(dbp) as conn:
        conn.execute("INSERT INTO program_versions (applies_from, rules, loaded_at, source) VALUES (?,?,?,?)",
                     ("2026-01-01", json.dumps(doc), "2026-01-01T00:00:00", "old.toml"))
        conn.commit()
    assert run(dbp, "purchases", "add", "A", "600.00", "--at", "2026-02-01").exit_code == 0
    assert as_json(dbp, "members", "show", "A")["tier"].startswith("Platinum")
    assert run(dbp, "tiers", "recalc", "--as-of", "2026-02-02").exit_code == 0
    new = tmp_path / "new.toml"
    new.write_text("[earn]\nsignup_bonus = 10000000000000\n")
    assert run(dbp, "program", "load", new).exit_code == 3  # a new version is checked
