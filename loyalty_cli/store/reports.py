"""The queries behind the reports and the dashboard: SQL in, plain rows (tuples, dicts, ints) out.

Everything heavy is computed in SQL — grouped aggregates, window functions, CTEs — so
a million purchases never travel into Python; what comes back is one row per member
at most (usually far less). Dates come in as text (the bounds `reports.Dates` derives
from the as-of date D); `p` below is the dict of those bounds (`reports.Dates.params`).
"""

from __future__ import annotations

from loyalty_cli.store import dialect, in_parts
from loyalty_cli.store.ledger import BALANCES_SQL, entries_after, outstanding
from loyalty_cli.store.tiers import MEMBER_BY
from loyalty_cli.values import EARLIEST


# The few date computations each backend spells its own way (a and b: SQL expressions of ISO dates).
def days_between(tx, a: str, b: str) -> str:
    """Whole days from date b to date a."""
    if dialect(tx) == "postgresql":
        return f"(CAST({a} AS date) - CAST({b} AS date))"
    return f"CAST(julianday({a}) - julianday({b}) AS INTEGER)"


def epoch_seconds(tx, at: str) -> str:
    """Seconds since 1970 of a timestamp."""
    if dialect(tx) == "postgresql":
        return f"CAST(extract(epoch FROM CAST({at} AS timestamp)) AS BIGINT)"
    return f"CAST(strftime('%s', {at}) AS INTEGER)"


def days_later(tx, at: str, days: str) -> str:
    """The date `days` after the date of timestamp `at` (`days`: '+N days' on SQLite, N on PostgreSQL)."""
    if dialect(tx) == "postgresql":
        return f"CAST(CAST(substr({at}, 1, 10) AS date) + CAST({days} AS integer) AS text)"
    return f"date({at}, {days})"

# -- the per-member purchase summary -------------------------------------------
# What RFM, Pareto and the top members need, per member with a purchase up to D.
# A member whose purchases all fall in the year window (none before it, none after
# D) is read from the totals the ledger keeps in member_totals (verified by `db check`);
# only the others are grouped from purchases, each through the covering index
# purchases_member (member_id, purchased_at, kind, amount, basis_points).
SUMMARY_FROM_TOTALS = """
SELECT member_id, last_sale_at AS last_sale, sales_count AS frequency, net_spend AS monetary
FROM member_totals WHERE first_purchase_at >= :window_start AND last_purchase_at <= :end"""
SUMMARY_OTHERS = "SELECT 1 FROM member_totals WHERE first_purchase_at < :window_start OR last_purchase_at > :end LIMIT 1"
# A member's last sale, sales in the year window and net spend in it, grouped from their purchases.
SUMMARY_COLUMNS = """
SELECT member_id,
       max(CASE WHEN kind = 'sale' THEN purchased_at END) AS last_sale,
       count(CASE WHEN kind = 'sale' AND purchased_at >= :window_start THEN 1 END) AS frequency,
       coalesce(sum(CASE WHEN purchased_at >= :window_start
                         THEN CASE kind WHEN 'sale' THEN amount ELSE -amount END END), 0) AS monetary
FROM purchases"""
SUMMARY_FROM_PURCHASES = SUMMARY_COLUMNS + """
WHERE purchased_at <= :end
  AND member_id IN (SELECT member_id FROM member_totals WHERE first_purchase_at < :window_start OR last_purchase_at > :end)
GROUP BY member_id"""
SUMMARY_SQL = f"{SUMMARY_FROM_TOTALS}\nUNION ALL{SUMMARY_FROM_PURCHASES}\n"
SUMMARY_WANTED = ("SELECT member_id, substr(last_sale, 1, 10), frequency, monetary FROM ({}) "
                  "AS s WHERE last_sale IS NOT NULL")
