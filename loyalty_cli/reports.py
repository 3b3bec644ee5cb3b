"""Reports and the dashboard (SPEC §8): queries that return plain data, never print.

The heavy lifting is done by the queries of `store.reports` — grouped aggregates,
window functions, CTEs — so a million purchases never travel into Python; what
comes back is one row per member at most (usually far less). Money stays integer
minor units here; the CLI formats it.

Dates: "as of D" means everything dated up to the end of day D. Windows and day
counts use calendar dates (the time of day is ignored):

- the *year window* is the 365 days ending with D: dated after D − 365 days,
  up to and including D (RFM, Pareto, top members, NPS, anomalies);
- the dashboard's *period* is the P days ending with D, the *previous period*
  the P days before that.

A sale is any `kind = 'sale'` row, zero sales included; refunds count on their
own date (a refund dated in a window lowers that window's net spend even when
the sale was earlier).

Choices made where SPEC §8 is silent (kept in one place so the help and the
README can quote them):

- Erased members are still members: their purchases and points count in every
  figure (totals must add up); they simply have no name or contact.
- A member counts on D (the dashboard's total, tiers held) once they joined by D
  or bought by D: a till's history imported after the members, who then joined
  "today", has purchases dated before `joined_on`. *New* is joined in the period.
- Points *issued* = signup, earn, bonus, referral, award and positive adjust
  entries, minus reversals (transfers and voucher cancellations move points that
  were issued before). Points *redeemed* = redeem entries net of voucher
  cancellations (a cancelled voucher gives the points back, so it was not a
  redemption). Redeemed and expired are positive numbers.
- Money divisions (average order value, the liability's value) round half up
  to the minor unit.
- Liability months count the unconsumed points (as of D) of lots whose expiry
  date falls in that month — lots already lapsed but not yet written off by an
  expiry run included, since they have not been written off on D; those that
  lapsed before D's month count in D's month, when the next run writes them off.
- `report expiring` lists one row per member and expiry date (lots expiring in
  [D, D + N], their points unconsumed at the end of D).
- Birthdays: members joined by D; a 29 February birthday is celebrated on
  28 February in other years; the age shown is the age reached on that date.
- Anomalies (the 365 days to D, thresholds of the rules in force on D):
  * `sales_per_day`: more than `max_sales_per_day` sales by one member on one
    calendar date;
  * `small_burst`: `small_burst` or more sales, each of an amount below
    `small_sale` (zero sales included), whose first and last are at most
    `small_burst_minutes` apart (inclusive); one finding per member and day,
    with the largest such run that starts that day;
  * `refund_ratio`: a member's refund ratio (number of refunds / number of
    sales, both dated in the window) above `refund_ratio_factor` × the shop's
    ratio over the same window, counted only for members with at least
    `REFUND_RATIO_MIN_SALES` sales in the window and at least
    `REFUND_RATIO_MIN_REFUNDS` refunds (a single refund is never a pattern);
    dated on the member's last refund;
  * `award_redeem`: a manual `award` entry of at least `award_redeem_points`
    followed (a later entry) by a `redeem` entry of the same member dated at
    most `award_redeem_days` calendar days after it; dated on the award;
  * `refund_after_spend`: a refund whose reversal left the member's balance
    below zero after a transfer or redemption (recorded before the refund)
    had taken points of the refunded sale's lot - the points were spent
    before the purchase was taken back (earn.pending_days prevents it);
    dated on the refund.
- Branches (issue 18): a purchase may carry the branch (store) it was rung up
  at; a refund counts at its own branch, not its sale's. `--store NAME` shows
  one branch in the reports about purchases (rfm, segments, pareto, churn) and
  in the dashboard's purchase figures (sales, active members, repeat rate,
  retention, the monthly net sales, segments, top members), computed from that
  branch's purchases alone. Members, points, liability, tiers and NPS belong to
  the member, not to a branch: they stay the whole shop's, and liability,
  expiring, birthdays and anomalies take no --store. A name no purchase was
  rung up at is an error naming the branches there are. The dashboard lists
  each branch of the period (sales, net sales, buyers = members with a sale
  there; purchases without a branch are in no row).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter
from fractions import Fraction

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, UsageError
from loyalty_cli.program import load_programme
from loyalty_cli.store import reports as report_rows
from loyalty_cli.tiers import tiers_held
from loyalty_cli.i18n import M_, _

SEGMENTS = ("champions", "loyal", "potential", "at_risk", "lost", "regular")
PARETO_PERCENTS = (1, 5, 10, 20)
REFUND_RATIO_MIN_SALES = 3
REFUND_RATIO_MIN_REFUNDS = 2
WINDOW_DAYS = 365

# Sort keys of the lists sorted here: the fields to order by (churn and expiring are ordered by
# their queries: store.reports.CHURN_ORDER and EXPIRING_ORDER).
BIRTHDAY_SORTS = {"date": ("date", "member_id"), "id": ("member_id",), "age": ("age", "date", "member_id")}
ANOMALY_SORTS = {"date": ("date", "member_id", "rule"), "id": ("member_id", "date", "rule"), "rule": ("rule", "date", "member_id")}


# -- dates --------------------------------------------------------------------
class Dates:
    """The bounds every report derives from the as-of date D (text, for SQL comparisons)."""

    def __init__(self, as_of: str, period: int = 30):
        self.as_of = as_of[:10]
        self.end = values.end_of_day(self.as_of)                               # D 23:59:59
        self.window_start = values.add_days(self.as_of, 1 - WINDOW_DAYS) + "T00:00:00"
        self.period = period
        self.period_start = values.add_days(self.as_of, 1 - period) + "T00:00:00"
        self.previous_start = values.add_days(self.as_of, 1 - 2 * period) + "T00:00:00"

    def params(self) -> dict:
        """The bounds as the named parameters of the report queries."""
        return {"as_of": self.as_of, "end": self.end, "window_start": self.window_start,
                "period_start": self.period_start, "previous_start": self.previous_start}

    def months(self, count: int = 12) -> list[str]:
        """The `count` months ending with D's month, oldest first ("YYYY-MM")."""
        y, m = int(self.as_of[:4]), int(self.as_of[5:7])
        out = []
        for back in range(count - 1, -1, -1):
            index = y * 12 + (m - 1) - back
            out.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
        return out

    def months_ahead(self, count: int = 12) -> list[str]:
        """D's month and the `count` − 1 after it ("YYYY-MM"), none past the calendar's last (9999-12)."""
        y, m = int(self.as_of[:4]), int(self.as_of[5:7])
        out = []
        for ahead in range(count):
            index = y * 12 + (m - 1) + ahead
            if index // 12 > 9999:
                break
            out.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
        return out


