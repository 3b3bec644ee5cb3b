"""The reward catalogue and the voucher lifecycle: issued → used (final) or cancelled."""

from __future__ import annotations

from loyalty_cli.errors import LoyaltyError, NotFound, UsageError
from loyalty_cli.ledger import MAX_POINTS, Book
from loyalty_cli.values import check_sort

SORT_KEYS = {"code": "code", "cost": "cost", "name": "name COLLATE NOCASE"}


def _code(code: str) -> str:
    """A new reward code: 1-40 characters without spaces, NFC, nothing invisible (values.parse_id)."""
    from loyalty_cli import values

    try:
        code = values.parse_id(code, "a reward code")
    except ValueError as exc:
        if "renders as nothing" in str(exc) or "combining mark" in str(exc):
            raise UsageError(str(exc)) from None
        code = ""
    if not code or len(code) > 40 or " " in code:
        raise UsageError("a reward code must be 1-40 characters without spaces")
    return code


def find_reward(conn, code: str) -> str | None:
    """The stored code of the reward a typed code names, or None. Reward codes are typed by people
    (COFFEE, coffee), so they match like member ids: trimmed, NFC, without regard to case. The
    catalogue is small: the codes are folded in Python (Unicode folding, not SQLite's ASCII NOCASE)."""
    from loyalty_cli import values

    code = values.id_lookup(code)
    if conn.execute("SELECT 1 FROM rewards WHERE code = ?", (code,)).fetchone():
        return code
    key = values.member_key(code)
    return next((stored for (stored,) in conn.execute("SELECT code FROM rewards ORDER BY code")
                 if values.member_key(stored) == key), None)


def _check_cost_stock(cost: int | None, stock: int | None) -> None:
    if cost is not None and not 0 < cost <= MAX_POINTS:
        raise UsageError(f"--cost must be above 0 and at most {MAX_POINTS:,} points, got {cost}")
    if stock is not None and not 0 <= stock <= MAX_POINTS:
        raise UsageError(f"--stock must be 0 or more (at most {MAX_POINTS:,}), got {stock}")


def _name(name: str) -> str:
    from loyalty_cli import values

    return values.checked(values.parse_text, name, "--name", 200)


def add(store, code: str, name: str, cost: int, stock: int | None) -> dict:
    code = _code(code)
    name = _name(name)
    _check_cost_stock(cost, stock)
    with store.write() as conn:
        stored = find_reward(conn, code)
        if stored is not None:
            raise LoyaltyError(f"reward {stored} already exists (change it with: loyalty rewards edit {stored} …)")
        conn.execute("INSERT INTO rewards (code, name, cost, stock) VALUES (?,?,?,?)", (code, name.strip(), cost, stock))
    return {"code": code, "name": name.strip(), "cost": cost, "stock": stock, "retired": False}


def listing(store, include_retired: bool = False, sort: str = "code") -> list[dict]:
    check_sort(sort, SORT_KEYS)
    where = "" if include_retired else " WHERE retired_at IS NULL"
    with store.read() as conn:
        return [{"code": r[0], "name": r[1], "cost": r[2], "stock": r[3], "retired": r[4] is not None}
                for r in conn.execute(f"SELECT code, name, cost, stock, retired_at FROM rewards{where} ORDER BY {SORT_KEYS[sort]}")]


def edit(store, code: str, name: str | None, cost: int | None, stock: int | None) -> dict:
    _check_cost_stock(cost, stock)
    if name is None and cost is None and stock is None:
        raise UsageError("nothing to change: give --name, --cost or --stock")
    if name is not None:
        name = _name(name)
    with store.write() as conn:
        code = find_reward(conn, code) or code
        if not conn.execute("SELECT 1 FROM rewards WHERE code = ?", (code,)).fetchone():
            raise NotFound(f"reward {code} not found")
        conn.execute("UPDATE rewards SET name = coalesce(?, name), cost = coalesce(?, cost), stock = coalesce(?, stock) "
                     "WHERE code = ?", (name, cost, stock, code))
        r = conn.execute("SELECT code, name, cost, stock, retired_at FROM rewards WHERE code = ?", (code,)).fetchone()
    return {"code": r[0], "name": r[1], "cost": r[2], "stock": r[3], "retired": r[4] is not None}


