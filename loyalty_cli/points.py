"""Counter operations on points: balance, statement, award, adjust, redeem, transfer, expire.

Each operation is one write transaction through a `Book`; a refusal (not enough
points, transfer limit…) raises before commit, so nothing is written.
"""

from __future__ import annotations

from loyalty_cli.errors import LoyaltyError, NotFound, UsageError
from loyalty_cli.ids import existing_member, resolve_member
from loyalty_cli.ledger import MAX_POINTS, Book
from loyalty_cli.program import load_programme
from loyalty_cli.store import ledger as ledger_rows
from loyalty_cli.values import check_sort
from loyalty_cli.i18n import M_, _


def _reason(reason: str) -> str:
    from loyalty_cli import values

    return values.checked(values.parse_text, reason or "", "--reason", 500, message=(
        _("--reason must be 1-500 characters of text (no personal data: it is kept in the ledger forever)")))


def _positive(points: int, what: str = "points") -> int:
    if points <= 0:
        raise UsageError(M_("{what} must be a whole number above 0, got {points}", what=what, points=points))
    if points > MAX_POINTS:
        raise UsageError(M_("{what} must be at most {max_points:,}, got {points:,} (a typo?)", what=what, max_points=MAX_POINTS, points=points))
    return points


def balance(store, member_id: str, as_of: str | None = None) -> dict:
    """`points balance`: balance and unconsumed points per expiry date (as of a date), and of them the
    points not yet spendable on that date (earn.pending_days: [] without a date)."""
    with store.read() as conn:
        member_id = existing_member(conn, member_id)
        total, expiring = ledger_rows.balance_as_of(conn, member_id, as_of)
        held_back = as_of and load_programme(conn).holds_points_back
        pending = ledger_rows.pending_as_of(conn, member_id, as_of) if held_back else []
        from loyalty_cli.households import summary

        household = summary(conn, member_id, as_of or "9999-12-31")  # the pool of the member's household
    out = {"member_id": member_id, "balance": total, "expiring": expiring, "pending": pending}
    if household is not None:  # only for a household's member: SPEC §11's document stays as it is for others
        out["household"] = household
    return out


HISTORY_SORTS = ("id", "at", "kind", "points")


def history(store, member_id: str, limit: int | None = None, sort: str = "id") -> list[dict]:
    """`points history`: every entry of the member, with the running balance after it and, for a
    sale's points held back by earn.pending_days, the day they became spendable (`available_on`,
    None for points spendable at once); `limit` keeps the last entries recorded, `sort` orders what is shown (ties in recorded order)."""
    check_sort(sort, HISTORY_SORTS)
    with store.read() as conn:
        member_id = existing_member(conn, member_id)
        rows = ledger_rows.entries_of(conn, member_id, load_programme(conn).holds_points_back)
        marks = experiment_marks(conn, member_id)
    out = [{"id": r[0], "at": r[1], "kind": r[2], "points": r[3], "balance_after": r[4], "ref": r[5], "note": r[6], "by": r[7],
            "available_on": r[8], "experiment": marks.get(r[0])} for r in rows]
    out = out[-limit:] if limit else out
    return out if sort == "id" else sorted(out, key=lambda entry: (entry[sort], entry["id"]))


def experiment_marks(conn, member_id: str) -> dict[int, str]:
    """{entry id: experiment} of the member's entries earned under an experiment's variant (issue 19)."""
    from loyalty_cli.store import experiments as experiment_rows

    return experiment_rows.marks_of_member(conn, member_id)


def award(store, member_id: str, points: int, at: str, reason: str, by: str) -> dict:
    """A manual credit."""
    _positive(points)
    reason = _reason(reason)
    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        book = Book(conn)
        m = book.member(member_id)
        eid = book.credit(m, at, "award", points, note=reason, by=by)
        book.flush()
        return {"member_id": member_id, "points": points, "balance": m.balance, "entry": eid}


def adjust(store, member_id: str, points: int, at: str, reason: str, by: str) -> dict:
    """A manual correction, up or down; never below zero."""
    if points == 0:
        raise UsageError(M_("an adjustment of 0 points changes nothing; give e.g. 20 or -20"))
    _positive(abs(points))
    reason = _reason(reason)
    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        book = Book(conn)
        m = book.member(member_id)
        if points > 0:
            eid = book.credit(m, at, "adjust", points, note=reason, by=by)
        else:
            eid, __ = book.debit(m, at, "adjust", -points, note=reason, by=by)
        book.flush()
        return {"member_id": member_id, "points": points, "balance": m.balance, "entry": eid}


