"""Tiers: qualification windows, upgrades as sales are recorded, and the nightly recalc.

A member's qualifying value in the window ending at a date is their spend (sales
minus refunds, each on its own date) or, under the points basis, the points their
sales earned without tier bonuses, minus the same share of reversals.
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left, bisect_right
from functools import lru_cache

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, UsageError
from loyalty_cli.ids import active_member, existing_member
from loyalty_cli.program import load_programme
from loyalty_cli.rules import Rules
from loyalty_cli.store import members as member_rows
from loyalty_cli.store import tiers as tier_rows
from loyalty_cli.i18n import M_

_ORD_CACHE: dict[str, int] = {}


def ordinal(date: str) -> int:
    day = date[:10]
    o = _ORD_CACHE.get(day)
    if o is None:
        o = _ORD_CACHE[day] = dt.date.fromisoformat(day).toordinal()
    return o


def window_bounds(rules: Rules, date: str) -> tuple[str | None, str]:
    """(first date in the window or None for lifetime, last date in the window)."""
    return _window_bounds(rules.tier_window, date[:10])


@lru_cache(maxsize=4096)
def _window_bounds(window: str, day: str) -> tuple[str | None, str]:
    if window == "rolling_12m":
        return values.add_days(values.add_months(day, -12), 1), day
    if window == "calendar_year":
        return day[:4] + "-01-01", day
    return None, day


def _value(basis: str, kind: str, amount: int, basis_points: int) -> int:
    v = amount if basis == "spend" else basis_points
    return v if kind == "sale" else -v


def preload(book, ids, basis: str) -> None:
    """Load the qualifying history of many members with a few queries (imports)."""
    wanted = [m for m in (book.members.get(i) for i in dict.fromkeys(ids)) if m is not None and m.qualifying is None]
    if book.history_empty:  # a first import into an empty table: nobody has earlier purchases
        for m in wanted:
            m.qualifying = (basis, array("l"), array("q"))
        return
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for m in chunk:
            m.qualifying = (basis, array("l"), array("q"))
        by_id = {m.member_id: m for m in chunk}
        for member_id, at, kind, amount, bp in tier_rows.purchases_of(book.conn, list(by_id)):
            __, days, vals = by_id[member_id].qualifying
            days.append(ordinal(at))
            vals.append(_value(basis, kind, amount, bp))


def qualifying_history(book, m, basis: str):
    """The member's (days, values) for a basis, loading it on first use (or when the basis changes)."""
    if m.qualifying is not None and m.qualifying[0] == basis:
        return m.qualifying[1], m.qualifying[2]
    if m.qualifying is not None:
        # Another basis was loaded: read the member's purchases again, this book's included.
        book.restore_indexes()  # flushes this book's purchases, so they are read back too
        m.qualifying = None
    preload(book, [m.member_id], basis)
    return m.qualifying[1], m.qualifying[2]


def note_purchase(book, m, rules: Rules, at: str, kind: str, amount: int, basis_points: int) -> None:
    """Add a recorded sale or refund to the member's qualifying history."""
    if m.qualifying is None:
        qualifying_history(book, m, rules.tier_basis)
    basis, days, vals = m.qualifying
    day = ordinal(at)
    v = _value(basis, kind, amount, basis_points)
    if not days or day >= days[-1]:
        days.append(day)
        vals.append(v)
    else:
        i = bisect_right(days, day)
        days.insert(i, day)
        vals.insert(i, v)


@lru_cache(maxsize=4096)
def _window_ordinals(window: str, day: str) -> tuple[int, int]:
    """window_bounds as day ordinals (0 for the start of a lifetime window)."""
    first, last = _window_bounds(window, day)
    return (ordinal(first) if first else 0), ordinal(last)


def qualifying_value(book, m, rules: Rules, date: str, basis: str | None = None) -> int:
    """The member's spend (or points earned) in the window ending at `date`."""
    days, vals = qualifying_history(book, m, basis or rules.tier_basis)
    first, last = _window_ordinals(rules.tier_window, date[:10])
    return sum(vals[bisect_left(days, first):bisect_right(days, last)])


