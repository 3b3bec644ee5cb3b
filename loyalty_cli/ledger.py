"""The append-only points ledger: entries, lots, FIFO consumption, expiry, balances.

`Book` is one unit of work inside a write transaction. It assigns entry ids and
chains hashes in Python, buffers rows and writes them with `executemany` when
flushed, so a counter command and a million-row import share the same code. A
debit always flushes first, then reads the member's open lots from the database.

Lot rules (SPEC §6): every credit is a lot expiring on E; debits consume the
earliest E first (oldest lot first among equal dates, never-expiring lots last);
lapsed lots are written off (one `expire` entry) before any debit; while a
balance is below zero, new credits fill that hole first.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from operator import attrgetter

from loyalty_cli.errors import LoyaltyError, NotFound
from loyalty_cli.store.migrations import MEMBER_TOTALS_SQL
from loyalty_cli.rules import Programme
from loyalty_cli.store import page_cache
from loyalty_cli.values import TRILLION, end_of_day

GENESIS = "0" * 64
MAX_POINTS = TRILLION  # the most points one entry may move (a sale, an award, a redeem)
CREDIT_KINDS = ("signup", "earn", "bonus", "referral", "award", "adjust", "transfer_in", "voucher_cancel")
NEVER = "9999-12-31"  # sorts never-expiring lots last
# A sale's own lots: the one it created, and any a cancelled voucher returned to it (two parameters: the sale id).
OWN_LOTS = "(id = (SELECT lot_id FROM purchases WHERE purchase_id = ?) OR (purchase_id = ? AND origin IS NOT NULL))"


def entry_hash(prev: str, eid: int, member_id: str, at: str, kind: str, points: int, ref, note, by) -> str:
    """sha256 over the previous entry's hash and this entry's fields (Book._append inlines the same text)."""
    text = f"{prev}\x1f{eid}\x1f{member_id}\x1f{at}\x1f{kind}\x1f{points}\x1f{ref or ''}\x1f{note or ''}\x1f{by or ''}"
    return _sha256()(text.encode()).hexdigest()


def _sha256():
    """hashlib loads OpenSSL (milliseconds); commands that only read never need it."""
    global _SHA256
    if _SHA256 is None:
        import hashlib

        _SHA256 = hashlib.sha256
    return _SHA256


_SHA256 = None


class MemberState:
    """What the ledger needs to know of a member while it writes (kept small: an import holds one per member).

    qualifying: (basis, days, values), the member's tier history, loaded lazily by tiers.
    A plain class with slots: cheaper to define at start-up than a dataclass.
    """

    __slots__ = ("member_id", "birth_month", "referred_by", "tier", "tier_since", "floor_tier", "floor_until",
                 "balance", "first_sale", "erased", "qualifying")

    def __init__(self, member_id, birth_month, referred_by, tier, tier_since, floor_tier, floor_until, balance,
                 first_sale, erased):
        self.member_id, self.birth_month, self.referred_by = member_id, birth_month, referred_by
        self.tier, self.tier_since, self.floor_tier, self.floor_until = tier, tier_since, floor_tier, floor_until
        self.balance, self.first_sale, self.erased, self.qualifying = balance, first_sale, erased, None


MEMBER_COLUMNS = ("member_id, substr(birthday, 6, 2), referred_by, tier, tier_since, floor_tier, floor_until, "
                  "balance, first_sale, erased_at IS NOT NULL")

# A member's row of member_totals (see migrations.m002_summaries), recomputed from their purchases
# for the members a book gave purchases to: the same query `db check` verifies them with.
UPDATE_TOTALS = f"INSERT OR REPLACE INTO member_totals {MEMBER_TOTALS_SQL.format(where='WHERE p.member_id = ?')}"
# … or for everyone at once, when a book gave purchases to this many members or more (one pass
# over the purchases in member order instead of a query per member).
ALL_TOTALS = f"INSERT OR REPLACE INTO member_totals {MEMBER_TOTALS_SQL.format(where='')}"
ALL_TOTALS_FROM = 20_000

# Member-ordered indexes that a big import builds once at its end (one sort) instead of
# inserting into at a random place for every row: at 1M purchases, 90 s became 76 s. Nothing
# an import reads goes through ledger_member; purchases_member only finds a member's earlier
# purchases, so it is dropped only when there are none (an empty purchases table).
DEFER_FROM_ROWS = 20_000
INDEX_BUILD_CACHE_KIB = 4096


def load_programme(conn) -> Programme:
    from loyalty_cli.rules import validate
    import json

    rows = conn.execute("SELECT applies_from, rules FROM program_versions ORDER BY applies_from, id").fetchall()
    return Programme([(applies_from, validate(json.loads(doc), stored=True)) for applies_from, doc in rows])


class Book:
    """A unit of work over the ledger; call `flush()` before the transaction commits."""

    def __init__(self, conn, programme: Programme | None = None):
        self.conn = conn
        self.programme = programme or load_programme(conn)
        self.rules_for = self.programme.for_date  # the rules in force on a date (bound once: called per sale)
        last = conn.execute("SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
        self.next_id, self.prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        self.next_lot = (conn.execute("SELECT max(id) FROM lots").fetchone()[0] or 0) + 1
        self._sha = _sha256()
        self.members: dict[str, MemberState] = {}
        self.dirty: set = set()
        self.entries: list[tuple] = []
        self.lots: list[tuple] = []
        self.uses: list[tuple] = []
        self.lot_remaining: dict[int, int] = {}
        self.purchases: list[tuple] = []
        self.tier_changes: list[tuple] = []
        self.buyers: set[str] = set()                          # members given purchases: totals to recompute
        self.daily_sales: dict[str, list[int]] = {}           # day → [sales, amount, refunds, amount]
        self.daily_points: dict[tuple, list[int]] = {}        # (day, kind) → [credit, debit, entries]
        self.pending_purchase_ids: set = set()
        self.pending_refunds_of: set = set()  # sales with buffered refunds
        self.pending_members: set = set()  # members whose lots have unwritten changes
        self.points_in = 0   # credits written by this book
        self.points_out = 0  # debits written by this book
        self.deferred: list[str] = []  # CREATE INDEX statements of indexes dropped until the end
        self.history_empty = False     # no purchases but this book's: tiers need not read a member's earlier ones

    # -- members ----------------------------------------------------------
    def member(self, member_id: str, *, active: bool = True) -> MemberState:
        """The member's state (cached for the life of the book); NotFound if unknown."""
        m = self.members.get(member_id)
        if m is None:
            self.load_members([member_id])
            m = self.members.get(member_id)
            if m is None:
                raise NotFound.member(member_id)
        if active and m.erased:
            raise LoyaltyError(f"member {member_id} was erased; erased members take no new activity")
        return m

    def load_members(self, ids) -> None:
        """Load many members' state with a few queries (for imports)."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self.members]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for mid, month, ref, tier, since, floor, until, balance, first, erased in self.conn.execute(
                    f"SELECT {MEMBER_COLUMNS} FROM members WHERE member_id IN ({marks})", chunk):
                # Interned: a hundred thousand members share a handful of tier names and dates.
                self.members[mid] = MemberState(mid, month and sys.intern(month), ref, sys.intern(tier), sys.intern(since),
                                                floor, until, balance, first, bool(erased))

    def add_member_state(self, m: MemberState) -> None:
        self.members[m.member_id] = m

    # -- entries ----------------------------------------------------------
    def _append(self, m: MemberState, at: str, kind: str, points: int, ref, note, by) -> int:
        eid = self.next_id
        self.next_id = eid + 1
        # entry_hash, inlined: this runs for every entry of a million-row import.
        h = self._sha(f"{self.prev_hash}\x1f{eid}\x1f{m.member_id}\x1f{at}\x1f{kind}\x1f{points}\x1f{ref or ''}"
                      f"\x1f{note or ''}\x1f{by or ''}".encode()).hexdigest()
        self.prev_hash = h
        self.entries.append((eid, m.member_id, at, kind, points, ref, note, by, h))
        key = (at[:10], kind)
        day = self.daily_points.get(key)
        if day is None:
            day = self.daily_points[key] = [0, 0, 0]
        day[0 if points > 0 else 1] += points
        day[2] += 1
        return eid  # the caller marks the member dirty once it has changed the balance

    def add_purchase(self, m: MemberState, purchase_id: str, kind: str, amount: int, at: str, category, refund_of,
                     points: int, basis_points: int, lot_id) -> None:
        """Buffer a purchases row, and note it for the member's and the day's totals."""
        self.purchases.append((purchase_id, m.member_id, kind, amount, at, category, refund_of, points, basis_points, lot_id))
        self.pending_purchase_ids.add(purchase_id)
        self.buyers.add(m.member_id)
        day = self.daily_sales.get(at[:10])
        if day is None:
            day = self.daily_sales[at[:10]] = [0, 0, 0, 0]
        if kind == "sale":
            day[0] += 1
            day[1] += amount
        else:
            day[2] += 1
            day[3] += amount

    def credit(self, m: MemberState, at: str, kind: str, points: int, *, ref=None, note=None, by=None,
               purchase_id=None, lots: list[tuple] | None = None, origin: str | None = None) -> int:
        """Append a credit and its lot(s); a balance below zero is filled first. Returns the entry id."""
        return self.credit_entries(m, at, [(kind, points, ref, note)], by=by, purchase_id=purchase_id, lots=lots,
                                   origin=origin)[0]

    def credit_entries(self, m: MemberState, at: str, entries: list[tuple], *, by=None, purchase_id=None,
                       lots: list[tuple] | None = None, origin: str | None = None) -> tuple[int, int]:
        """Append credits [(kind, points, ref, note)] sharing lots; return (first entry id, first lot id).

        `lots` overrides the single lot expiring by the rules: [(E, size)] or
        [(E, size, purchase_id)] for points returning to where they came from.
        """
        total = 0
        first = None
        for kind, points, ref, note in entries:
            if points <= 0:
                raise ValueError("a credit must be positive")
            eid = self._append(m, at, kind, points, ref, note, by)
            first = first or eid
            total += points
        if lots is None:
            lots = [(self.rules_for(at).expiry_for(at), total)]
        hole = -m.balance if m.balance < 0 else 0
        first_lot = self.next_lot
        for lot in lots:
            expires_on, size = lot[0], lot[1]
            if len(lot) > 2:  # points returning to the sale they came from (or to none)
                lot_purchase = lot[2]
                lot_origin = origin if lot_purchase else None
            else:
                lot_purchase, lot_origin = purchase_id, None
            lot_id = self.next_lot
            self.next_lot += 1
            fill = 0
            if hole:
                fill = min(hole, size)
                hole -= fill
                self.uses.append((first, lot_id, fill))
            self.lots.append((lot_id, first, m.member_id, expires_on, size, size - fill,
                              lot_purchase, lot_origin))
        self.pending_members.add(m.member_id)
        m.balance += total
        self.dirty.add(m)
        self.points_in += total
        return first, first_lot

    def debit(self, m: MemberState, at: str, kind: str, points: int, *, ref=None, note=None, by=None,
              purchase_id=None, allow_negative: bool = False,
              written_off: bool = False) -> tuple[int, list[tuple[int, str | None, int]]]:
        """Append a debit consuming lots; returns (entry id, [(lot id, E, points taken)]).

        Lapsed lots are written off first, unless the caller has just done so (`written_off`).
        """
        if points <= 0:
            raise ValueError("a debit must be positive")
        if not written_off:
            self.write_off_lapsed(m, at)
        if not allow_negative and m.balance < points:
            raise LoyaltyError(f"member {m.member_id} has {m.balance:,} point{'' if m.balance == 1 else 's'} available, "
                               f"not enough for {points:,}")
        eid = self._append(m, at, kind, -points, ref, note, by)
        taken = self._consume(m, eid, points, purchase_id)  # may flush: mark dirty after it
        m.balance -= points
        self.dirty.add(m)
        self.points_out += points
        return eid, taken

    def sync(self, m: MemberState) -> None:
        """Write buffered rows if this member's lots have changes not yet in the database."""
        if m.member_id in self.pending_members:
            self.flush(members=False)

    def _open_lots(self, m: MemberState, purchase_id=None):
        self.sync(m)
        if purchase_id is not None:
            # `+member_id`: a filter, not an index choice; by the member's open lots SQLite would read
            # each of their rows (0.7 ms a refund at 1M purchases) instead of the sale's one or two.
            return self.conn.execute(
                f"SELECT id, expires_on, remaining FROM lots WHERE {OWN_LOTS} AND +member_id = ? AND remaining > 0 "
                "ORDER BY coalesce(expires_on, ?), id", (purchase_id, purchase_id, m.member_id, NEVER)).fetchall()
        # A cursor, not fetchall: a regular's refund needs a few lots, not all thousand of them.
        return self.conn.execute(
            "SELECT id, expires_on, remaining FROM lots WHERE member_id = ? AND remaining > 0 "
            "ORDER BY coalesce(expires_on, ?), id", (m.member_id, NEVER))

    def _consume(self, m: MemberState, eid: int, points: int, purchase_id=None) -> list:
        """Take `points` from open lots: the purchase's own lots first (refunds), then earliest E."""
        need = points
        taken = []
        for own in ((True, False) if purchase_id is not None else (False,)):
            if need == 0:
                break
            for lot_id, expires_on, remaining in self._open_lots(m, purchase_id if own else None):
                remaining = self.lot_remaining.get(lot_id, remaining)
                if remaining <= 0:
                    continue
                take = min(need, remaining)
                need -= take
                self.lot_remaining[lot_id] = remaining - take
                self.pending_members.add(m.member_id)
                self.uses.append((eid, lot_id, take))
                taken.append((lot_id, expires_on, take))
                if need == 0:
                    break
        return taken

    def write_off_lapsed(self, m: MemberState, at: str) -> int:
        """Write off the member's lots that lapsed before `at`'s date; return the points."""
        self.sync(m)
        rows = self.conn.execute(
            "SELECT id, remaining FROM lots WHERE member_id = ? AND remaining > 0 AND expires_on < ?",
            (m.member_id, at[:10])).fetchall()
        return self._write_off(m, at, rows)

    def write_off_new_lapsed(self, m: MemberState, at: str, first_lot: int) -> int:
        """Write off the lots from `first_lot` on (just credited, still buffered) that lapsed before
        `at`'s date: points a cancelled voucher returns to lots already past their expiry."""
        day = at[:10]
        rows = [(lot[0], lot[5]) for lot in self.lots
                if lot[0] >= first_lot and lot[3] is not None and lot[3] < day and lot[5] > 0]
        return self._write_off(m, at, rows)

    def _write_off(self, m: MemberState, at: str, rows) -> int:
        total = sum(r for _, r in rows)
        if total <= 0:
            return 0
        eid = self._append(m, at, "expire", -total, None, None, None)
        self.pending_members.add(m.member_id)
        for lot_id, remaining in rows:
            self.lot_remaining[lot_id] = 0
            self.uses.append((eid, lot_id, remaining))
        m.balance -= total
        self.dirty.add(m)
        return total

    def expire_all(self, as_of: str) -> tuple[int, int]:
        """Write off every lot that lapsed before `as_of` (one entry per member)."""
        self.flush(members=False)
        rows = self.conn.execute(
            "SELECT member_id, id, remaining FROM lots WHERE remaining > 0 AND expires_on < ? ORDER BY member_id, id",
            (as_of[:10],)).fetchall()
        at = as_of[:10] + "T00:00:00"
        by_member: dict[str, list] = {}
        for member_id, lot_id, remaining in rows:
            by_member.setdefault(member_id, []).append((lot_id, remaining))
        self.load_members(by_member)
        members = points = 0
        for member_id, lots in by_member.items():
            written = self._write_off(self.members[member_id], at, lots)
            if written:
                members += 1
                points += written
            if len(self.entries) > 5000:
                self.flush(members=False)
        return members, points

    # -- bulk loading -----------------------------------------------------
    def defer_indexes(self, expected_rows: int) -> list[str]:
        """Before an import of about `expected_rows` new purchases: drop the member-ordered indexes
        it would otherwise update at random, when rebuilding them at the end is cheaper
        (the import is a quarter or more of what the ledger holds), and the triggers refusing
        REPLACE. Returns the names of the indexes."""
        if expected_rows < max(DEFER_FROM_ROWS, 1):
            return []
        c = self.conn
        names = []
        if expected_rows * 4 >= self.next_id:
            names.append("ledger_member")
        if c.execute("SELECT 1 FROM purchases LIMIT 1").fetchone() is None:
            names.append("purchases_member")
            self.history_empty = True
        # The triggers that refuse REPLACE look every new row's id up (a few µs an entry); the book
        # writes new ids only, so they too are put back at the end, in the same transaction.
        triggers = ["ledger_no_replace", "lot_uses_no_replace"]
        for name in names + triggers:
            row = c.execute("SELECT type, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND name = ?",
                            (name,)).fetchone()
            if row:
                self.deferred.append(row[1])
                c.execute(f"DROP {row[0].upper()} {name}")
        return names

    def restore_indexes(self) -> None:
        """Build the indexes `defer_indexes` dropped (in the same transaction: a crash keeps the old ones)."""
        self.flush(members=False)
        if not self.deferred:
            return
        # The sorter that builds an index may take as much memory as the page cache holds, on top
        # of it (at 1M purchases: +34 MiB of the 200 allowed). Built with a small cache instead,
        # which also lets the cache's pages go.
        with page_cache(self.conn, INDEX_BUILD_CACHE_KIB):
            while self.deferred:
                self.conn.execute(self.deferred.pop())

    # -- writing ----------------------------------------------------------
    def flush(self, members: bool = True) -> None:
        """Write everything buffered, in an order the foreign keys accept.

        Member rows (balance, tier, totals…) and the daily totals are written only
        when `members` is true: inside a book the in-memory state is the truth, so a
        big import updates each member and day once at the end instead of at every
        intermediate flush.
        """
        c = self.conn
        self.pending_members.clear()
        if self.entries:
            c.executemany("INSERT INTO ledger (id, member_id, at, kind, points, ref, note, by, hash) VALUES (?,?,?,?,?,?,?,?,?)",
                          self.entries)
            self.entries.clear()
        if self.lots:
            c.executemany("INSERT INTO lots (id, entry_id, member_id, expires_on, points, remaining, purchase_id, origin) "
                          "VALUES (?,?,?,?,?,?,?,?)", self.lots)
            self.lots.clear()
        if self.uses:
            c.executemany("INSERT INTO lot_uses (entry_id, lot_id, points) VALUES (?,?,?)", self.uses)
            self.uses.clear()
        if self.lot_remaining:
            c.executemany("UPDATE lots SET remaining = ? WHERE id = ?", [(r, i) for i, r in self.lot_remaining.items()])
            self.lot_remaining.clear()
        if self.purchases:
            c.executemany(
                "INSERT INTO purchases (purchase_id, member_id, kind, amount, purchased_at, category, refund_of, points, "
                "basis_points, lot_id) VALUES (?,?,?,?,?,?,?,?,?,?)", self.purchases)
            self.purchases.clear()
            self.pending_purchase_ids.clear()
            self.pending_refunds_of.clear()
        if self.tier_changes:
            c.executemany("INSERT INTO tier_changes (member_id, at, from_tier, to_tier, reason, until, by, ref) "
                          "VALUES (?,?,?,?,?,?,?,?)", self.tier_changes)
            self.tier_changes.clear()
        if not members:
            return
        self.restore_indexes()
        if self.dirty:
            c.executemany(
                "UPDATE members SET balance = ?, tier = ?, tier_since = ?, floor_tier = ?, floor_until = ?, first_sale = ? "
                "WHERE member_id = ?",
                # In key order: an import's hundred thousand updates then walk the table once
                # instead of landing on pages at random (after 1M purchases: 1.5–2.1 s → 1.0 s).
                ((m.balance, m.tier, m.tier_since, m.floor_tier, m.floor_until, m.first_sale, m.member_id)
                 for m in sorted(self.dirty, key=attrgetter("member_id"))))
            self.dirty.clear()
        if self.buyers:
            # From the purchases just written, in member order (the index's order): less than a
            # millisecond for a sale at the counter, seconds for an import touching every member.
            if len(self.buyers) >= ALL_TOTALS_FROM:
                c.execute(ALL_TOTALS)
            else:
                c.executemany(UPDATE_TOTALS, [(mid,) for mid in sorted(self.buyers)])
            self.buyers.clear()
        if self.daily_sales:
            c.executemany(
                "INSERT INTO daily_sales (day, sales, sales_amount, refunds, refund_amount) VALUES (?,?,?,?,?) "
                "ON CONFLICT (day) DO UPDATE SET sales = sales + excluded.sales, sales_amount = sales_amount + "
                "excluded.sales_amount, refunds = refunds + excluded.refunds, refund_amount = refund_amount + excluded.refund_amount",
                [(day, *t) for day, t in self.daily_sales.items()])
            self.daily_sales.clear()
        if self.daily_points:
            c.executemany(
                "INSERT INTO daily_points (day, kind, credit, debit, entries) VALUES (?,?,?,?,?) "
                "ON CONFLICT (day, kind) DO UPDATE SET credit = credit + excluded.credit, debit = debit + excluded.debit, "
                "entries = entries + excluded.entries",
                [(day, kind, *t) for (day, kind), t in self.daily_points.items()])
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
            """SELECT l.expires_on, sum(l.points - coalesce(u.used, 0)) AS left
               FROM lots l JOIN ledger c ON c.id = l.entry_id
               LEFT JOIN (SELECT lu.lot_id, sum(lu.points) AS used FROM lot_uses lu JOIN ledger d ON d.id = lu.entry_id
                          WHERE d.member_id = ? AND d.at <= ? GROUP BY lu.lot_id) u ON u.lot_id = l.id
               WHERE l.member_id = ? AND c.at <= ?
               GROUP BY l.expires_on HAVING left > 0 ORDER BY coalesce(l.expires_on, ?)""",
            (member_id, end, member_id, end, NEVER)).fetchall()
    expiring = [{"date": e, "points": p} for e, p in rows if p > 0]
    return balance, expiring
