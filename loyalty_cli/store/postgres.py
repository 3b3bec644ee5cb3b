"""The PostgreSQL backend: a connection that speaks to the store's SQL, and the `Store` over it.

The store's modules write their SQL once, in the dialect SQLite and PostgreSQL share; the few
constructs that differ are rewritten here as a statement is first seen (`translate`, cached):
`?` and `:name` parameters, `INSERT OR IGNORE`, `temp.` tables, SQLite's planner hints. What
cannot be rewritten mechanically (the schema, its triggers, the catalogue queries) is written
per backend (store.pg_schema, and `dialect` branches in the store's modules).

Transactions are explicit, as on SQLite: the connection is in autocommit mode and the store
issues BEGIN and COMMIT itself. Every write transaction first takes one advisory lock per
database (`pg_advisory_xact_lock`), PostgreSQL's equivalent of SQLite's BEGIN IMMEDIATE: the
hash chains, id allocation and lot consumption are written by one till at a time, and a till
that waits longer than LOYALTY_BUSY_TIMEOUT gets `Busy` (exit 75).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from functools import lru_cache
import itertools

from loyalty_cli.errors import Busy, LoyaltyError, UsageError
from loyalty_cli.i18n import M_, _

WRITE_LOCK = 0x4C4F5931          # the advisory lock every write transaction takes ("LOY1")
TAKE_WRITE_LOCK = f"SELECT pg_advisory_xact_lock({WRITE_LOCK})"
JOB_LOCKS = 0x4C4F5932           # + a job's number: the nightly jobs' locks
UNREACHABLE = 75
# Once a writer holds the write lock, the row locks it meets are another program's (an operator's
# session): waited for this long, then the command fails with exit 75 rather than hang a till.
LOCK_TIMEOUT_AFTER = "30s"
ANALYZE_AFTER_ROWS = 100_000  # rows an import wrote, from which it refreshes the planner's statistics


def redact(url: str) -> str:
    """The URL with any password replaced by ***: what every message shows."""
    url = re.sub(r"^([a-z]+://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url, flags=re.I)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


class Location(str):
    """Where a PostgreSQL database is, as the messages name it (never with its password)."""

    def __new__(cls, url: str):
        self = super().__new__(cls, redact(url))
        self.url = url
        return self

    def resolve(self) -> "Location":  # (`init` names the file it made by its real path)
        return self


def driver():
    """psycopg, or a one-line error saying which extra to install (exit 2)."""
    try:
        import psycopg
    except ImportError:
        raise UsageError(M_("a PostgreSQL --db needs the PostgreSQL driver: pip install 'loyalty[postgres]' (it installs psycopg)")) from None
    return psycopg


# -- the SQL: SQLite's spelling rewritten for PostgreSQL -----------------------------------
_LITERALS = re.compile(r"('(?:[^']|'')*')")


def _member_totals():
    from loyalty_cli.store.migrations import MEMBER_TOTALS

    return "member_id", list(MEMBER_TOTALS)


# The tables the store writes with INSERT OR REPLACE: (their key, the columns replaced).
_REPLACE_KEYS = {"member_totals": _member_totals}
# SQLite's catalogue, as PostgreSQL's (the schema of the URL; temporary tables are not in it). `sql`
# is the object's definition as PostgreSQL states it (a table's: its columns, types and defaults).
SQLITE_MASTER = """(SELECT 'table' AS type, c.relname AS name, c.relname AS tbl_name,
       (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                          || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                          || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                          || CASE WHEN a.attgenerated = 's' THEN ' GENERATED' ELSE '' END
                          || CASE WHEN a.attidentity != '' THEN ' IDENTITY' ELSE '' END, ', ' ORDER BY a.attnum)
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
       || coalesce((SELECT ' ' || string_agg(pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)
                      FROM pg_constraint k WHERE k.conrelid = c.oid), '') AS sql
  FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'index', i.relname, t.relname, replace(pg_get_indexdef(i.oid), current_schema() || '.', '')
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
 WHERE t.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT 'trigger', g.tgname, t.relname, replace(pg_get_triggerdef(g.oid), current_schema() || '.', '')
       || CASE g.tgenabled WHEN 'O' THEN '' ELSE ' (DISABLED)' END
       || ' ' || md5(p.prosrc)
  FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_proc p ON p.oid = g.tgfoid
 WHERE NOT g.tgisinternal AND t.relnamespace = current_schema()::regnamespace) AS sqlite_master"""
_PRAGMAS = {
    "integrity_check": "SELECT 'ok'",
    "foreign_key_check": "SELECT NULL, NULL, NULL, NULL WHERE false",   # PostgreSQL enforces them always
    "user_version": "SELECT count(*) FROM migrations",
    "cache_size": "SELECT 0",
}


def _rewrite(code: str) -> str:
    """One stretch of SQL outside string literals."""
    code = code.replace("?", "%s")
    code = re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", r"%(\1)s", code)
    code = re.sub(r"\btemp\.", "pg_temp.", code)
    code = re.sub(r"\bmain\.", "", code)
    code = re.sub(r"\)\s*WITHOUT ROWID", ")", code)
    code = re.sub(r"(?<=[\s(])\+(?=[a-z_])", "", code)       # SQLite's "not by this index" hint
    code = code.replace("CROSS JOIN", "JOIN")                # SQLite's "join in this order" hint
    code = re.sub(r"(\w+(?:\.\w+)?) = %s COLLATE NOCASE", r"lower(\1) = lower(%s)", code)
    # ORDER BY x COLLATE NOCASE: lower() of C text folds ASCII only, as NOCASE does; NULLs first, as
    # SQLite sorts them (the other ORDER BYs are on columns that are never NULL where they sort)
    code = re.sub(r"(\w+(?:\.\w+)?) COLLATE NOCASE", r"lower(\1) NULLS FIRST", code)
    code = re.sub(r"\bfold\((\w+)\)", r'lower(\1 COLLATE "und-x-icu")', code)  # ICU: Unicode case folding
    code = re.sub(r"\bAS INTEGER\)", "AS BIGINT)", code)
    code = re.sub(r"\[(\w+)\]", r'"\1"', code)
    code = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGINT PRIMARY KEY", code)
    code = re.sub(r"\bIN \(\s*\)", "IN (SELECT NULL WHERE false)", code)  # an empty list: SQLite takes it
    return code


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    pragma = re.match(r"\s*PRAGMA (\w+)(?:\s*=.*|\((\w+)\))?\s*$", sql)
    if pragma:
        name, table = pragma.groups()
        if name == "table_info":
            return ("SELECT ordinal_position - 1, column_name FROM information_schema.columns WHERE "
                    f"table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position")
        return _PRAGMAS[name]
    sql = _scalar_extremes(sql.replace("sqlite_master", SQLITE_MASTER_MARK))
    parts = _LITERALS.split(sql.replace("%", "%%"))
    text = "".join(part if i % 2 else _rewrite(part) for i, part in enumerate(parts))
    ignore = re.match(r"\s*INSERT OR IGNORE INTO", text, flags=re.I)
    if ignore:
        text = "INSERT INTO" + text[ignore.end():] + " ON CONFLICT DO NOTHING"
    replace = re.match(r"\s*INSERT OR REPLACE INTO (\w+)", text, flags=re.I)
    if replace:
        table = replace.group(1)
        text = "INSERT INTO" + text[replace.end() - len(table) - 1:]
        key, names = _REPLACE_KEYS[table]()
        sets = ", ".join(f"{n} = excluded.{n}" for n in names if n != key)
        text += f" ON CONFLICT ({key}) DO UPDATE SET {sets}"
    return text.replace(SQLITE_MASTER_MARK, SQLITE_MASTER.replace("%", "%%"))


_IN_LIST = re.compile(r"( NOT)? IN \(((?:%s,\s*)+%s)\)")


@lru_cache(maxsize=1024)
def with_arrays(sql: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`translate(sql)` with each list of two or more parameters (`x IN (?,?,?)`, a chunk of ids)
    as one array parameter (`x = ANY(%s)`): one statement text whatever the chunk's length, so
    PostgreSQL plans it once; and the (first parameter, count) of each list, to gather them."""
    text = translate(sql)
    if " IN (%s," not in text:
        return text, ()
    groups, out, last = [], [], 0
    for match in _IN_LIST.finditer(text):
        before = text[last:match.start()]
        out.append(before + (" <> ALL(%s)" if match.group(1) else " = ANY(%s)"))
        first = text[:match.start()].count("%s") - text[:match.start()].count("%%s")
        groups.append((first, match.group(2).count("%s")))
        last = match.end()
    out.append(text[last:])
    return "".join(out), tuple(groups)


