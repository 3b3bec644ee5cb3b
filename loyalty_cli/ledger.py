"""The append-only points ledger: entries, lots, FIFO consumption, expiry, balances.

`Book` is one unit of work inside a write transaction. It assigns entry ids and
chains hashes in Python and buffers immutable records (`Entry`, `Lot`, `LotUse`,
`Purchase`, `TierChange`), which the store's writer persists in batches when the
book is flushed, so a counter command and a million-row import share the same
code. A debit always flushes first, then asks the store for the member's open lots.

Lot rules (SPEC §6): every credit is a lot expiring on E; debits consume the
earliest E first (oldest lot first among equal dates, never-expiring lots last);
lapsed lots are written off (one `expire` entry) before any debit; while a
balance is below zero, new credits fill that hole first. A sale's lot may be
pending (earn.pending_days): counted in the balance, but spendable only from its
`available_on` day - a redeem, transfer or adjustment down skips it until then;
a refund's reversal and expiry take it like any other lot.
"""

from __future__ import annotations

from operator import attrgetter
from typing import NamedTuple

from loyalty_cli.errors import LoyaltyError, NotFound
from loyalty_cli.ids import erased
from loyalty_cli.program import load_programme
from loyalty_cli.rules import Programme
from loyalty_cli.store import imports as import_rows
from loyalty_cli.store import ledger as ledger_rows
from loyalty_cli.values import TRILLION
from loyalty_cli.i18n import M_, _

GENESIS = "0" * 64
MAX_POINTS = TRILLION  # the most points one entry may move (a sale, an award, a redeem)
CREDIT_KINDS = ("signup", "earn", "bonus", "referral", "award", "adjust", "transfer_in", "voucher_cancel")


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
# Records on the hot path are built with tuple.__new__(Record, (fields…)): what a named tuple's own
# __new__ does, without its Python frame (0.5 µs → 0.25 µs; an import builds four a row).
_record = tuple.__new__


class Entry(NamedTuple):
    """A ledger entry: `points` signed (credits positive), `hash` chaining it to the entry before."""
    id: int
    member_id: str
    at: str
    kind: str
    points: int
    ref: str | None
    note: str | None
    by: str | None
    hash: str


class Lot(NamedTuple):
    """Points a credit entry added, expiring on `expires_on` (None: never); `remaining` of `points`
    unconsumed. `purchase_id`: the sale they belong to; `origin`: set when a cancelled voucher returned them;
    `available_on`: the first day they may be spent (None: from the credit's date)."""
    id: int
    entry_id: int
    member_id: str
    expires_on: str | None
    points: int
    remaining: int
    purchase_id: str | None
    origin: str | None
    available_on: str | None


class LotUse(NamedTuple):
    """`points` of a lot taken by a debit entry (or by a credit filling a negative balance)."""
    entry_id: int
    lot_id: int
    points: int


class TierChange(NamedTuple):
    """A member moving from one tier to another: why, until when (a floor), by whom, and for which sale."""
    member_id: str
    at: str
    from_tier: str
    to_tier: str
    reason: str
    until: str | None
    by: str | None
    ref: str | None


class Purchase(NamedTuple):
    """A sale or refund as recorded, with the points it earned or reversed, and the branch (store) it
    was rung up at (None: none given)."""
    purchase_id: str
    member_id: str
    kind: str
    amount: int
    at: str
    category: str | None
    refund_of: str | None
    points: int
    basis_points: int
    lot_id: int | None
    store: str | None


class MemberState:
    """What the ledger needs to know of a member while it writes (kept small: an import holds one per member).

    qualifying: (basis, days, values), the member's tier history, loaded lazily by tiers.
    A plain class with slots: cheaper to define at start-up than a dataclass.
    """

    __slots__ = ("member_id", "birth_month", "referred_by", "tier", "tier_since", "floor_tier", "floor_until",
                 "balance", "first_sale", "erased", "qualifying", "merged_into")

    def __init__(self, member_id, birth_month, referred_by, tier, tier_since, floor_tier, floor_until, balance,
                 first_sale, erased, merged_into=None):
        self.member_id, self.birth_month, self.referred_by = member_id, birth_month, referred_by
        self.tier, self.tier_since, self.floor_tier, self.floor_until = tier, tier_since, floor_tier, floor_until
        self.balance, self.first_sale, self.erased, self.qualifying = balance, first_sale, erased, None
        self.merged_into = merged_into  # the member this duplicate was merged into (members merge): its alias


