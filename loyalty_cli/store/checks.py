"""The queries behind `db check`: SQL in, the rows that break an invariant out (plain tuples).

Each function returns at most `limit` offending rows (so a wrecked file does not flood the
terminal) or the plain facts a check compares; `checks.py` turns them into problems.
"""

from __future__ import annotations

from functools import lru_cache

from loyalty_cli.store import in_parts
from loyalty_cli.store.ledger import BALANCES_SQL, entries_after, outstanding
from loyalty_cli.store.migrations import MIGRATIONS, MIGRATIONS_TABLE, SUMMARY_TABLES


def integrity_messages(tx) -> list[str]:
    """SQLite's own integrity_check: ["ok"] when the file is sound."""
    return [msg for (msg,) in tx.execute("PRAGMA integrity_check")]


def foreign_key_violations(tx, limit: int) -> list[tuple]:
    """(table, rowid, parent table, key index) of rows that refer to a missing parent (foreign_key_check)."""
    return tx.execute("PRAGMA foreign_key_check").fetchmany(limit)


def table_names(tx) -> set[str]:
    """The names of the database's tables."""
    return {name for (name,) in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


SCHEMA_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite~_%' ESCAPE '~'"


def _normal(sql: str | None) -> str:
    """A CREATE statement with its runs of white space made one space."""
    return " ".join((sql or "").split())


def schema(tx) -> dict[str, tuple[str, str, str]]:
    """{name: (type, table it belongs to, its CREATE statement with white space normalised)} of every
    table, index, trigger and view but SQLite's own (sqlite_autoindex_*, sqlite_sequence, sqlite_stat*)."""
    return {name: (kind, table, _normal(sql)) for kind, name, table, sql in tx.execute(SCHEMA_SQL)}


def migrations_run(tx) -> list[str]:
    """The names of the migrations that ran on this database: those recorded, and every one its
    user_version counts (set once they all ran, so a row deleted from `migrations` does not make
    the database look older than it is)."""
    recorded = {name for (name,) in tx.execute("SELECT name FROM migrations")}
    version = tx.execute("PRAGMA user_version").fetchone()[0]
    return [m.__name__ for i, m in enumerate(MIGRATIONS) if m.__name__ in recorded or i < version]


def expected_schema(tx, ran: tuple[str, ...]) -> dict[str, tuple[str, str, str]]:
    """`schema` of a new database that had the migrations named `ran` (and no other): what loyalty
    made, to compare the database with (on PostgreSQL: made in a scratch schema and rolled back)."""
    from loyalty_cli.store import dialect

    if dialect(tx) == "postgresql":
        from loyalty_cli.store.postgres import expected_catalogue

        return {name: (kind, table, _normal(sql)) for kind, name, table, sql in expected_catalogue(tx, ran, SCHEMA_SQL)}
    return _expected_sqlite(ran)


@lru_cache(maxsize=None)
def _expected_sqlite(ran: tuple[str, ...]) -> dict[str, tuple[str, str, str]]:
    import sqlite3

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute(MIGRATIONS_TABLE)
        for migration in MIGRATIONS:
            if migration.__name__ in ran:
                for statement in migration(conn):
                    conn.execute(statement)
        return schema(conn)
    finally:
        conn.close()


def column_names(tx, table: str) -> list[str]:
    """`table`'s columns, in order (`table` is one of ours, never user text)."""
    return [col[1] for col in tx.execute(f"PRAGMA table_info({table})")]


def has_column(tx, table: str, column: str) -> bool:
    """Whether `table` has `column`: a backup made before the migration that added it has not, and is
    checked as what it is."""
    return column in column_names(tx, table)


def has_member_keys(tx) -> bool:
    """Whether members has its lookup-key column (m006)."""
    return has_column(tx, "members", "member_key")


def ledger_entries(tx, after: int = 0):
    """(id, member_id, at, kind, points, ref, note, by, hash) of the entries from id `after` on (every entry
    by default), in id order (streamed)."""
    from loyalty_cli.store import stream

    return stream(tx, "SELECT id, member_id, at, kind, points, ref, note, by, hash FROM ledger WHERE id >= ? "
                      "ORDER BY id", (after,))


def balance_mismatches(tx, limit: int) -> list[tuple]:
    """(member_id, cached balance, sum of entries) of members whose cached balance is not their entries' sum."""
    return tx.execute(
        """SELECT m.member_id, m.balance, coalesce(l.total, 0) FROM members m
           LEFT JOIN (SELECT member_id, sum(points) AS total FROM ledger GROUP BY member_id) l USING (member_id)
           WHERE m.balance != coalesce(l.total, 0) LIMIT ?""", (limit,)).fetchall()


def lot_size_mismatches(tx, limit: int) -> list[tuple]:
    """(lot id, member_id, size, remaining, used) of lots whose remaining is not size − uses, or used beyond size."""
    return tx.execute(
        """SELECT l.id, l.member_id, l.points, l.remaining, coalesce(u.used, 0) FROM lots l
           LEFT JOIN (SELECT lot_id, sum(points) AS used FROM lot_uses GROUP BY lot_id) u ON u.lot_id = l.id
           WHERE l.remaining != l.points - coalesce(u.used, 0) OR coalesce(u.used, 0) > l.points LIMIT ?""",
        (limit,)).fetchall()


def lot_balance_mismatches(tx, limit: int) -> list[tuple]:
    """(member_id, balance, open lots, hole) of members whose open lots minus the hole are not their balance."""
    return tx.execute(
        """SELECT m.member_id, t.total, coalesce(o.open, 0), max(-t.total, 0) FROM members m
           JOIN (SELECT member_id, sum(points) AS total FROM ledger GROUP BY member_id) t USING (member_id)
           LEFT JOIN (SELECT member_id, sum(remaining) AS open FROM lots GROUP BY member_id) o USING (member_id)
           WHERE coalesce(o.open, 0) - max(-t.total, 0) != t.total LIMIT ?""", (limit,)).fetchall()


def lot_owner_mismatches(tx, limit: int) -> list[tuple]:
    """(lot id, lot's member, credit entry id, entry's member) of lots whose credit belongs to another member."""
    return tx.execute(
        """SELECT l.id, l.member_id, e.id, e.member_id FROM lots l JOIN ledger e ON e.id = l.entry_id
           WHERE l.member_id != e.member_id LIMIT ?""", (limit,)).fetchall()


def purchase_lot_mismatches(tx, limit: int) -> list[tuple]:
    """(purchase id, member_id, lot id) of purchases naming a lot that is missing or another member's."""
    return tx.execute(
        """SELECT p.purchase_id, p.member_id, p.lot_id FROM purchases p LEFT JOIN lots l ON l.id = p.lot_id
           WHERE p.lot_id IS NOT NULL AND (l.id IS NULL OR l.member_id != p.member_id) LIMIT ?""", (limit,)).fetchall()


def spent_before_available(tx, limit: int) -> list[tuple]:
    """(entry id, member_id, kind, entry's date, lot id, lot's available_on) of spends (a debit other than a
    refund's reversal, a write-off or a merge, which moves a pending lot as it is) that took points of a lot before the day it became spendable.
    None such in a backup made before lots had the column (m008): every lot was spendable at once."""
    if not has_column(tx, "lots", "available_on"):
        return []
    return tx.execute(
        """SELECT e.id, e.member_id, e.kind, substr(e.at, 1, 10), l.id, l.available_on
           FROM lots l JOIN lot_uses u ON u.lot_id = l.id JOIN ledger e ON e.id = u.entry_id
           WHERE l.available_on IS NOT NULL AND e.points < 0 AND e.kind != 'reversal' AND e.kind != 'expire'
             AND e.kind != 'merge_out'
             AND substr(e.at, 1, 10) < l.available_on LIMIT ?""", (limit,)).fetchall()


def overconsuming_entries(tx, limit: int) -> list[tuple]:
    """(entry id, member_id, points, lot points used) of entries that consumed more of lots than their size."""
    return tx.execute(
        """SELECT e.id, e.member_id, e.points, u.used FROM ledger e
           JOIN (SELECT entry_id, sum(points) AS used FROM lot_uses GROUP BY entry_id) u ON u.entry_id = e.id
           WHERE u.used > abs(e.points) LIMIT ?""", (limit,)).fetchall()


def overdrafts(tx, limit: int) -> list[tuple]:
    """(entry id, member_id, kind, balance after) of debits other than reversals that left a balance below zero."""
    return tx.execute(
        """SELECT id, member_id, kind, after FROM (
               SELECT id, member_id, kind, points, sum(points) OVER (PARTITION BY member_id ORDER BY id) AS after FROM ledger) AS d
           WHERE points < 0 AND after < 0 AND kind != 'reversal' LIMIT ?""", (limit,)).fetchall()


def unrecorded_purchase_refs(tx, limit: int) -> list[tuple]:
    """(entry id, member_id, kind, ref) of earn, bonus and reversal entries whose purchase is not recorded."""
    return tx.execute(
        """SELECT e.id, e.member_id, e.kind, e.ref FROM ledger e LEFT JOIN purchases p ON p.purchase_id = e.ref
           WHERE e.kind IN ('earn', 'bonus', 'reversal') AND p.purchase_id IS NULL LIMIT ?""", (limit,)).fetchall()


def purchase_point_mismatches(tx, limit: int) -> list[tuple]:
    """(purchase id, member_id, cached points, entries' points) of purchases whose points are not their entries'."""
    return tx.execute(
        """SELECT p.purchase_id, p.member_id, p.points, coalesce(e.total, 0) FROM purchases p
           LEFT JOIN (SELECT ref, sum(abs(points)) AS total FROM ledger WHERE kind IN ('earn', 'bonus', 'reversal')
                      GROUP BY ref) e ON e.ref = p.purchase_id
           WHERE p.points != coalesce(e.total, 0) LIMIT ?""", (limit,)).fetchall()


def overreversed_sales(tx, limit: int) -> list[tuple]:
    """(purchase id, member_id, points earned, points reversed) of sales whose refunds reversed more than they earned."""
    return tx.execute(
        """SELECT s.purchase_id, s.member_id, s.points, r.total FROM purchases s
           JOIN (SELECT refund_of, sum(points) AS total FROM purchases WHERE kind = 'refund' GROUP BY refund_of) r
             ON r.refund_of = s.purchase_id
           WHERE r.total > s.points LIMIT ?""", (limit,)).fetchall()


def summary_differences(tx, limit: int) -> list[tuple[str, list[tuple]]]:
    """(table, rows): for each summary table present (member_totals, daily_sales, daily_points), the rows
    on either side of its difference with what it sums up, recomputed from purchases and entries, in key
    order (the key first in each row). A backup from before m002 has none: opening it as the database
    builds the totals from its data."""
    have = table_names(tx)
    return [(table, tx.execute(
        f"""SELECT * FROM (SELECT * FROM {table} EXCEPT SELECT * FROM ({source}) AS s) AS a
            UNION ALL SELECT * FROM (SELECT * FROM ({source}) AS s EXCEPT SELECT * FROM {table}) AS b ORDER BY {key} LIMIT ?""",
        (limit,)).fetchall()) for table, source, key in SUMMARY_TABLES if table in have]


def has_daily_points(tx) -> bool:
    """Whether the per-day entry totals exist (a backup from before m002 has none)."""
    return tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'daily_points'").fetchone() is not None


def entry_sums_after(tx, end: str) -> list[tuple]:
    """(member_id, day or "", points): each member's entries summed, those dated after `end` per day
    ("" for the rest), in one pass in member order."""
    return tx.execute(
        "SELECT member_id, CASE WHEN at > ? THEN substr(at, 1, 10) ELSE '' END AS d, sum(points) FROM ledger "
        "GROUP BY member_id, d", (end,)).fetchall()


def balances_as_of(tx, day: str) -> tuple[list[tuple], int]:
    """Every member's (member_id, balance) at the end of `day`, and the outstanding points then, as the
    reports and the members' lists compute them (store.ledger.BALANCES_SQL and store.ledger.outstanding)."""
    with entries_after(tx, day):
        shown = tx.execute(f"WITH {BALANCES_SQL} SELECT member_id, balance FROM balances").fetchall()
        return shown, outstanding(tx)


def tier_mismatches(tx, limit: int) -> list[tuple]:
    """(member_id, tier shown, tier of the latest change) of members whose tier is not their latest change's."""
    return tx.execute(
        """SELECT m.member_id, m.tier, t.to_tier FROM members m
           JOIN tier_changes t ON t.id = (SELECT max(id) FROM tier_changes WHERE member_id = m.member_id)
           WHERE m.tier != t.to_tier LIMIT ?""", (limit,)).fetchall()


def member_ids(tx, with_keys: bool):
    """(member_id, stored lookup key or None) of every member, in id order (streamed)."""
    return tx.execute(f"SELECT member_id, {'member_key' if with_keys else 'NULL'} FROM members ORDER BY member_id")


def chain_head(tx) -> tuple[int, str | None]:
    """(the last entry's id, its hash), or (0, None) on an empty ledger: what `db seal` records."""
    last = tx.execute("SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
    return (last[0], last[1]) if last else (0, None)


def entry_hash_of(tx, eid: int) -> str | None:
    """Entry `eid`'s stored hash, or None when there is no such entry (one lookup by primary key)."""
    found = tx.execute("SELECT hash FROM ledger WHERE id = ?", (eid,)).fetchone()
    return found[0] if found else None


# -- the chain's replay (replay.py) ----------------------------------------------------------------
# `table` and `columns` below come from store.chain.RECORDS, never from user text.
def rows_by_position(tx, table: str, columns, first: int, last: int | None) -> dict[int, tuple]:
    """{rowid: row of `columns`} of the rows numbered `first`..`last` (None: to the end)."""
    sql = f"SELECT rowid, {', '.join(_quoted(columns))} FROM {table} WHERE rowid >= ?"
    params: tuple = (first,)
    if last is not None:
        sql += " AND rowid <= ?"
        params = (first, last)
    return {row[0]: row[1:] for row in tx.execute(sql, params)}


def rows_by_key(tx, table: str, columns, key: str, keys: list) -> dict:
    """{key: row of `columns`} of the rows whose `key` is among `keys`."""
    found = {}
    at = list(columns).index(key)
    for part, marks in in_parts(keys):
        for row in tx.execute(f"SELECT {', '.join(_quoted(columns))} FROM {table} "
                              f"WHERE {key} IN ({marks})", part):
            found[row[at]] = row
    return found


def _quoted(columns) -> list[str]:
    return [f"[{c}]" for c in columns]  # `by` is a keyword; [x] is never read as a string


def count_rows(tx, table: str, numbered: bool = True) -> tuple[int, int]:
    """(rows, highest rowid, or 0 for a table not `numbered` by rowid) of a table."""
    if not numbered:
        return tx.execute(f"SELECT count(*) FROM {table}").fetchone()[0], 0
    count, last = tx.execute(f"SELECT count(*), max(rowid) FROM {table}").fetchone()
    return count, last or 0


def rows_after(tx, table: str, rowid: int, limit: int) -> list[tuple]:
    """(rowid, member_id or None when the table has none) of the rows numbered after `rowid`."""
    member = "member_id" if has_column(tx, table, "member_id") else "NULL"
    return tx.execute(f"SELECT rowid, {member} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                      (rowid, limit)).fetchall()


def member_rows(tx):
    """(member_id, joined_on, referred_by, tier, tier_since, erased_at, erased_by, name, email, phone,
    birthday) of every member (streamed)."""
    return tx.execute("SELECT member_id, joined_on, referred_by, tier, tier_since, erased_at, erased_by, name, email, "
                      "phone, birthday FROM members")


def members_with_tier_changes(tx) -> set[str]:
    """The members some tier change names."""
    return {mid for (mid,) in tx.execute("SELECT DISTINCT member_id FROM tier_changes")}


def reward_rows(tx) -> list[tuple]:
    """(code, name, cost, stock, retired_at) of every reward."""
    return tx.execute("SELECT code, name, cost, stock, retired_at FROM rewards").fetchall()


def voucher_rows(tx):
    """(code, member_id, reward_code, points, redeem_entry, status, issued_at, closed_at) of every voucher."""
    return tx.execute("SELECT code, member_id, reward_code, points, redeem_entry, status, issued_at, closed_at "
                      "FROM vouchers")


def setting_rows(tx) -> list[tuple]:
    """(key, value) of every setting."""
    return tx.execute("SELECT key, value FROM settings").fetchall()


# -- incremental `db check`: the members and days the blocks since the last seal touched -----------
def mark_touched(tx, members, days) -> None:
    """temp.touched_members and temp.touched_days: what the incremental checks below look at."""
    tx.execute("DROP TABLE IF EXISTS temp.touched_members")
    tx.execute("DROP TABLE IF EXISTS temp.touched_days")
    tx.execute("CREATE TEMP TABLE touched_members (member_id TEXT PRIMARY KEY) WITHOUT ROWID")
    tx.execute("CREATE TEMP TABLE touched_days (day TEXT PRIMARY KEY) WITHOUT ROWID")
    tx.executemany("INSERT OR IGNORE INTO temp.touched_members VALUES (?)", ((m,) for m in members))
    tx.executemany("INSERT OR IGNORE INTO temp.touched_days VALUES (?)", ((d,) for d in days))


def touched_member_states(tx, limit: int) -> list[tuple]:
    """(member_id, cached balance, sum of entries, open lots' points) of the touched members whose
    balance or open lots disagree with their entries."""
    # MATERIALIZED and CROSS JOIN: the touched members first, each summed once (else SQLite scans every
    # member and sums its entries for the WHERE: 6 s at a million purchases for one touched member).
    return tx.execute(
        """WITH t AS MATERIALIZED (
             SELECT m.member_id, m.balance,
                    coalesce((SELECT sum(points) FROM ledger WHERE member_id = m.member_id), 0) AS total,
                    coalesce((SELECT sum(remaining) FROM lots WHERE member_id = m.member_id AND remaining > 0), 0) AS open
             FROM temp.touched_members k CROSS JOIN members m ON m.member_id = k.member_id)
           SELECT * FROM t WHERE balance != total OR open - max(-total, 0) != total LIMIT ?""",
        (limit,)).fetchall()


def touched_lot_mismatches(tx, limit: int) -> list[tuple]:
    """`lot_size_mismatches` for the touched members' open lots."""
    return tx.execute(
        """SELECT l.id, l.member_id, l.points, l.remaining, coalesce(u.used, 0) FROM temp.touched_members k
           JOIN lots l ON l.member_id = k.member_id AND l.remaining > 0
           LEFT JOIN (SELECT lot_id, sum(points) AS used FROM lot_uses GROUP BY lot_id) u ON u.lot_id = l.id
           WHERE l.remaining != l.points - coalesce(u.used, 0) OR coalesce(u.used, 0) > l.points LIMIT ?""",
        (limit,)).fetchall()


def totals_everywhere(tx) -> tuple[int, int, int, int, int]:
    """(sum of cached balances, sum of all entries, lots' remaining points, lots' points, points of lot
    uses): whole-database sums that agree when every cached figure does (a few aggregates, no join)."""
    balances = tx.execute("SELECT coalesce(sum(balance), 0) FROM members").fetchone()[0]
    entries = tx.execute("SELECT coalesce(sum(points), 0) FROM ledger").fetchone()[0]
    remaining, points = tx.execute("SELECT coalesce(sum(remaining), 0), coalesce(sum(points), 0) FROM lots").fetchone()
    used = tx.execute("SELECT coalesce(sum(points), 0) FROM lot_uses").fetchone()[0]
    return balances, entries, remaining, points, used


def touched_summary_differences(tx, limit: int) -> list[tuple[str, list[tuple]]]:
    """`summary_differences` for the touched members' totals and the touched days (the purchases and
    entries of those days only are summed: one pass over each table, no grouping of the rest)."""
    from loyalty_cli.store.migrations import DAILY_POINTS_SQL, DAILY_SALES_SQL, MEMBER_TOTALS_SQL

    touched_day = "WHERE substr({}, 1, 10) IN (SELECT day FROM temp.touched_days)"
    member = MEMBER_TOTALS_SQL.format(where="WHERE p.member_id IN (SELECT member_id FROM temp.touched_members)")
    sales = DAILY_SALES_SQL.format(where=touched_day.format("purchased_at"))
    points = DAILY_POINTS_SQL.format(where=touched_day.format("at"))
    sources = (("member_totals", "SELECT * FROM member_totals WHERE member_id IN (SELECT member_id FROM "
                "temp.touched_members)", member, "member_id"),
               ("daily_sales", "SELECT * FROM daily_sales WHERE day IN (SELECT day FROM temp.touched_days)", sales, "day"),
               ("daily_points", "SELECT * FROM daily_points WHERE day IN (SELECT day FROM temp.touched_days)", points,
                "day, kind"))
    return [(table, tx.execute(
        f"""SELECT * FROM ({cached} EXCEPT SELECT * FROM ({source}) AS s) AS a
            UNION ALL SELECT * FROM (SELECT * FROM ({source}) AS s EXCEPT {cached}) AS b ORDER BY {key} LIMIT ?""",
        (limit,)).fetchall()) for table, cached, source, key in sources]


def entries_between(tx, first: int, last: int):
    """(id, member_id, day, hash) of the entries `first`..`last` (streamed, in id order)."""
    return tx.execute("SELECT id, member_id, substr(at, 1, 10), hash FROM ledger WHERE id BETWEEN ? AND ? ORDER BY id",
                      (first, last))


def first_sale_mismatches(tx, limit: int, merges: bool = False) -> list[tuple]:
    """(member_id, first_sale) of members whose first sale is not a sale of theirs (nor, with `merges`,
    of a member merged into them, or into the member they were merged into: a merge carries the
    duplicate's first sale over, and a chain of merges ends in one member), or is NULL while
    they have a sale of a positive amount (their next sale would earn the first-purchase bonus again)."""
    theirs = ("(p.member_id != m.member_id AND NOT EXISTS (SELECT 1 FROM members d WHERE d.member_id = p.member_id "
              "AND (d.merged_into = m.member_id OR d.merged_into = m.merged_into)))" if merges else "p.member_id != m.member_id")
    return tx.execute(
        f"""SELECT m.member_id, m.first_sale FROM members m LEFT JOIN purchases p ON p.purchase_id = m.first_sale
           WHERE m.first_sale IS NOT NULL AND (p.purchase_id IS NULL OR {theirs} OR p.kind != 'sale')
           UNION ALL
           SELECT m.member_id, NULL FROM members m
           WHERE m.first_sale IS NULL AND EXISTS (SELECT 1 FROM purchases s WHERE s.member_id = m.member_id
                                                  AND s.kind = 'sale' AND s.amount > 0)
           LIMIT ?""", (limit,)).fetchall()


def entry_range(tx, first: int, last: int) -> tuple[int, str | None]:
    """(how many entries `first`..`last` there are, entry `last`'s hash or None)."""
    count = tx.execute("SELECT count(*) FROM ledger WHERE id BETWEEN ? AND ?", (first, last)).fetchone()[0]
    row = tx.execute("SELECT hash FROM ledger WHERE id = ?", (last,)).fetchone()
    return count, row[0] if row else None