def _gather(params, groups) -> list:
    params = list(params)
    for first, count in reversed(groups):
        params[first:first + count] = [params[first:first + count]]
    return params


def _scalar_extremes(sql: str) -> str:
    """SQLite's max(a, b) and min(a, b) of two or more values are PostgreSQL's greatest and least."""
    out, i = [], 0
    for match in re.finditer(r"\b(max|min)\(", sql, flags=re.I):
        start = match.end()
        depth, commas, quoted, j = 1, 0, False, start
        while j < len(sql) and depth:
            ch = sql[j]
            if ch == "'":
                quoted = not quoted
            elif not quoted:
                depth += ch == "("
                depth -= ch == ")"
                commas += ch == "," and depth == 1
            j += 1
        if commas:
            out.append(sql[i:match.start()] + ("greatest(" if match.group(1).lower() == "max" else "least("))
            i = start
    out.append(sql[i:])
    return "".join(out)


SQLITE_MASTER_MARK = "\x00sqlite_master\x00"


_INSERT = re.compile(r"\s*INSERT INTO (\w+) \(([^)]*)\) VALUES \(([?,\s]*)\)\s*$", re.I)
_UPDATE = re.compile(r"\s*UPDATE (\w+) SET ((?:\w+ = \?,\s*)*\w+ = \?) WHERE (\w+) = \?\s*$", re.I)
# A batch this long is one statement: plain INSERTs stream through COPY, plain UPDATEs by key
# join an unnest() of the batch's columns, and a statement over one member at a time (the
# member_totals upsert) runs once over them all. A shorter one is pipelined row by row.
BATCH_FROM_ROWS = 8
_SQL_TYPES = ((bool, "boolean"), (int, "bigint"), (float, "double precision"), (str, "text"), (bytes, "bytea"))


