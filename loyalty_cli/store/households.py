"""Household rows (migration m012_households): households, memberships with their dates, the
chain records that make them, and the queries behind pooled redemptions and their check.

Times are stored datetimes (`YYYY-MM-DDTHH:MM:SS`). A member is in a household at a moment T when
a membership row of theirs has joined_at <= T and left_at NULL or after T: a member removed at T
is no longer in it at T.

Chain records (store.chain), one list per kind:
    households          (name, head, created_at)       a household created (its id: its position)
    household_members   (household, member_id, joined_at)   a membership begun (id: its position)
    household_leaves    (household, member_id, left_at)     the member's open membership of it ended
    household_heads     (household, member_id, at)      the head changed
"""

from __future__ import annotations

from loyalty_cli.store import in_parts

KINDS = ("households", "household_members", "household_leaves", "household_heads")
# Pooled redemptions' entries: kind 'redeem', ref `household:NAME:FIRST_ENTRY` (names hold no ':').
REF_PREFIX = "household:"


def pooled_ref(name: str, first_entry: int) -> str:
    """The reference every entry of one pooled redemption shares."""
    return f"{REF_PREFIX}{name}:{first_entry}"


def _ref_range(name: str) -> tuple[str, str]:
    """The refs of `name`'s pooled redemptions lie in [low, high) (';' follows ':'): a range, not a
    LIKE pattern, so a name's '_' is not a wildcard; byte order on both backends (COLLATE "C")."""
    return f"{REF_PREFIX}{name}:", f"{REF_PREFIX}{name};"


def find(tx, name_key: str):
    """(id, name, head, created_at) of the household with this folded name, or None."""
    return tx.execute("SELECT id, name, head, created_at FROM households WHERE name_key = ?", (name_key,)).fetchone()


def create(tx, name: str, name_key: str, head: str, at: str) -> int:
    """A new household headed by `head` (whose membership the caller adds); returns its id."""
    tx.execute("INSERT INTO households (name, name_key, head, created_at) VALUES (?, ?, ?, ?)",
               (name, name_key, head, at))
    tx.journal.add("households", (name, head, at))
    return tx.execute("SELECT id FROM households WHERE name_key = ?", (name_key,)).fetchone()[0]


def join(tx, household_id: int, name: str, member_id: str, at: str) -> None:
    """`member_id` joins the household at `at`."""
    tx.execute("INSERT INTO household_members (household_id, member_id, joined_at) VALUES (?, ?, ?)",
               (household_id, member_id, at))
    tx.journal.add("household_members", (name, member_id, at))


def leave(tx, household_id: int, name: str, member_id: str, at: str) -> None:
    """The member's open membership of the household ends at `at`."""
    tx.execute("UPDATE household_members SET left_at = ? WHERE household_id = ? AND member_id = ? AND left_at IS NULL",
               (at, household_id, member_id))
    tx.journal.add("household_leaves", (name, member_id, at))


def set_head(tx, household_id: int, name: str, member_id: str, at: str) -> None:
    tx.execute("UPDATE households SET head = ? WHERE id = ?", (member_id, household_id))
    tx.journal.add("household_heads", (name, member_id, at))


def current_of(tx, member_id: str):
    """(household id, name, joined_at) of the member's open membership, or None."""
    return tx.execute("SELECT h.id, h.name, m.joined_at FROM household_members m JOIN households h "
                      "ON h.id = m.household_id WHERE m.member_id = ? AND m.left_at IS NULL", (member_id,)).fetchone()


def last_left(tx, member_id: str):
    """(left_at, household name) of the member's latest ended membership, or None."""
    return tx.execute("SELECT m.left_at, h.name FROM household_members m JOIN households h ON h.id = m.household_id "
                      "WHERE m.member_id = ? AND m.left_at IS NOT NULL ORDER BY m.left_at DESC LIMIT 1",
                      (member_id,)).fetchone()


def household_at(tx, member_id: str, at: str):
    """(household id, name) the member was in at the moment `at`, or None."""
    return tx.execute("SELECT h.id, h.name FROM household_members m JOIN households h ON h.id = m.household_id "
                      "WHERE m.member_id = ? AND m.joined_at <= ? AND (m.left_at IS NULL OR m.left_at > ?)",
                      (member_id, at, at)).fetchone()


def members_at(tx, household_id: int, at: str) -> list[str]:
    """The ids of the household's members at the moment `at`, in id order."""
    return [mid for (mid,) in tx.execute(
        "SELECT member_id FROM household_members WHERE household_id = ? AND joined_at <= ? "
        "AND (left_at IS NULL OR left_at > ?) ORDER BY member_id", (household_id, at, at))]


def memberships(tx, household_id: int) -> list[tuple]:
    """(member_id, joined_at, left_at) of every membership of the household, as recorded."""
    return tx.execute("SELECT member_id, joined_at, left_at FROM household_members WHERE household_id = ? "
                      "ORDER BY id", (household_id,)).fetchall()


def all_memberships(tx) -> list[tuple]:
    """(household id, name, member_id, joined_at, left_at) of every membership (a book's index)."""
    return tx.execute("SELECT m.household_id, h.name, m.member_id, m.joined_at, m.left_at FROM household_members m "
                      "JOIN households h ON h.id = m.household_id ORDER BY m.id").fetchall()


def listing(tx) -> list[tuple]:
    """(id, name, head, created_at, current members, last left_at) of every household, by name."""
    return tx.execute(
        """SELECT h.id, h.name, h.head, h.created_at,
                  (SELECT count(*) FROM household_members m WHERE m.household_id = h.id AND m.left_at IS NULL),
                  (SELECT max(m.left_at) FROM household_members m WHERE m.household_id = h.id)
           FROM households h ORDER BY h.name""").fetchall()