class Book:
    """A unit of work over the ledger; call `flush()` before the transaction commits.

    The decisions are made here, in Python: entry ids and the hash chain, which lots a debit
    takes and which are written off, member states. What they produce are immutable records
    (`Entry`, `Lot`, `LotUse`, `Purchase`, `TierChange`) buffered until `flush()` hands them to
    the store's `LedgerWriter`. What the book needs from the database (member states, open
    lots, the chain's head) it asks `store.ledger` for, with values; `conn` is the transaction
    handle, passed through untouched.
    """

    def __init__(self, conn, programme: Programme | None = None):
        self.conn = conn
        self.programme = programme or load_programme(conn)
        self.rules_for = self.programme.for_date  # the rules in force on a date (bound once: called per sale)
        last_id, last_hash, last_lot = ledger_rows.head(conn)
        self.next_id, self.prev_hash = last_id + 1, last_hash or GENESIS
        self.next_lot = last_lot + 1
        self._writer = ledger_rows.LedgerWriter(conn)
        self._sha = _sha256()
        self.members: dict[str, MemberState] = {}
        self._dirty: set = set()
        self._entries: list[Entry] = []
        self._lots: list[Lot] = []
        self._uses: list[LotUse] = []
        self._lot_remaining: dict[int, int] = {}
        self._purchases: list[Purchase] = []
        self._tier_changes: list[TierChange] = []
        self._pending_purchase_ids: dict[str, Purchase] = {}  # the purchases buffered, by id
        self._pending_refunds_of: dict[str, list[int]] = {}  # sales with buffered refunds → [amount, points] of those
        self._pending_members: set = set()  # members whose lots have unwritten changes
        self._sales_read: dict = {}  # prefetch_sales: sale id → store.purchases.SaleRead or None, until a flush
        self._expiring_read: dict = {}  # prefetch_sales: member id → their lots lapsed by _expiring_day, until a flush
        self._expiring_day = ""
        self.points_in = 0   # credits written by this book
        self.points_out = 0  # debits written by this book
        self._deferred: list[str] = []  # how to build again what defer_indexes dropped
        self.history_empty = False     # no purchases but this book's: tiers need not read a member's earlier ones
        self._experiments = None       # the database's experiments, read on the first earning (experiments.load)
        self._variant_marks: list[tuple[int, str]] = []  # (entry id, experiment): earned under its variant

    # -- members ----------------------------------------------------------
    def member(self, member_id: str, *, active: bool = True) -> MemberState:
        """The member's state (cached for the life of the book); NotFound if unknown. For new
        activity (`active`), a member merged into another is that member (members merge: an alias)."""
        m = self.members.get(member_id)
        if m is None:
            self.load_members([member_id])
            m = self.members.get(member_id)
            if m is None:
                raise NotFound.member(member_id)
        if active and m.merged_into is not None:
            return self.member(m.merged_into)
        if active and m.erased:
            raise erased(member_id)
        return m

    def load_members(self, ids) -> None:
        """Load many members' state with a few queries (for imports)."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self.members]
        for row in ledger_rows.member_states(self.conn, wanted):
            self.members[row[0]] = MemberState(*row)

    def add_member_state(self, m: MemberState) -> None:
        """Take in a member just enrolled in this transaction."""
        self.members[m.member_id] = m

    def touch(self, m: MemberState) -> None:
        """Note that the member's state changed (tier, first sale…): their row is written at `flush()`."""
        self._dirty.add(m)

    def record_tier_change(self, m: MemberState, at: str, to_tier: str, reason: str, *, until=None, by=None,
                           ref=None) -> None:
        """Move the member to `to_tier` from `at`'s date, recording the change."""
        self._tier_changes.append(TierChange(m.member_id, at, m.tier, to_tier, reason, until, by, ref))
        m.tier = to_tier
        m.tier_since = at[:10]
        self._dirty.add(m)

    def earning_rules(self, member_id: str, at: str):
        """(the rules a credit of the member dated `at` earns under, the name of the experiment whose
        variant they are or None): the version in force, or an experiment's variant merged over it
        when one runs that day and the member is in its variant group (experiments.py)."""
        rules = self.rules_for(at)
        found = self._experiments
        if found is None:
            from loyalty_cli import experiments

            found = self._experiments = experiments.load(self.conn)
        if found:
            running = found.on(at[:10])
            if running is not None and running.in_variant(member_id):
                return running.rules(rules), running.name
        return rules, None

    def mark_variant(self, first_entry: int, count: int, experiment: str) -> None:
        """Note that entries first_entry.. (`count` of them) were earned under `experiment`'s variant."""
        self._variant_marks.extend((eid, experiment) for eid in range(first_entry, first_entry + count))

    # -- a sale still in the buffer ------------------------------------------
    # An import's refund often names a sale a few rows earlier, still unwritten. What the refund
    # needs of it (its facts, its refunds, its own lots and what expiry took of them) is then all
    # in the buffer: none of it can be in the database yet. Answered here, it costs no flush and
    # no round trip to a database server.
    def unwritten_purchase(self, purchase_id: str) -> Purchase | None:
        """The purchase when this book holds it unwritten, else None."""
        return self._pending_purchase_ids.get(purchase_id)

    def unwritten_refunds_of(self, sale_id: str) -> tuple[int, int]:
        """(amount refunded, points reversed) by the refunds of the sale this book holds unwritten."""
        total = self._pending_refunds_of.get(sale_id)
        return (total[0], total[1]) if total else (0, 0)

    def _unwritten_own_lots(self, sale: Purchase) -> list[Lot]:
        """The lots of an unwritten sale (store.ledger.OWN_LOTS: its own lot, and points returned to it)."""
        return [lot for lot in self._lots if lot.id == sale.lot_id
                or (lot.purchase_id == sale.purchase_id and lot.origin is not None)]

    def unwritten_expired_points(self, sale_id: str) -> int | None:
        """How many of an unwritten sale's own points expiry wrote off (store.purchases.expired_points_of);
        None when the sale is not in the buffer."""
        sale = self._pending_purchase_ids.get(sale_id)
        if sale is None:
            return None
        own = {lot.id for lot in self._unwritten_own_lots(sale)}
        if not own:
            return 0
        first = self._entries[0].id if self._entries else self.next_id  # buffered entries: ids first, first+1…
        entries = self._entries
        return sum(use.points for use in self._uses
                   if use.lot_id in own and use.entry_id >= first and entries[use.entry_id - first].kind == "expire")

    def prefetch_sales(self, sale_ids, member_ids=(), last_day: str | None = None) -> None:
        """Read at once what refunds of these sales, by these members, up to the day `last_day`,
        will ask of the database (store.purchases.sales_for_refunds; the members' lots lapsed by
        then): an import's chunk of rows then costs a few statements, not five a refund. What is
        read holds until the buffer is next written (flush forgets it: the database changes only
        then); a sale with unwritten rows is asked of the buffer, or written first, as before."""
        from loyalty_cli.store import purchases as purchase_rows

        wanted = [s for s in set(sale_ids) if s and s not in self._sales_read and s not in self._pending_purchase_ids]
        if wanted:
            self._sales_read.update(purchase_rows.sales_for_refunds(self.conn, wanted))
        members = set(member_ids)
        if members and last_day:
            if self._expiring_read and last_day != self._expiring_day:
                self._expiring_read.clear()  # (read up to another day: read again)
            self._expiring_day = last_day
            members.difference_update(self._expiring_read)
            if members:
                self._expiring_read.update(ledger_rows.expiring_lots(self.conn, sorted(members), last_day))

    def read_sale(self, sale_id: str):
        """(found, SaleRead or None) for a sale prefetch_sales read since the last flush; found False
        when it was not read (ask the database)."""
        if sale_id in self._sales_read:
            return True, self._sales_read[sale_id]
        return False, None

    def _own_open_lots(self, m: MemberState, sale_id: str) -> list[tuple]:
        """store.ledger.open_lots(…, sale_id) as it would read once the buffer is written: the
        database's (their remaining points as the buffer left them: a lot at 0 is skipped by the
        caller) and the buffered ones, in the same order (earliest expiry, never last, then id)."""
        sale = self._pending_purchase_ids.get(sale_id)
        if sale is not None:  # none of an unwritten sale's lots can be in the database
            buffered, stored = self._unwritten_own_lots(sale), []
        else:
            buffered = [lot for lot in self._lots if lot.purchase_id == sale_id and lot.origin is not None]
            read = self._sales_read.get(sale_id)
            if read is not None:  # (ledger_rows.open_lots's filter and order, on what prefetch_sales read)
                stored = sorted(((lot_id, expires_on, remaining, available_on)
                                 for lot_id, member, expires_on, remaining, available_on in read.own_lots
                                 if member == m.member_id and remaining > 0),
                                key=lambda lot: (lot[1] or ledger_rows.NEVER, lot[0]))
            else:
                stored = ledger_rows.open_lots(self.conn, m.member_id, sale_id)
        lots = list(stored) + [(lot.id, lot.expires_on, lot.remaining, lot.available_on)
                               for lot in buffered if lot.member_id == m.member_id]
        return sorted(lots, key=lambda lot: (lot[1] or ledger_rows.NEVER, lot[0])) if buffered else lots

    def expired_points(self, m: MemberState, sale_id: str) -> int:
        """How many of a sale's own points expiry wrote off (store.purchases.expired_points_of),
        counting the write-offs still in the buffer, without writing it first."""
        unwritten = self.unwritten_expired_points(sale_id)
        if unwritten is not None:
            return unwritten
        from loyalty_cli.store import purchases as purchase_rows

        read = self._sales_read.get(sale_id)
        if m.member_id not in self._pending_members or not self._uses:
            return read.expired if read is not None else purchase_rows.expired_points_of(self.conn, sale_id)
        if read is not None:
            stored, own = read.expired, [lot[0] for lot in read.own_lots]
        else:
            stored, own = purchase_rows.expired_and_own_lots(self.conn, sale_id)
        own = set(own) | {lot.id for lot in self._lots if lot.purchase_id == sale_id and lot.origin is not None}
        first = self._entries[0].id if self._entries else self.next_id
        entries = self._entries
        return stored + sum(use.points for use in self._uses if use.lot_id in own and use.entry_id >= first
                            and entries[use.entry_id - first].kind == "expire")

    def is_pending(self, purchase_id: str) -> bool:
        """Whether this book holds unwritten rows of the purchase (it, or a refund of it)."""
        return purchase_id in self._pending_purchase_ids or purchase_id in self._pending_refunds_of

    # -- entries ----------------------------------------------------------
    def _append(self, m: MemberState, at: str, kind: str, points: int, ref, note, by) -> int:
        eid = self.next_id
        self.next_id = eid + 1
        # entry_hash, inlined: this runs for every entry of a million-row import.
        h = self._sha(f"{self.prev_hash}\x1f{eid}\x1f{m.member_id}\x1f{at}\x1f{kind}\x1f{points}\x1f{ref or ''}"
                      f"\x1f{note or ''}\x1f{by or ''}".encode()).hexdigest()
        self.prev_hash = h
        self._entries.append(_record(Entry, (eid, m.member_id, at, kind, points, ref, note, by, h)))
        return eid  # the caller marks the member dirty once it has changed the balance

    def add_purchase(self, m: MemberState, purchase_id: str, kind: str, amount: int, at: str, category, refund_of,
                     points: int, basis_points: int, lot_id, store: str | None = None) -> None:
        """Buffer a purchases row (the writer counts it into the member's and the day's totals);
        for a refund, note the sale it refunds as having unwritten refunds."""
        self._purchases.append(_record(Purchase, (purchase_id, m.member_id, kind, amount, at, category, refund_of,
                                                  points, basis_points, lot_id, store)))
        self._pending_purchase_ids[purchase_id] = self._purchases[-1]
        if refund_of is not None:
            total = self._pending_refunds_of.get(refund_of)
            if total is None:
                total = self._pending_refunds_of[refund_of] = [0, 0]
            total[0] += amount
            total[1] += points

    def credit(self, m: MemberState, at: str, kind: str, points: int, *, ref=None, note=None, by=None,
               purchase_id=None, lots: list[tuple] | None = None, origin: str | None = None) -> int:
        """Append a credit and its lot(s); a balance below zero is filled first. Returns the entry id."""
        return self.credit_entries(m, at, [(kind, points, ref, note)], by=by, purchase_id=purchase_id, lots=lots,
                                   origin=origin)[0]

    def credit_entries(self, m: MemberState, at: str, entries: list[tuple], *, by=None, purchase_id=None,
                       lots: list[tuple] | None = None, origin: str | None = None,
                       available_on: str | None = None) -> tuple[int, int]:
        """Append credits [(kind, points, ref, note)] sharing lots; return (first entry id, first lot id).

        `lots` overrides the single lot expiring by the rules: [(E, size)] or
        [(E, size, purchase_id)] for points returning to where they came from.
        `available_on`: the lots may be spent from that day only (a sale's points, earn.pending_days).
        """
        total = 0
        first = None
        for kind, points, ref, note in entries:
            if points <= 0:
                raise ValueError(M_("a credit must be positive"))
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
                self._uses.append(LotUse(first, lot_id, fill))
            self._lots.append(_record(Lot, (lot_id, first, m.member_id, expires_on, size, size - fill, lot_purchase,
                                            lot_origin, available_on)))
        self._pending_members.add(m.member_id)
        m.balance += total
        self._dirty.add(m)
        self.points_in += total
        return first, first_lot

    def debit(self, m: MemberState, at: str, kind: str, points: int, *, ref=None, note=None, by=None,
              purchase_id=None, allow_negative: bool = False,
              written_off: bool = False) -> tuple[int, list[tuple[int, str | None, int]]]:
        """Append a debit consuming lots; returns (entry id, [(lot id, E, points taken)]).

        Lapsed lots are written off first, unless the caller has just done so (`written_off`).
        """
        if points <= 0:
            raise ValueError(M_("a debit must be positive"))
        if not written_off:
            self.write_off_lapsed(m, at)
        spend_day = None  # a refund's reversal (allow_negative) may take pending lots; a spend may not
        if not allow_negative:
            spend_day = at[:10]
            pending = self.pending(m, spend_day)
            available = m.balance - sum(p for __, p in pending)
            if available < points:
                if not pending:
                    from loyalty_cli.render import plural  # the count and its noun, in the reader's language

                    raise LoyaltyError(M_("member {member_id} has {balance} available, not enough for {points:,}", member_id=m.member_id, balance=plural(m.balance, "point"), points=points))
                later = ", ".join(_("{points:,} more from {day}").format(points=p, day=day) for day, p in pending)
                from loyalty_cli.render import plural  # the count and its noun, in the reader's language

                raise LoyaltyError(M_("member {member_id} has {available} available now ({later}), not enough for {points:,}", member_id=m.member_id, available=plural(available, "point"), later=later, points=points))
        eid = self._append(m, at, kind, -points, ref, note, by)
        taken = self._consume(m, eid, points, purchase_id, spend_day)  # may flush: mark dirty after it
        m.balance -= points
        self._dirty.add(m)
        self.points_out += points
        return eid, taken

    def sync(self, m: MemberState) -> None:
        """Write buffered rows if this member's lots have changes not yet in the database."""
        if m.member_id in self._pending_members:
            self.flush(members=False)

    def pending(self, m: MemberState, day: str) -> list[tuple[str, int]]:
        """[(available_on, points)] of the member's open lots that may not be spent on `day` yet."""
        self.sync(m)
        by_day: dict[str, int] = {}
        for lot_id, available_on, remaining in ledger_rows.pending_lots(self.conn, m.member_id, day):
            remaining = self._lot_remaining.get(lot_id, remaining)
            if remaining > 0:
                by_day[available_on] = by_day.get(available_on, 0) + remaining
        return list(by_day.items())

    def _consume(self, m: MemberState, eid: int, points: int, purchase_id=None, spend_day: str | None = None) -> list:
        """Take `points` from open lots: the purchase's own lots first (refunds), then earliest E;
        with `spend_day` (a spend, not a reversal), only lots available by that day."""
        need = points
        taken = []
        for own in ((True, False) if purchase_id is not None else (False,)):
            if need == 0:
                break
            if own:  # the sale's own lots, written or not, without writing the buffer first
                lots = self._own_open_lots(m, purchase_id)
            else:
                self.sync(m)
                lots = ledger_rows.open_lots(self.conn, m.member_id, None)
            for lot_id, expires_on, remaining, available_on in lots:
                if spend_day is not None and available_on is not None and available_on > spend_day:
                    continue
                remaining = self._lot_remaining.get(lot_id, remaining)
                if remaining <= 0:
                    continue
                take = min(need, remaining)
                need -= take
                self._lot_remaining[lot_id] = remaining - take
                self._pending_members.add(m.member_id)
                self._uses.append(_record(LotUse, (eid, lot_id, take)))
                taken.append((lot_id, expires_on, take))
                if need == 0:
                    break
        return taken

    def write_off_lapsed(self, m: MemberState, at: str) -> int:
        """Write off the member's lots that lapsed before `at`'s date; return the points.

        When none of the member's buffered lots has lapsed, the database's lapsed lots (with what
        the buffer took of them) are the answer, without writing the buffer first."""
        day = at[:10]
        if m.member_id in self._pending_members:
            remaining = self._lot_remaining
            if any(lot.member_id == m.member_id and lot.expires_on is not None and lot.expires_on < day
                   and remaining.get(lot.id, lot.remaining) > 0 for lot in self._lots):
                self.flush(members=False)
            else:
                rows = [(lot_id, remaining.get(lot_id, left)) for lot_id, left in self._lapsed_lots(m, day)]
                return self._write_off(m, at, [row for row in rows if row[1] > 0])
        return self._write_off(m, at, self._lapsed_lots(m, day))

    def _lapsed_lots(self, m: MemberState, day: str) -> list[tuple[int, int]]:
        """store.ledger.lapsed_lots, from what prefetch_sales read when it read this member's lots."""
        read = self._expiring_read.get(m.member_id)
        if read is None or day > self._expiring_day:
            return ledger_rows.lapsed_lots(self.conn, m.member_id, day)
        return [(lot_id, remaining) for expires_on, lot_id, remaining in read if expires_on < day]

    def write_off_new_lapsed(self, m: MemberState, at: str, first_lot: int) -> int:
        """Write off the lots from `first_lot` on (just credited, still buffered) that lapsed before
        `at`'s date: points a cancelled voucher returns to lots already past their expiry."""
        day = at[:10]
        rows = [(lot.id, lot.remaining) for lot in self._lots
                if lot.id >= first_lot and lot.expires_on is not None and lot.expires_on < day and lot.remaining > 0]
        return self._write_off(m, at, rows)

    def _write_off(self, m: MemberState, at: str, rows) -> int:
        total = sum(r for __, r in rows)
        if total <= 0:
            return 0
        eid = self._append(m, at, "expire", -total, None, None, None)
        self._pending_members.add(m.member_id)
        for lot_id, remaining in rows:
            self._lot_remaining[lot_id] = 0
            self._uses.append(LotUse(eid, lot_id, remaining))
        m.balance -= total
        self._dirty.add(m)
        return total

    def expire_all(self, as_of: str) -> tuple[int, int]:
        """Write off every lot that lapsed before `as_of` (one entry per member)."""
        self.flush(members=False)
        at = as_of[:10] + "T00:00:00"
        by_member: dict[str, list] = {}
        for member_id, lot_id, remaining in ledger_rows.all_lapsed_lots(self.conn, as_of[:10]):
            by_member.setdefault(member_id, []).append((lot_id, remaining))
        self.load_members(by_member)
        members = points = 0
        for member_id, lots in by_member.items():
            written = self._write_off(self.members[member_id], at, lots)
            if written:
                members += 1
                points += written
            if len(self._entries) > 5000:
                self.flush(members=False)
        return members, points

    # -- bulk loading -----------------------------------------------------
    def defer_indexes(self, expected_rows: int) -> list[str]:
        """Before an import of about `expected_rows` new purchases: let the store drop the member-ordered
        indexes it would otherwise update at random, when rebuilding them at the end is cheaper (see
        store.imports.defer_indexes). Returns the names of the indexes."""
        names, rebuild, purchases_empty = import_rows.defer_indexes(self.conn, expected_rows, self.next_id)
        self._deferred.extend(rebuild)
        if purchases_empty:
            self.history_empty = True
        return names

    def restore_indexes(self) -> None:
        """Build the indexes `defer_indexes` dropped (in the same transaction: a crash keeps the old ones).

        What this book wrote is flushed first, so the purchases table is no longer empty of
        history: a member's earlier purchases must be read from it again (`history_empty`)."""
        self.flush(members=False)
        self.history_empty = False
        if self._deferred:
            import_rows.restore_indexes(self.conn, self._deferred)
            self._deferred.clear()

    # -- writing ----------------------------------------------------------
    def flush(self, members: bool = True) -> None:
        """Hand everything buffered to the store's writer.

        Member rows (balance, tier, totals…) and the daily totals are written only
        when `members` is true: inside a book the in-memory state is the truth, so a
        big import updates each member and day once at the end instead of at every
        intermediate flush.
        """
        self._pending_members.clear()
        self._sales_read.clear()
        self._expiring_read.clear()
        self._writer.write(self._entries, self._lots, self._uses, self._lot_remaining, self._purchases,
                           self._tier_changes)
        if self._variant_marks:  # after their entries (a foreign key)
            from loyalty_cli.store import experiments as experiment_rows

            experiment_rows.write_marks(self.conn, self._variant_marks)
            self._variant_marks.clear()
        for buffered in (self._entries, self._lots, self._uses, self._lot_remaining, self._purchases,
                         self._tier_changes, self._pending_purchase_ids, self._pending_refunds_of):
            buffered.clear()
        if not members:
            return
        self.restore_indexes()
        self._writer.write_members(
            (m.balance, m.tier, m.tier_since, m.floor_tier, m.floor_until, m.first_sale, m.member_id)
            for m in sorted(self._dirty, key=attrgetter("member_id")))
        self._dirty.clear()