def _column_type(values) -> str:
    for value in values:
        if value is not None:
            for python, sql in _SQL_TYPES:
                if isinstance(value, python):
                    return sql
    return "text"


def _update_by_key(match, rows: list) -> tuple[str, list]:
    """`UPDATE t SET a = ?, b = ? WHERE k = ?` over many rows as one statement (and its parameters)."""
    table, sets, key = match.group(1), match.group(2), match.group(3)
    names = [part.split("=")[0].strip() for part in sets.split(",")] + [key]
    columns = list(zip(*rows))
    arrays = ", ".join(f"%s::{_column_type(values)}[]" for values in columns)
    assigned = ", ".join(f"{name} = v.c{i}" for i, name in enumerate(names[:-1]))
    listed = ", ".join(f"c{i}" for i in range(len(names)))
    sql = (f"UPDATE {table} SET {assigned} FROM unnest({arrays}) AS v({listed}) "
           f"WHERE {table}.{key} = v.c{len(names) - 1}")
    return sql, [list(values) for values in columns]


def _per_member() -> dict[str, str]:
    """The statements run once per member that can run once for a list of members."""
    from loyalty_cli.store.ledger import UPDATE_TOTALS

    return {UPDATE_TOTALS: translate(UPDATE_TOTALS).replace("WHERE p.member_id = %s", "WHERE p.member_id = ANY(%s)")}


_PER_MEMBER: dict[str, str] | None = None


def _batched(sql: str) -> str | None:
    """The one-statement form of a per-member statement, or None."""
    global _PER_MEMBER
    if _PER_MEMBER is None:
        _PER_MEMBER = _per_member()
    return _PER_MEMBER.get(sql)