SUMMARY_FROM_TOTALS_WANTED = SUMMARY_WANTED.format(SUMMARY_FROM_TOTALS)
SUMMARY_FROM_PURCHASES_WANTED = SUMMARY_WANTED.format(SUMMARY_FROM_PURCHASES)
# The same per member, of the purchases rung up at one branch (:store), through purchases_store
# (the cached member_totals are the whole shop's).
STORE_SUMMARY_SQL = SUMMARY_COLUMNS + """
WHERE store = :store AND purchased_at <= :end
GROUP BY member_id"""
STORE_SUMMARY_WANTED = SUMMARY_WANTED.format(STORE_SUMMARY_SQL) + " ORDER BY member_id"


def purchase_summary(tx, p: dict, store: str | None = None) -> list[tuple]:
    """(member_id, last sale date, sales in the year window, net spend in it) of every member with a
    sale up to D, in member order; with `store`, of their purchases at that branch only."""
    if store is not None:
        return tx.execute(STORE_SUMMARY_WANTED, {**p, "store": store}).fetchall()
    rows = tx.execute(SUMMARY_FROM_TOTALS_WANTED, p).fetchall()  # in member order (the key)
    if tx.execute(SUMMARY_OTHERS, p).fetchone():  # two queries: the union costs a third more
        rows += tx.execute(SUMMARY_FROM_PURCHASES_WANTED, p).fetchall()
        rows.sort()  # two runs in member order: a merge
    return rows


def pareto_figures(tx, p: dict, percents: tuple, store: str | None = None) -> tuple:
    """(members, total spend, the spend of the top ⌈n·p/100⌉ members for each p in `percents`…, the
    smallest k whose top-k spend reaches 80 % of the total), over the year's net spend (with
    `store`, at that branch)."""
    tops = ", ".join(f"max(CASE WHEN k = (n * {int(pc)} + 99) / 100 THEN cum END)" for pc in percents)
    return tx.execute(
        f"""WITH summary AS ({SUMMARY_SQL if store is None else STORE_SUMMARY_SQL}),
            ranked AS (
                SELECT row_number() OVER w AS k, sum(monetary) OVER w AS cum,
                       count(*) OVER () AS n, sum(monetary) OVER () AS total
                FROM summary WHERE last_sale IS NOT NULL
                WINDOW w AS (ORDER BY monetary DESC, member_id ROWS UNBOUNDED PRECEDING))
            SELECT max(n), max(total), {tops},
                   min(CASE WHEN 5 * cum >= 4 * total THEN k END)  -- the smallest k reaching 80 %
            FROM ranked""", {**p, "store": store}).fetchone()


# -- churn -------------------------------------------------------------------------
# Each member's last sale and net spend up to D: from member_totals when none
# of their purchases is dated after D, else grouped from their purchases.
LIFETIME_SQL = """
SELECT member_id, last_sale_at AS last_sale, net_spend AS lifetime_spend FROM member_totals WHERE last_purchase_at <= :end
UNION ALL
SELECT member_id, max(CASE WHEN kind = 'sale' THEN purchased_at END),
       sum(CASE kind WHEN 'sale' THEN amount ELSE -amount END)
FROM purchases
WHERE purchased_at <= :end AND member_id IN (SELECT member_id FROM member_totals WHERE last_purchase_at > :end)
GROUP BY member_id
"""
# The same of the purchases rung up at one branch (:store).
STORE_LIFETIME_SQL = """
SELECT member_id, max(CASE WHEN kind = 'sale' THEN purchased_at END) AS last_sale,
       sum(CASE kind WHEN 'sale' THEN amount ELSE -amount END) AS lifetime_spend
FROM purchases WHERE store = :store AND purchased_at <= :end
GROUP BY member_id
"""
# `report churn --sort` keys (in the order the help lists them) and the ORDER BY each means.
CHURN_ORDER = {"last_sale": "s.last_sale, s.member_id", "spend": "lifetime_spend DESC, s.member_id",
               "id": "s.member_id"}


