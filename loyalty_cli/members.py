"""Members: enrol, edit, look up, list, upsert from import rows, erase personal data."""

from __future__ import annotations

import secrets
from contextlib import ExitStack

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, NotFound, UsageError
from loyalty_cli.ids import resolve_member
from loyalty_cli.ledger import BALANCES_SQL, Book, MemberState, balance_as_of, dated_after, entries_after

PROFILE_FIELDS = ("name", "email", "phone", "birthday", "joined_on", "referred_by")
SORT_KEYS = {
    "id": "member_id",
    "name": "name COLLATE NOCASE",
    "joined": "joined_on",
    "balance": "balance DESC",
    "tier": "tier",
}


def _generate_id(conn) -> str:
    while True:
        mid = f"L{secrets.randbelow(10**8):08d}"
        if not conn.execute("SELECT 1 FROM members WHERE member_key = ?", (values.member_key(mid),)).fetchone():
            return mid


def check_email_free(conn, email: str | None, member_id: str | None) -> None:
    if email is None:
        return
    row = conn.execute("SELECT member_id FROM members WHERE email = ?", (email,)).fetchone()
    if row and row[0] != member_id:
        raise LoyaltyError(f"that email already belongs to member {row[0]}")


def check_referrer(conn, referrer: str) -> None:
    """A referrer must be enrolled and not erased (an erased member takes no new activity)."""
    row = conn.execute("SELECT erased_at FROM members WHERE member_id = ?", (referrer,)).fetchone()
    if row is None:
        raise NotFound(f"member {referrer} (the referrer) not found")
    if row[0]:
        raise LoyaltyError(f"member {referrer} (the referrer) was erased; erased members take no new activity")


def enrol(book: Book, *, member_id: str | None, name: str | None, email: str | None = None, phone: str | None = None,
          birthday: str | None = None, joined_on: str, referred_by: str | None = None) -> MemberState:
    """Insert a member (tier: the lowest level) and write the signup bonus dated `joined_on`."""
    conn = book.conn
    if member_id is None:
        member_id = _generate_id(conn)
    else:
        existing = resolve_member(conn, member_id)  # SPEC §4: `m0042` is `M0042`, never a second member
        if existing in book.members or conn.execute("SELECT 1 FROM members WHERE member_id = ?", (existing,)).fetchone():
            same = "" if existing == member_id else f" (ids match without regard to case: {member_id} is {existing})"
            raise LoyaltyError(f"member {existing} already exists{same} (change it with: loyalty members edit {existing} …)")
    if referred_by is not None:
        referred_by = resolve_member(conn, referred_by, "--referred-by")
        if referred_by == member_id:
            raise LoyaltyError(f"member {member_id} cannot refer themself")
        check_referrer(conn, referred_by)
    check_email_free(conn, email, member_id)
    rules = book.rules_for(joined_on)
    tier = rules.levels[0].name
    conn.execute(
        "INSERT INTO members (member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, balance, "
        "member_key) VALUES (?,?,?,?,?,?,?,?,?,0,?)",
        (member_id, name, email, phone, birthday, joined_on, referred_by, tier, joined_on, values.member_key(member_id)))
    m = MemberState(member_id, birthday[5:7] if birthday else None, referred_by, tier, joined_on, None, None, 0, None, False)
    book.add_member_state(m)
    if rules.signup_bonus:
        book.credit(m, joined_on + "T00:00:00", "signup", rules.signup_bonus, note="signup bonus")
    return m


def add(store, **fields) -> dict:
    """`members add`: enrol one member; returns the profile."""
    with store.write() as conn:
        book = Book(conn)
        m = enrol(book, **fields)
        book.flush()
        return {"member_id": m.member_id, "balance": m.balance, "tier": m.tier}