class Cursor:
    """The part of sqlite3.Cursor the store uses."""

    def __init__(self, cur, rowcount: int | None = None):
        self._cur = cur
        self._rows = cur.pgresult is not None and cur.pgresult.nfields > 0  # (description builds objects)
        self.rowcount = cur.rowcount if rowcount is None else rowcount

    def fetchone(self):
        return self._cur.fetchone() if self._rows else None

    def fetchall(self):
        return self._cur.fetchall() if self._rows else []

    def fetchmany(self, size: int):
        return self._cur.fetchmany(size) if self._rows else []

    def __iter__(self):
        return self

    def __next__(self):
        row = self._cur.fetchone() if self._rows else None
        if row is None:
            raise StopIteration
        return row

    @property
    def description(self):
        return self._cur.description


_STREAMS = itertools.count(1)


class _Stream:
    """A server-side cursor that reads like sqlite3's (iteration, fetchmany, fetchall)."""

    def __init__(self, cur):
        self._cur = cur
        self._it = iter(cur)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def fetchone(self):
        return next(self._it, None)

    def fetchmany(self, size: int):
        return self._cur.fetchmany(size)

    def fetchall(self):
        return self._cur.fetchall()


class Connection:
    """A psycopg connection that takes the store's SQL and behaves like sqlite3.Connection where
    the store relies on it (explicit BEGIN/COMMIT, `in_transaction`, `total_changes`, a journal)."""

    dialect = "postgresql"
    journal = None

    def __init__(self, raw, url: str = ""):
        self.raw = raw
        self.url = url
        self.total_changes = 0

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return not self.raw.closed and self.raw.info.transaction_status != TransactionStatus.IDLE

    def _mid_command(self) -> bool:
        """Whether the connection is still busy with a command: a Ctrl-C came while psycopg was
        sending it or reading its result, outside the wait that cancels it."""
        from psycopg.pq import TransactionStatus

        return self.raw.closed or self.raw.info.transaction_status == TransactionStatus.ACTIVE

    def abandon(self) -> None:
        """End a connection that is mid-command: cancel the command and close the connection, so
        the server rolls back whatever the transaction had begun (a ROLLBACK there would only be
        refused: "another command is already in progress")."""
        if self.raw.closed:
            return
        try:
            self.raw.cancel()
        except Exception:  # the cancel is a courtesy: closing is what ends the transaction
            pass
        self.raw.close()

    def execute(self, sql: str, params=()):
        if sql in ("ROLLBACK", "COMMIT") and self._mid_command():  # after a Ctrl-C mid-command
            self.abandon()
            return None
        if sql == "BEGIN IMMEDIATE":  # SQLite's "begin, as the writer": the write lock (see the docstring)
            self.raw.execute("BEGIN")
            sql = TAKE_WRITE_LOCK
        cur = self.raw.cursor()
        params = params if params is not None else ()
        if isinstance(params, dict):
            cur.execute(translate(sql), params)
        else:
            text, groups = with_arrays(sql)
            cur.execute(text, _gather(params, groups) if groups else params)
        result = Cursor(cur)
        if cur.rowcount > 0 and not result._rows:
            self.total_changes += cur.rowcount
        return result

    def executemany(self, sql: str, rows):
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return Cursor(self.raw.cursor(), 0)
        cur = self.raw.cursor()
        insert = _INSERT.match(sql) if len(rows) >= BATCH_FROM_ROWS else None
        update = _UPDATE.match(sql) if len(rows) >= BATCH_FROM_ROWS and not insert else None
        if insert:
            table, columns = insert.group(1), insert.group(2)
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif update and len(set(row[-1] for row in rows)) == len(rows):  # each key once: one pass does it
            statement, params = _update_by_key(update, rows)
            cur.execute(statement, params)
        elif len(rows) >= BATCH_FROM_ROWS and (batched := _batched(sql)):
            cur.execute(batched, ([row[0] for row in rows],))
        else:
            cur.executemany(translate(sql), rows)
        self.total_changes += len(rows)
        return Cursor(cur, len(rows))

    def stream(self, sql: str, params=()):
        """A server-side cursor (inside the transaction the caller holds), fetched 5,000 rows at a time."""
        name = f"loyalty_stream_{next(_STREAMS)}"
        cur = self.raw.cursor(name=name)
        cur.itersize = 5_000
        text, groups = with_arrays(sql)
        cur.execute(text, _gather(params, groups) if groups else params)
        return _Stream(cur)

    def commit(self) -> None:
        """(autocommit: every statement outside BEGIN is committed as it runs)"""
        if self.in_transaction:
            self.raw.execute("COMMIT")

    def close(self) -> None:
        self.raw.close()


