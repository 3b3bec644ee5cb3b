"""Member rows: look-ups by id, key and email, enrolment, profile changes, the listing, erasure.

Every function takes the open transaction `tx` a `Store.write()` or `Store.read()` gave the
caller, and returns plain values (tuples, dicts, strings).
"""

from __future__ import annotations

from collections import namedtuple

from loyalty_cli.store.chain import CHAINED_MEMBER_FIELDS

# The profile columns a command may change (`members edit`, `members import`).
PROFILE_FIELDS = ("name", "email", "phone", "birthday", "joined_on", "referred_by")
_PROFILE_COLUMNS = frozenset(PROFILE_FIELDS)

# `members list --sort NAME` → its ORDER BY (allow-listed: the name never reaches the SQL itself).
LIST_ORDER = {
    "id": "member_id",
    "name": "name COLLATE NOCASE",
    "joined": "joined_on",
    "balance": "balance DESC",
    "tier": "tier",
}

Standing = namedtuple("Standing", "tier erased_at")
Profile = namedtuple("Profile", "member_id name email phone birthday joined_on referred_by tier tier_since "
                                "floor_tier floor_until erased_at")

INSERT = ("INSERT INTO members (member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, "
          "balance, member_key) VALUES (?,?,?,?,?,?,?,?,?,0,?)")


def exists(tx, member_id: str) -> bool:
    """Whether a member with exactly this stored id is enrolled (erased or not)."""
    return tx.execute("SELECT 1 FROM members WHERE member_id = ?", (member_id,)).fetchone() is not None


def standing(tx, member_id: str) -> Standing | None:
    """The member's tier and erasure time (None while not erased); None when no such member."""
    row = tx.execute("SELECT tier, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return Standing(*row) if row else None


def key_taken(tx, key: str) -> bool:
    """Whether a member already has this lookup key (values.member_key)."""
    return tx.execute("SELECT 1 FROM members WHERE member_key = ?", (key,)).fetchone() is not None


def ids_with_key(tx, key: str) -> list[str]:
    """The stored ids whose lookup key is `key`, in id order (two only in a database made before
    ids matched without regard to case)."""
    return [r[0] for r in tx.execute("SELECT member_id FROM members WHERE member_key = ? ORDER BY member_id", (key,))]


def ids_with_keys(tx, keys: list[str]) -> list[tuple[str, str]]:
    """(key, stored id) of every member whose key is among `keys` (at most 500 a call)."""
    return tx.execute(f"SELECT member_key, member_id FROM members WHERE member_key IN ({','.join('?' * len(keys))})",
                      keys).fetchall()


def holder_of_email(tx, email: str) -> str | None:
    """The member whose email this is, or None."""
    row = tx.execute("SELECT member_id FROM members WHERE email = ?", (email,)).fetchone()
    return row[0] if row else None


def match_for_import(tx, member_id: str | None, email: str | None) -> tuple[str, str | None] | None:
    """(member_id, erased_at) of the member an import row names: by id when it has one, else by email."""
    if member_id is not None:
        return tx.execute("SELECT member_id, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return tx.execute("SELECT member_id, erased_at FROM members WHERE email = ?", (email,)).fetchone()


def insert(tx, member_id: str, name, email, phone, birthday, joined_on: str, referred_by, tier: str, key: str) -> None:
    """A new member at `tier` since joining, balance 0."""
    tx.execute(INSERT, (member_id, name, email, phone, birthday, joined_on, referred_by, tier, joined_on, key))
    tx.journal.add("members", (member_id, joined_on, referred_by, tier, joined_on))


def profile_values(tx, member_id: str, fields) -> tuple:
    """The member's current values of some PROFILE_FIELDS (at least one), in the order given."""
    assert _PROFILE_COLUMNS.issuperset(fields)  # they name columns
    return tx.execute(f"SELECT {', '.join(fields)} FROM members WHERE member_id = ?", (member_id,)).fetchone()


def update(tx, member_id: str, changes: dict) -> None:
    """Set profile fields (keys among PROFILE_FIELDS only: they name columns)."""
    assert changes and _PROFILE_COLUMNS.issuperset(changes)  # they name columns
    sets = ", ".join(f"{k} = ?" for k in changes)
    tx.execute(f"UPDATE members SET {sets} WHERE member_id = ?", (*changes.values(), member_id))
    for field in CHAINED_MEMBER_FIELDS:  # rights, not personal data: chained
        if field in changes:
            tx.journal.add("member_edits", (member_id, field, changes[field]))


def profile(tx, member_id: str) -> Profile | None:
    """The member's row as `members show` needs it, or None."""
    row = tx.execute("SELECT member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, "
                     "floor_tier, floor_until, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return Profile(*row) if row else None


def tiers_held(tx) -> set[str]:
    """Every tier some member holds now."""
    return {name for (name,) in tx.execute("SELECT DISTINCT tier FROM members")}


def listing(tx, *, tier: str | None, search: str | None, order: str, limit: int | None,
            balances_after: str | None, merged: bool = False) -> tuple[list[tuple], int]:
    """`members list`: rows (member_id, name, email, phone, tier, balance, joined_on, erased, merged_into)
    of the members matching, in LIST_ORDER[order] then id order, at most `limit`; and how many match.
    Members merged into another (aliases, no longer members in their own right) only with `merged`.

    `balances_after`: a day whose later entries must not count in the balances (the caller holds
    temp.after_entries for it, ledger.entries_after); None: the balances as stored."""
    from loyalty_cli.store.ledger import BALANCES_SQL

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
    if not merged:
        where.append("merged_into IS NULL")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    if hasattr(tx, "create_function"):  # (PostgreSQL: lower(), store.postgres)
        tx.create_function("fold", 1, lambda text: text.casefold() if text else text, deterministic=True)
    total = tx.execute(f"SELECT count(*) FROM members{clause}", params).fetchone()[0]
    source = "members"
    if balances_after is not None:  # the reports' balances as of the day (ledger.BALANCES_SQL)
        source = ("(SELECT m.member_id, m.name, m.email, m.phone, m.tier, b.balance, m.joined_on, m.erased_at, "
                  "m.merged_into "
                  f"FROM main.members m JOIN (WITH {BALANCES_SQL} SELECT member_id, balance FROM balances) b "
                  "ON b.member_id = m.member_id) AS members")
    sql = (f"SELECT member_id, name, email, phone, tier, balance, joined_on, erased_at IS NOT NULL, merged_into "
           f"FROM {source}{clause} "
           f"ORDER BY {LIST_ORDER[order]}, member_id")
    if limit is not None:
        sql += " LIMIT ?"
        params = params + [limit]
    return tx.execute(sql, params).fetchall(), total


def erasure(tx, member_id: str) -> tuple[str | None, str | None] | None:
    """(erased_at, erased_by) of the member (both None while not erased), or None when no such member."""
    return tx.execute("SELECT erased_at, erased_by FROM members WHERE member_id = ?", (member_id,)).fetchone()


def erase(tx, member_id: str, at: str, by: str) -> None:
    """Blank the member's personal fields, mark them erased and record who erased them and when."""
    tx.execute("UPDATE members SET name = NULL, email = NULL, phone = NULL, birthday = NULL, erased_at = ?, erased_by = ? "
               "WHERE member_id = ?", (at, by, member_id))
    tx.execute("INSERT INTO erasures (member_id, at, by) VALUES (?, ?, ?)", (member_id, at, by))
    tx.journal.add("erasures", (member_id, at, by))
