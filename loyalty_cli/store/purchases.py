"""Purchase lookups: a recorded sale or refund, what has been refunded of a sale, and how many of
its points expiry took."""

from __future__ import annotations

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
