"""The SQL of `program simulate`: what it reads of the shop's database, the source file both
replays read, the scratch databases they replay into, and the figures read back from those.

The shop's database is only read: a SQLite file is opened read-only (`open_read_only`); a
PostgreSQL database is read in one snapshot (REPEATABLE READ, as every read there). What it
needs is copied once into a plain SQLite file (the source), so that both replays see the very
same history whatever the backend and whatever a till writes meanwhile. Each replay writes a
scratch loyalty database of its own (`ScratchStore`): the same schema and the same writer as
the shop's, without the chain (nobody will ever check a scratch), on SQLite's fast settings.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from loyalty_cli.errors import LoyaltyError
from loyalty_cli.i18n import M_
from loyalty_cli.store import (EMPTY, MISSING, Connection, Store, busy_timeout, dangling_message, examine,
                               is_postgres_url, missing_message, resolve_path, storage_failure)
from loyalty_cli.store.migrations import MIGRATIONS

# What a scratch database's failure raises (a full disk, most likely): the replay's own storage.
SCRATCH_ERRORS = (sqlite3.Error,)

# Credits that are not points a member earned by the rules (a transfer moves points; a cancelled
# voucher gives back points spent; a merge moves a duplicate's points to the member kept): left out
# of "points issued", as the dashboard leaves them out.
MOVED_CREDITS = ("transfer_in", "voucher_cancel", "merge_in")
# Ledger entries of the period replayed as they happened (the rest the replay writes itself).
REPLAYED_KINDS = ("redeem", "award", "adjust", "transfer_out", "voucher_cancel")
SALE_FIRST = "CASE WHEN kind = 'sale' THEN 0 ELSE 1 END"  # a refund stamped with its sale's second comes after it


# -- the shop's database, read only ----------------------------------------------------------
def open_read_only(db, now: str | None = None):
    """The shop's database for reading only: a SQLite file opened with `mode=ro` (no byte of it,
    nor of its -wal, changes; SQLite makes no journal), a PostgreSQL URL as usual (its reads are
    snapshots). A database an older loyalty made must first be brought up to date by any other
    command (a read-only file cannot be migrated)."""
    if is_postgres_url(db):
        return Store.open(db, now=now)
    path = resolve_path(db)
    if path.is_dir():
        from loyalty_cli.errors import UsageError

        raise UsageError(M_("{path} is a directory; give --db the path of a database file", path=path))
    try:
        kind = examine(path)
    except OSError as exc:
        raise storage_failure(exc, path) or LoyaltyError(M_("cannot read {path}: {strerror}", path=path, strerror=exc.strerror)) from None
    if kind == MISSING:
        raise LoyaltyError(dangling_message(path) if os.path.islink(path) else missing_message(path, db))
    if kind == EMPTY:
        raise LoyaltyError(M_("{path} is an empty file, not a loyalty database; nothing was changed", path=path))
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=busy_timeout(),
                               isolation_level=None, check_same_thread=False, factory=Connection)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise storage_failure(exc, path) or LoyaltyError(M_("cannot open {path} as a loyalty database ({exc})", path=path, exc=exc)) from None
    if version < len(MIGRATIONS):
        conn.close()
        raise LoyaltyError(M_("{path} was made by an earlier version of loyalty: bring it up to date first (any command does, e.g. loyalty --db {path} db check), then simulate", path=path))
    return Store(path, conn, now)


def last_purchase_day(tx) -> str | None:
    """The date of the latest sale or refund recorded, or None when there is none."""
    row = tx.execute("SELECT max(purchased_at) FROM purchases").fetchone()
    return row[0][:10] if row and row[0] else None


# -- the source file: what both replays read --------------------------------------------------
SOURCE_TABLES = (
    # Members enrolled by the end of the period (or buying in it): the birth month only (no other
    # personal data leaves the shop's database), their state on the eve of the period.
    """CREATE TABLE members (member_id TEXT PRIMARY KEY, birth_month TEXT, joined_on TEXT NOT NULL,
        referred_by TEXT, first_sale TEXT, balance INTEGER NOT NULL, tier TEXT NOT NULL)""",
    "CREATE TABLE tier_changes (member_id TEXT, at TEXT, from_tier TEXT, to_tier TEXT, reason TEXT, until TEXT)",
    # The lots still open on the eve of the period, with what was left of them then.
    "CREATE TABLE lots (member_id TEXT, expires_on TEXT, remaining INTEGER, purchase_id TEXT)",
    # Of the sales refunded in the period, the points expiry wrote off before it (a refund never
    # takes those again: SPEC §6's X).
    "CREATE TABLE expired (member_id TEXT, purchase_id TEXT, points INTEGER)",
    # Purchases before the period that the replay needs: those in the longest tier window, and the
    # sales refunded in the period (with their earlier refunds).
    """CREATE TABLE history (purchase_id TEXT, member_id TEXT, kind TEXT, amount INTEGER, at TEXT, category TEXT,
        refund_of TEXT, points INTEGER, basis_points INTEGER, store TEXT)""",
    # The period's sales and refunds, and its ledger entries made by people (redeems, awards,
    # adjustments, transfers, cancelled vouchers), each in the order they are replayed.
    """CREATE TABLE purchases (purchase_id TEXT, member_id TEXT, kind TEXT, amount INTEGER, at TEXT, category TEXT,
        refund_of TEXT, store TEXT)""",
    """CREATE TABLE entries (member_id TEXT, at TEXT, kind TEXT, points INTEGER, ref TEXT, note TEXT, by TEXT,
        voucher TEXT)""",
    "CREATE TABLE recalcs (as_of TEXT)",
    # Merges up to the end of the period (members merge): before it, the duplicate is an alias from
    # the start; in it, the merge is replayed at its moment (simulate._merge).
    "CREATE TABLE merges (member_id TEXT, into_id TEXT, at TEXT)",
    # Every experiment (store.experiments.Row's columns): its variant is replayed for its members,
    # merged over the programme replayed, as the shop ran it.
    """CREATE TABLE experiments (id INTEGER, name TEXT, variant TEXT, share TEXT, starts_on TEXT, stops_on TEXT,
        started_at TEXT, source TEXT)""",
)


def create_source(path: Path) -> sqlite3.Connection:
    """A new source file (a plain SQLite file, not a loyalty database), its tables made."""
    conn = sqlite3.connect(f"file:{quote(str(path))}", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    for statement in SOURCE_TABLES:
        conn.execute(statement)
    return conn


def _copy(src, dest: sqlite3.Connection, table: str, columns: int, sql: str, params) -> int:
    """Rows of a query on the shop's database into a table of the source file, through Python
    (PostgreSQL); returns how many."""
    from itertools import islice

    from loyalty_cli.store import stream

    insert = f"INSERT INTO {table} VALUES ({','.join('?' * columns)})"
    rows = iter(stream(src, sql.format(s=""), params))
    n = 0
    while batch := list(islice(rows, 5000)):
        dest.executemany(insert, batch)
        n += len(batch)
    return n


def _attached(dest: sqlite3.Connection, table: str, _columns: int, sql: str, params) -> int:
    """The same from a SQLite shop attached read-only to the source file's connection: one
    INSERT … SELECT in SQLite itself (a million purchases in a second or two, not 15 through Python)."""
    return dest.execute(f"INSERT INTO main.{table} {sql.format(s='shop.')}", params).rowcount


def extract(shop, dest: sqlite3.Connection, start: str, end: str, last_day: str, window_start: str) -> dict:
    """Copy into the source file what the replays need of the period from `start` (a date) to `end`
    (its last second), `last_day` being the period's last date; purchases before the period from
    `window_start` on (the longest tier window either programme looks back over). One snapshot of
    the shop's database: a SQLite file is attached read-only to `dest`'s transaction (which holds
    its read snapshot until `dest` commits); a PostgreSQL database is read in a read transaction of
    `shop` (a Store). Returns counts."""
    from loyalty_cli.store import dialect

    eve = start + "T00:00:00"
    refunded = "SELECT refund_of FROM {s}purchases WHERE kind = 'refund' AND purchased_at >= ? AND purchased_at <= ?"
    kinds = ",".join(f"'{k}'" for k in REPLAYED_KINDS)
    steps = [
        ("members", 7, """
            SELECT m.member_id, substr(m.birthday, 6, 2), m.joined_on, m.referred_by,
                   CASE WHEN f.purchased_at < ? THEN m.first_sale END, coalesce(b.balance, 0), m.tier
            FROM {s}members m LEFT JOIN {s}purchases f ON f.purchase_id = m.first_sale
            LEFT JOIN (SELECT member_id, sum(points) AS balance FROM {s}ledger WHERE at < ? GROUP BY member_id) b
                   ON b.member_id = m.member_id
            WHERE m.joined_on <= ? OR EXISTS (SELECT 1 FROM {s}member_totals t WHERE t.member_id = m.member_id
                                              AND t.first_purchase_at <= ?)
            ORDER BY m.member_id""", (eve, eve, last_day, end)),
        ("tier_changes", 6, "SELECT member_id, at, from_tier, to_tier, reason, until FROM {s}tier_changes "
                            "ORDER BY member_id, id", ()),
        ("lots", 4, """
            SELECT l.member_id, l.expires_on, l.points - coalesce(u.used, 0), l.purchase_id
            FROM {s}lots l JOIN {s}ledger c ON c.id = l.entry_id
            LEFT JOIN (SELECT lu.lot_id, sum(lu.points) AS used FROM {s}lot_uses lu
                       JOIN {s}ledger d ON d.id = lu.entry_id WHERE d.at < ? GROUP BY lu.lot_id) u ON u.lot_id = l.id
            WHERE c.at < ? AND l.points - coalesce(u.used, 0) > 0
            ORDER BY l.member_id, coalesce(l.expires_on, '9999-12-31'), l.id""", (eve, eve)),
        ("expired", 3, f"""
            SELECT l.member_id, l.purchase_id, sum(u.points) FROM {{s}}lot_uses u
            JOIN {{s}}ledger e ON e.id = u.entry_id JOIN {{s}}lots l ON l.id = u.lot_id
            WHERE e.kind = 'expire' AND e.at < ? AND l.purchase_id IN ({refunded})
            GROUP BY l.member_id, l.purchase_id ORDER BY l.member_id, l.purchase_id""", (eve, eve, end)),
        ("history", 10, f"""
            SELECT purchase_id, member_id, kind, amount, purchased_at, category, refund_of, points, basis_points, store
            FROM {{s}}purchases
            WHERE purchased_at < ? AND (purchased_at >= ? OR purchase_id IN ({refunded}) OR refund_of IN ({refunded}))
            ORDER BY purchased_at, {SALE_FIRST}, purchase_id""", (eve, window_start, eve, end, eve, end)),
        ("purchases", 8, f"""
            SELECT purchase_id, member_id, kind, amount, purchased_at, category, refund_of, store FROM {{s}}purchases
            WHERE purchased_at >= ? AND purchased_at <= ? ORDER BY purchased_at, {SALE_FIRST}, purchase_id""",
         (eve, end)),
        ("entries", 8, f"""
            SELECT e.member_id, e.at, e.kind, e.points, e.ref, e.note, e.by, v.code
            FROM {{s}}ledger e LEFT JOIN {{s}}vouchers v ON v.redeem_entry = e.id
            WHERE e.at >= ? AND e.at <= ? AND e.kind IN ({kinds}) ORDER BY e.at, e.id""", (eve, end)),
        ("recalcs", 1, "SELECT DISTINCT as_of FROM {s}recalc_runs WHERE as_of >= ? AND as_of <= ? ORDER BY as_of",
         (start, last_day)),
        ("merges", 3, "SELECT member_id, into_id, at FROM {s}member_merges WHERE at <= ? ORDER BY id", (end,)),
        ("experiments", 8, "SELECT id, name, variant, share, starts_on, stops_on, started_at, source "
                           "FROM {s}experiments ORDER BY id", ()),
    ]
    counts = {}
    if dialect(shop.conn) == "sqlite":
        dest.execute("ATTACH DATABASE ? AS shop", (f"file:{quote(str(Path(shop.path).resolve()))}?mode=ro",))
        try:
            dest.execute("BEGIN")
            for table, columns, sql, params in steps:
                counts[table] = _attached(dest, table, columns, sql, params)
            dest.execute("COMMIT")
        finally:
            if dest.in_transaction:
                dest.execute("ROLLBACK")
            dest.execute("DETACH DATABASE shop")
    else:
        dest.execute("BEGIN")
        with shop.read() as tx:
            for table, columns, sql, params in steps:
                counts[table] = _copy(tx, dest, table, columns, sql, params)
        dest.execute("COMMIT")
    return counts


def open_source(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None)


def source_members(src):
    """(member_id, birth_month, joined_on, referred_by, first_sale, balance on the eve, tier now), by id."""
    return src.execute("SELECT member_id, birth_month, joined_on, referred_by, first_sale, balance, tier FROM members "
                       "ORDER BY member_id")


def source_tier_changes(src):
    """(member_id, at, from_tier, to_tier, reason, until) of every tier change, by member then as recorded."""
    return src.execute("SELECT member_id, at, from_tier, to_tier, reason, until FROM tier_changes ORDER BY rowid")


def source_lots(src):
    """(member_id, expires_on, remaining, purchase_id) of the lots open on the eve, by member, earliest expiry first."""
    return src.execute("SELECT member_id, expires_on, remaining, purchase_id FROM lots ORDER BY rowid")


def source_expired(src):
    """(member_id, purchase_id, points) written off before the period of the sales refunded in it."""
    return src.execute("SELECT member_id, purchase_id, points FROM expired ORDER BY rowid")


def source_history(src):
    return src.execute("SELECT purchase_id, member_id, kind, amount, at, category, refund_of, points, basis_points, "
                       "store FROM history ORDER BY rowid")


def source_purchases(src):
    return src.execute("SELECT purchase_id, member_id, kind, amount, at, category, refund_of, store FROM purchases "
                       "ORDER BY rowid")


def source_entries(src):
    return src.execute("SELECT member_id, at, kind, points, ref, note, by, voucher FROM entries ORDER BY rowid")


def source_manual_tiers(src, start: str, end: str):
    """(at, member_id, to_tier, until) of the tiers set by hand (`tiers set`) in the period, in order."""
    return src.execute("SELECT at, member_id, to_tier, until FROM tier_changes WHERE reason = 'manual' "
                       "AND at >= ? AND at <= ? ORDER BY at, rowid", (start, end))


def source_recalcs(src) -> list[str]:
    return [r[0] for r in src.execute("SELECT as_of FROM recalcs ORDER BY as_of")]


def source_sales(src) -> tuple[int, int, int, int]:
    """(sales, their amount, refunds, their amount) of the period."""
    row = src.execute("SELECT count(CASE WHEN kind = 'sale' THEN 1 END), "
                      "coalesce(sum(CASE WHEN kind = 'sale' THEN amount END), 0), "
                      "count(CASE WHEN kind = 'refund' THEN 1 END), "
                      "coalesce(sum(CASE WHEN kind = 'refund' THEN amount END), 0) FROM purchases").fetchone()
    return tuple(row)


# -- the scratch databases ------------------------------------------------------------------------
class _NoChain:
    """A scratch database's journal: nothing is chained (no one checks a scratch; signing it would
    cost the replay seconds and need the shop's key)."""

    def add(self, kind, record) -> None:
        pass

    def extend(self, kind, records) -> None:
        pass

    def ledger(self, first, last, last_hash) -> None:
        pass

    def write_block(self, note=None):
        return None

    def discard(self) -> None:
        pass

    def abandon(self) -> None:
        pass

    def finish(self) -> None:
        pass


