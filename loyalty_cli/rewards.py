"""The reward catalogue and the voucher lifecycle: issued → used (final) or cancelled."""

from __future__ import annotations

from loyalty_cli.errors import LoyaltyError, NotFound, UsageError
from loyalty_cli.ids import existing_member
from loyalty_cli.ledger import MAX_POINTS, Book
from loyalty_cli.values import check_sort
from loyalty_cli.store import rewards as reward_rows
from loyalty_cli.i18n import M_, _

SORT_KEYS = tuple(reward_rows.REWARD_ORDER)  # `rewards list --sort`


def _code(code: str) -> str:
    """A new reward code: 1-40 characters without spaces, NFC, nothing invisible (values.parse_id)."""
    from loyalty_cli import values

    try:
        code = values.parse_id(code, _("a reward code"))
    except ValueError as exc:
        if "renders as nothing" in str(exc) or "combining mark" in str(exc):
            raise UsageError(str(exc)) from None
        code = ""
    if not code or len(code) > 40 or " " in code:
        raise UsageError(M_("a reward code must be 1-40 characters without spaces"))
    return code


def find_reward(tx, code: str) -> str | None:
    """The stored code of the reward a typed code names, or None. Reward codes are typed by people
    (COFFEE, coffee), so they match like member ids: trimmed, NFC, without regard to case. The
    catalogue is small: the codes are folded in Python (Unicode folding, not SQLite's ASCII NOCASE)."""
    from loyalty_cli import values

    code = values.id_lookup(code)
    if reward_rows.reward_exists(tx, code):
        return code
    key = values.member_key(code)
    return next((stored for stored in reward_rows.reward_codes(tx) if values.member_key(stored) == key), None)


def _check_cost_stock(cost: int | None, stock: int | None) -> None:
    if cost is not None and not 0 < cost <= MAX_POINTS:
        raise UsageError(M_("--cost must be above 0 and at most {max_points:,} points, got {cost}", max_points=MAX_POINTS, cost=cost))
    if stock is not None and not 0 <= stock <= MAX_POINTS:
        raise UsageError(M_("--stock must be 0 or more (at most {max_points:,}), got {stock}", max_points=MAX_POINTS, stock=stock))


def _name(name: str) -> str:
    from loyalty_cli import values

    return values.checked(values.parse_text, name, "--name", 200)


def _shown(r: reward_rows.Reward) -> dict:
    return {"code": r.code, "name": r.name, "cost": r.cost, "stock": r.stock, "retired": r.retired_at is not None}


def add(store, code: str, name: str, cost: int, stock: int | None) -> dict:
    """`rewards add`: a new reward in the catalogue (codes match without regard to case: no two alike)."""
    code = _code(code)
    name = _name(name)
    _check_cost_stock(cost, stock)
    with store.write() as tx:
        stored = find_reward(tx, code)
        if stored is not None:
            raise LoyaltyError(M_("reward {stored} already exists (change it with: loyalty rewards edit {stored} …)", stored=stored))
        reward_rows.insert_reward(tx, code, name.strip(), cost, stock)
    return {"code": code, "name": name.strip(), "cost": cost, "stock": stock, "retired": False}


def listing(store, include_retired: bool = False, sort: str = "code") -> list[dict]:
    """`rewards list`: the catalogue, sorted by one of SORT_KEYS."""
    check_sort(sort, SORT_KEYS)
    with store.read() as tx:
        return [_shown(r) for r in reward_rows.rewards(tx, include_retired, sort)]


def edit(store, code: str, name: str | None, cost: int | None, stock: int | None) -> dict:
    """`rewards edit`: change a reward's name, cost or stock (None: left as it is)."""
    _check_cost_stock(cost, stock)
    if name is None and cost is None and stock is None:
        raise UsageError(M_("nothing to change: give --name, --cost or --stock"))
    if name is not None:
        name = _name(name)
    with store.write() as tx:
        code = find_reward(tx, code) or code
        if not reward_rows.reward_exists(tx, code):
            raise NotFound(M_("reward {code} not found", code=code))
        reward_rows.update_reward(tx, code, name, cost, stock)
        return _shown(reward_rows.reward(tx, code))