def last_pooled_use(tx, member_id: str, name: str) -> str | None:
    """When the household's latest pooled redemption took points of the member's, or None."""
    low, high = _ref_range(name)
    return tx.execute("SELECT max(at) FROM ledger WHERE kind = 'redeem' AND ref IS NOT NULL AND ref >= ? AND ref < ? "
                      "AND member_id = ?", (low, high, member_id)).fetchone()[0]


def ref_of(tx, entry_id: int) -> str | None:
    """The ref of a ledger entry (a voucher's redeem entry: pooled when it starts with REF_PREFIX)."""
    row = tx.execute("SELECT ref FROM ledger WHERE id = ?", (entry_id,)).fetchone()
    return row[0] if row else None


def entries_with_ref(tx, ref: str) -> list[tuple]:
    """(entry id, member_id, points) of the redeem entries sharing `ref`, in recorded order."""
    return tx.execute("SELECT id, member_id, points FROM ledger WHERE kind = 'redeem' AND ref IS NOT NULL AND ref = ? "
                      "ORDER BY id", (ref,)).fetchall()


def member_facts(tx, ids: list[str]) -> dict[str, tuple]:
    """{member: (joined_on, tier, tier_since, floor_tier, floor_until, erased_at, erased)} of the members."""
    out = {}
    for part, marks in in_parts(ids):
        for mid, *facts in tx.execute(
                "SELECT member_id, joined_on, tier, tier_since, floor_tier, floor_until, erased_at FROM members "
                f"WHERE member_id IN ({marks})", part):
            out[mid] = (*facts, facts[-1] is not None)
    return out


def qualifying_values(tx, basis: str, first: str | None, last_end: str, ids: list[str]) -> dict[str, int]:
    """{member: spend (or points earned, basis "points") in the window [first, last_end]} of the members
    with purchases in it: sales minus refunds, each on its own date (store.tiers.candidates' sum)."""
    from loyalty_cli.store.tiers import _column

    column = _column(basis)
    out = {}
    for part, marks in in_parts(ids):
        out.update(tx.execute(
            f"SELECT member_id, sum(CASE kind WHEN 'sale' THEN {column} ELSE -{column} END) FROM purchases "
            f"WHERE member_id IN ({marks}) AND purchased_at <= ?"
            f"{' AND purchased_at >= ?' if first else ''} GROUP BY member_id",
            [*part, last_end, *([first] if first else [])]).fetchall())
    return out


# -- db check --------------------------------------------------------------------------------------
def pooled_entries(tx) -> list[tuple]:
    """(entry id, member_id, at, ref) of every pooled redemption's entry, by id (through ledger_pooled)."""
    return tx.execute(f"SELECT id, member_id, at, ref FROM ledger WHERE kind = 'redeem' AND ref IS NOT NULL "
                      f"AND ref >= '{REF_PREFIX}' AND ref < 'household;' ORDER BY id").fetchall()


def lots_used_by(tx, entry_ids: list[int]) -> list[tuple]:
    """(entry id, lot id, the lot's member, points) of the lot uses of these entries. lot_uses has no
    index by entry (it would cost every import): this reads the table once, and only a shop whose
    households have redeemed asks."""
    out = []
    for part, marks in in_parts(entry_ids):
        out += tx.execute(f"SELECT u.entry_id, u.lot_id, l.member_id, u.points FROM lot_uses u JOIN lots l "
                          f"ON l.id = u.lot_id WHERE u.entry_id IN ({marks}) "
                          "ORDER BY u.entry_id, u.lot_id", part).fetchall()
    return out


def household_rows(tx) -> list[tuple]:
    """(id, name, name_key, head, created_at) of every household, by id."""
    return tx.execute("SELECT id, name, name_key, head, created_at FROM households ORDER BY id").fetchall()


def membership_rows(tx) -> list[tuple]:
    """(id, household_id, member_id, joined_at, left_at) of every membership, by id."""
    return tx.execute("SELECT id, household_id, member_id, joined_at, left_at FROM household_members "
                      "ORDER BY id").fetchall()


def has_tables(tx) -> bool:
    """Whether the database has the households tables (a backup made before m012 has not)."""
    from loyalty_cli.store.checks import table_names

    return "households" in table_names(tx)


def chain_records(tx):
    """(block id, body as stored) of every chain block holding household records, in order."""
    from loyalty_cli.store import stream

    return stream(tx, "SELECT id, body FROM chain WHERE kinds LIKE ? ORDER BY id", ("%,household%",))


# -- members merge (loyalty_cli.households.follow_merge) -------------------------------------------
def memberships_of(tx, member_id: str) -> list[tuple]:
    """(household name, joined_at, left_at, the household's head now) of every membership of the
    member, in the order they began (`members export`)."""
    return tx.execute("SELECT h.name, m.joined_at, m.left_at, h.head FROM household_members m JOIN households h "
                      "ON h.id = m.household_id WHERE m.member_id = ? ORDER BY m.joined_at, m.id",
                      (member_id,)).fetchall()


def current_members_by_standing(tx, household_id: int) -> list[str]:
    """The household's current members, the longest-standing first (earliest joined, then id)."""
    return [mid for (mid,) in tx.execute(
        "SELECT member_id FROM household_members WHERE household_id = ? AND left_at IS NULL "
        "ORDER BY joined_at, member_id", (household_id,))]