def _loaders(raw) -> None:
    """Values as SQLite gives them: booleans as 0/1, sums of integers as int (PostgreSQL's
    numeric), other numerics as float."""
    from psycopg.adapt import Loader

    class IntBool(Loader):
        def load(self, data):
            return 1 if bytes(data) == b"t" else 0

    class Number(Loader):
        def load(self, data):
            text = bytes(data).decode()
            if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
                return float(text)
            return int(text)

    raw.adapters.register_loader("bool", IntBool)
    raw.adapters.register_loader("numeric", Number)


def connect(url: str, timeout: float):
    """A connection to the database at `url`, in autocommit mode (the store begins and ends its
    transactions); a server that cannot be reached is `Busy`-like exit 75, with the URL redacted."""
    psycopg = driver()
    _quiet_driver()
    try:
        # jit off: PostgreSQL compiles a query whose estimated cost is high (the reports' EXISTS over
        # members: 190 ms of compiling for 20 ms of work); a shop's queries never gain from it.
        # (Added to the URL's own `options`, if it has any.)
        given = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
        raw = psycopg.connect(url, autocommit=True, connect_timeout=max(2, int(min(timeout, 60))),
                              application_name="loyalty", options=f"{given} -c jit=off".strip())
    except psycopg.OperationalError as exc:
        if re.search(r"invalid \S+ value|invalid connection option|invalid URI", str(exc)):  # a URL's setting
            raise UsageError(M_("--db {redact} has a setting libpq refuses ({first_line})", redact=redact(url), first_line=first_line(exc, url))) from None
        raise Unreachable(url, exc) from None
    except psycopg.ProgrammingError as exc:  # a URL libpq cannot parse
        raise UsageError(M_("--db {redact} is not a PostgreSQL URL libpq understands ({first_line})", redact=redact(url), first_line=first_line(exc, url))) from None
    _loaders(raw)
    return Connection(raw, url)


def _quiet_driver() -> None:
    """psycopg logs a warning when a failed batch's pipeline is closed: the command reports the
    failure itself, on one line."""
    import logging

    log = logging.getLogger("psycopg")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False


def expected_catalogue(conn, ran: tuple[str, ...], catalogue_sql: str) -> list[tuple]:
    """The catalogue (`catalogue_sql`'s rows) of a new database that had the migrations named `ran`:
    made in a scratch schema on a second connection, read, and rolled back."""
    from loyalty_cli.store import pg_schema
    from loyalty_cli.store.migrations import MIGRATIONS

    other = connect(conn.url, 10)
    try:
        other.raw.execute("BEGIN")
        scratch = f"loyalty_expected_{os.getpid()}"
        other.raw.execute(f"CREATE SCHEMA {scratch}")
        other.raw.execute(f"SET LOCAL search_path TO {scratch}")
        other.raw.execute(pg_schema.MIGRATIONS_TABLE)
        for migration in MIGRATIONS:
            if migration.__name__ in ran:
                for statement in pg_schema.statements(migration):
                    other.raw.execute(statement)
        rows = other.execute(catalogue_sql).fetchall()
        other.raw.execute("ROLLBACK")
        return rows
    finally:
        other.close()


def first_line(exc: BaseException, url: str = "") -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = re.search(r"^[a-z]+://[^:/@?#]*:([^@/?#]*)@", url, flags=re.I)
    if password and password.group(1):
        text = text.replace(password.group(1), "***")
    return text


class Unreachable(LoyaltyError):
    """The server did not take the connection: exit 75 when it may work later (a server down, a
    refused or dropped connection), 1 when it never will as given (no such database or role, a
    password refused: the URL or the server's settings must change)."""

    exit_code = UNREACHABLE

    def __init__(self, url: str, exc: BaseException):
        words = first_line(exc, url)
        said = re.search(r"FATAL:\s*(.*)$", words)
        if said and re.search(r"does not exist|authentication failed|no password|not permitted|"
                              r"no pg_hba.conf entry|permission denied", said.group(1)):
            self.exit_code = 1
            super().__init__(_("the database server at {redact} refused the connection: {group}; check the URL (database, role, password) and the server's settings").format(redact=redact(url), group=said.group(1)))
            return
        super().__init__(_("cannot reach the database at {redact} ({words}); check that the server is running and the URL, then run the command again").format(redact=redact(url), words=words))


