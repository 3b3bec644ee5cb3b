"""Reading a test's database back, in the shop's words: the one place tests open the file.

A test checks what a command left behind with a named read (`balance`, `entries`,
`members`, `purchases`, `lots`, `tier_history`, `count`, `row`), so a change of
schema touches this module, not every test. Rows come back as named tuples
with the table's own column names (`entry.kind`, `member.balance`).

Every read takes `db` as the database file's path, or as a connection the test already holds
(a Store's `conn` in a library test), read as it is, inside any transaction it has open.

`raw`, `connect` and `open_connection` are the escape hatches for the tests that mean SQL itself:
tampering with the file, hostile databases, migrations, the schema. They open
the file here too, so every test reads the database the same way.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from contextlib import contextmanager
from functools import lru_cache


def open_connection(db, **options) -> sqlite3.Connection:
    """A plain sqlite3 connection to the file at `db` (`options` as sqlite3.connect takes them)
    that the caller closes: for a test that holds a lock or a transaction across several steps.
    On the PostgreSQL run (`db` a URL): the store's own connection, which takes the same SQL."""
    if is_url(db):
        from loyalty_cli.store.postgres import connect as pg_connect

        return pg_connect(str(db), 10)
    return sqlite3.connect(db, **options)


def is_url(db) -> bool:
    """Whether `db` is the PostgreSQL run's database URL rather than a file's path."""
    from loyalty_cli.store import is_postgres_url

    return isinstance(db, str) and is_postgres_url(db)


def _errors(name: str) -> tuple[type, ...]:
    found = [getattr(sqlite3, name)]
    try:
        import psycopg
    except ImportError:  # the SQLite run needs no driver
        return tuple(found)
    return (*found, getattr(psycopg, name))


# What a statement the database refuses raises, on either backend (`pytest.raises(DatabaseError)`).
DatabaseError = _errors("DatabaseError")
IntegrityError = _errors("IntegrityError")  # a guard trigger's refusal, a constraint's


@contextmanager
def connect(db, **options):
    """`open_connection` for one block, for tests that tamper with the database: what the block
    changed is committed when it ends without an error, and the connection is closed whatever
    happens."""
    if isinstance(db, sqlite3.Connection) or hasattr(db, "raw"):  # the test's own: not ours to commit or close
        yield db
        return
    conn = open_connection(db, **options)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def raw(db, sql: str, *params) -> list[tuple]:
    """All rows of one statement, as tuples, its change committed: for what the named reads below
    do not say (a count over several columns, a join, the schema, a deliberate tampering)."""
    with connect(db) as conn:
        return conn.execute(sql, params).fetchall()


@lru_cache(maxsize=None)
def _record(table: str, columns: tuple[str, ...]):
    return namedtuple(table, columns, rename=True)


def _where(where: dict) -> tuple[str, tuple]:
    """` WHERE a = ? AND b = ?` and its values; a value of None matches NULL."""
    if not where:
        return "", ()
    terms = [f"{column} IS ?" if value is None else f"{column} = ?" for column, value in where.items()]
    return " WHERE " + " AND ".join(terms), tuple(where.values())


def rows(db, table: str, **where) -> list:
    """The rows of `table` matching every `column=value`, in the order of its first column
    (an id, or a member's or purchase's own key), as named tuples."""
    clause, params = _where(where)
    with connect(db) as conn:
        cursor = conn.execute(f"SELECT * FROM {table}{clause} ORDER BY 1", params)
        names = tuple(d[0] for d in cursor.description)
        keep = [i for i, name in enumerate(names) if name != "rowid"]  # PostgreSQL's stand-in for SQLite's
        record = _record(table, tuple(names[i] for i in keep))
        return [record(*(values[i] for i in keep)) for values in cursor]


def row(db, table: str, **where):
    """The one row of `table` matching every `column=value`, or None; more than one is an error."""
    found = rows(db, table, **where)
    assert len(found) <= 1, f"{len(found)} rows of {table} match {where}"
    return found[0] if found else None


def count(db, table: str, **where) -> int:
    """How many rows of `table` match every `column=value`."""
    clause, params = _where(where)
    return raw(db, f"SELECT count(*) FROM {table}{clause}", *params)[0][0]


def members(db) -> list:
    """Every member row (erased ones too), by member id."""
    return rows(db, "members")


def member(db, member_id: str):
    """One member's row, or None."""
    return row(db, "members", member_id=member_id)


def balance(db, member_id: str) -> int:
    """The balance a member's row holds (what `db check` compares with the sum of the ledger)."""
    return member(db, member_id).balance


def entries(db, member_id: str | None = None, kind: str | None = None) -> list:
    """Ledger entries in the order they were written, of one member and/or one kind if given."""
    where = {}
    if member_id is not None:
        where["member_id"] = member_id
    if kind is not None:
        where["kind"] = kind
    return rows(db, "ledger", **where)


def purchases(db, **where) -> list:
    """Sales and refunds by purchase id, matching every `column=value` given."""
    return rows(db, "purchases", **where)


def lots(db, member_id: str | None = None) -> list:
    """Point lots (what an earning entry left to spend or expire) in the order they were made."""
    return rows(db, "lots") if member_id is None else rows(db, "lots", member_id=member_id)


def tier_history(db, member_id: str | None = None) -> list:
    """Tier changes in the order they were recorded."""
    return rows(db, "tier_changes") if member_id is None else rows(db, "tier_changes", member_id=member_id)