class ScratchStore(Store):
    """A throwaway loyalty database in a private temporary folder: the shop's schema and writer,
    no chain, no fsync, no rollback journal (a failed replay deletes the file). Never the shop's."""

    @classmethod
    def create(cls, path: Path) -> "ScratchStore":
        store = cls.open(path, create=True, adopt=False, key_file=Path(os.devnull))
        c = store.conn
        c.execute("PRAGMA journal_mode=OFF")
        c.execute("PRAGMA synchronous=OFF")
        c.execute("PRAGMA foreign_keys=OFF")  # members arrive in id order, referrers not always first
        c.execute("PRAGMA secure_delete=OFF")
        return store

    @contextmanager
    def write(self):
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN")
        self.conn.journal = _NoChain()
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self.conn.journal = None
        self.conn.execute("COMMIT")

    @contextmanager
    def job_lock(self, name: str):
        yield  # a scratch database has one writer: the replay


def scratch_totals(tx, start: str) -> list[tuple]:
    """(kind, rule, credited, debited) of the scratch ledger's entries from `start` on; rule: a bonus's rule."""
    return tx.execute("SELECT kind, CASE WHEN kind = 'bonus' THEN note END, "
                      "sum(CASE WHEN points > 0 THEN points ELSE 0 END), sum(CASE WHEN points < 0 THEN -points ELSE 0 END) "
                      "FROM ledger WHERE at >= ? GROUP BY 1, 2 ORDER BY 1, 2", (start,)).fetchall()