def failure(exc: BaseException, where) -> LoyaltyError | None:
    """The one-line error for a PostgreSQL failure a user can cause or suffer, or None."""
    import psycopg
    from psycopg import errors

    if not isinstance(exc, psycopg.Error):
        return None
    if isinstance(exc, (errors.LockNotAvailable, errors.QueryCanceled, errors.DeadlockDetected,
                        errors.SerializationFailure)):
        return Busy(BUSY_MESSAGE)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        from loyalty_cli.store import saved_changes

        state = _("the command stopped after saving part of its work") if saved_changes() else _("nothing was written")
        error = LoyaltyError(M_("lost the connection to the database at {where} ({first_line}): {state}; check the server, then run the command again", where=where, first_line=first_line(exc), state=state))
        error.exit_code = UNREACHABLE
        return error
    if isinstance(exc, (errors.InsufficientPrivilege,)):
        return LoyaltyError(M_("permission denied on the database at {where} ({first_line}); the role in the URL must own the database", where=where, first_line=first_line(exc)))
    if isinstance(exc, (errors.DiskFull,)):
        return LoyaltyError(M_("the database server's disk is full ({where}): nothing was written", where=where))
    return None


# -- the store ------------------------------------------------------------------------------
from loyalty_cli.store import BUSY_MESSAGE, MIGRATED_AT_UNKNOWN, Store, busy_timeout, postgres_url  # noqa: E402