def lapsed_members(tx, as_of: str, end: str, cutoff: str, sort: str, limit: int | None,
                   store: str | None = None) -> list[tuple]:
    """(member_id, last sale date, lifetime net spend, days since, name, email, phone) of the members
    whose last sale up to `end` is dated up to `cutoff`, in the order of CHURN_ORDER[sort]; with
    `store`, their last sale and spend at that branch."""
    return tx.execute(
        f"""WITH lifetime AS ({LIFETIME_SQL if store is None else STORE_LIFETIME_SQL}),
            lapsed AS (SELECT * FROM lifetime WHERE last_sale <= :cutoff)
            SELECT s.member_id, substr(s.last_sale, 1, 10) AS last_sale, s.lifetime_spend,
                   {days_between(tx, ":as_of", "substr(s.last_sale, 1, 10)")}, m.name, m.email, m.phone
            FROM lapsed s JOIN members m ON m.member_id = s.member_id
            ORDER BY {CHURN_ORDER[sort]}""" + (" LIMIT :limit" if limit else ""),
        {"as_of": as_of, "end": end, "cutoff": cutoff, "limit": limit, "store": store}).fetchall()


# -- liability and expiring points -----------------------------------------------------
# Balances at the end of D come from the ledger (`entries_after`, `BALANCES_SQL`, `outstanding`):
# the one computation every "as of D" figure uses (members list and show, points balance, the
# dashboard, these reports) and `db check` verifies against the ledger.

# Unconsumed points at the end of D of the lots expiring in [:first_day, :last_day]
# whose credit is dated up to D: what remains now plus what entries after D took.
LOTS_LEFT_SQL = """lots_left AS (
    SELECT l.member_id, l.expires_on, l.remaining AS points FROM lots l
    WHERE l.expires_on BETWEEN :first_day AND :last_day AND l.entry_id NOT IN (SELECT id FROM temp.after_entries)
    UNION ALL
    SELECT l.member_id, l.expires_on, u.points FROM lot_uses u JOIN lots l ON l.id = u.lot_id
    WHERE u.entry_id IN (SELECT id FROM temp.after_entries) AND l.expires_on BETWEEN :first_day AND :last_day
      AND l.entry_id NOT IN (SELECT id FROM temp.after_entries))"""
EXPIRING_BY_MONTH_SQL = (f"WITH {LOTS_LEFT_SQL} SELECT max(substr(expires_on, 1, 7), :first_month), sum(points) "
                         "FROM lots_left GROUP BY 1")
NEGATIVE_SQL = f"WITH {BALANCES_SQL} SELECT member_id, balance FROM balances WHERE balance < 0 ORDER BY balance, member_id"
# `report expiring --sort` keys (in the order the help lists them) and the ORDER BY each means.
EXPIRING_ORDER = {"date": "expires_on, p.member_id", "points": "points DESC, expires_on, p.member_id",
                  "id": "p.member_id, expires_on"}


def outstanding_points(tx, as_of: str) -> int:
    """The sum of positive balances at the end of `as_of`."""
    with entries_after(tx, as_of):
        return outstanding(tx)


def liability_figures(tx, as_of: str, last_day: str, first_month: str) -> tuple[int, dict, list]:
    """At the end of `as_of`: the outstanding points; month → the unconsumed points of the lots
    expiring up to `last_day` (those of months before `first_month` counted in it); and the
    (member_id, balance) of the balances below zero, lowest first."""
    with entries_after(tx, as_of):
        total = outstanding(tx)
        by_month = dict(tx.execute(EXPIRING_BY_MONTH_SQL, {"first_day": EARLIEST, "last_day": last_day,
                                                           "first_month": first_month}).fetchall())
        negative = tx.execute(NEGATIVE_SQL).fetchall()
    return total, by_month, negative


