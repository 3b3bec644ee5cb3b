"""Tiers: qualification windows, upgrades as sales are recorded, and the nightly recalc.

A member's qualifying value in the window ending at a date is their spend (sales
minus refunds, each on its own date) or, under the points basis, the points their
sales earned without tier bonuses, minus the same share of reversals.
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left, bisect_right

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, NotFound
from loyalty_cli.rules import Rules

_ORD_CACHE: dict[str, int] = {}


def ordinal(date: str) -> int:
    day = date[:10]
    o = _ORD_CACHE.get(day)
    if o is None:
        o = _ORD_CACHE[day] = dt.date.fromisoformat(day).toordinal()
    return o


def window_bounds(rules: Rules, date: str) -> tuple[str | None, str]:
    """(first date in the window or None for lifetime, last date in the window)."""
    day = date[:10]
    if rules.tier_window == "rolling_12m":
        return values.add_days(values.add_months(day, -12), 1), day
    if rules.tier_window == "calendar_year":
        return day[:4] + "-01-01", day
    return None, day


def _value_column(basis: str) -> str:
    return "amount" if basis == "spend" else "basis_points"


def _value(basis: str, kind: str, amount: int, basis_points: int) -> int:
    v = amount if basis == "spend" else basis_points
    return v if kind == "sale" else -v


def preload(book, ids, basis: str) -> None:
    """Load the qualifying history of many members with a few queries (imports)."""
    wanted = [m for m in (book.members.get(i) for i in dict.fromkeys(ids)) if m is not None and m.qualifying is None]
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for m in chunk:
            m.qualifying = {basis: (array("l"), array("q"))}
        by_id = {m.member_id: m for m in chunk}
        marks = ",".join("?" * len(chunk))
        rows = book.conn.execute(
            f"SELECT member_id, purchased_at, kind, amount, basis_points FROM purchases WHERE member_id IN ({marks}) "
            "ORDER BY member_id, purchased_at", list(by_id)).fetchall()
        for member_id, at, kind, amount, bp in rows:
            days, vals = by_id[member_id].qualifying[basis]
            days.append(ordinal(at))
            vals.append(_value(basis, kind, amount, bp))


def history(book, m, basis: str):
    """The member's (days, values) for a basis, loading it on first use."""
    if m.qualifying is None:
        preload(book, [m.member_id], basis)
    q = m.qualifying.get(basis)
    if q is None:
        book.flush()  # another basis is loaded; pending purchases must be in the database first
        m.qualifying[basis] = q = (array("l"), array("q"))
        for at, kind, amount, bp in book.conn.execute(
                "SELECT purchased_at, kind, amount, basis_points FROM purchases WHERE member_id = ? ORDER BY purchased_at",
                (m.member_id,)):
            q[0].append(ordinal(at))
            q[1].append(_value(basis, kind, amount, bp))
    return q


def note_purchase(book, m, rules: Rules, at: str, kind: str, amount: int, basis_points: int) -> None:
    """Add a recorded sale or refund to the member's qualifying history."""
    if m.qualifying is None:
        history(book, m, rules.tier_basis)
    day = ordinal(at)
    for basis, (days, vals) in m.qualifying.items():
        v = _value(basis, kind, amount, basis_points)
        if not days or day >= days[-1]:
            days.append(day)
            vals.append(v)
        else:
            i = bisect_right(days, day)
            days.insert(i, day)
            vals.insert(i, v)


def qualifying_value(book, m, rules: Rules, date: str, basis: str | None = None) -> int:
    """The member's spend (or points earned) in the window ending at `date`."""
    days, vals = history(book, m, basis or rules.tier_basis)
    first, last = window_bounds(rules, date)
    i = bisect_left(days, ordinal(first)) if first else 0
    j = bisect_right(days, ordinal(last))
    return sum(vals[i:j])


def upgrade_on_sale(book, m, rules: Rules, at: str, purchase_id: str) -> None:
    """Upgrades take effect as soon as a recorded sale qualifies (the sale itself earned at the old tier)."""
    if m.tier == rules.levels[-1].name:
        return
    level = rules.qualifying_level(qualifying_value(book, m, rules, at))
    if rules.rank(level.name) > rules.rank(m.tier):
        book.tier_changes.append((m.member_id, at, m.tier, level.name, "purchase", None, None, purchase_id))
        m.tier = level.name
        m.tier_since = at[:10]
        book.dirty.add(m)
