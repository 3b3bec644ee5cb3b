"""Copying a whole database to another (SQLite file ⇄ PostgreSQL), row for row: `loyalty db copy`.

Every table is copied as it is, ids, hashes and chain blocks included, in an order the foreign
keys accept, inside the target's one write transaction; `migrations` is not copied (the target
ran the same migrations itself). The caller verifies the target inside that transaction before
it commits, so a copy that fails its check leaves the target as empty as it was.
"""

from __future__ import annotations

from loyalty_cli.store import dialect, stream
from loyalty_cli.store.checks import column_names, table_names
from loyalty_cli.i18n import M_

# Parents before children. A member's referrer is another member: members are written without
# it first and their referrers set once every member is there.
ORDER = ("settings", "program_versions", "members", "rewards", "ledger", "lots", "lot_uses", "purchases",
         "tier_changes", "recalc_runs", "vouchers", "feedback", "erasures", "member_totals", "daily_sales",
         "daily_points", "chain")
SKIP = {"migrations"}
BATCH = 5_000
# The order rows are read in: a table's rows keep their positions (the chain records some by position).
READ_ORDER = {"settings": "rowid", "lot_uses": "rowid", "members": "member_id", "purchases": "kind DESC, purchase_id",
              "rewards": "code", "vouchers": "code", "member_totals": "member_id", "daily_sales": "day",
              "daily_points": "day, kind"}


def columns(tx, table: str) -> list[str]:
    """The table's columns, less PostgreSQL's stand-in for SQLite's rowid."""
    return [name for name in column_names(tx, table) if name != "rowid"]


EMPTY, BEGUN, HOLDS_DATA = "empty", "begun", "holds data"


def state(tx) -> str:
    """EMPTY (only its schema and the migrations that made it), BEGUN (as `loyalty init` leaves it:
    the chain's first block and nothing else) or HOLDS_DATA."""
    held = {table for table in table_names(tx) - SKIP if tx.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()}
    if not held:
        return EMPTY
    if held == {"chain"} and tx.execute("SELECT count(*) FROM chain").fetchone()[0] == 1:
        return BEGUN
    return HOLDS_DATA


def copy_rows(source, target) -> dict[str, int]:
    """Copy every row of `source`'s tables (a read transaction) into `target`'s (a write
    transaction); returns {table: rows}. Raises ValueError naming a table or column the target lacks."""
    have = table_names(source)
    missing = sorted((have - SKIP) - table_names(target))
    if missing:
        raise ValueError(M_("the target has no table {missing_0}", missing_0=missing[0]))
    to_postgres = dialect(target) == "postgresql"
    order = [t for t in ORDER if t in have] + sorted(have - set(ORDER) - SKIP)
    counts = {}
    for table in order:
        names = columns(source, table)
        lacking = sorted(set(names) - set(columns(target, table)))
        if lacking:
            raise ValueError(M_("the target's {table} has no column {lacking_0}", table=table, lacking_0=lacking[0]))
        written = names
        if table == "members":
            written = [n for n in names if n != "referred_by"]
        listed = ", ".join(f'"{n}"' for n in written)
        insert = f"INSERT INTO {table} ({', '.join(written)}) VALUES ({','.join('?' * len(written))})"
        sort = READ_ORDER.get(table, "id")
        cursor = stream(source, f"SELECT {listed} FROM {table} ORDER BY {sort}")
        n = 0
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                break
            if table == "chain":
                rows = [_body_for(r, names.index("body"), to_postgres) for r in rows]
            target.executemany(insert, [tuple(r) for r in rows])
            n += len(rows)
        counts[table] = n
        if table == "members":
            referred = source.execute("SELECT member_id, referred_by FROM members WHERE referred_by IS NOT NULL "
                                      "ORDER BY member_id").fetchall()
            target.executemany("UPDATE members SET referred_by = ? WHERE member_id = ?",
                               [(ref, mid) for mid, ref in referred])
    return counts


def _body_for(row, at: int, to_postgres: bool):
    """A chain block's body as the target stores it: bytes in PostgreSQL's BYTEA; in SQLite, JSON
    as text and a compressed body as a BLOB (the same bytes either way: the same hash)."""
    body = row[at]
    if to_postgres and isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    elif not to_postgres and isinstance(body, (bytes, memoryview)) and bytes(body[:1]) == b"{":
        body = bytes(body).decode("utf-8", "surrogatepass")
    return (*row[:at], body, *row[at + 1:])

ORDER += ("households", "household_members")  # m012_households: after members, a household before its memberships