def retire(store, code: str, at: str) -> dict:
    with store.write() as conn:
        code = find_reward(conn, code) or code
        row = conn.execute("SELECT retired_at FROM rewards WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise NotFound(f"reward {code} not found")
        if row[0]:
            raise LoyaltyError(f"reward {code} is already retired")
        conn.execute("UPDATE rewards SET retired_at = ? WHERE code = ?", (at, code))
    return {"code": code, "retired_at": at}


VOUCHER_SORTS = {"issued": "issued_at, code", "code": "code", "member": "member_id, issued_at", "status": "status, issued_at"}


def vouchers(store, member_id: str | None = None, status: str | None = None, sort: str = "issued") -> list[dict]:
    check_sort(sort, VOUCHER_SORTS)
    where, params = [], []
    if member_id:
        where.append("member_id = ?")
        params.append(member_id)
    if status:
        if status not in ("issued", "used", "cancelled"):
            raise UsageError("--status must be issued, used or cancelled")
        where.append("status = ?")
        params.append(status)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with store.read() as conn:
        if member_id:
            from loyalty_cli.ids import resolve_member

            member_id = resolve_member(conn, member_id)
            params[0] = member_id
        if member_id and not conn.execute("SELECT 1 FROM members WHERE member_id = ?", (member_id,)).fetchone():
            raise NotFound.member(member_id)
        return [{"code": r[0], "member_id": r[1], "reward": r[2], "points": r[3], "status": r[4], "issued_at": r[5],
                 "closed_at": r[6]}
                for r in conn.execute("SELECT code, member_id, reward_code, points, status, issued_at, closed_at FROM vouchers"
                                      f"{clause} ORDER BY {VOUCHER_SORTS[sort]}", params)]


def voucher_code(conn, code: str) -> str:
    """The stored code a typed voucher code names: trimmed, NFC, and without regard to case (the
    tool makes them of capitals and digits, read aloud or copied by hand at the counter)."""
    from loyalty_cli import values

    code = values.id_lookup(code)
    if code.upper() != code and not conn.execute("SELECT 1 FROM vouchers WHERE code = ?", (code,)).fetchone():
        return code.upper()
    return code


def _voucher(conn, code: str):
    row = conn.execute("SELECT member_id, reward_code, points, redeem_entry, status, closed_at FROM vouchers WHERE code = ?",
                       (code,)).fetchone()
    if row is None:
        raise NotFound(f"voucher {code} not found")
    if row[4] != "issued":
        raise LoyaltyError(f"voucher {code} was already {row[4]} on {row[5][:10]}")
    return row


def _not_before_issue(conn, code: str, at: str) -> None:
    issued = conn.execute("SELECT issued_at FROM vouchers WHERE code = ?", (code,)).fetchone()[0]
    if at < issued:
        raise LoyaltyError(f"voucher {code} was issued at {issued}; it cannot be used or cancelled before that")


def use(store, code: str, at: str) -> dict:
    """Mark a voucher used: final."""
    with store.write() as conn:
        code = voucher_code(conn, code)
        member_id, reward, points, _, _, _ = _voucher(conn, code)
        _not_before_issue(conn, code, at)
        conn.execute("UPDATE vouchers SET status = 'used', closed_at = ? WHERE code = ?", (at, code))
    return {"code": code, "status": "used", "member_id": member_id, "reward": reward}


def cancel(store, code: str, at: str, by: str) -> dict:
    """Cancel an issued voucher: points go back with their expiry dates; lapsed ones are written off at once."""
    with store.write() as conn:
        code = voucher_code(conn, code)
        member_id, reward, points, redeem_entry, _, _ = _voucher(conn, code)
        _not_before_issue(conn, code, at)
        book = Book(conn)
        m = book.member(member_id)  # an erased member's voucher stays as it is: no points come back to them
        lots: dict = {}  # (E, the sale the points came from) -> points
        for expires_on, purchase_id, used in conn.execute(
                "SELECT l.expires_on, l.purchase_id, u.points FROM lot_uses u JOIN lots l ON l.id = u.lot_id "
                "WHERE u.entry_id = ? ORDER BY u.rowid", (redeem_entry,)):
            lots[(expires_on, purchase_id)] = lots.get((expires_on, purchase_id), 0) + used
        _, first_lot = book.credit_entries(m, at, [("voucher_cancel", points, code, f"voucher {code} cancelled")], by=by,
                                           lots=[(e, n, pid) for (e, pid), n in lots.items()] or None, origin="voucher")
        # Only the returned points that have lapsed: the member's other lapsed lots wait for the
        # expiry run or the next debit (a cancel is a credit).
        written_off = book.write_off_new_lapsed(m, at, first_lot)
        book.flush()
        conn.execute("UPDATE vouchers SET status = 'cancelled', closed_at = ? WHERE code = ?", (at, code))
        conn.execute("UPDATE rewards SET stock = stock + 1 WHERE code = ? AND stock IS NOT NULL", (reward,))
    return {"code": code, "status": "cancelled", "member_id": member_id, "points_returned": points,
            "points_expired": written_off, "balance": m.balance}