def check_store(tx, store: str | None) -> None:
    """`--store NAME` of a report: LoyaltyError (exit 1) naming the branches there are when no
    purchase was ever rung up at `store` (a typo would otherwise show an empty report)."""
    if store is None or report_rows.has_store(tx, store):
        return
    known = report_rows.stores(tx)
    there = (_("the stores are: {join}").format(join=', '.join(known)) if known
             else _("no purchase has a store yet (purchases add/import --store NAME)"))
    raise LoyaltyError(M_("no purchase was rung up at store {store!r}; {there}", store=store, there=there))


def _rules(tx, as_of: str):
    """The rules in force on `as_of` and the currency's decimals."""
    programme = load_programme(tx)
    return programme.for_date(as_of), programme.currency_decimals


def _ratio(numerator, denominator) -> float | None:
    """A share or rate: null when the denominator (the total) is ≤ 0."""
    if denominator is None or denominator <= 0:
        return None
    return (numerator or 0) / denominator


def _round_half_up(value: Fraction) -> int:
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


def divide_money(total: int | None, count: int | None) -> int | None:
    """total / count in minor units, rounded half up; None when count ≤ 0."""
    if not count or count <= 0:
        return None
    return _round_half_up(Fraction(total or 0, count))


def points_value(points: int, rules) -> int:
    """The money value (minor units, rounded half up) of `points` at `point_value`."""
    return _round_half_up(points * rules.point_value * 10 ** rules.currency_decimals)


def segment_of(r: int, f: int, m: int) -> str:
    """SPEC §8's segments, first match wins."""
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if f >= 4 and m >= 3:
        return "loyal"
    if r >= 4:
        return "potential"
    if r <= 2 and (f >= 3 or m >= 3):
        return "at_risk"
    if r <= 2:
        return "lost"
    return "regular"


def _scores(counts: Counter, n: int) -> dict:
    """value → its 1–5 score: 1 + floor(5 × (members with a lower value) / n); ties share a score."""
    out = {}
    lower = 0
    for value in sorted(counts):
        out[value] = 1 + 5 * lower // n
        lower += counts[value]
    return out