def retire(store, code: str, at: str) -> dict:
    """`rewards retire`: no new vouchers for the reward from `at`; issued ones stay usable."""
    with store.write() as tx:
        code = find_reward(tx, code) or code
        found = reward_rows.reward(tx, code)
        if found is None:
            raise NotFound(M_("reward {code} not found", code=code))
        if found.retired_at:
            raise LoyaltyError(M_("reward {code} is already retired", code=code))
        reward_rows.retire_reward(tx, code, at)
    return {"code": code, "retired_at": at}


VOUCHER_SORTS = tuple(reward_rows.VOUCHER_ORDER)  # `rewards vouchers --sort`


def vouchers(store, member_id: str | None = None, status: str | None = None, sort: str = "issued") -> list[dict]:
    """`rewards vouchers`: the vouchers, of one member and in one status when given, sorted by one of VOUCHER_SORTS."""
    check_sort(sort, VOUCHER_SORTS)
    if status and status not in ("issued", "used", "cancelled"):
        raise UsageError(M_("--status must be issued, used or cancelled"))
    with store.read() as tx:
        if member_id:
            member_id = existing_member(tx, member_id)
        return [{"code": r[0], "member_id": r[1], "reward": r[2], "points": r[3], "status": r[4], "issued_at": r[5],
                 "closed_at": r[6]}
                for r in reward_rows.vouchers(tx, member_id, status, sort)]


def voucher_code(tx, code: str) -> str:
    """The stored code a typed voucher code names: trimmed, NFC, and without regard to case (the
    tool makes them of capitals and digits, read aloud or copied by hand at the counter)."""
    from loyalty_cli import values

    code = values.id_lookup(code)
    if code.upper() != code and not reward_rows.voucher_exists(tx, code):
        return code.upper()
    return code


def _open_voucher(tx, code: str, at: str) -> reward_rows.Voucher:
    """The issued voucher with this code, which may be closed at `at`."""
    v = reward_rows.voucher(tx, code)
    if v is None:
        raise NotFound(M_("voucher {code} not found", code=code))
    if v.status != "issued":
        raise LoyaltyError(M_("voucher {code} was already {status} on {closed_at}", code=code, status=v.status, closed_at=v.closed_at[:10]))
    if at < v.issued_at:
        raise LoyaltyError(M_("voucher {code} was issued at {issued_at}; it cannot be used or cancelled before that", code=code, issued_at=v.issued_at))
    return v


def use(store, code: str, at: str) -> dict:
    """Mark a voucher used: final."""
    with store.write() as tx:
        code = voucher_code(tx, code)
        v = _open_voucher(tx, code, at)
        reward_rows.close_voucher(tx, code, "used", at)
    return {"code": code, "status": "used", "member_id": v.member_id, "reward": v.reward_code}


def cancel(store, code: str, at: str, by: str) -> dict:
    """Cancel an issued voucher: points go back with their expiry dates; lapsed ones are written off at once."""
    with store.write() as tx:
        code = voucher_code(tx, code)
        v = _open_voucher(tx, code, at)
        from loyalty_cli import households

        if households.is_pooled(tx, v.redeem_entry):  # a household's points: each member gets theirs back
            return households.cancel_pooled(tx, code, v, at, by)
        member_id, reward, points = v.member_id, v.reward_code, v.points
        book = Book(tx)
        m = book.member(member_id)  # an erased member's voucher stays as it is: no points come back to them
        lots: dict = {}  # (E, the sale the points came from) -> points
        for expires_on, purchase_id, used in reward_rows.redeemed_lots(tx, v.redeem_entry):
            lots[(expires_on, purchase_id)] = lots.get((expires_on, purchase_id), 0) + used
        __, first_lot = book.credit_entries(m, at, [("voucher_cancel", points, code, f"voucher {code} cancelled")], by=by,
                                           lots=[(e, n, pid) for (e, pid), n in lots.items()] or None, origin="voucher")
        # Only the returned points that have lapsed: the member's other lapsed lots wait for the
        # expiry run or the next debit (a cancel is a credit).
        written_off = book.write_off_new_lapsed(m, at, first_lot)
        book.flush()
        reward_rows.close_voucher(tx, code, "cancelled", at)
        reward_rows.restock(tx, reward)
    return {"code": code, "status": "cancelled", "member_id": member_id, "points_returned": points,
            "points_expired": written_off, "balance": m.balance}