def move_lots(book: Book, src: MemberState, dst: MemberState, at: str, lots: list[tuple], *, by=None,
              note: str | None = None) -> tuple[int, int]:
    """Move open lots [(lot id, expires_on, remaining, purchase_id, origin, available_on)] of `src` to
    `dst` whole (`members merge`): one merge_out entry on `src` taking every lot's remaining points,
    one merge_in entry on `dst` making a lot for each with the same expiry date, the same first day it
    may be spent and the same sale (marked origin 'merge', so a later refund of that sale takes them
    back first, as it does points a cancelled voucher returned). A hole in `dst`'s balance is filled
    first, as by any credit. The caller has written off `src`'s lapsed lots. Returns the two entries'
    ids; the points moved are conserved exactly."""
    total = sum(lot[2] for lot in lots)
    if total <= 0:
        raise ValueError("a merge moves at least one point")
    out_id = book._append(src, at, "merge_out", -total, dst.member_id, note, by)
    for lot_id, _expires_on, remaining, *_rest in lots:
        book._lot_remaining[lot_id] = 0
        book._uses.append(LotUse(out_id, lot_id, remaining))
    book._pending_members.add(src.member_id)
    src.balance -= total
    book._dirty.add(src)
    book.points_out += total
    in_id = book._append(dst, at, "merge_in", total, src.member_id, note, by)
    hole = -dst.balance if dst.balance < 0 else 0
    for _lot_id, expires_on, remaining, purchase_id, _origin, available_on in lots:
        lot_id = book.next_lot
        book.next_lot += 1
        fill = min(hole, remaining)
        if fill:
            hole -= fill
            book._uses.append(LotUse(in_id, lot_id, fill))
        book._lots.append(Lot(lot_id, in_id, dst.member_id, expires_on, remaining, remaining - fill, purchase_id,
                              "merge" if purchase_id is not None else None, available_on))
    book._pending_members.add(dst.member_id)
    dst.balance += total
    book._dirty.add(dst)
    book.points_in += total
    return out_id, in_id