def expiring_points(tx, as_of: str, last_day: str, sort: str, limit: int | None) -> list[tuple]:
    """(member_id, expiry date, points, name, email, phone): the points unconsumed at the end of
    `as_of` of each member's lots expiring in [as_of, last_day], per date, in EXPIRING_ORDER[sort]."""
    with entries_after(tx, as_of):
        return tx.execute(
            f"""WITH {LOTS_LEFT_SQL},
                per AS (SELECT member_id, expires_on, sum(points) AS points FROM lots_left
                        GROUP BY member_id, expires_on HAVING sum(points) > 0)
                SELECT p.member_id, p.expires_on, p.points, m.name, m.email, m.phone
                FROM per p JOIN members m ON m.member_id = p.member_id
                ORDER BY {EXPIRING_ORDER[sort]}""" + (" LIMIT :limit" if limit else ""),
            {"first_day": as_of, "last_day": last_day, "limit": limit}).fetchall()


# -- birthdays -----------------------------------------------------------------------------
def birthday_members(tx, as_of: str, month_days) -> list[tuple]:
    """(member_id, name, email, phone, birthday) of the members joined by `as_of`, not erased,
    whose birthday's "MM-DD" is one of `month_days`."""
    marks = ",".join("?" * len(month_days))
    return tx.execute(
        f"SELECT member_id, name, email, phone, birthday FROM members "
        f"WHERE birthday IS NOT NULL AND erased_at IS NULL AND joined_on <= ? AND substr(birthday, 6) IN ({marks})",
        (as_of, *month_days)).fetchall()


# -- anomalies -------------------------------------------------------------------------------
def busy_days(tx, start: str, end: str, most: int) -> list[tuple]:
    """(member_id, date, sales) of the days in [start, end] on which one member made more than `most` sales."""
    return tx.execute(
        """SELECT member_id, substr(purchased_at, 1, 10) AS day, count(*) AS n FROM purchases
           WHERE kind = 'sale' AND purchased_at BETWEEN :start AND :end
           GROUP BY member_id, day HAVING count(*) > :max ORDER BY member_id, day""", {"start": start, "end": end, "max": most}).fetchall()


def small_bursts(tx, start: str, end: str, small: int, burst: int, minutes: int) -> list[tuple]:
    """(member_id, date, sales, first, last): per member and day in [start, end], the largest run starting
    that day of `burst` or more sales below `small`, first and last at most `minutes` apart."""
    seconds = int(minutes) * 60  # an int, safe to put in the SQL
    return tx.execute(
        f"""WITH small AS (
                SELECT member_id, purchased_at, {epoch_seconds(tx, "purchased_at")} AS t
                FROM purchases
                WHERE kind = 'sale' AND amount < :small AND purchased_at BETWEEN :start AND :end),
            runs AS (
                SELECT member_id, purchased_at,
                       count(*) OVER w AS n, max(purchased_at) OVER w AS last
                FROM small
                WINDOW w AS (PARTITION BY member_id ORDER BY t RANGE BETWEEN CURRENT ROW AND {seconds} FOLLOWING)),
            bursts AS (
                SELECT member_id, substr(purchased_at, 1, 10) AS day, n, purchased_at, last,
                       row_number() OVER (PARTITION BY member_id, substr(purchased_at, 1, 10)
                                          ORDER BY n DESC, purchased_at) AS pick
                FROM runs WHERE n >= :burst)
            SELECT member_id, day, n, purchased_at, last FROM bursts WHERE pick = 1""",
        {"start": start, "end": end, "small": small, "burst": burst}).fetchall()


def sales_and_refunds(tx, start: str, end: str) -> tuple[int, int]:
    """The shop's number of sales and of refunds dated in [start, end]."""
    return tx.execute(
        """SELECT count(CASE WHEN kind = 'sale' THEN 1 END), count(CASE WHEN kind = 'refund' THEN 1 END)
           FROM purchases WHERE purchased_at BETWEEN :start AND :end""", {"start": start, "end": end}).fetchone()


