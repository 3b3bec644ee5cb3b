"""Earning (SPEC §6): the pure `earning.earn` function, rules validation, and programme versions via the CLI.

Every expected number below is worked out by hand from the spec's rule: each
step's total is rounded from the exact product of the amount and every
multiplier so far; a step's bonus is its total minus the previous total; entries
of 0 points are not written.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from loyalty_cli import earning, rules
from tests.helpers import as_json, ok, one_error_line, run, fresh_db

# -- small local helpers (independent of conftest) ------------------------------------

@pytest.fixture
def dbp(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


def R(earn=None, **top):
    """Validated rules from a partial document (defaults for everything else)."""
    doc = dict(top)
    if earn:
        doc["earn"] = earn
    return rules.validate(doc)


def total(lines):
    return sum(p for _, _, p in lines)


# -- the spec's own example ----------------------------------------------------------------


def test_spec_example_gold_birthday_max():
    r = R({"points_per_unit": "1", "birthday_multiplier": "2", "stacking": "max"})
    lines = earning.earn(3799, r, date="2026-05-10T12:00:00", birthday=True, tier="Gold")
    # base 37.99 → 37; ×2 = 75.98 → 75 (+38); ×1.5 = 113.97 → 113 (+38)
    assert lines == [("earn", None, 37), ("bonus", "birthday", 38), ("bonus", "tier:Gold", 38)]
    assert total(lines) == 113


# -- stacking: max vs multiply ---------------------------------------------------------------

PROMO = {"name": "promo", "from": "2026-05-01", "to": "2026-05-31", "multiplier": "1.5", "categories": []}


@pytest.mark.parametrize(
    "stacking, rounding, amount, first, birthday, tier, expected",
    [
        # 10.33 with first 3, birthday 2, campaign 1.5 all applying
        ("max", "down", 1033, True, True, None,
         [("earn", None, 10), ("bonus", "first_purchase", 20)]),                          # 30.99 → 30
        ("multiply", "down", 1033, True, True, None,
         [("earn", None, 10), ("bonus", "first_purchase", 20),                             # 30.99 → 30
          ("bonus", "birthday", 31), ("bonus", "campaign:promo", 31)]),                    # 61.98 → 61; 92.97 → 92
        ("max", "half_up", 1033, True, True, None,
         [("earn", None, 10), ("bonus", "first_purchase", 21)]),                          # 30.99 → 31
        ("multiply", "half_up", 1033, True, True, None,
         [("earn", None, 10), ("bonus", "first_purchase", 21),                             # 31
          ("bonus", "birthday", 31), ("bonus", "campaign:promo", 31)]),                    # 61.98 → 62; 92.97 → 93
        ("multiply", "down", 1033, True, True, "Silver",
         [("earn", None, 10), ("bonus", "first_purchase", 20), ("bonus", "birthday", 31),
          ("bonus", "campaign:promo", 31), ("bonus", "tier:Silver", 24)]),                 # 116.2125 → 116
        ("max", "down", 1033, True, True, "Gold",
         [("earn", None, 10), ("bonus", "first_purchase", 20), ("bonus", "tier:Gold", 16)]),  # 46.485 → 46
        # without the first purchase: birthday 2 and campaign 1.5
        ("max", "down", 1033, False, True, None,
         [("earn", None, 10), ("bonus", "birthday", 10)]),                                # 20.66 → 20
        ("multiply", "down", 1033, False, True, None,
         [("earn", None, 10), ("bonus", "birthday", 10), ("bonus", "campaign:promo", 10)]),  # 20; 30.99 → 30
        # only the campaign
        ("max", "down", 1033, False, False, None,
         [("earn", None, 10), ("bonus", "campaign:promo", 5)]),                           # 15.495 → 15
        ("max", "half_up", 1033, False, False, None,
         [("earn", None, 10), ("bonus", "campaign:promo", 5)]),                           # 15.495 → 15
        # every step from the exact product, never from a rounded total: 0.99
        ("multiply", "down", 99, True, True, None,
         [("bonus", "first_purchase", 2), ("bonus", "birthday", 3), ("bonus", "campaign:promo", 3)]),  # 0; 2.97; 5.94; 8.91
        ("max", "down", 99, True, True, None,
         [("bonus", "first_purchase", 2)]),                                                # 0; 2.97 → 2
        # a step that adds nothing writes nothing: 1.00 × 1.25 = 1.25 → 1
        ("max", "down", 100, False, False, "Silver", [("earn", None, 1)]),
    ],
)
def test_stacking_table(stacking, rounding, amount, first, birthday, tier, expected):
    r = R({"stacking": stacking, "rounding": rounding, "first_purchase_multiplier": "3", "birthday_multiplier": "2"},
          campaigns=[PROMO])
    lines = earning.earn(amount, r, date="2026-05-10T10:00:00", category="bakery", first=first, birthday=birthday,
                         tier=tier)
    assert lines == expected
    assert all(p > 0 for _, _, p in lines)


def test_earn_plus_bonuses_equals_exact_final_product():
    """Σ lines is the rounded exact product of the amount and every multiplier, whatever the amount."""
    from fractions import Fraction

    r = R({"stacking": "multiply", "first_purchase_multiplier": "3", "birthday_multiplier": "2"}, campaigns=[PROMO])
    for amount in range(0, 5000, 37):
        lines = earning.earn(amount, r, date="2026-05-10", first=True, birthday=True, tier="Platinum")
        exact = Fraction(amount, 100) * 3 * 2 * Fraction(3, 2) * 2
        assert total(lines) == exact.numerator // exact.denominator


# -- ties under max: the first in order wins ----------------------------------------------------


def _campaign(name, start, mult="2", end="2026-05-31", cats=()):
    return {"name": name, "from": start, "to": end, "multiplier": mult, "categories": list(cats)}


@pytest.mark.parametrize(
    "first, birthday, campaigns, winner",
    [
        (True, True, [], "first_purchase"),
        (True, True, [_campaign("c", "2026-05-01")], "first_purchase"),
        (False, True, [_campaign("c", "2026-05-01")], "birthday"),
        # campaigns by start date, then name (the document's order does not matter)
        (False, False, [_campaign("alpha", "2026-05-02"), _campaign("zeta", "2026-05-01")], "campaign:zeta"),
        (False, False, [_campaign("beta", "2026-05-01"), _campaign("alpha", "2026-05-01")], "campaign:alpha"),
        # a strictly larger multiplier later in the order beats an earlier one
        (True, True, [_campaign("big", "2026-05-01", "2.5")], "campaign:big"),
    ],
)
def test_ties_under_max_pick_the_first_in_order(first, birthday, campaigns, winner):
    r = R({"stacking": "max", "first_purchase_multiplier": "2", "birthday_multiplier": "2"}, campaigns=campaigns)
    lines = earning.earn(1000, r, date="2026-05-10", first=first, birthday=birthday)
    bonuses = [(rule, p) for kind, rule, p in lines if kind == "bonus"]
    assert len(bonuses) == 1
    assert bonuses[0][0] == winner
    assert lines[0] == ("earn", None, 10)


# -- campaign dates and categories ---------------------------------------------------------------


@pytest.mark.parametrize(
    "at, applies",
    [
        ("2026-12-04T23:59:59", False),
        ("2026-12-05T00:00:00", True),
        ("2026-12-05", True),
        ("2026-12-06T23:59:59", True),
        ("2026-12-07T00:00:00", False),
    ],
)
def test_campaign_dates_are_inclusive(at, applies):
    r = R(campaigns=[_campaign("double-weekend", "2026-12-05", "2", end="2026-12-06")])
    lines = earning.earn(1000, r, date=at)
    expected = [("earn", None, 10)] + ([("bonus", "campaign:double-weekend", 10)] if applies else [])
    assert lines == expected


@pytest.mark.parametrize(
    "category, applies",
    [("bakery", True), ("Bakery", True), ("dairy", False), (None, False)],
)
def test_campaign_categories_filter(category, applies):
    r = R(campaigns=[_campaign("bakery-week", "2026-03-09", "1.5", end="2026-03-15", cats=["bakery"])])
    lines = earning.earn(1000, r, date="2026-03-10", category=category)
    assert lines == [("earn", None, 10)] + ([("bonus", "campaign:bakery-week", 5)] if applies else [])


@pytest.mark.parametrize("category", ["bakery", "dairy", None])
def test_campaign_without_categories_applies_to_all(category):
    r = R(campaigns=[_campaign("all", "2026-03-09", "1.5", end="2026-03-15")])
    assert earning.earn(1000, r, date="2026-03-10", category=category) == [
        ("earn", None, 10), ("bonus", "campaign:all", 5)]


# -- category multipliers ------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["tobacco", "Tobacco"])
def test_category_multiplier_zero_earns_nothing_and_writes_nothing(category):
    r = R({"stacking": "multiply", "first_purchase_multiplier": "2", "birthday_multiplier": "2",
           "categories": [{"name": "tobacco", "multiplier": "0"}]},
          campaigns=[_campaign("c", "2026-05-01")])
    assert earning.earn(5000, r, date="2026-05-10", category=category, first=True, birthday=True, tier="Gold") == []


def test_category_multiplier_applies_to_base_before_promotions():
    r = R({"birthday_multiplier": "2", "categories": [{"name": "gifts", "multiplier": "1.5"}]})
    # base 10.00 × 1.5 = 15; × 2 = 30 (+15)
    assert earning.earn(1000, r, date="2026-05-10", category="gifts", birthday=True) == [
        ("earn", None, 15), ("bonus", "birthday", 15)]
    # a category not listed has 1
    assert earning.earn(1000, r, date="2026-05-10", category="dairy") == [("earn", None, 10)]


# -- min_amount, rounding, points_per_unit, zero ----------------------------------------------------


def test_min_amount_below_earns_nothing_even_with_promotions():
    r = R({"min_amount": "1.00", "first_purchase_multiplier": "2"})
    assert earning.earn(99, r, date="2026-05-10", first=True, tier="Gold") == []
    assert earning.earn(100, r, date="2026-05-10") == [("earn", None, 1)]


@pytest.mark.parametrize(
    "amount, rounding, points",
    [(250, "down", 2), (250, "half_up", 3), (249, "half_up", 2), (299, "down", 2), (299, "half_up", 3),
     (3799, "down", 37), (3750, "half_up", 38)],
)
def test_rounding(amount, rounding, points):
    r = R({"rounding": rounding})
    assert earning.earn(amount, r, date="2026-05-10") == [("earn", None, points)]


@pytest.mark.parametrize("rounding, points", [("down", 18), ("half_up", 19)])
def test_points_per_unit_half(rounding, points):
    r = R({"points_per_unit": "0.5", "rounding": rounding})
    assert earning.earn(3799, r, date="2026-05-10") == [("earn", None, points)]  # 18.995


def test_points_per_unit_half_with_promotion_rounds_from_exact_product():
    r = R({"points_per_unit": "0.5", "birthday_multiplier": "2"})
    # 2.50 × 0.5 = 1.25 → 1; × 2 = 2.5 → 2 (+1)
    assert earning.earn(250, r, date="2026-05-10", birthday=True) == [("earn", None, 1), ("bonus", "birthday", 1)]


def test_zero_amount_writes_nothing():
    r = R({"first_purchase_multiplier": "2", "birthday_multiplier": "2"})
    assert earning.earn(0, r, date="2026-05-10") == []
    assert earning.earn(0, r, date="2026-05-10", first=True, birthday=True, tier="Platinum") == []


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
    assert sqlite3.connect(dbp).execute("SELECT count(*) FROM program_versions").fetchone()[0] == 0


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
    conn = sqlite3.connect(dbp)
    try:
        return conn.execute("SELECT coalesce(sum(points), 0) FROM ledger WHERE ref = ?", (ref,)).fetchone()[0]
    finally:
        conn.close()


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
    conn = sqlite3.connect(dbp)
    assert conn.execute("SELECT purchase_id, points FROM purchases ORDER BY purchase_id").fetchall() == [
        ("P1", 10), ("P2", 20), ("P3", 20)]
    conn.close()
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


def test_a_stored_version_from_before_todays_limits_still_works(dbp):
    """Limits added later (tier names of 40 printable characters, numbers up to 10^12) check new
    versions; a version the database already holds is read as it was accepted."""
    import json

    ok(dbp, "members", "add", "--id", "A", "--name", "Ann", "--joined", "2025-01-01")
    doc = {"earn": {"signup_bonus": 10**13},
           "tiers": {"levels": [{"name": "Bronze", "min": "0", "multiplier": "1"},
                                {"name": "Platinum (free delivery and early access to sales)", "min": "500",
                                 "multiplier": "2"}]}}
    conn = sqlite3.connect(dbp)
    conn.execute("INSERT INTO program_versions (applies_from, rules, loaded_at, source) VALUES (?,?,?,?)",
                 ("2026-01-01", json.dumps(doc), "2026-01-01T00:00:00", "old.toml"))
    conn.commit()
    conn.close()
    assert run(dbp, "purchases", "add", "A", "600.00", "--at", "2026-02-01").exit_code == 0
    assert as_json(dbp, "members", "show", "A")["tier"].startswith("Platinum")
    assert run(dbp, "tiers", "recalc", "--as-of", "2026-02-02").exit_code == 0
    new = dbp.parent / "new.toml"
    new.write_text("[earn]\nsignup_bonus = 10000000000000\n")
    assert run(dbp, "program", "load", new).exit_code == 3  # a new version is checked
