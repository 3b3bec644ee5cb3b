"""Purchase lookups: a recorded sale or refund, what has been refunded of a sale, and how many of
its points expiry took."""

from __future__ import annotations

from typing import NamedTuple

from loyalty_cli.store import in_parts
from loyalty_cli.store.ledger import OWN_LOTS


def find(tx, purchase_id: str):
    """(member_id, kind, amount, refund_of, purchased_at) of a recorded purchase, or None."""
    return tx.execute("SELECT member_id, kind, amount, refund_of, purchased_at FROM purchases WHERE purchase_id = ?",
                      (purchase_id,)).fetchone()


def earnings(tx, purchase_id: str):
    """(member_id, kind, amount, purchased_at, points, basis_points) of a recorded purchase, or None."""
    return tx.execute(
        "SELECT member_id, kind, amount, purchased_at, points, basis_points FROM purchases WHERE purchase_id = ?",
        (purchase_id,)).fetchone()


def refunds_of(tx, sale_id: str) -> tuple[int, int]:
    """(amount refunded, points reversed) by the refunds recorded of a sale."""
    return tx.execute("SELECT coalesce(sum(amount), 0), coalesce(sum(points), 0) FROM purchases WHERE refund_of = ?",
                      (sale_id,)).fetchone()


def expired_points_of(tx, sale_id: str) -> int:
    """How many of the sale's own points expiry has written off."""
    return tx.execute(
        f"""SELECT coalesce(sum(u.points), 0) FROM lot_uses u JOIN ledger e ON e.id = u.entry_id
            WHERE u.lot_id IN (SELECT id FROM lots WHERE {OWN_LOTS}) AND e.kind = 'expire'""",
        (sale_id, sale_id)).fetchone()[0]


def expired_and_own_lots(tx, sale_id: str) -> tuple[int, list[int]]:
    """(expired_points_of the sale as the database holds it, the ids of the sale's own lots there):
    what a book adds its unwritten write-offs to (ledger.Book.expired_points)."""
    own = [lot for (lot,) in tx.execute(f"SELECT id FROM lots WHERE {OWN_LOTS}", (sale_id, sale_id))]
    return expired_points_of(tx, sale_id) if own else 0, own


class SaleRead(NamedTuple):
    """What the refunds of an import ask of the database about a recorded sale, read for many sales
    at once (`sales_for_refunds`): `earnings`'s row, `refunds_of`'s totals, the sale's own lots
    (OWN_LOTS: (id, member_id, expires_on, remaining, available_on), every one, open or not) and
    how many of their points expiry wrote off (`expired_points_of`)."""
    row: tuple
    refunded: int
    reversed: int
    own_lots: list
    expired: int


def sales_for_refunds(tx, sale_ids) -> dict:
    """{sale id: SaleRead, or None when no purchase has that id} for `sale_ids`: a few statements for
    them all, where asking `earnings`, `refunds_of`, `expired_points_of` and the sale's open lots
    of each would be four round trips a refund."""
    ids = sorted(set(sale_ids))
    found: dict = dict.fromkeys(ids)
    lot_of: dict = {}
    rows: dict = {}
    for part, marks in in_parts(ids):
        for pid, member, kind, amount, at, points, basis, lot_id in tx.execute(
                "SELECT purchase_id, member_id, kind, amount, purchased_at, points, basis_points, lot_id "
                f"FROM purchases WHERE purchase_id IN ({marks})", part):
            rows[pid] = (member, kind, amount, at, points, basis)
            if lot_id is not None:
                lot_of.setdefault(lot_id, []).append(pid)
    totals: dict = {}
    own: dict = {pid: [] for pid in rows}
    sales = sorted(rows)
    for part, marks in in_parts(sales):
        for sale, amount, points in tx.execute(
                "SELECT refund_of, coalesce(sum(amount), 0), coalesce(sum(points), 0) FROM purchases "
                f"WHERE refund_of IN ({marks}) GROUP BY refund_of", part):
            totals[sale] = (amount, points)
        for lot_id, purchase_id, origin, member, expires_on, remaining, available_on in tx.execute(
                "SELECT id, purchase_id, origin, member_id, expires_on, remaining, available_on FROM lots "
                f"WHERE purchase_id IN ({marks}) AND origin IS NOT NULL", part):
            own[purchase_id].append((lot_id, member, expires_on, remaining, available_on))
    lot_ids = sorted(lot_of)
    for part, marks in in_parts(lot_ids):
        for lot_id, purchase_id, origin, member, expires_on, remaining, available_on in tx.execute(
                "SELECT id, purchase_id, origin, member_id, expires_on, remaining, available_on FROM lots "
                f"WHERE id IN ({marks})", part):
            for sale in lot_of[lot_id]:
                if not (purchase_id == sale and origin is not None):  # (read above already)
                    own[sale].append((lot_id, member, expires_on, remaining, available_on))
    expired_of_lot: dict = {}
    every_lot = sorted({lot[0] for lots in own.values() for lot in lots})
    for part, marks in in_parts(every_lot):
        for lot_id, points in tx.execute(
                "SELECT u.lot_id, sum(u.points) FROM lot_uses u JOIN ledger e ON e.id = u.entry_id "
                f"WHERE u.lot_id IN ({marks}) AND e.kind = 'expire' GROUP BY u.lot_id", part):
            expired_of_lot[lot_id] = points
    for pid, row in rows.items():
        refunded, reversed_ = totals.get(pid, (0, 0))
        found[pid] = SaleRead(row, refunded, reversed_, own[pid], sum(expired_of_lot.get(lot[0], 0) for lot in own[pid]))
    return found