def upgrade_on_sale(book, m, rules: Rules, at: str, purchase_id: str) -> None:
    """Upgrades take effect as soon as a recorded sale qualifies (the sale itself earned at the old tier).
    Under tiers.pooling = "household", a household member's sale qualifies the whole household."""
    if rules.tier_pooling == "household":
        from loyalty_cli import households

        if households.upgrade_on_sale(book, m, rules, at, purchase_id):
            return
    if m.tier == rules.levels[-1].name:
        return
    level = rules.qualifying_level(qualifying_value(book, m, rules, at))
    if rules.rank(level.name) > rules.rank(m.tier):
        book.record_tier_change(m, at, level.name, "purchase", ref=purchase_id)


def _candidates(tx, rules: Rules, date: str) -> list[tuple]:
    """Members whose tier may change on `date`: those not holding the tier they qualify for, or with a floor.
    Rows: (member_id, tier, tier_since, floor_tier, floor_until, qualified)."""
    first, last = window_bounds(rules, date)
    higher = [(lvl.min, lvl.name) for lvl in reversed(rules.levels[1:])]
    return tier_rows.candidates(tx, rules.tier_basis, first, values.end_of_day(last), date[:10], higher,
                                rules.levels[0].name)


def _undone_upgrades(tx, rules: Rules, candidates: list[tuple[str, str]], as_of: str) -> dict[str, int]:
    """For members whose hold would keep them up: the value on their upgrade date, counting refunds since.

    SPEC §6: the hold does not protect an upgrade that refunds have undone.
    """
    if not candidates:
        return {}
    windows = []
    for member_id, since in candidates:
        first, last = window_bounds(rules, since)
        windows.append((member_id, first or values.EARLIEST, values.end_of_day(last)))
    found = tier_rows.values_since_upgrade(tx, rules.tier_basis, windows, values.end_of_day(as_of))
    if rules.tier_pooling == "household":  # a household's members are held or moved on their combined value
        from loyalty_cli import households

        found = households.undone_values(tx, rules, candidates, as_of, found)
    return found


def recalc(store, as_of: str, dry_run: bool = False, ran_at: str | None = None) -> dict:
    """Recalculate every member's tier as of a date: upgrades, held downgrades, lapsed manual floors.
    `ran_at`: when it runs, as the caller's clock says (recorded with the run; default: the as-of date)."""
    with store.job_lock("recalc"):
        with store.write() as tx:
            latest = tier_rows.latest_recalc(tx)
            if latest and as_of < latest and not dry_run:
                raise LoyaltyError(M_("a recalc as of {latest} has already run; a recalc dated {as_of} would rewrite history (use --dry-run to look without changing anything)", latest=latest, as_of=as_of))
            rules = load_programme(tx).for_date(as_of)
            total = tier_rows.members_joined_by(tx, as_of)
            members = _candidates(tx, rules, as_of)
            if rules.tier_pooling == "household":
                from loyalty_cli import households

                members = households.pooled_candidates(tx, rules, as_of, members)
            changes, held = [], []
            plans = {}
            held_targets = {}  # held members: (the tier they would move to, with any active floor; the floor kept)
            for member_id, tier, since, floor_tier, floor_until, qualified in members:
                floor_active = floor_tier is not None and (floor_until is None or floor_until >= as_of)
                target = qualified
                if floor_active and rules.rank(floor_tier) > rules.rank(target):
                    target = floor_tier
                current_rank, target_rank = rules.rank(tier), rules.rank(target)
                if target_rank > current_rank:
                    plans[member_id] = (tier, target, floor_active)
                elif target_rank < current_rank:
                    lapsed_floor = floor_tier == tier and not floor_active
                    if lapsed_floor or as_of >= values.add_months(since, rules.hold_months):
                        plans[member_id] = (tier, target, floor_active)
                    else:
                        held.append((member_id, since))
                        held_targets[member_id] = (target, floor_active)
                elif floor_tier is not None and not floor_active:
                    plans[member_id] = (tier, tier, False)  # floor lapsed, same tier: just clear it
            held_tiers = {mid: tier for mid, tier, *__ in members}
            manual = tier_rows.manually_set(tx)
            held = [(mid, since) for mid, since in held if mid not in manual]
            for member_id, value in _undone_upgrades(tx, rules, held, as_of).items():
                level = rules.level(held_tiers[member_id])
                if level is not None and value < level.min:
                    plans[member_id] = (held_tiers[member_id], *held_targets[member_id])
            at = as_of + "T00:00:00"
            upgraded = downgraded = 0
            change_rows, planned = [], []
            for member_id, (old, new, floor_active) in sorted(plans.items()):
                if old != new:
                    up = rules.rank(new) > rules.rank(old)
                    upgraded += up
                    downgraded += not up
                    changes.append({"member_id": member_id, "from": old, "to": new})
                    change_rows.append((member_id, at, old, new, "recalc", None, None, None))
                planned.append((new, as_of if old != new else None, floor_active, member_id))
            unchanged = total - len(changes)
            if not dry_run:
                tier_rows.record_recalc(tx, change_rows, planned, as_of, ran_at or as_of, upgraded, downgraded)
            else:
                tier_rows.discard(tx)
    return {"as_of": as_of, "dry_run": dry_run, "upgraded": upgraded, "downgraded": downgraded, "unchanged": unchanged,
            "changes": changes}