def frequent_refunders(tx, start: str, end: str, min_sales: int, min_refunds: int, ratio_above) -> list[tuple]:
    """(member_id, sales, refunds, last refund) of the members with at least `min_refunds` refunds and
    `min_sales` sales dated in [start, end] whose refunds / sales exceed `ratio_above` (a Fraction)."""
    # refunds / sales > ratio, in integers: refunds × den > num × sales. Members with enough refunds
    # first (few; refunds are found through their partial index), then their sales: all their rows
    # in the window (counted in the (member_id, purchased_at) index alone) minus those refunds.
    return tx.execute(
        """WITH refunders AS (
               SELECT member_id, count(*) AS refunds, max(purchased_at) AS last FROM purchases
               WHERE refund_of IS NOT NULL AND purchased_at BETWEEN :start AND :end
               GROUP BY member_id HAVING count(*) >= :min_refunds),
           counted AS (
               SELECT r.member_id, r.refunds, r.last,
                      (SELECT count(*) FROM purchases p WHERE p.member_id = r.member_id
                       AND p.purchased_at BETWEEN :start AND :end) - r.refunds AS sales
               FROM refunders r)
           SELECT member_id, sales, refunds, last FROM counted
           WHERE sales >= :min_sales AND refunds * :den > :num * sales""",
        {"start": start, "end": end, "min_sales": min_sales, "min_refunds": min_refunds,
         "num": ratio_above.numerator, "den": ratio_above.denominator}).fetchall()


def awards_redeemed(tx, start: str, end: str, min_points: int, days: int) -> list[tuple]:
    """(member_id, at, points, by, redeemed at, points redeemed): each manual award in [start, end] of at
    least `min_points`, with the member's first later redemption dated up to `end` and at most `days`
    calendar days after it."""
    return tx.execute(
        f"""SELECT a.member_id, a.at, a.points, a.by, r.at, -r.points
           FROM ledger a JOIN ledger r ON r.id = (
                SELECT r2.id FROM ledger r2
                WHERE r2.member_id = a.member_id AND r2.id > a.id AND r2.kind = 'redeem' AND r2.at <= :end
                  AND substr(r2.at, 1, 10) BETWEEN substr(a.at, 1, 10) AND {days_later(tx, "a.at", ":days")}
                ORDER BY r2.id LIMIT 1)
           WHERE a.kind = 'award' AND a.points >= :min_points AND a.at BETWEEN :start AND :end""",
        {"start": start, "end": end, "min_points": min_points,
         "days": f"+{days} days" if dialect(tx) == "sqlite" else days}).fetchall()


def refunds_after_spending(tx, start: str, end: str) -> list[tuple]:
    """(member_id, refund id, sale id, refund at, balance after its reversal, points of the sale transferred
    out, points of the sale redeemed) of each refund dated in [start, end] whose reversal left the member's
    balance below zero after a transfer or redemption (recorded before it) had taken points of the sale's lot."""
    return tx.execute(
        """WITH spent AS MATERIALIZED (
               SELECT r.member_id, r.purchase_id, r.refund_of, r.purchased_at, s.lot_id
               FROM purchases r JOIN purchases s ON s.purchase_id = r.refund_of
               WHERE r.refund_of IS NOT NULL AND r.points > 0 AND s.lot_id IS NOT NULL
                 AND r.purchased_at BETWEEN :start AND :end
                 -- first the few refunds of sales some of whose points were spent (through lot_uses_lot):
                 -- only those need the member's entries read for the reversal and the balance after it
                 AND EXISTS (SELECT 1 FROM lot_uses u JOIN ledger e ON e.id = u.entry_id
                             WHERE u.lot_id = s.lot_id AND (e.kind = 'transfer_out' OR e.kind = 'redeem'))),
           refunds AS MATERIALIZED (
               SELECT p.*, (SELECT e.id FROM ledger e WHERE e.member_id = p.member_id AND e.kind = 'reversal'
                            AND e.ref = p.purchase_id) AS reversal
               FROM spent p),
           judged AS (
               SELECT f.member_id, f.purchase_id, f.refund_of, f.purchased_at,
                      (SELECT sum(b.points) FROM ledger b WHERE b.member_id = f.member_id AND b.id <= f.reversal)
                          AS balance,
                      (SELECT coalesce(sum(u.points), 0) FROM lot_uses u JOIN ledger e ON e.id = u.entry_id
                       WHERE u.lot_id = f.lot_id AND e.id < f.reversal AND e.kind = 'transfer_out') AS sent,
                      (SELECT coalesce(sum(u.points), 0) FROM lot_uses u JOIN ledger e ON e.id = u.entry_id
                       WHERE u.lot_id = f.lot_id AND e.id < f.reversal AND e.kind = 'redeem') AS redeemed
               FROM refunds f WHERE f.reversal IS NOT NULL)
           SELECT member_id, purchase_id, refund_of, purchased_at, balance, sent, redeemed FROM judged
           WHERE balance < 0 AND sent + redeemed > 0""", {"start": start, "end": end}).fetchall()