def new_voucher_code(conn) -> str:
    """A new voucher code, not yet taken."""
    import secrets

    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        code = "V" + "".join(secrets.choice(alphabet) for __ in range(8))
        if not ledger_rows.voucher_code_taken(conn, code):
            return code


def spend_terms(conn, points: int | None, reward: str | None) -> tuple[str | None, int, str | None, int | None]:
    """What a redemption spends: (reward code as stored or None, points, the entry's note, the reward's
    stock or None), refused when the reward is unknown, retired or out of stock, or POINTS is not its
    cost (one set of rules for a member's own redemption and a household's pooled one)."""
    if reward is None:
        return None, _positive(points), None, None
    from loyalty_cli.rewards import find_reward

    reward = find_reward(conn, reward) or reward
    row = ledger_rows.reward_terms(conn, reward)
    if row is None:
        raise NotFound(M_("reward {reward} not found (see: loyalty rewards list)", reward=reward))
    name, cost, stock, retired = row
    if retired:
        raise LoyaltyError(M_("reward {reward} was retired on {retired}", reward=reward, retired=retired[:10]))
    if stock is not None and stock <= 0:
        raise LoyaltyError(M_("reward {reward} is out of stock", reward=reward))
    if points is not None and points != cost:
        from loyalty_cli.render import plural  # the count and its noun, in the reader's language

        raise UsageError(M_("reward {reward} costs {points}; leave out POINTS or give {cost}", reward=reward,
                            points=plural(cost, "point"), cost=cost))
    return reward, cost, f"reward {reward}", stock


def redeem(store, member_id: str, points: int | None, reward: str | None, at: str, by: str) -> dict:
    """Spend points, or exchange them for a reward's voucher. Refused (never clamped) when short."""
    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        book = Book(conn)
        m = book.member(member_id)
        code = None
        reward, points, note, stock = spend_terms(conn, points, reward)
        eid, __ = book.debit(m, at, "redeem", points, ref=None, note=note, by=by)
        if reward is not None:
            code = new_voucher_code(conn)
            book.flush()
            ledger_rows.issue_voucher(conn, code, member_id, reward, points, eid, at, counted=stock is not None)
        book.flush()
        return {"member_id": member_id, "points": points, "balance": m.balance, "voucher": code}


def transfer(store, sender: str, receiver: str, points: int, at: str, by: str) -> dict:
    """Gift points: the receiver's lots keep the expiry dates of the sender's lots they came from."""
    _positive(points)
    with store.write() as conn:
        sender, receiver = resolve_member(conn, sender), resolve_member(conn, receiver)
        if sender == receiver:
            raise LoyaltyError(M_("a member cannot transfer points to themself"))
        book = Book(conn)
        rules = book.rules_for(at)
        if not rules.transfers_enabled:
            raise LoyaltyError(M_("transfers are disabled by the programme (transfers.enabled = false)"))
        src = book.member(sender)
        dst = book.member(receiver)
        month = at[:7]
        sent = ledger_rows.points_sent(conn, sender, month)
        limit = rules.max_transfer_per_month
        if sent + points > limit:
            from loyalty_cli.render import plural  # the count and its noun, in the reader's language

            raise LoyaltyError(M_("member {sender} may transfer at most {limit} in {month} ({sent:,} already sent this month)", sender=sender, limit=plural(limit, "point"), month=month, sent=sent))
        __, taken = book.debit(src, at, "transfer_out", points, ref=receiver, by=by)
        lots: dict = {}
        for _lot, expires_on, take in taken:
            lots[expires_on] = lots.get(expires_on, 0) + take
        book.credit(dst, at, "transfer_in", points, ref=sender, by=by, lots=list(lots.items()))
        book.flush()
        return {"from": sender, "to": receiver, "points": points, "from_balance": src.balance, "to_balance": dst.balance}


def expire(store, as_of: str) -> dict:
    """The nightly write-off of lapsed lots (E before the date): one entry per member; idempotent."""
    with store.job_lock("expire"):
        with store.write() as conn:
            book = Book(conn)
            members, points = book.expire_all(as_of)
            book.flush()
    return {"members": members, "points": points, "as_of": as_of}