SEGMENT_OF = {(r, f, m): segment_of(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}


def rfm_columns(tx, d: Dates, store: str | None = None) -> tuple:
    """RFM of every member with a sale up to D, in member order, as columns (lists):
    member_id, recency_days, frequency, monetary, r, f, m, segment, last sale date.
    With `store`: of the members with a sale at that branch, from their purchases there.

    The figures come from SQL (store.reports.purchase_summary); the scores are ranks, counted here from
    how many members share each value (three window-function sorts of 100,000 rows
    cost SQLite half a second; counting them here a tenth of that). Columns, because
    every step is then one C-level map over 100,000 values instead of a Python loop.
    """
    rows = _fold_summary(report_rows.purchase_summary(tx, d.params(), store), merged_by(tx, d.end))
    n = len(rows)
    if not n:
        return tuple([] for __ in RFM_FIELDS)
    mids, lasts, freqs, mons = zip(*rows)
    as_of = dt.date.fromisoformat(d.as_of).toordinal()
    last_days = Counter(lasts)
    recency = {day: as_of - dt.date.fromisoformat(day).toordinal() for day in last_days}
    r_of = _scores(Counter({-recency[day]: count for day, count in last_days.items()}), n)  # a higher recency is worse
    r_of = {day: r_of[-recency[day]] for day in last_days}
    f_of = _scores(Counter(freqs), n)
    m_of = _scores(Counter(mons), n)
    rs = list(map(r_of.__getitem__, lasts))
    fs = list(map(f_of.__getitem__, freqs))
    ms = list(map(m_of.__getitem__, mons))
    segments = list(map(SEGMENT_OF.__getitem__, zip(rs, fs, ms)))
    return mids, list(map(recency.__getitem__, lasts)), freqs, mons, rs, fs, ms, segments, lasts


# Sort keys of `report rfm`: the column to order by and whether the highest comes first; ties stay in
# member order ("id" is the member order itself).
RFM_SORTS = {
    "id": None,
    "recency": (1, False),
    "frequency": (2, True),
    "monetary": (3, True),
    "segment": (7, False),
    "score": (None, True),
}
SEGMENT_RANK = {name: i for i, name in enumerate(SEGMENTS)}

RFM_FIELDS = ("member_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment", "last_sale")


def rfm(store, as_of: str, sort: str = "id", limit: int | None = None, branch: str | None = None) -> dict:
    """`report rfm`: recency, frequency, monetary, their 1–5 scores and segment, per member with a sale.

    "columns" are RFM_FIELDS' lists, not rows of dicts: a year's RFM can be a hundred
    thousand members, and the CLI writes its JSON straight from columns.
    """
    how = RFM_SORTS[values.check_sort(sort, RFM_SORTS, "report rfm")]
    d = Dates(as_of)
    with store.read() as tx:
        check_store(tx, branch)
        __, decimals = _rules(tx, d.as_of)
        columns = rfm_columns(tx, d, branch)
    if how:
        column, highest_first = how
        values_ = ([a + b + c for a, b, c in zip(*columns[4:7])] if column is None
                   else [SEGMENT_RANK[s] for s in columns[7]] if column == 7 else columns[column])
        # sorted() is stable: members with equal values keep member order, highest first or not
        order = sorted(range(len(values_)), key=(lambda i: -values_[i]) if highest_first else values_.__getitem__)
        columns = tuple([col[i] for i in order] for col in columns)
    if limit:
        columns = tuple(col[:limit] for col in columns)
    return {"as_of": d.as_of, "columns": columns, "currency_decimals": decimals, "store": branch}


def segment_members(store, segment: str, as_of: str) -> set[str]:
    """The ids of the members in one RFM segment on `as_of` (for `members list --segment`)."""
    if segment not in SEGMENTS:
        raise UsageError(M_("unknown segment {segment!r}; the segments are: {join}", segment=segment, join=', '.join(SEGMENTS)))
    with store.read() as tx:
        columns = rfm_columns(tx, Dates(as_of))
    return {mid for mid, seg in zip(columns[0], columns[7]) if seg == segment}


def _segment_counts(columns: tuple) -> dict[str, list[int]]:
    """segment → [members, spend, sales] over rfm_columns."""
    found = {}
    for segment, monetary, frequency in zip(columns[7], columns[3], columns[2]):
        t = found.get(segment)
        if t is None:
            t = found[segment] = [0, 0, 0]
        t[0] += 1
        t[1] += monetary
        t[2] += frequency
    return found


def segments(store, as_of: str, branch: str | None = None) -> dict:
    """`report segments`: per RFM segment, its members, share of members, share of spend, average order value."""
    d = Dates(as_of)
    with store.read() as tx:
        check_store(tx, branch)
        __, decimals = _rules(tx, d.as_of)
        found = _segment_counts(rfm_columns(tx, d, branch))
    n = sum(c for c, __, __ in found.values())
    total = sum(s for __, s, __ in found.values())
    out = []
    for name in SEGMENTS:
        count, spend, sales = found.get(name, (0, 0, 0))
        out.append({"segment": name, "members": count, "share_of_members": _ratio(count, n),
                    "spend": spend, "share_of_spend": _ratio(spend, total), "sales": sales,
                    "average_order_value": divide_money(spend, sales)})
    return {"as_of": d.as_of, "members": n, "spend": total, "segments": out, "currency_decimals": decimals,
            "store": branch}


def pareto(store, as_of: str, branch: str | None = None) -> dict:
    """`report pareto`: the share of the year's net spend made by the top 1/5/10/20 % of members, and 80 %."""
    d = Dates(as_of)
    with store.read() as tx:
        check_store(tx, branch)
        __, decimals = _rules(tx, d.as_of)
        aliases = merged_by(tx, d.end)
        if aliases:  # each alias's spend is its member's (see "members merged into another")
            row = _pareto_of(_fold_summary(report_rows.purchase_summary(tx, d.params(), branch), aliases))
        else:
            row = report_rows.pareto_figures(tx, d.params(), PARETO_PERCENTS, branch)
    n, total = row[0] or 0, row[1] or 0
    top_spend = [v or 0 for v in row[2:2 + len(PARETO_PERCENTS)]]
    k80 = row[-1]
    return {
        "as_of": d.as_of, "member_count": n, "total_spend": total,
        "top_counts": {str(p): -(-n * p // 100) for p in PARETO_PERCENTS},
        "top_spend": {str(p): v for p, v in zip(PARETO_PERCENTS, top_spend)},
        "top_shares": {str(p): _ratio(v, total) for p, v in zip(PARETO_PERCENTS, top_spend)},
        "members_share_for_80pct": (k80 / n) if (k80 is not None and total > 0) else None,
        "currency_decimals": decimals,
        "store": branch,
    }


# -- churn -------------------------------------------------------------------------
def churn(store, as_of: str, days: int = 365, sort: str = "last_sale", limit: int | None = None,
          branch: str | None = None) -> dict:
    """`report churn`: members whose last sale is `days` or more days before D (exactly N counts)."""
    if days < 0:
        raise UsageError(M_("--days must be zero or more, got {days}", days=days))
    values.check_sort(sort, report_rows.CHURN_ORDER, _("report churn"))
    d = Dates(as_of)
    cutoff = values.end_of_day(values.add_days(d.as_of, -days))  # last sale dated on or before D − N
    with store.read() as tx:
        check_store(tx, branch)
        __, decimals = _rules(tx, d.as_of)
        aliases = merged_by(tx, d.end)
        if aliases:
            rows = _fold_lapsed(tx, report_rows.lapsed_members(tx, d.as_of, d.end, d.end, sort, None, branch), aliases,
                                d.as_of, cutoff, sort, limit)
        else:
            rows = report_rows.lapsed_members(tx, d.as_of, d.end, cutoff, sort, limit, branch)
    members = [{"member_id": r[0], "last_sale": r[1], "lifetime_spend": r[2], "days_since": r[3], "name": r[4],
                "email": r[5], "phone": r[6]} for r in rows]
    return {"as_of": d.as_of, "days": days, "members": members, "currency_decimals": decimals, "store": branch}


# -- liability and expiring points -----------------------------------------------------
# Balances at the end of D are the ledger's (store.reports.outstanding_points, liability_figures):
# the one computation every "as of D" figure uses, which `db check` verifies against the ledger.
def liability(store, as_of: str) -> dict:
    """`report liability`: outstanding points and their value, expiries by month, members below zero."""
    d = Dates(as_of)
    months = d.months_ahead(12)
    with store.read() as tx:
        rules, decimals = _rules(tx, d.as_of)
        # Points that lapsed before D's month and that no expiry run has written off yet go
        # with D's month: the next run (tonight, under cron) writes them off.
        outstanding, by_month, negative = report_rows.liability_figures(tx, d.as_of, months[-1] + "-31", months[0])
    return {
        "as_of": d.as_of,
        "outstanding_points": outstanding,
        "value": points_value(outstanding, rules),
        "point_value": rules.point_value,
        "expiring": [{"month": m, "points": by_month.get(m) or 0, "value": points_value(by_month.get(m) or 0, rules)}
                     for m in months],
        "negative": [{"member_id": m, "balance": b} for m, b in negative],
        "currency_decimals": decimals,
    }


def expiring(store, as_of: str, days: int = 30, sort: str = "date", limit: int | None = None) -> dict:
    """`report expiring`: members with unconsumed points whose expiry date falls in [D, D + days], per date."""
    if days < 0:
        raise UsageError(M_("--days must be zero or more, got {days}", days=days))
    values.check_sort(sort, report_rows.EXPIRING_ORDER, _("report expiring"))
    d = Dates(as_of)
    with store.read() as tx:
        rows = report_rows.expiring_points(tx, d.as_of, values.add_days(d.as_of, days), sort, limit)
    members = [{"member_id": r[0], "date": r[1], "points": r[2], "name": r[3], "email": r[4], "phone": r[5]} for r in rows]
    return {"as_of": d.as_of, "days": days, "members": members}


# -- birthdays -----------------------------------------------------------------------------
def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday_dates(as_of: str, days: int) -> dict[str, str]:
    """Month-day ("MM-DD") → the date it next falls on within [D, D + days]; 29 Feb → 28 Feb off leap years."""
    start = values.to_date(as_of)
    out: dict[str, str] = {}
    for i in range(min(days, 366, (dt.date.max - start).days) + 1):  # the calendar ends in 9999
        day = start + dt.timedelta(days=i)
        md = day.strftime("%m-%d")
        out.setdefault(md, day.isoformat())
        if md == "02-28" and not _is_leap(day.year):
            out.setdefault("02-29", day.isoformat())
    return out


def birthdays(store, as_of: str, days: int = 30, sort: str = "date", limit: int | None = None) -> dict:
    """`report birthdays`: members whose birthday falls within the next `days` days from D (inclusive)."""
    if days < 0:
        raise UsageError(M_("--days must be zero or more, got {days}", days=days))
    values.check_sort(sort, BIRTHDAY_SORTS, _("report birthdays"))
    d = Dates(as_of)
    dates = birthday_dates(d.as_of, days)
    with store.read() as tx:
        rows = report_rows.birthday_members(tx, d.as_of, dates)
        aliases = merged_by(tx, d.end)
    members = []
    rows = [r for r in rows if r[0] not in aliases]  # an alias's birthday is its member's
    for member_id, name, email, phone, birthday in rows:
        date = dates[birthday[5:]]
        members.append({"member_id": member_id, "name": name, "email": email, "phone": phone, "birthday": birthday,
                        "date": date, "age": int(date[:4]) - int(birthday[:4])})
    members.sort(key=lambda r: tuple(r[k] for k in BIRTHDAY_SORTS[sort]))
    return {"as_of": d.as_of, "days": days, "members": members[:limit] if limit else members}


# -- anomalies -------------------------------------------------------------------------------
def anomalies(store, as_of: str, sort: str = "date", limit: int | None = None) -> dict:
    """`report anomalies`: findings by the `[anomalies]` thresholds in force on D, over the 365 days to D."""
    values.check_sort(sort, ANOMALY_SORTS, _("report anomalies"))
    d = Dates(as_of)
    with store.read() as tx:
        rules, decimals = _rules(tx, d.as_of)
        a = rules.anomalies
        start, end = d.window_start, d.end
        busy = report_rows.busy_days(tx, start, end, a["max_sales_per_day"])
        bursts = report_rows.small_bursts(tx, start, end, a["small_sale"], a["small_burst"], a["small_burst_minutes"])
        shop_sales, shop_refunds = report_rows.sales_and_refunds(tx, start, end)
        factor = a["refund_ratio_factor"]
        # A member's refunds / sales above factor × the shop's refunds / sales.
        refunders = (report_rows.frequent_refunders(tx, start, end, REFUND_RATIO_MIN_SALES, REFUND_RATIO_MIN_REFUNDS,
                                                    factor * Fraction(shop_refunds, shop_sales))
                     if shop_sales and shop_refunds else [])
        awards = report_rows.awards_redeemed(tx, start, end, a["award_redeem_points"], a["award_redeem_days"])
        spent_refunds = report_rows.refunds_after_spending(tx, start, end)
    small = values.format_money(a["small_sale"], decimals)
    found: list[dict] = []
    limit_day = a["max_sales_per_day"]
    # The reasons are English in --json and --csv, and shown in the reader's language (i18n.Msg).
    for member_id, day, count in busy:
        found.append({"member_id": member_id, "date": day, "rule": "sales_per_day",
                      "reason": M_("{count} sales in one day (more than {limit_day} a day)", count=count,
                                   limit_day=limit_day)})
    for member_id, day, count, first, last in bursts:
        found.append({"member_id": member_id, "date": day, "rule": "small_burst",
                      "reason": M_("{count} sales under {small} within {minutes} minutes ({first}–{last}{next_day})",
                                   count=count, small=small, minutes=a['small_burst_minutes'], first=first[11:16],
                                   last=last[11:16], next_day="" if last[:10] == day else M_(" next day"))})
    for member_id, sales, refunds, last in refunders:
        found.append({"member_id": member_id, "date": last[:10], "rule": "refund_ratio",
                      "reason": M_("{refunds} refunds for {sales} ({pct}), over {number} × the shop's {pct2}",
                                   refunds=refunds, sales=M_("{n} sale", n=sales) if sales == 1 else M_("{n} sales", n=sales),
                                   pct=_pct(refunds / sales), number=_number(factor), pct2=_pct(shop_refunds / shop_sales))})
    for member_id, at, points, by, redeemed_at, redeemed in awards:
        gap = values.days_between(at, redeemed_at)
        when = (M_("the same day") if gap == 0 else M_("{gap} day later", gap=gap) if gap == 1
                else M_("{gap} days later", gap=gap))
        found.append({"member_id": member_id, "date": at[:10], "rule": "award_redeem",
                      "reason": M_("manual award of {points} points{by} followed by a redemption of {redeemed} points "
                                   "{when} ({redeemed_at})", points=points, by=M_(" by {by}", by=by) if by else "",
                                   redeemed=redeemed, when=when, redeemed_at=redeemed_at[:10])})
    for member_id, refund_id, sale_id, at, balance, sent, redeemed in spent_refunds:
        said = dict(refund_id=refund_id, sale_id=sale_id, member_id=member_id, balance=-balance, sent=sent,
                    redeemed=redeemed)
        if sent and redeemed:
            reason = M_("refund {refund_id} of {sale_id} left {member_id} at −{balance:,} after {sent:,} of its points "
                        "were transferred out and {redeemed:,} redeemed", **said)
        elif sent:
            reason = M_("refund {refund_id} of {sale_id} left {member_id} at −{balance:,} after {sent:,} of its points "
                        "were transferred out", **said)
        else:
            reason = M_("refund {refund_id} of {sale_id} left {member_id} at −{balance:,} after {redeemed:,} of its "
                        "points were redeemed", **said)
        found.append({"member_id": member_id, "date": at[:10], "rule": "refund_after_spend", "reason": reason})
    keys = ANOMALY_SORTS[sort]
    found.sort(key=lambda f: tuple(f[k] for k in keys))
    return {"as_of": d.as_of, "findings": found[:limit] if limit else found}


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _number(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{float(f):g}"


# -- dashboard -------------------------------------------------------------------------------
def dashboard(store, as_of: str, period: int = 30, branch: str | None = None) -> dict:
    """The owner's overview (SPEC §8): every figure of `loyalty dashboard`, as plain data (money in minor units).
    With `branch`, the purchase figures are that branch's (see the module's notes on branches)."""
    if period < 1:
        raise UsageError(M_("--period must be at least 1 day, got {period}", period=period))
    d = Dates(as_of, period)
    months = d.months(12)
    period_start = d.period_start[:10]
    previous_start = d.previous_start[:10]
    with store.read() as tx:
        check_store(tx, branch)
        rules, decimals = _rules(tx, d.as_of)
        # Members by D, who joined on a date or bought by then (store.tiers.MEMBER_BY: so active ≤ total).
        total, new = report_rows.member_counts(tx, period_start, d.as_of, d.end)

        # Purchases, 1: RFM per member gives the segments and the top members by net spend in the year.
        rfm_ = rfm_columns(tx, d, branch)
        seg_counts = Counter(rfm_[7])
        best = heapq.nsmallest(10, zip(rfm_[0], rfm_[3]), key=lambda pair: (-pair[1], pair[0]))
        contact = report_rows.contacts(tx, [mid for mid, __ in best])
        top = [(mid, *contact[mid], spend) for mid, spend in best]
        # 2: this period and the one before: who bought in each, and twice in this one.
        # (a member merged into another is the same customer: see "members merged into another")
        groups = _merged_groups(tx, d)
        active, repeaters, previous, both = _as_one_customer(
            report_rows.period_activity(tx, d.params(), branch), groups, _merged_sales(tx, d, groups, branch),
            _activity_flags)
        count, net = report_rows.sales_between(tx, period_start, d.as_of, branch)
        # The period before, for the dashboard's "this period against the previous one".
        previous_count, previous_net = report_rows.sales_between(tx, previous_start, values.add_days(period_start, -1),
                                                                 branch)
        # Each branch's sales in the period (only the one asked for, with --store).
        branches = []
        for name in ([branch] if branch is not None else report_rows.stores(tx)):
            sales, amount, buyers = report_rows.store_sales(tx, name, period_start, d.as_of)
            if sales or amount:
                buyers, = _as_one_customer((buyers,), groups, _merged_sales(tx, d, groups, name),
                                           lambda now, before: (int(now > 0),))
                branches.append({"store": name, "sales": sales, "net": amount, "buyers": buyers})
        branches.sort(key=lambda b: (-b["net"], b["store"]))
        previous_new = report_rows.joined_between(tx, previous_start, period_start)
        # 3: net sales by month, from the per-day totals.
        monthly_sales = report_rows.monthly_net_sales(tx, months[0] + "-01", d.as_of, branch)

        # Ledger: points issued, redeemed and expired per day (see the module docstring for what
        # counts), summed here for the period, each month and all time up to D.
        issued = redeemed = expired = all_issued = all_redeemed = previous_issued = 0
        by_month = dict.fromkeys(months, 0)
        for day, day_issued, day_redeemed, day_expired in report_rows.daily_points(tx, d.as_of):
            all_issued += day_issued
            all_redeemed += day_redeemed
            if day >= period_start:
                issued += day_issued
                redeemed += day_redeemed
                expired += day_expired
            elif day >= previous_start:
                previous_issued += day_issued
            if day[:7] in by_month:
                by_month[day[:7]] += day_issued
        monthly_points = [by_month[m] for m in months]

        outstanding = report_rows.outstanding_points(tx, d.as_of)
        tiers = tiers_held(tx, d.as_of, rules)
        nps = _nps(*report_rows.nps_counts(tx, d.window_start, d.end))

    return {
        "as_of": d.as_of,
        "period_days": period,
        "period_start": d.period_start[:10],
        "members": {"total": total, "new": new, "active": active},
        "sales": {"count": count, "net": net, "average_order_value": divide_money(net, count)},
        "repeat_rate": _ratio(repeaters, active),
        "retention": _ratio(both, previous),
        "points": {"issued": issued, "redeemed": redeemed, "expired": expired, "outstanding": outstanding},
        "liability": points_value(outstanding, rules),
        "redemption_rate": _ratio(all_redeemed, all_issued),
        "tiers": tiers,
        "segments": {name: seg_counts.get(name, 0) for name in SEGMENTS},
        "nps": nps,
        "monthly": [{"month": m, "net_sales": monthly_sales.get(m, 0) or 0, "points_issued": p}
                    for m, p in zip(months, monthly_points)],
        "top_members": [{"member_id": r[0], "name": r[1], "email": r[2], "phone": r[3], "net_spend": r[4]} for r in top],
        "store": branch,
        "stores": branches,
        "currency_decimals": decimals,
        # Not in --json (SPEC §11's shape): the terminal dashboard's comparison with the period before.
        "previous": {"start": d.previous_start[:10],
                     "members": {"new": previous_new, "active": previous},
                     "sales": {"count": previous_count, "net": previous_net,
                               "average_order_value": divide_money(previous_net, previous_count)},
                     "points": {"issued": previous_issued}},
    }


def _nps(n: int, promoters: int, detractors: int) -> float | None:
    """% promoters (9–10) − % detractors (0–6) over each member's latest score in the 365 days to D."""
    if not n:
        return None
    return 100 * (promoters - detractors) / n


# -- members merged into another (members merge) -------------------------------------------------
# A member merged into another by D is an alias, not a customer of its own: one person enrolled
# twice. The reports judging customers by their purchases (RFM, segments, the dashboard's top
# members and segments, churn, and the campaign lists built on them) count the alias's purchases
# as the member's it was merged into: a sale rung up under the old card is the same customer's.
# Birthdays leave aliases out (the member kept has their own birthday). Before the merge's date
# the two were separate members, and a report as of then shows them so.
def merged_by(tx, end: str) -> dict[str, str]:
    """{alias: the member it was merged into} of the merges recorded up to `end` (a chain of merges,
    B into C then C into A, ends in A)."""
    found: dict[str, str] = {}
    for dup, keep in report_rows.merges_by(tx, end):
        found[dup] = keep
        for alias, kept in list(found.items()):
            if kept == dup:
                found[alias] = keep
    return found


def _pareto_of(rows: list[tuple]) -> tuple:
    """store.reports.pareto_figures's figures (members, total spend, the top ⌈n·p/100⌉ members' spend
    for each p of PARETO_PERCENTS, the smallest k whose top-k spend reaches 80 %) from summary rows
    (member, last sale, sales, net spend), ranked as it ranks them: by spend, then member id."""
    spends = sorted(((-mon, mid) for mid, __, __, mon in rows))
    n, total = len(spends), sum(-neg for neg, __ in spends)
    cumulative, running = [], 0
    for neg, __ in spends:
        running -= neg
        cumulative.append(running)
    tops = [cumulative[(n * p + 99) // 100 - 1] if n and (n * p + 99) // 100 else None for p in PARETO_PERCENTS]
    k80 = next((k for k, cum in enumerate(cumulative, 1) if 5 * cum >= 4 * total), None)
    return (n, total, *tops, k80)


def _merged_groups(tx, d: Dates) -> dict[str, list[str]]:
    """{member kept: [it, and every member merged into it by D]} (empty when nobody was merged)."""
    groups: dict[str, list[str]] = {}
    for alias, kept in merged_by(tx, d.end).items():
        groups.setdefault(kept, [kept]).append(alias)
    return groups


def _merged_sales(tx, d: Dates, groups: dict[str, list[str]], branch: str | None) -> dict[str, tuple[int, int]]:
    """{member: (sales in this period, sales in the one before)} of the members of merged groups
    (with `branch`, at that branch); none read when nobody was merged."""
    if not groups:
        return {}
    return report_rows.period_sales_of(tx, d.params(), sorted({m for g in groups.values() for m in g}), branch)


def _activity_flags(now: int, before: int) -> tuple[int, int, int, int]:
    """One customer's part in period_activity: bought in this period, twice or more in it, in the
    previous one, in both."""
    return int(now > 0), int(now > 1), int(before > 0), int(now > 0 and before > 0)


def _as_one_customer(figures: tuple, groups: dict[str, list[str]], sales: dict, flags) -> tuple:
    """Figures counted member by member (each the sum over members of `flags(sales in this period,
    sales before)`), with each merged group counted as one customer: its members' own flags taken
    off, the group's (their sales together) added."""
    adjusted = list(figures)
    for members in groups.values():
        for member in members:
            adjusted = [a - f for a, f in zip(adjusted, flags(*sales.get(member, (0, 0))))]
        together = [sum(sales.get(m, (0, 0))[i] for m in members) for i in (0, 1)]
        adjusted = [a + f for a, f in zip(adjusted, flags(*together))]
    return tuple(adjusted)


def _fold_summary(rows: list[tuple], aliases: dict[str, str]) -> list[tuple]:
    """purchase_summary's rows (member, last sale date, sales, net spend) with each alias's folded into
    its member's: the later last sale, the sums of the others; in member order."""
    if not aliases or not any(r[0] in aliases for r in rows):
        return rows
    folded: dict[str, list] = {}
    for mid, last, freq, mon in rows:
        mid = aliases.get(mid, mid)
        have = folded.get(mid)
        if have is None:
            folded[mid] = [mid, last, freq, mon]
        else:
            have[1] = max(have[1], last)
            have[2] += freq
            have[3] += mon
    return [tuple(folded[mid]) for mid in sorted(folded)]


def _fold_lapsed(tx, rows: list[tuple], aliases: dict[str, str], as_of: str, cutoff: str, sort: str,
                 limit: int | None) -> list[tuple]:
    """`report churn` when members were merged: lapsed_members' rows of every member who bought by D
    (member, last sale date, lifetime spend, days since, name, email, phone), each alias's folded into
    its member's (the later last sale, the spend summed), then those whose last sale is up to
    `cutoff`, in CHURN_ORDER[sort], at most `limit`."""
    folded: dict[str, list] = {}
    for mid, last, spend, _days, *contact in rows:
        mid = aliases.get(mid, mid)
        have = folded.get(mid)
        if have is None:
            folded[mid] = [mid, last, spend, None, *contact]  # an alias's contact is replaced below
        else:
            have[1] = max(filter(None, (have[1], last)), default=None)
            have[2] += spend
    kept = [mid for mid in folded if mid in set(aliases.values())]
    contacts = report_rows.contacts(tx, kept) if kept else {}
    day = dt.date.fromisoformat(as_of).toordinal()
    out = []
    for mid, row in folded.items():
        if mid in contacts:
            row[4:7] = contacts[mid]
        if row[1] is None or row[1] > cutoff[:10]:
            continue
        row[3] = day - dt.date.fromisoformat(row[1]).toordinal()
        out.append(tuple(row))
    keys = {"last_sale": lambda r: (r[1], r[0]), "spend": lambda r: (-r[2], r[0]), "id": lambda r: r[0]}
    out.sort(key=keys[sort])
    return out[:limit] if limit else out