# -- dashboard -------------------------------------------------------------------------------
# Per member who bought in the previous period [:previous_start, :period_start) or this one
# [:period_start, :end]: (active, repeat, previous) flags. A member with no purchase after D is
# read from member_totals (the last two sales tell everything but one case: two sales
# in this period say nothing of the previous one, so look); the others are grouped from purchases.
PERIODS_SQL = """
WITH flags AS (
    SELECT CASE WHEN last_sale_at >= :period_start THEN 1 ELSE 0 END AS active,
           CASE WHEN prev_sale_at >= :period_start THEN 1 ELSE 0 END AS repeat,
           CASE WHEN last_sale_at < :period_start THEN 1
                WHEN prev_sale_at IS NULL THEN 0
                WHEN prev_sale_at < :period_start THEN CASE WHEN prev_sale_at >= :previous_start THEN 1 ELSE 0 END
                WHEN EXISTS (SELECT 1 FROM purchases p WHERE p.member_id = t.member_id AND p.kind = 'sale'
                             AND p.purchased_at >= :previous_start AND p.purchased_at < :period_start) THEN 1
                ELSE 0 END AS previous
    FROM member_totals t WHERE last_purchase_at <= :end AND last_sale_at >= :previous_start
    UNION ALL
    SELECT CASE WHEN count(CASE WHEN purchased_at >= :period_start THEN 1 END) > 0 THEN 1 ELSE 0 END,
           CASE WHEN count(CASE WHEN purchased_at >= :period_start THEN 1 END) > 1 THEN 1 ELSE 0 END,
           CASE WHEN count(CASE WHEN purchased_at < :period_start THEN 1 END) > 0 THEN 1 ELSE 0 END
    FROM purchases
    WHERE kind = 'sale' AND purchased_at >= :previous_start AND purchased_at <= :end
      AND member_id IN (SELECT member_id FROM member_totals WHERE last_purchase_at > :end)
    GROUP BY member_id)
SELECT coalesce(sum(active), 0), coalesce(sum(repeat), 0), coalesce(sum(previous), 0),
       coalesce(sum(active * previous), 0)
FROM flags
"""

# The points flows per day, up to D: issued = credits other than transfer-in and voucher-cancel,
# minus reversals; redeemed = redemptions net of voucher cancellations; expired = write-offs.
# Read from daily_points, the per-day and per-kind totals the ledger keeps as it writes (verified
# by `db check`).
LEDGER_DAILY_SQL = """
SELECT day,
       sum(CASE WHEN kind IN ('signup', 'earn', 'bonus', 'referral', 'award', 'adjust') THEN credit
                WHEN kind = 'reversal' THEN debit ELSE 0 END),
       sum(CASE kind WHEN 'redeem' THEN -debit WHEN 'voucher_cancel' THEN -credit ELSE 0 END),
       sum(CASE kind WHEN 'expire' THEN -debit ELSE 0 END)
FROM daily_points WHERE day <= :as_of GROUP BY day ORDER BY day
"""
MEMBERS_BY_SQL = (f"SELECT count(*), count(CASE WHEN joined_on >= :p AND joined_on <= :as_of THEN 1 END) FROM members m "
                  f"WHERE {MEMBER_BY}")
