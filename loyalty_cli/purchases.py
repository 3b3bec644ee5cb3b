"""Record a sale or a refund: earning, ledger entries, lots and tier upgrade as one unit.

The counter (`purchases add`, `purchases refund`) and the CSV importer both come
through `record_sale` / `record_refund` on a `Book`, so a sale earns the same
points however it arrives.
"""

from __future__ import annotations

from loyalty_cli import earning, tiers, values
from loyalty_cli.errors import LoyaltyError, NotFound, UsageError
from loyalty_cli.ledger import MAX_POINTS, Book, MemberState
from loyalty_cli.store import purchases as purchase_rows
from loyalty_cli.i18n import M_, _


def record_sale(book: Book, m: MemberState, purchase_id: str, at: str, amount: int, category: str | None,
                store: str | None = None) -> int:
    """Write a sale, rung up at branch `store` (None: none given), and the points it earns; return the points."""
    rules = book.rules_for(at)
    earns, variant = book.earning_rules(m.member_id, at)  # an experiment's variant, for its members
    first = amount > 0 and m.first_sale is None
    lines = earning.earn(amount, earns, date=at, category=category, first=first,
                         birthday=m.birth_month == at[5:7], tier=m.tier)
    points = tier_points = 0
    entries = []
    for kind, rule, p in lines:
        points += p
        if rule is not None and rule.startswith("tier:"):
            tier_points += p
        entries.append((kind, p, purchase_id, rule))
    _check_points(purchase_id, points)
    lot_id = None
    if entries:
        first_entry, lot_id = book.credit_entries(m, at, entries, purchase_id=purchase_id,
                                                  lots=[(rules.expiry_for(at), points)],
                                                  available_on=earns.pending_days and earns.available_on(at) or None)
        if variant:
            book.mark_variant(first_entry, len(entries), variant)
    book.add_purchase(m, purchase_id, "sale", amount, at, category, None, points, points - tier_points, lot_id, store)
    if first:
        m.first_sale = purchase_id
        book.touch(m)
        if m.referred_by:
            _referral(book, m, rules, at, purchase_id)
    tiers.note_purchase(book, m, rules, at, "sale", amount, points - tier_points)
    tiers.upgrade_on_sale(book, m, rules, at, purchase_id)
    return points


def _referral(book: Book, m: MemberState, rules, at: str, purchase_id: str) -> None:
    """The referral bonus a member's first sale pays their referrer, under the rules the referrer
    earns under (an experiment's variant when the referrer is in its variant group)."""
    if not rules.referral_bonus and not book.earning_rules(m.referred_by, at)[1]:
        return  # the common case: no bonus, and no variant that could give one
    referrer = book.member(m.referred_by, active=False)
    if referrer.erased:  # an erased member takes no new activity: no bonus, the sale stands
        return
    earns, variant = book.earning_rules(referrer.member_id, at)
    if earns.referral_bonus:
        eid = book.credit(referrer, at, "referral", earns.referral_bonus, ref=purchase_id, note=f"referred {m.member_id}")
        if variant:
            book.mark_variant(eid, 1, variant)


def _check_points(purchase_id: str, points: int) -> None:
    if points > MAX_POINTS:
        raise LoyaltyError(M_("sale {purchase_id} would earn {points:,} points, more than the {max_points:,} a sale may earn (check earn.points_per_unit and the multipliers)", purchase_id=purchase_id, points=points, max_points=MAX_POINTS))


def check_new_members_sale(book: Book, purchase_id: str, at: str, amount: int, category: str | None,
                           joined_on: str, member_id: str) -> None:
    """Refuse, before enrolling anyone, the first sale of a member an import is about to create when
    record_sale would refuse it (a new member: first purchase, the lowest tier on joining, no birthday)."""
    lines = earning.earn(amount, book.earning_rules(member_id, at)[0], date=at, category=category, first=amount > 0,
                         birthday=False, tier=book.rules_for(joined_on).levels[0].name)
    _check_points(purchase_id, sum(p for __, __, p in lines))


def sale_facts(book: Book, sale_id: str):
    """((member, kind, amount, at, points, basis_points), refunded, reversed) of a sale, or None. A sale
    still in the book's buffer (an import's refund a few rows after it) is answered from there."""
    sale = book.unwritten_purchase(sale_id)
    if sale is not None:
        return ((sale.member_id, sale.kind, sale.amount, sale.at, sale.points, sale.basis_points),
                *book.unwritten_refunds_of(sale_id))
    if book.is_pending(sale_id):
        book.flush(members=False)
    found, read = book.read_sale(sale_id)  # (read for the import's whole chunk at once)
    if found:
        return None if read is None else (read.row, read.refunded, read.reversed)
    row = purchase_rows.earnings(book.conn, sale_id)
    if row is None:
        return None
    refunded, reversed_ = purchase_rows.refunds_of(book.conn, sale_id)
    return row, refunded, reversed_