def scratch_members(tx, start: str) -> list[tuple]:
    """(member_id, balance, tier, points issued, reversed, expired, redeemed) of every member of the
    scratch, from `start` on. Issued: every credit but points moved (transfers, cancelled vouchers)."""
    moved = ",".join(f"'{k}'" for k in MOVED_CREDITS)
    return tx.execute(f"""
        SELECT m.member_id, m.balance, m.tier,
               coalesce(sum(CASE WHEN e.points > 0 AND e.kind NOT IN ({moved}) THEN e.points END), 0),
               coalesce(sum(CASE WHEN e.kind = 'reversal' THEN -e.points END), 0),
               coalesce(sum(CASE WHEN e.kind = 'expire' THEN -e.points END), 0),
               coalesce(sum(CASE WHEN e.kind = 'redeem' THEN -e.points END), 0)
        FROM members m LEFT JOIN ledger e ON e.member_id = m.member_id AND e.at >= ?
        GROUP BY m.member_id ORDER BY m.member_id""", (start,)).fetchall()


def contacts(tx) -> dict[str, tuple]:
    """{member_id: (email, phone)} of every member of the shop's database (for --members)."""
    return {mid: (email, phone) for mid, email, phone in tx.execute("SELECT member_id, email, phone FROM members")}


def source_merges(src) -> list[tuple]:
    """(duplicate, member kept, at) of the merges up to the end of the period, in the order made."""
    return src.execute("SELECT member_id, into_id, at FROM merges ORDER BY rowid").fetchall()


def source_experiments(src) -> list[tuple]:
    """Every experiment's row (store.experiments.COLUMNS), by id."""
    return src.execute("SELECT id, name, variant, share, starts_on, stops_on, started_at, source FROM experiments "
                       "ORDER BY id").fetchall()


def mark_merged(tx, member_id: str, into_id: str) -> None:
    """In a scratch database: `member_id` is an alias of `into_id` from now on (a recalc passes it by)."""
    tx.execute("UPDATE members SET merged_into = ? WHERE member_id = ? OR merged_into = ?",
               (into_id, member_id, member_id))