SALES_SQL = ("SELECT coalesce(sum(sales), 0), coalesce(sum(sales_amount - refund_amount), 0) FROM daily_sales "
             "WHERE day >= :first AND day <= :last")
MONTHLY_SALES_SQL = """SELECT substr(day, 1, 7) AS month, sum(sales_amount - refund_amount) FROM daily_sales
               WHERE day >= :first AND day <= :as_of GROUP BY month"""
NPS_SQL = """WITH latest AS (
               SELECT score, row_number() OVER (PARTITION BY member_id ORDER BY at DESC, id DESC) AS k
               FROM feedback WHERE at BETWEEN :start AND :end)
           SELECT count(*), count(CASE WHEN score >= 9 THEN 1 END), count(CASE WHEN score <= 6 THEN 1 END)
           FROM latest WHERE k = 1"""


# -- branches (issue 18): the dashboard's purchase figures of one branch, from purchases through
# purchases_store (store, purchased_at); the cached daily_sales and member_totals are the whole shop's.
STORE_PERIODS_SQL = """
SELECT coalesce(sum(CASE WHEN now_ > 0 THEN 1 ELSE 0 END), 0), coalesce(sum(CASE WHEN now_ > 1 THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN before_ > 0 THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN now_ > 0 AND before_ > 0 THEN 1 ELSE 0 END), 0)
FROM (SELECT count(CASE WHEN purchased_at >= :period_start THEN 1 END) AS now_,
             count(CASE WHEN purchased_at < :period_start THEN 1 END) AS before_
      FROM purchases
      WHERE store = :store AND kind = 'sale' AND purchased_at >= :previous_start AND purchased_at <= :end
      GROUP BY member_id) flags
"""
# (sales, net sales, buyers: members with a sale) of one branch's purchases dated in [:first, :end].
STORE_SALES_SQL = """
SELECT count(CASE WHEN kind = 'sale' THEN 1 END),
       coalesce(sum(CASE WHEN kind = 'sale' THEN amount ELSE -amount END), 0),
       count(DISTINCT CASE WHEN kind = 'sale' THEN member_id END)
FROM purchases WHERE store = :store AND purchased_at >= :first AND purchased_at <= :end
"""
STORE_MONTHLY_SQL = """
SELECT substr(purchased_at, 1, 7), sum(CASE WHEN kind = 'sale' THEN amount ELSE -amount END)
FROM purchases WHERE store = :store AND purchased_at >= :first AND purchased_at <= :end
GROUP BY substr(purchased_at, 1, 7)
"""


def stores(tx) -> list[str]:
    """Every branch some purchase was rung up at, in order: one index seek each (purchases_store),
    not a scan of the purchases."""
    found: list[str] = []
    row = tx.execute("SELECT min(store) FROM purchases WHERE store IS NOT NULL").fetchone()
    while row[0] is not None:
        found.append(row[0])
        row = tx.execute("SELECT min(store) FROM purchases WHERE store > ?", (row[0],)).fetchone()
    return found


def has_store(tx, store: str) -> bool:
    """Whether some purchase was rung up at branch `store`."""
    return tx.execute("SELECT 1 FROM purchases WHERE store = ? LIMIT 1", (store,)).fetchone() is not None


def store_sales(tx, store: str, first_day: str, last_day: str) -> tuple[int, int, int]:
    """(sales, net sales, buyers) of branch `store` over the days [first_day, last_day]."""
    return tx.execute(STORE_SALES_SQL, {"store": store, "first": first_day,
                                        "end": last_day[:10] + "T23:59:59"}).fetchone()


def member_counts(tx, first_day: str, as_of: str, end: str) -> tuple[int, int]:
    """(members by D — joined by `as_of` or bought by `end`, store.tiers.MEMBER_BY —, those joined in [first_day, as_of])."""
    return tx.execute(MEMBERS_BY_SQL, {"p": first_day, "as_of": as_of, "end": end}).fetchone()