def check_refund(book: Book, member_id: str, refund_id: str, at: str, amount: int, refund_of: str | None,
                 label: str | None = None):
    """Validate a refund; return the sale's facts or raise LoyaltyError saying what is wrong.

    `label` names the refund in messages (default "refund ID"; a counter refund whose id is
    generated is "the refund": its id was never recorded)."""
    label = label or f"refund {refund_id}"
    if not refund_of:
        raise LoyaltyError(M_("{label} needs refund_of: the purchase id it refunds", label=label))
    if amount <= 0:
        raise LoyaltyError(M_("{label} must be for more than 0", label=label))
    facts = sale_facts(book, refund_of)
    if facts is None:
        raise LoyaltyError(M_("{label} refunds purchase {refund_of}, which is not recorded", label=label, refund_of=refund_of))
    (sale_member, kind, sale_amount, sale_at, _p, _bp), refunded, _rev = facts
    if kind != "sale":
        raise LoyaltyError(M_("{label} refunds {refund_of}, which is itself a refund", label=label, refund_of=refund_of))
    if sale_amount == 0:
        raise LoyaltyError(M_("{label} refunds {refund_of}, a zero sale", label=label, refund_of=refund_of))
    if sale_member != member_id and book.member(sale_member, active=False).merged_into != member_id:
        # (a sale of a member since merged into this one is theirs: members merge)
        raise LoyaltyError(M_("{label} is for member {member_id} but {refund_of} was a sale to {sale_member}",
                              label=label, member_id=member_id, refund_of=refund_of, sale_member=sale_member))
    if at[:10] < sale_at[:10]:
        raise LoyaltyError(M_("{label} is dated {at}, before the sale {refund_of} ({sale_at})", label=label, at=at[:10], refund_of=refund_of, sale_at=sale_at[:10]))
    if refunded + amount > sale_amount:
        left = sale_amount - refunded
        raise LoyaltyError(M_("{label} is larger than what is left of {refund_of} ({format_money} left to refund)", label=label, refund_of=refund_of, format_money=values.format_money(left, book.programme.currency_decimals)))
    return facts


def record_refund(book: Book, m: MemberState, refund_id: str, at: str, amount: int, refund_of: str | None,
                  label: str | None = None, store: str | None = None) -> int:
    """Write a refund and reverse its share of the sale's points; return the points reversed. `store`:
    the branch the refund was rung up at (its own, which may not be the sale's; None: none given)."""
    facts = check_refund(book, m.member_id, refund_id, at, amount, refund_of, label)
    (_member, _kind, sale_amount, _sale_at, earned, basis_earned), refunded, reversed_ = facts
    book.write_off_lapsed(m, at)  # lapsed points are written off before the debit, so X counts them
    expired = book.expired_points(m, refund_of) if earned else 0  # X
    target = min(earned * (refunded + amount) // sale_amount, earned - expired)
    points = max(0, target - reversed_)
    basis_points = basis_earned * points // earned if earned else 0
    rules = book.rules_for(at)
    book.add_purchase(m, refund_id, "refund", amount, at, None, refund_of, points, basis_points, None, store)
    if points:
        book.debit(m, at, "reversal", points, ref=refund_id, note=f"refund of {refund_of}",  # stored: never translated
                   purchase_id=refund_of, allow_negative=True, written_off=True)
    tiers.note_purchase(book, m, rules, at, "refund", amount, basis_points)
    return points


def new_purchase_id(conn, prefix: str) -> str:
    """A fresh id for a counter sale or refund given no --id."""
    import secrets

    while True:
        pid = f"{prefix}{secrets.randbelow(10**10):010d}"
        if purchase_rows.find(conn, pid) is None:
            return pid


def add_sale(store, member_id: str, amount: int, at: str, purchase_id: str | None, category: str | None,
             branch: str | None = None) -> dict:
    """`purchases add`: one sale at the counter, rung up at `branch` (a store name, already checked; None: none)."""
    if purchase_id is not None:
        purchase_id = values.checked(values.parse_id, purchase_id, "--id")
    category = values.checked(values.parse_category, category)
    from loyalty_cli.ids import resolve_member

    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        book = Book(conn)
        m = book.member(member_id)
        if purchase_id and purchase_rows.find(conn, purchase_id):
            raise LoyaltyError(M_("purchase {purchase_id} is already recorded", purchase_id=purchase_id))
        pid = purchase_id or new_purchase_id(conn, "S")
        before = m.tier
        points = record_sale(book, m, pid, at, amount, category, branch)
        book.flush()
        return {"purchase_id": pid, "member_id": m.member_id, "amount": amount, "at": at, "store": branch,
                "points": points, "balance": m.balance, "tier": m.tier, "upgraded": m.tier != before}


def refund(store, sale_id: str, amount: int | None, at: str, refund_id: str | None, branch: str | None = None) -> dict:
    """`purchases refund`: all (no amount) or part of a sale, rung up at `branch` (its own; None: none)."""
    if refund_id is not None:
        refund_id = values.checked(values.parse_id, refund_id, "--id")
    if amount is not None and amount <= 0:
        raise UsageError(M_("the amount refunded must be more than 0 (leave it out to refund all that is left)"))
    sale_id = values.id_lookup(sale_id, M_("purchase id"))  # receipt ids match exactly, once trimmed and NFC (as stored)
    with store.write() as conn:
        book = Book(conn)
        sale = purchase_rows.find(conn, sale_id)
        if sale is None:
            raise NotFound(M_("purchase {sale_id} not found", sale_id=sale_id))
        m = book.member(sale[0])
        if refund_id and purchase_rows.find(conn, refund_id):
            raise LoyaltyError(M_("purchase {refund_id} is already recorded", refund_id=refund_id))
        rid = refund_id or new_purchase_id(conn, "R")
        if amount is None:
            refunded, _reversed = purchase_rows.refunds_of(conn, sale_id)
            amount = sale[2] - refunded
            if amount <= 0:
                if sale[2] == 0:
                    raise LoyaltyError(M_("purchase {sale_id} is a zero sale: there is nothing to refund", sale_id=sale_id))
                raise LoyaltyError(M_("purchase {sale_id} is already fully refunded", sale_id=sale_id))
        points = record_refund(book, m, rid, at, amount, sale_id, None if refund_id else _("the refund"), branch)
        book.flush()
        return {"refund_id": rid, "purchase_id": sale_id, "member_id": m.member_id, "amount": amount, "at": at,
                "store": branch, "points_reversed": points, "balance": m.balance}
