"""Reward and voucher rows: the catalogue, and each voucher's issue, use or cancellation."""

from __future__ import annotations

from collections import namedtuple

# `rewards list --sort NAME` and `rewards vouchers --sort NAME` → their ORDER BY (allow-listed).
REWARD_ORDER = {"code": "code", "cost": "cost", "name": "name COLLATE NOCASE"}
VOUCHER_ORDER = {"issued": "issued_at, code", "code": "code", "member": "member_id, issued_at",
                 "status": "status, issued_at"}

Reward = namedtuple("Reward", "code name cost stock retired_at")
Voucher = namedtuple("Voucher", "member_id reward_code points redeem_entry status issued_at closed_at")


def reward_exists(tx, code: str) -> bool:
    """Whether a reward has exactly this code."""
    return tx.execute("SELECT 1 FROM rewards WHERE code = ?", (code,)).fetchone() is not None


def reward_codes(tx) -> list[str]:
    """Every reward's code, in code order (the catalogue is small)."""
    return [code for (code,) in tx.execute("SELECT code FROM rewards ORDER BY code")]


def reward(tx, code: str) -> Reward | None:
    """The reward with this code, or None."""
    row = tx.execute("SELECT code, name, cost, stock, retired_at FROM rewards WHERE code = ?", (code,)).fetchone()
    return Reward(*row) if row else None


def rewards(tx, include_retired: bool, order: str) -> list[Reward]:
    """The catalogue (without retired rewards unless asked), in REWARD_ORDER[order]."""
    where = "" if include_retired else " WHERE retired_at IS NULL"
    return [Reward(*r) for r in tx.execute(
        f"SELECT code, name, cost, stock, retired_at FROM rewards{where} ORDER BY {REWARD_ORDER[order]}")]


def insert_reward(tx, code: str, name: str, cost: int, stock: int | None) -> None:
    """Add a reward to the catalogue."""
    tx.execute("INSERT INTO rewards (code, name, cost, stock) VALUES (?,?,?,?)", (code, name, cost, stock))
    tx.journal.add("rewards", (code, name, cost, stock))


def update_reward(tx, code: str, name: str | None, cost: int | None, stock: int | None) -> None:
    """Change a reward's name, cost or stock (None: left as it is)."""
    tx.execute("UPDATE rewards SET name = coalesce(?, name), cost = coalesce(?, cost), stock = coalesce(?, stock) "
               "WHERE code = ?", (name, cost, stock, code))
    tx.journal.add("reward_edits", (code, name, cost, stock))


def retire_reward(tx, code: str, at: str) -> None:
    """Take a reward out of the catalogue from `at` (its vouchers stay)."""
    tx.execute("UPDATE rewards SET retired_at = ? WHERE code = ?", (at, code))
    tx.journal.add("reward_retirements", (code, at))


def restock(tx, code: str) -> None:
    """One more of a reward with a limited stock (a cancelled voucher's)."""
    if tx.execute("UPDATE rewards SET stock = stock + 1 WHERE code = ? AND stock IS NOT NULL", (code,)).rowcount:
        tx.journal.add("reward_stock", (code, 1))


def vouchers(tx, member_id: str | None, status: str | None, order: str) -> list[tuple]:
    """(code, member_id, reward_code, points, status, issued_at, closed_at) of the vouchers, of one
    member and in one status when given, in VOUCHER_ORDER[order]."""
    where, params = [], []
    if member_id:
        where.append("member_id = ?")
        params.append(member_id)
    if status:
        where.append("status = ?")
        params.append(status)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return tx.execute("SELECT code, member_id, reward_code, points, status, issued_at, closed_at FROM vouchers"
                      f"{clause} ORDER BY {VOUCHER_ORDER[order]}", params).fetchall()


def voucher_exists(tx, code: str) -> bool:
    """Whether a voucher has exactly this code."""
    return tx.execute("SELECT 1 FROM vouchers WHERE code = ?", (code,)).fetchone() is not None


def voucher(tx, code: str) -> Voucher | None:
    """The voucher with this code, or None."""
    row = tx.execute("SELECT member_id, reward_code, points, redeem_entry, status, issued_at, closed_at FROM vouchers "
                     "WHERE code = ?", (code,)).fetchone()
    return Voucher(*row) if row else None


def close_voucher(tx, code: str, status: str, at: str) -> None:
    """Mark a voucher used or cancelled at `at`."""
    tx.execute("UPDATE vouchers SET status = ?, closed_at = ? WHERE code = ?", (status, at, code))
    tx.journal.add("voucher_closes", (code, status, at))


def redeemed_lots(tx, redeem_entry: int) -> list[tuple[str | None, str | None, int]]:
    """(expires_on, purchase_id, points) of each lot the voucher's redeem entry consumed, in the order consumed."""
    return tx.execute("SELECT l.expires_on, l.purchase_id, u.points FROM lot_uses u JOIN lots l ON l.id = u.lot_id "
                      "WHERE u.entry_id = ? ORDER BY u.rowid", (redeem_entry,)).fetchall()