def joined_between(tx, first_day: str, next_day: str) -> int:
    """The number of members who joined in [first_day, next_day)."""
    return tx.execute("SELECT count(*) FROM members WHERE joined_on >= :first AND joined_on < :next",
                      {"first": first_day, "next": next_day}).fetchone()[0]


def contacts(tx, member_ids: list[str]) -> dict[str, tuple]:
    """member_id → (name, email, phone) of each of `member_ids`."""
    return {r[0]: r[1:] for r in tx.execute(
        f"SELECT member_id, name, email, phone FROM members WHERE member_id IN ({','.join('?' * len(member_ids))})",
        member_ids)}


def period_activity(tx, p: dict, store: str | None = None) -> tuple[int, int, int, int]:
    """Members who bought in this period, twice or more in it, in the previous one, and in both
    (PERIODS_SQL); with `store`, their sales at that branch (STORE_PERIODS_SQL)."""
    if store is not None:
        return tx.execute(STORE_PERIODS_SQL, {**p, "store": store}).fetchone()
    return tx.execute(PERIODS_SQL, p).fetchone()


def period_sales_of(tx, p: dict, member_ids: list[str], store: str | None = None) -> dict[str, tuple[int, int]]:
    """{member: (sales in this period, sales in the one before)} of these members (with `store`, at
    that branch): what period_activity counts, member by member (through purchases_member)."""
    found: dict = {}
    for part, marks in in_parts(member_ids):
        for member_id, now, before in tx.execute(
                "SELECT member_id, count(CASE WHEN purchased_at >= ? THEN 1 END), "
                "count(CASE WHEN purchased_at < ? THEN 1 END) FROM purchases "
                f"WHERE member_id IN ({marks}) AND kind = 'sale' AND purchased_at >= ? AND purchased_at <= ?"
                + (" AND store = ?" if store is not None else "") + " GROUP BY member_id",
                (p["period_start"], p["period_start"], *part, p["previous_start"], p["end"],
                 *((store,) if store is not None else ()))):
            found[member_id] = (now, before)
    return found


def sales_between(tx, first_day: str, last_day: str, store: str | None = None) -> tuple[int, int]:
    """(sales, net sales) of the days in [first_day, last_day], from the per-day totals (with
    `store`, of that branch's purchases)."""
    if store is not None:
        return store_sales(tx, store, first_day, last_day)[:2]
    return tx.execute(SALES_SQL, {"first": first_day, "last": last_day}).fetchone()


def monthly_net_sales(tx, first_day: str, as_of: str, store: str | None = None) -> dict[str, int]:
    """month ("YYYY-MM") → net sales of its days in [first_day, as_of], from the per-day totals (with
    `store`, of that branch's purchases)."""
    if store is not None:
        return dict(tx.execute(STORE_MONTHLY_SQL, {"store": store, "first": first_day,
                                                   "end": as_of[:10] + "T23:59:59"}).fetchall())
    return dict(tx.execute(MONTHLY_SALES_SQL, {"first": first_day, "as_of": as_of}).fetchall())


def daily_points(tx, as_of: str):
    """(day, issued, redeemed, expired) of each day with entries up to `as_of`, oldest first (LEDGER_DAILY_SQL)."""
    return tx.execute(LEDGER_DAILY_SQL, {"as_of": as_of})


def nps_counts(tx, start: str, end: str) -> tuple[int, int, int]:
    """(members, promoters 9–10, detractors 0–6) over each member's latest score in [start, end]."""
    return tx.execute(NPS_SQL, {"start": start, "end": end}).fetchone()


def merges_by(tx, end: str) -> list[tuple[str, str]]:
    """(duplicate, member kept) of every merge recorded up to `end`, in the order they were made."""
    return tx.execute("SELECT member_id, into_id FROM member_merges WHERE at <= ? ORDER BY id", (end,)).fetchall()