def _catalogue(conn) -> tuple[int, int | None]:
    """(how many tables the URL's schema holds, how many of loyalty's migrations it had, or None
    without a migrations table), in one round trip."""
    tables, has_migrations = conn.raw.execute(
        "SELECT count(*), count(*) FILTER (WHERE c.relname = 'migrations') FROM pg_class c "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')").fetchone()
    if not has_migrations:
        return tables, None
    return tables, conn.raw.execute("SELECT count(*) FROM migrations").fetchone()[0]


class PgStore(Store):
    """A loyalty database in PostgreSQL (see the module's docstring)."""

    dialect = "postgresql"
    _ready = False  # the schema is there (the sequences to resync at every write exist)
    _ran = None     # how many migrations the database had when opened

    @classmethod
    def open(cls, db=None, migrate: bool = True, create: bool = False, now: str | None = None,
             _retried: bool = False, key_file=None, adopt: bool = True) -> "PgStore":
        from loyalty_cli.store.migrations import MIGRATIONS

        url = postgres_url(db)
        where = Location(url)
        conn = connect(url, busy_timeout())
        try:
            tables, ran = _catalogue(conn)
            if ran is None and tables:
                raise LoyaltyError(M_("the database at {where} holds another application's tables (none of loyalty's); give --db an empty database or a loyalty one", where=where))
            if ran is None and not create:
                raise LoyaltyError(M_("no loyalty database at {where} (it has no tables); nothing was created: create one there with: loyalty init --db '{where}'", where=where))
            if ran is not None and ran > len(MIGRATIONS):
                raise LoyaltyError(M_("{where} was made by a newer version of loyalty (schema {ran}; this one knows {n_migrations}); upgrade loyalty to use it", where=where, ran=ran, n_migrations=len(MIGRATIONS)))
            store = cls(where, conn, now, key_file, adopt)
            store._ran = ran
            # A database a migration is still to run on may lack a sequence RESYNC names (a table
            # the migration makes): it is resynced once migrated.
            store._ready = bool(ran) and ran >= len(MIGRATIONS)
            if migrate:
                store.migrate()
        except BaseException:
            conn.close()
            raise
        from loyalty_cli.store import forget_saved

        forget_saved()
        return store

    def migrate(self) -> list[str]:
        from loyalty_cli.store import pg_schema
        from loyalty_cli.store.migrations import MIGRATIONS

        ran = self._ran
        if ran is not None and ran >= len(MIGRATIONS):
            self._ready = True
            return []
        done = []
        with self.write():
            c = self.conn
            c.raw.execute(pg_schema.MIGRATIONS_TABLE)
            applied = {r[0] for r in c.execute("SELECT name FROM migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ in applied:
                    continue
                for statement in pg_schema.statements(migration):
                    c.raw.execute(statement)
                c.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                          (migration.__name__, self.now or MIGRATED_AT_UNKNOWN))
                done.append(migration.__name__)
            if "m009_chain" in done and self.adopt:  # once every migration ran (see Store.migrate)
                self._adopt()
        self._ready = True
        return done

    def _begin_immediate(self) -> None:
        from loyalty_cli.store import pg_schema

        timeout = busy_timeout()
        c = self.conn
        try:
            # One round trip: begin, wait for the write lock (at most the busy timeout), then
            # close the sequences' gaps (see pg_schema), once the schema is there.
            resync = f"; {pg_schema.RESYNC}" if self._ready else ""
            c.raw.execute(f"BEGIN; SET LOCAL lock_timeout = '{max(1, int(timeout * 1000))}ms'; "
                          f"{TAKE_WRITE_LOCK}; "
                          f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_AFTER}'{resync}")
        except BaseException as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            found = failure(exc, self.path) if not isinstance(exc, (KeyboardInterrupt, LoyaltyError)) else None
            if found is not None:
                raise found from None
            raise

    @contextmanager
    def read(self):
        """A read transaction: every query inside sees one snapshot (REPEATABLE READ)."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            yield self.conn
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")  # (or, interrupted mid-command, the connection abandoned)

    @contextmanager
    def bulk_write(self):
        """`write()`, then, after an import that wrote many rows, ANALYZE: the planner's statistics
        are the tables' as they were (a report right after a first big import would otherwise be
        planned for empty tables until autovacuum comes by)."""
        before = self.conn.total_changes
        with self.write() as conn:
            yield conn
        if self.conn.total_changes - before >= ANALYZE_AFTER_ROWS:
            self.conn.raw.execute("ANALYZE purchases, ledger, lots, lot_uses, members, member_totals, "
                                  "daily_sales, daily_points")

    def close(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        finally:
            self.conn.close()
        self.tell()

    @contextmanager
    def job_lock(self, name: str):
        """The nightly jobs' lock, per database and job, held for the session: a second run (on any
        machine) gets `Busy` at once."""
        import zlib

        number = zlib.crc32(name.encode()) & 0x7FFFFFFF
        got = self.conn.raw.execute("SELECT pg_try_advisory_lock(%s, %s)", (JOB_LOCKS, number)).fetchone()[0]
        if not got:
            raise Busy(M_("another '{name}' job is running on {path}; try again when it has finished", name=name, path=self.path))
        try:
            yield
        finally:
            if not self.conn.raw.closed:
                self.conn.raw.execute("SELECT pg_advisory_unlock(%s, %s)", (JOB_LOCKS, number))

    def backup_to(self, target_path) -> list[str]:
        raise LoyaltyError(M_("db backup writes SQLite files; on PostgreSQL copy the database to one with: loyalty db copy --to {target_path} (or use pg_dump)", target_path=target_path))

    def restore_from(self, backup) -> None:
        raise LoyaltyError(M_("db restore replaces a SQLite file; to bring a backup into PostgreSQL, copy it into an empty database: loyalty --db {path} db copy --to URL", path=backup.path))

    def remove_stale_partials(self) -> list[str]:
        return []

    def checkpoint(self) -> bool:
        """After an erasure: VACUUM the tables that held the personal data, so that the old row
        versions (dead, but still on their pages and in the indexes) are removed; what the WAL and
        its archives keep is the server's (README). False when another session's lock kept it off."""
        from psycopg import errors

        try:
            self.conn.raw.execute(f"SET lock_timeout = '{max(1, int(busy_timeout() * 1000))}ms'")
            self.conn.raw.execute("VACUUM members, feedback")
        except (errors.LockNotAvailable, errors.QueryCanceled):
            return False
        finally:
            self.conn.raw.execute("RESET lock_timeout")
        return True
