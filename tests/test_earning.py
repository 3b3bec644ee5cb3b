"""Earning (SPEC §6): the pure `earning.earn` function (rules validation and programme versions: test_rules.py).

Every expected number below is worked out by hand from the spec's rule: each
step's total is rounded from the exact product of the amount and every
multiplier so far; a step's bonus is its total minus the previous total; entries
of 0 points are not written.
"""

from __future__ import annotations

import pytest

from loyalty_cli import earning, rules

# -- small local helpers (independent of conftest) ------------------------------------

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
