"""The ledger's rows: the writer that persists what a `ledger.Book` emits, the queries it reads
lots and members through, and balances as of a date.

`LedgerWriter` takes the Book's immutable records (entries, lots, lot uses, purchases, tier
changes) in batches and writes them with `executemany`, in an order the foreign keys accept.
It keeps the summary tables in step: the day's points and sales are added up from the records
it writes, and each buyer's member_totals row is recomputed from their purchases when the
member rows are written (once at the end of a big import, not at every intermediate flush).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from loyalty_cli.store import in_parts
from loyalty_cli.store.migrations import MEMBER_TOTALS_SQL
from loyalty_cli.values import end_of_day

NEVER = "9999-12-31"  # sorts never-expiring lots last
# A sale's own lots: the one it created, and any a cancelled voucher returned to it (two parameters: the sale id).
OWN_LOTS = "(id = (SELECT lot_id FROM purchases WHERE purchase_id = ?) OR (purchase_id = ? AND origin IS NOT NULL))"

MEMBER_COLUMNS = ("member_id, substr(birthday, 6, 2), referred_by, tier, tier_since, floor_tier, floor_until, "
                  "balance, first_sale, erased_at IS NOT NULL, merged_into")

# A member's row of member_totals (see migrations.m002_summaries), recomputed from their purchases
# for the members a book gave purchases to: the same query `db check` verifies them with.
UPDATE_TOTALS = f"INSERT OR REPLACE INTO member_totals {MEMBER_TOTALS_SQL.format(where='WHERE p.member_id = ?')}"
# … or for everyone at once, when a book gave purchases to this many members or more (one pass
# over the purchases in member order instead of a query per member).
ALL_TOTALS = f"INSERT OR REPLACE INTO member_totals {MEMBER_TOTALS_SQL.format(where='')}"
ALL_TOTALS_FROM = 20_000

INSERT_ENTRIES = "INSERT INTO ledger (id, member_id, at, kind, points, ref, note, by, hash) VALUES (?,?,?,?,?,?,?,?,?)"
INSERT_LOTS = ("INSERT INTO lots (id, entry_id, member_id, expires_on, points, remaining, purchase_id, origin, "
               "available_on) VALUES (?,?,?,?,?,?,?,?,?)")
INSERT_USES = "INSERT INTO lot_uses (entry_id, lot_id, points) VALUES (?,?,?)"
UPDATE_REMAINING = "UPDATE lots SET remaining = ? WHERE id = ?"
INSERT_PURCHASES = ("INSERT INTO purchases (purchase_id, member_id, kind, amount, purchased_at, category, refund_of, "
                    "points, basis_points, lot_id, store) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
INSERT_TIER_CHANGES = ("INSERT INTO tier_changes (member_id, at, from_tier, to_tier, reason, until, by, ref) "
                       "VALUES (?,?,?,?,?,?,?,?)")
UPDATE_MEMBERS = ("UPDATE members SET balance = ?, tier = ?, tier_since = ?, floor_tier = ?, floor_until = ?, "
                  "first_sale = ? WHERE member_id = ?")
ADD_DAILY_SALES = (
    "INSERT INTO daily_sales (day, sales, sales_amount, refunds, refund_amount) VALUES (?,?,?,?,?) "
    "ON CONFLICT (day) DO UPDATE SET sales = daily_sales.sales + excluded.sales, sales_amount = daily_sales.sales_amount + "
    "excluded.sales_amount, refunds = daily_sales.refunds + excluded.refunds, "
    "refund_amount = daily_sales.refund_amount + excluded.refund_amount")
ADD_DAILY_POINTS = (
    "INSERT INTO daily_points (day, kind, credit, debit, entries) VALUES (?,?,?,?,?) "
    "ON CONFLICT (day, kind) DO UPDATE SET credit = daily_points.credit + excluded.credit, "
    "debit = daily_points.debit + excluded.debit, entries = daily_points.entries + excluded.entries")
# `+member_id`: a filter, not an index choice; by the member's open lots SQLite would read each of
# their rows (0.7 ms a refund at 1M purchases) instead of the sale's one or two.
SALES_OPEN_LOTS = (f"SELECT id, expires_on, remaining, available_on FROM lots WHERE {OWN_LOTS} AND +member_id = ? AND remaining > 0 "
                   "ORDER BY coalesce(expires_on, ?), id")
OPEN_LOTS = ("SELECT id, expires_on, remaining, available_on FROM lots WHERE member_id = ? AND remaining > 0 "
             "ORDER BY coalesce(expires_on, ?), id")


def head(tx) -> tuple[int, str | None, int]:
    """(the last entry's id, its hash or None on an empty ledger, the last lot's id): where a book goes on from."""
    last = tx.execute("SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
    last_lot = tx.execute("SELECT max(id) FROM lots").fetchone()[0] or 0
    return (last[0], last[1], last_lot) if last else (0, None, last_lot)


def member_states(tx, ids: list[str]):
    """Rows (member_id, birth month, referred_by, tier, tier_since, floor_tier, floor_until, balance,
    first_sale, erased, merged_into) of those of `ids` enrolled, read a few hundred at a time; tier names and
    dates interned (a hundred thousand members share a handful of them)."""
    intern = sys.intern
    for part, marks in in_parts(ids):
        for mid, month, ref, tier, since, floor, until, balance, first, erased, merged in tx.execute(
                f"SELECT {MEMBER_COLUMNS} FROM members WHERE member_id IN ({marks})", part):
            yield (mid, month and intern(month), ref, intern(tier), intern(since), floor, until, balance, first,
                   bool(erased), merged)


def open_lots(tx, member_id: str, purchase_id: str | None = None):
    """The member's open lots (id, expires_on, remaining, available_on), earliest expiry first (never-expiring last);
    with `purchase_id`, only that sale's own lots. A cursor for all of them: a regular's refund
    needs a few lots, not all thousand."""
    if purchase_id is not None:
        return tx.execute(SALES_OPEN_LOTS, (purchase_id, purchase_id, member_id, NEVER)).fetchall()
    return tx.execute(OPEN_LOTS, (member_id, NEVER))


def pending_lots(tx, member_id: str, day: str) -> list[tuple[int, str, int]]:
    """[(lot id, available_on, remaining)] of the member's open lots not yet spendable on `day`
    (earn.pending_days), soonest available first."""
    return tx.execute("SELECT id, available_on, remaining FROM lots WHERE member_id = ? AND remaining > 0 "
                      "AND available_on > ? ORDER BY available_on, id", (member_id, day)).fetchall()


def pending_as_of(conn, member_id: str, day: str) -> list[dict]:
    """[{"date": available_on, "points"}] of the member's points held back on `day` (earn.pending_days):
    unconsumed points of lots credited up to `day` that become spendable after it."""
    day = day[:10]
    if not dated_after(conn, day):  # nothing dated after D: the lots' cached remaining is D's
        rows = conn.execute("SELECT available_on, sum(remaining) FROM lots WHERE member_id = ? AND remaining > 0 "
                            "AND available_on > ? GROUP BY available_on ORDER BY available_on",
                            (member_id, day)).fetchall()
    else:
        end = end_of_day(day)
        rows = conn.execute(
            """SELECT l.available_on, sum(l.points - coalesce((SELECT sum(lu.points) FROM lot_uses lu
                      JOIN ledger d ON d.id = lu.entry_id WHERE lu.lot_id = l.id AND d.at <= ?), 0))
               FROM lots l JOIN ledger c ON c.id = l.entry_id
               WHERE l.member_id = ? AND l.available_on > ? AND c.at <= ?
               GROUP BY l.available_on ORDER BY l.available_on""", (end, member_id, day, end)).fetchall()
    return [{"date": d, "points": p} for d, p in rows if p > 0]


def lapsed_lots(tx, member_id: str, day: str) -> list[tuple[int, int]]:
    """[(lot id, remaining)] of the member's open lots that expired before `day`, earliest expiry first
    (SQLite's index order, said outright so that PostgreSQL writes them off in the same order)."""
    return tx.execute("SELECT id, remaining FROM lots WHERE member_id = ? AND remaining > 0 AND expires_on < ? "
                      "ORDER BY expires_on, id", (member_id, day)).fetchall()


def expiring_lots(tx, member_ids: list[str], before: str) -> dict[str, list[tuple[str, int, int]]]:
    """{member id: [(expires_on, lot id, remaining)] of their open lots that expired before the day
    `before`, earliest expiry first, then lot id}: `lapsed_lots` of each on any day up to `before`,
    read for them all at once (on PostgreSQL an index probe a member: see store.members.import_rows)."""
    from loyalty_cli.store import dialect

    found: dict = {member_id: [] for member_id in member_ids}
    ids = sorted(found)
    for part, marks in in_parts(ids):
        if dialect(tx) == "postgresql":
            rows = tx.execute("SELECT w.v, l.* FROM unnest(?::text[]) AS w(v), LATERAL (SELECT expires_on, id, "
                              "remaining FROM lots WHERE member_id = w.v AND remaining > 0 AND expires_on < ? "
                              "OFFSET 0) AS l", (part, before))
        else:
            rows = tx.execute("SELECT member_id, expires_on, id, remaining FROM lots WHERE member_id IN "
                              f"({marks}) AND remaining > 0 AND expires_on < ?", (*part, before))
        for member_id, expires_on, lot_id, remaining in rows:
            found[member_id].append((expires_on, lot_id, remaining))
    for lots in found.values():
        lots.sort()
    return found


def all_lapsed_lots(tx, day: str) -> list[tuple[str, int, int]]:
    """[(member id, lot id, remaining)] of every open lot that expired before `day`, by member and lot."""
    return tx.execute("SELECT member_id, id, remaining FROM lots WHERE remaining > 0 AND expires_on < ? "
                      "ORDER BY member_id, id", (day,)).fetchall()


def entries_of(tx, member_id: str, held_back: bool = True) -> list[tuple]:
    """The member's entries (id, at, kind, points, balance after, ref, note, by, available_on) in recorded
    order; available_on: the day a sale's earn and bonus points became spendable (earn.pending_days),
    None for points spendable at once, and for every entry when no rules ever held points back
    (`held_back` false: no lot to look up for each sale)."""
    available_on = ("CASE WHEN e.kind IN ('earn', 'bonus') THEN (SELECT l.available_on FROM purchases p JOIN lots l "
                    "ON l.id = p.lot_id WHERE p.purchase_id = e.ref) END" if held_back else "NULL")
    return tx.execute(
        "SELECT e.id, e.at, e.kind, e.points, sum(e.points) OVER (ORDER BY e.id), e.ref, e.note, e.by, "
        f"{available_on} FROM ledger e WHERE e.member_id = ? ORDER BY e.id", (member_id,)).fetchall()


def points_sent(tx, member_id: str, month: str) -> int:
    """The points the member transferred out in `month` (YYYY-MM)."""
    return -tx.execute(
        "SELECT coalesce(sum(points), 0) FROM ledger WHERE member_id = ? AND kind = 'transfer_out' AND at >= ? AND at < ?",
        (member_id, month + "-01", month + "-32")).fetchone()[0]


def reward_terms(tx, code: str):
    """(name, cost, stock, retired_at) of a reward, or None."""
    return tx.execute("SELECT name, cost, stock, retired_at FROM rewards WHERE code = ?", (code,)).fetchone()


def voucher_code_taken(tx, code: str) -> bool:
    """Whether a voucher already has this code."""
    return tx.execute("SELECT 1 FROM vouchers WHERE code = ?", (code,)).fetchone() is not None


def issue_voucher(tx, code: str, member_id: str, reward: str, points: int, entry_id: int, at: str,
                  counted: bool) -> None:
    """Record a voucher bought by the redeem entry `entry_id` (written already), taking one from the
    reward's stock when it is `counted`."""
    tx.execute("INSERT INTO vouchers (code, member_id, reward_code, points, redeem_entry, status, issued_at) "
               "VALUES (?,?,?,?,?, 'issued', ?)", (code, member_id, reward, points, entry_id, at))
    journal = tx.journal
    journal.add("vouchers", (code, member_id, reward, points, entry_id, "issued", at))
    if counted:
        tx.execute("UPDATE rewards SET stock = stock - 1 WHERE code = ?", (reward,))
        journal.add("reward_stock", (reward, -1))


class LedgerWriter:
    """Persists a book's records in one transaction, and the totals that follow from them."""

    def __init__(self, tx):
        self.tx = tx
        self.buyers: set[str] = set()                     # members given purchases: totals to recompute
        self.daily_sales: dict[str, list[int]] = {}       # day → [sales, amount, refunds, amount]
        self.daily_points: dict[tuple, list[int]] = {}    # (day, kind) → [credit, debit, entries]

    def write(self, entries, lots, uses, remaining: dict, purchases, tier_changes) -> None:
        """Write buffered records (in an order the foreign keys accept) and count them into the day's
        totals; `remaining` is {lot id: points left} for lots already written.

        Named tuples go in as plain tuples: sqlite3 binds a tuple subclass's fields one generic
        lookup at a time (200,000 entries: 1.2-1.5 s), a plain tuple's directly (0.9 s with the copy)."""
        c = self.tx
        journal = c.journal  # every row written here is chained (store.chain)
        if entries:
            daily = self.daily_points
            for entry in entries:
                key = (entry[2][:10], entry[3])
                day = daily.get(key)
                if day is None:
                    day = daily[key] = [0, 0, 0]
                points = entry[4]
                day[0 if points > 0 else 1] += points
                day[2] += 1
            rows = list(map(tuple, entries))
            c.executemany(INSERT_ENTRIES, rows)
            journal.ledger(rows[0][0], rows[-1][0], rows[-1][8])  # the entries sign themselves (store.chain)
        if lots:
            rows = list(map(tuple, lots))
            c.executemany(INSERT_LOTS, rows)
            journal.extend("lots", [row[1:5] + row[6:] for row in rows])  # no id (its position), no remaining
        if uses:
            rows = list(map(tuple, uses))
            c.executemany(INSERT_USES, rows)
            journal.extend("lot_uses", rows)
        if remaining:
            c.executemany(UPDATE_REMAINING, [(r, i) for i, r in remaining.items()])
        if purchases:
            daily = self.daily_sales
            buyers = self.buyers
            for purchase in purchases:
                buyers.add(purchase[1])
                at = purchase[4][:10]
                day = daily.get(at)
                if day is None:
                    day = daily[at] = [0, 0, 0, 0]
                if purchase[2] == "sale":
                    day[0] += 1
                    day[1] += purchase[3]
                else:
                    day[2] += 1
                    day[3] += purchase[3]
            rows = list(map(tuple, purchases))
            c.executemany(INSERT_PURCHASES, rows)
            journal.extend("purchases", rows)
        if tier_changes:
            rows = list(map(tuple, tier_changes))
            c.executemany(INSERT_TIER_CHANGES, rows)
            journal.extend("tier_changes", rows)

    def write_members(self, rows) -> None:
        """Write the members' rows [(balance, tier, tier_since, floor_tier, floor_until, first_sale,
        member_id)] (in member order: an import's hundred thousand updates then walk the table once
        instead of landing on pages at random), then the totals of the records written so far."""
        c = self.tx
        c.executemany(UPDATE_MEMBERS, rows)
        if self.buyers:
            # From the purchases just written, in member order (the index's order): less than a
            # millisecond for a sale at the counter, seconds for an import touching every member.
            if len(self.buyers) >= ALL_TOTALS_FROM:
                c.execute(ALL_TOTALS)
            else:
                c.executemany(UPDATE_TOTALS, [(mid,) for mid in sorted(self.buyers)])
            self.buyers.clear()
        if self.daily_sales:
            c.executemany(ADD_DAILY_SALES, [(day, *t) for day, t in self.daily_sales.items()])
            self.daily_sales.clear()
        if self.daily_points:
            c.executemany(ADD_DAILY_POINTS, [(day, kind, *t) for (day, kind), t in self.daily_points.items()])
            self.daily_points.clear()


# -- balances as of a date ------------------------------------------------------
# The cached state (members.balance, lots.remaining) is the state after every entry; a
# balance at the end of day D (SPEC §3: the entries dated up to D) is that minus the
# entries dated after D. Those are usually none (nothing is dated after today without
# --allow-future), which daily_points answers with one index seek; otherwise they are
# collected once into a temporary table. Every "as of D" figure goes through here, so
# `members list`, `points balance`, the dashboard and `report liability` agree for any D,
# and `db check` (check_outstanding) verifies this against the ledger's own sums.
def dated_after(conn, day: str) -> bool:
    """Whether any entry is dated after `day` (from daily_points, which `db check` verifies)."""
    return conn.execute("SELECT 1 FROM daily_points WHERE day > ? LIMIT 1", (day[:10],)).fetchone() is not None


@contextmanager
def entries_after(conn, as_of: str):
    """temp.after_entries (id, member_id, points): the ledger entries dated after the end of day `as_of`."""
    conn.execute("DROP TABLE IF EXISTS temp.after_entries")
    conn.execute("CREATE TEMP TABLE after_entries (id INTEGER PRIMARY KEY, member_id TEXT, points INTEGER)")
    if dated_after(conn, as_of):  # else there are none: skip the scan
        conn.execute("INSERT INTO temp.after_entries SELECT id, member_id, points FROM ledger WHERE at > ?",
                     (end_of_day(as_of[:10]),))
    try:
        yield
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.after_entries")


# Each member's balance at the end of D (a WITH clause; needs temp.after_entries).
BALANCES_SQL = """balances AS (
    SELECT m.member_id, m.balance - coalesce(a.points, 0) AS balance
    FROM members m LEFT JOIN (SELECT member_id, sum(points) AS points FROM temp.after_entries GROUP BY member_id) a
         ON a.member_id = m.member_id)"""


def outstanding(conn) -> int:
    """Outstanding points at the end of D: the sum of positive balances (SPEC §8; needs temp.after_entries)."""
    return conn.execute(f"WITH {BALANCES_SQL} SELECT coalesce(sum(balance), 0) FROM balances WHERE balance > 0").fetchone()[0]


def balance_as_of(conn, member_id: str, as_of: str | None) -> tuple[int, list[dict]]:
    """Balance from entries dated up to `as_of` (None: all of them), and unconsumed points per expiry date.

    Lots count when their credit is dated up to `as_of`, minus uses by entries
    dated up to `as_of`; lapsed lots not yet written off are included.
    """
    if as_of is None or not dated_after(conn, as_of):  # nothing dated after D: the cached state is D's
        balance = conn.execute("SELECT balance FROM members WHERE member_id = ?", (member_id,)).fetchone()[0]
        rows = conn.execute(
            "SELECT expires_on, sum(remaining) FROM lots WHERE member_id = ? AND remaining > 0 "
            "GROUP BY expires_on ORDER BY coalesce(expires_on, ?)", (member_id, NEVER)).fetchall()
    else:
        end = as_of[:10] + "T23:59:59"
        balance = conn.execute("SELECT coalesce(sum(points), 0) FROM ledger WHERE member_id = ? AND at <= ?",
                               (member_id, end)).fetchone()[0]
        rows = conn.execute(
            """SELECT l.expires_on, sum(l.points - coalesce(u.used, 0))
               FROM lots l JOIN ledger c ON c.id = l.entry_id
               LEFT JOIN (SELECT lu.lot_id, sum(lu.points) AS used FROM lot_uses lu JOIN ledger d ON d.id = lu.entry_id
                          WHERE d.member_id = ? AND d.at <= ? GROUP BY lu.lot_id) u ON u.lot_id = l.id
               WHERE l.member_id = ? AND c.at <= ?
               GROUP BY l.expires_on HAVING sum(l.points - coalesce(u.used, 0)) > 0 ORDER BY coalesce(l.expires_on, ?)""",
            (member_id, end, member_id, end, NEVER)).fetchall()
    expiring = [{"date": e, "points": p} for e, p in rows if p > 0]
    return balance, expiring