def edit(store, member_id: str, changes: dict) -> dict:
    """`members edit`: change profile fields (None values are left as they are)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        row = conn.execute("SELECT erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
        if row is None:
            raise NotFound.member(member_id)
        if row[0]:
            raise LoyaltyError(f"member {member_id} was erased; erased members cannot be edited")
        if not changes:
            raise UsageError("nothing to change: give at least one of --name, --email, --phone, --birthday, --joined, --referred-by")
        if "referred_by" in changes:
            changes["referred_by"] = resolve_member(conn, changes["referred_by"], "--referred-by")
            if changes["referred_by"] == member_id:
                raise LoyaltyError(f"member {member_id} cannot refer themself")
            check_referrer(conn, changes["referred_by"])
        check_email_free(conn, changes.get("email"), member_id)
        sets = ", ".join(f"{k} = ?" for k in changes)  # keys come from PROFILE_FIELDS only
        assert set(changes) <= set(PROFILE_FIELDS)
        conn.execute(f"UPDATE members SET {sets} WHERE member_id = ?", (*changes.values(), member_id))
    return profile(store, member_id)


def profile(store, member_id: str, as_of: str | None = None) -> dict:
    """`members show`: profile, tier held on the date, balance, expiring points, progress to the next tier."""
    from loyalty_cli import tiers as tiers_mod

    with store.read() as conn:
        member_id = resolve_member(conn, member_id)
        row = conn.execute(
            "SELECT member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, floor_tier, "
            "floor_until, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
        if row is None:
            raise NotFound.member(member_id)
        book = Book(conn)
        date = as_of or _today()
        rules = book.rules_for(date)  # the version in force that day (a later one may be loaded ahead)
        tier, since = (row[7], row[8]) if as_of is None else tier_on(conn, member_id, as_of, (row[7], row[8]), row[5])
        m = book.member(member_id, active=False)
        value = tiers_mod.qualifying_value(book, m, rules, date)
        spend = value if rules.tier_basis == "spend" else tiers_mod.qualifying_value(book, m, rules, date, "spend")
        balance, expiring = balance_as_of(conn, member_id, date)  # as of today by default, like every report
        rank = rules.rank(tier)
        nxt = rules.levels[rank + 1] if 0 <= rank + 1 < len(rules.levels) else None
        if rank < 0:
            nxt = next((lvl for lvl in rules.levels if lvl.min > value), None)
        return {
            "member_id": row[0], "name": row[1], "email": row[2], "phone": row[3], "birthday": row[4],
            "joined_on": row[5], "referred_by": row[6], "tier": tier, "tier_since": since,
            "floor_tier": row[9], "floor_until": row[10], "erased": row[11] is not None,
            "balance": balance, "expiring": expiring,
            "spend_in_window": spend,
            "points_in_window": value if rules.tier_basis == "points" else None,
            "basis": rules.tier_basis,
            "next_tier": nxt.name if nxt else None,
            "to_next_tier": max(nxt.min - value, 0) if nxt else None,
            "currency_decimals": rules.currency_decimals,
        }


def tier_on(conn, member_id: str, date: str, current: tuple[str, str], joined_on: str) -> tuple[str, str]:
    """(tier, since): the tier a member held at the end of a date and the day they got it, from the
    recorded changes (`current`: the tier and since-date held now; before any change: since joining).

    The last change *recorded* among those dated up to the date: a backdated `tiers set` recorded
    after an upgrade is what the member holds, as `members.tier` says (SPEC §3: the ledger's order
    is the order things are recorded; dates say which of them count as of a day)."""
    row = conn.execute("SELECT to_tier, at FROM tier_changes WHERE member_id = ? AND at <= ? ORDER BY id DESC "
                       "LIMIT 1", (member_id, values.end_of_day(date))).fetchone()
    if row:
        return row[0], row[1][:10]
    first = conn.execute("SELECT from_tier FROM tier_changes WHERE member_id = ? ORDER BY id LIMIT 1", (member_id,)).fetchone()
    return (first[0], joined_on) if first and first[0] else current


def _today() -> str:
    import datetime as dt

    return dt.date.today().isoformat()


def listing(store, *, tier: str | None = None, search: str | None = None, sort: str = "id",
            limit: int | None = None, as_of: str | None = None) -> tuple[list[dict], int]:
    """`members list`: matching members (all SQL parameterised; sort keys allow-listed); also the total.

    Balances are as of the end of `as_of` (None: after every entry), as the dashboard and
    `report liability` count them: entries dated after it (--allow-future) do not count yet."""
    values.check_sort(sort, SORT_KEYS)
    where, params = [], []
    if tier:
        where.append("tier = ? COLLATE NOCASE")
        params.append(tier)
    if search:
        # Case folded in Python on both sides: SQLite's LIKE ignores the case of ASCII letters only
        # (a search for "öztürk" must find "Öztürk").
        folded = search.casefold()
        like = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(fold(member_id) LIKE ? ESCAPE '\\' OR fold(name) LIKE ? ESCAPE '\\' OR fold(email) LIKE ? ESCAPE '\\' "
                     "OR phone LIKE ? ESCAPE '\\')")
        params += [like] * 4
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with store.read() as conn, ExitStack() as stack:
        if tier:
            known = {name.casefold() for (name,) in conn.execute("SELECT DISTINCT tier FROM members")}
            programme = Book(conn).programme
            for rules in [programme.default] + [r for _, r in programme.versions]:
                known |= {lvl.name.casefold() for lvl in rules.levels}
            if tier.casefold() not in known:
                raise UsageError(f"--tier {tier!r} is not a tier (the tiers: loyalty tiers list)")
        conn.create_function("fold", 1, lambda text: text.casefold() if text else text, deterministic=True)
        total = conn.execute(f"SELECT count(*) FROM members{clause}", params).fetchone()[0]
        source = "members"
        if as_of is not None and dated_after(conn, as_of):  # the reports' balances as of D (ledger.BALANCES_SQL)
            stack.enter_context(entries_after(conn, as_of))
            source = ("(SELECT m.member_id, m.name, m.email, m.phone, m.tier, b.balance, m.joined_on, m.erased_at "
                      f"FROM main.members m JOIN (WITH {BALANCES_SQL} SELECT member_id, balance FROM balances) b "
                      "ON b.member_id = m.member_id) AS members")
        sql = (f"SELECT member_id, name, email, phone, tier, balance, joined_on, erased_at IS NOT NULL FROM {source}{clause} "
               f"ORDER BY {SORT_KEYS[sort]}, member_id")
        if limit is not None:
            sql += " LIMIT ?"
            params = params + [limit]
        rows = [
            {"member_id": r[0], "name": r[1], "email": r[2], "phone": r[3], "tier": r[4], "balance": r[5],
             "joined_on": r[6], "erased": bool(r[7])}
            for r in conn.execute(sql, params)
        ]
    return rows, total


def erase(store, member_id: str, at: str, by: str) -> dict:
    """Remove name, email, phone and birthday; keep the id and ledger; record who and when.

    Erasing twice is harmless: the second run only retries the WAL checkpoint that
    makes the old values unreadable in the files (exit 75 if it still cannot).
    """
    from loyalty_cli.errors import Busy

    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        row = conn.execute("SELECT erased_at, erased_by FROM members WHERE member_id = ?", (member_id,)).fetchone()
        if row is None:
            raise NotFound.member(member_id)
        if row[0]:
            at, by = row
        else:
            _erase_row(conn, member_id, at, by)
    if not store.checkpoint():
        raise Busy(f"member {member_id} is erased, but another process kept the old data in the write-ahead log; "
                   "run 'loyalty members erase' again when it has finished")
    return {"member_id": member_id, "erased_at": at, "erased_by": by}


def _erase_row(conn, member_id: str, at: str, by: str) -> None:
    conn.execute("UPDATE members SET name = NULL, email = NULL, phone = NULL, birthday = NULL, erased_at = ?, erased_by = ? "
                 "WHERE member_id = ?", (at, by, member_id))
    conn.execute("UPDATE feedback SET comment = NULL WHERE member_id = ?", (member_id,))
    conn.execute("INSERT INTO erasures (member_id, at, by) VALUES (?, ?, ?)", (member_id, at, by))