def set_tier(store, member_id: str, tier: str, at: str, until: str | None, by: str) -> dict:
    """`tiers set`: a manual tier, applied at once (up or down), held as a floor through `until`."""
    with store.write() as tx:
        member_id = active_member(tx, member_id)
        held = member_rows.standing(tx, member_id).tier
        rules = load_programme(tx).for_date(at)
        level = next((lvl for lvl in rules.levels if lvl.name.lower() == tier.lower()), None)
        if level is None:
            raise UsageError(M_("there is no tier {tier!r} (tiers: {join})", tier=tier, join=', '.join((lvl.name for lvl in rules.levels))))
        if until is not None and until < at[:10]:
            raise LoyaltyError(M_("--until {until} is before the change itself ({at})", until=until, at=at[:10]))
        tier_rows.set_manual(tx, member_id, at, held, level.name, until, by)
    return {"member_id": member_id, "from": held, "to": level.name, "until": until, "at": at}


def fraction_text(f) -> str:
    """An exact multiplier as decimal text (5/4 → "1.25")."""
    from decimal import Decimal

    return str((Decimal(f.numerator) / Decimal(f.denominator)).normalize())


def levels_with_counts(store, as_of: str) -> list[dict]:
    """`tiers list`: the levels in force, their thresholds and multipliers, and how many members hold each."""
    with store.read() as tx:
        rules = load_programme(tx).for_date(as_of)
        counts = tiers_held(tx, as_of, rules)
    out = [{"tier": lvl.name, "min": lvl.min, "multiplier": fraction_text(lvl.multiplier), "members": counts.pop(lvl.name)}
           for lvl in rules.levels]
    out += [{"tier": name, "min": None, "multiplier": None, "members": n} for name, n in counts.items()]
    return out, rules


def tiers_held(tx, as_of: str, rules: Rules) -> dict[str, int]:
    """Members by the date (store.tiers.MEMBER_BY), counted by the tier they held at its end (every
    level, zeros too; then any tier no longer among the levels), as members.tier_on says: the last
    change recorded among those dated up to the date."""
    counts = dict(tier_rows.held_counts(tx, as_of, values.end_of_day(as_of)))
    out = {lvl.name: counts.pop(lvl.name, 0) for lvl in rules.levels}
    out.update(sorted(counts.items()))
    return out


HISTORY_SORTS = ("at", "to", "reason")


def history(store, member_id: str, limit: int | None = None, sort: str = "at") -> list[dict]:
    """`tiers history`: the member's tier changes; `limit` keeps the last ones, `sort` orders them."""
    values.check_sort(sort, HISTORY_SORTS)
    rows = _history(store, member_id)
    rows = rows[-limit:] if limit else rows
    return rows if sort == "at" else sorted(rows, key=lambda change: change[sort])


def _history(store, member_id: str) -> list[dict]:
    with store.read() as tx:
        member_id = existing_member(tx, member_id)
        return [{"at": r[0], "from": r[1], "to": r[2], "reason": r[3], "until": r[4], "by": r[5], "ref": r[6]}
                for r in tier_rows.history(tx, member_id)]
