"""Pure earning rules: a sale + the rules in force + the member's situation → ledger lines.

No I/O. Every step is rounded from the exact product of the amount and every
multiplier so far (integer numerator/denominator arithmetic, never floats or
rounded running totals); each step's bonus is its total minus the previous
step's total, so `earn + Σ bonus` is exactly the sale's points.
"""

from __future__ import annotations

from fractions import Fraction

from loyalty_cli.rules import Rules


def _round(num: int, den: int, rounding: str) -> int:
    if rounding == "half_up":
        return (2 * num + den) // (2 * den)
    return num // den


def candidates(rules: Rules, *, date: str, category: str | None, first: bool, birthday: bool) -> list[tuple[str, Fraction]]:
    """The promotional multipliers whose conditions the sale meets, in the order of SPEC §6, before
    stacking (`purchases explain` shows those stacking left out too)."""
    found = []
    if first and rules.first_purchase_multiplier > 1:
        found.append(("first_purchase", rules.first_purchase_multiplier))
    if birthday and rules.birthday_multiplier > 1:
        found.append(("birthday", rules.birthday_multiplier))
    if rules.campaigns:
        day = date[:10]
        cat = category.lower() if category else None
        for c in rules.campaigns:
            if c.start <= day <= c.end and c.multiplier > 1 and (not c.categories or cat in c.categories):
                found.append((f"campaign:{c.name}", c.multiplier))
    return found


def promotions(rules: Rules, *, date: str, category: str | None, first: bool, birthday: bool) -> list[tuple[str, Fraction]]:
    """The promotional multipliers that apply, in the order of SPEC §6, after stacking."""
    found = candidates(rules, date=date, category=category, first=first, birthday=birthday)
    if rules.stacking == "max" and len(found) > 1:
        best = found[0]
        for promo in found[1:]:
            if promo[1] > best[1]:
                best = promo
        found = [best]
    return found


def earn(amount: int, rules: Rules, *, date: str, category: str | None = None, first: bool = False,
         birthday: bool = False, tier: str | None = None, trace: list | None = None) -> list[tuple[str, str | None, int]]:
    """Ledger lines for one sale: [("earn", None, base), ("bonus", rule, points), …], zeros left out.

    `trace` (purchases explain): a list that gets each step as it is computed, the exact product
    as numerator and denominator and its rounded total: ("base", category ratio or None, num, den,
    total), then (rule, (multiplier num, den), num, den, total) per step; ("below_min_amount", …)
    when the sale earns nothing."""
    if amount < rules.min_amount:
        if trace is not None:
            trace.append(("below_min_amount", None, amount, 1, 0))
        return []
    num, den = rules.base_ratio
    num *= amount
    ratio = None
    if category and rules.category_ratios:
        ratio = rules.category_ratios.get(category.lower())
        if ratio is not None:
            num *= ratio[0]
            den *= ratio[1]
    rounding = rules.rounding
    total = _round(num, den, rounding)
    if trace is not None:
        trace.append(("base", ratio, num, den, total))
    lines = [("earn", None, total)] if total else []
    steps = [(name, m.numerator, m.denominator)
             for name, m in promotions(rules, date=date, category=category, first=first, birthday=birthday)
             ] if rules.has_promotions else []
    if tier is not None:
        bonus = rules.tier_bonuses.get(tier)
        if bonus is not None:
            steps.append(bonus)
    for name, mult_num, mult_den in steps:
        num *= mult_num
        den *= mult_den
        step_total = _round(num, den, rounding)
        if trace is not None:
            trace.append((name, (mult_num, mult_den), num, den, step_total))
        if step_total != total:
            lines.append(("bonus", name, step_total - total))
            total = step_total
    return lines
