"""What the CSV imports read and reshape: erased members, purchases already recorded, members
enrolled by lookup key, and the indexes a big import builds once at its end."""

from __future__ import annotations

from loyalty_cli.store import dialect, in_parts, page_cache

# Member-ordered indexes that a big import builds once at its end (one sort) instead of
# inserting into at a random place for every row: at 1M purchases, 90 s became 76 s. Nothing
# an import reads goes through ledger_member; purchases_member only finds a member's earlier
# purchases, so it is dropped only when there are none (an empty purchases table).
DEFER_FROM_ROWS = 20_000
INDEX_BUILD_CACHE_KIB = 4096


def erased_members(tx) -> set[str]:
    """The ids of the members whose personal data was erased."""
    return {row[0] for row in tx.execute("SELECT member_id FROM members WHERE erased_at IS NOT NULL")}


def recorded(tx, ids) -> dict:
    """{purchase id: (member, kind, amount, refund_of, date)} of those of `ids` already recorded."""
    ids = list(ids)
    known = {}
    for part, marks in in_parts(ids):
        for r in tx.execute(f"SELECT purchase_id, member_id, kind, amount, refund_of, purchased_at "
                            f"FROM purchases WHERE purchase_id IN ({marks})", part):
            known[r[0]] = (r[1], r[2], r[3], r[4], r[5][:10])
    return known


def enrolled_keys(tx, keys: list[str]) -> set[str]:
    """Those of the member lookup keys (values.member_key) that an enrolled member has."""
    enrolled = set()
    for part, marks in in_parts(keys):
        enrolled.update(r[0] for r in tx.execute(
            f"SELECT member_key FROM members WHERE member_key IN ({marks})", part))
    return enrolled


def defer_indexes(tx, expected_rows: int, next_entry_id: int) -> tuple[list[str], list[str], bool]:
    """Before an import of about `expected_rows` new purchases (the ledger's next entry id being
    `next_entry_id`): drop the member-ordered indexes it would otherwise update at random, when
    rebuilding them at the end is cheaper (the import is a quarter or more of what the ledger
    holds), and the triggers refusing REPLACE.

    Returns (the names of the indexes dropped, the statements that create again everything
    dropped, for `restore_indexes`, whether the purchases table is empty)."""
    if expected_rows < max(DEFER_FROM_ROWS, 1):
        return [], [], False
    purchases_empty = tx.execute("SELECT 1 FROM purchases LIMIT 1").fetchone() is None
    if dialect(tx) == "postgresql":
        # PostgreSQL keeps its indexes up to date cheaply under COPY, and its queries during the
        # import (a refund's sale, a member's totals) need them: without purchases_member a 1M-row
        # import scanned the growing table again and again (695 s).
        return [], [], purchases_empty
    names = []
    if expected_rows * 4 >= next_entry_id:
        names.append("ledger_member")
    if purchases_empty:
        names.append("purchases_member")
    # The triggers that refuse REPLACE look every new row's key up (a few µs a row); a book
    # writes new keys only, so they too are put back at the end, in the same transaction (the
    # triggers refusing UPDATE and DELETE stay: they cost an insert nothing).
    triggers = ["ledger_no_replace", "lot_uses_no_replace", "purchases_no_replace", "lots_no_replace",
                "tier_changes_no_replace"]
    rebuild = []
    for name in names + triggers:
        row = tx.execute("SELECT type, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND name = ?",
                         (name,)).fetchone()
        if row:
            rebuild.append(row[1])
            tx.execute(f"DROP {row[0].upper()} {name}")
    return names, rebuild, purchases_empty


def restore_indexes(tx, rebuild: list[str]) -> None:
    """Run the statements `defer_indexes` returned, last dropped first (in the same transaction:
    a crash keeps the old indexes)."""
    # The sorter that builds an index may take as much memory as the page cache holds, on top
    # of it (at 1M purchases: +34 MiB of the 200 allowed). Built with a small cache instead,
    # which also lets the cache's pages go.
    with page_cache(tx, INDEX_BUILD_CACHE_KIB):
        for statement in reversed(rebuild):
            tx.execute(statement)
