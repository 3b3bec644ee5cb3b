"""The only module that opens SQLite: location, file modes, pragmas, transactions, locks.

Every write goes through `Store.write()`, which begins with `BEGIN IMMEDIATE`, so a
writer waits for the busy timeout at the start instead of failing half-way when
a deferred transaction tries to upgrade. Failing to get the database in time is
`Busy` (exit 75), never a traceback.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

from loyalty_cli.errors import Busy, LoyaltyError, UsageError
from loyalty_cli.store.migrations import APPLICATION_ID, MIGRATIONS, MIGRATIONS_TABLE
from loyalty_cli.i18n import M_, _

DEFAULT_BUSY_TIMEOUT = 5.0
MAX_BUSY_TIMEOUT = 2_147_483  # SQLite takes milliseconds as a 32-bit int: beyond it, no wait at all
CACHE_KIB = 16 * 1024       # SQLite's page cache for every command
BULK_CACHE_KIB = 32 * 1024  # … and for an import's transaction (see Store.bulk_write)
# When a migration ran, for a Store opened without the caller's time (library use, tests).
MIGRATED_AT_UNKNOWN = "unknown"


class Connection(sqlite3.Connection):
    """A connection that carries the chain journal of its write transaction (store.chain): every
    store function that writes records what it wrote there, and `Store.write` chains it."""

    journal = None
    dialect = "sqlite"


def dialect(conn) -> str:
    """"sqlite" or "postgresql": which SQL the connection speaks (a plain sqlite3 connection: SQLite)."""
    return getattr(conn, "dialect", "sqlite")


IN_LIST = 500  # values in one `IN (…)` list: well under SQLite's 32,766 parameters, and a plan still cheap


def in_parts(values: list):
    """`values` IN_LIST at a time, each part with its placeholders: (part, "?,?,…") for `IN ({marks})`."""
    for start in range(0, len(values), IN_LIST):
        part = values[start:start + IN_LIST]
        yield part, ",".join("?" * len(part))


def stream(conn, sql: str, params=()):
    """The rows of a query that may return millions (db check, db copy), read a batch at a time:
    SQLite's cursor already steps through them; PostgreSQL's would load them all (store.postgres)."""
    streaming = getattr(conn, "stream", None)
    return streaming(sql, params) if streaming is not None else conn.execute(sql, params)


def postgres_url(db) -> str | None:
    """The PostgreSQL URL `--db` (or else LOYALTY_DB) names, or None when it names a file."""
    text = (str(db) if db is not None else os.environ.get("LOYALTY_DB", "")).strip()
    return text if text.lower().startswith(("postgresql://", "postgres://")) else None


def is_postgres_url(db) -> bool:
    """Whether `--db` (or else LOYALTY_DB) names a PostgreSQL database rather than a file."""
    return postgres_url(db) is not None


@contextmanager
def page_cache(conn: sqlite3.Connection, kib: int):
    """SQLite's page cache at `kib` KiB for a while, then back to what it was."""
    (before,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute(f"PRAGMA cache_size=-{kib}")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA cache_size={before}")


def default_path() -> Path:
    """`$XDG_DATA_HOME/loyalty/loyalty.db`, else `~/.local/share/loyalty/loyalty.db`."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "loyalty" / "loyalty.db"


def resolve_path(db: str | os.PathLike | None = None) -> Path:
    """`--db` beats `LOYALTY_DB` beats the XDG default (a PostgreSQL URL: its Location, named
    without its password)."""
    url = postgres_url(db)
    if url is not None:
        from loyalty_cli.store.postgres import Location

        return Location(url)
    if db is not None:
        if not str(db).strip():
            raise LoyaltyError(M_("--db was given an empty path; give the path of a database file"))
        return Path(db)
    env = os.environ.get("LOYALTY_DB")
    if env is not None:
        if not env.strip():  # set but empty: an unset shell variable, not a wish for the default database
            raise UsageError(M_("LOYALTY_DB is set but empty; give it the path of a database file, or unset it"))
        return Path(env)
    return default_path()


def busy_timeout() -> float:
    raw = os.environ.get("LOYALTY_BUSY_TIMEOUT", "")
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(M_("LOYALTY_BUSY_TIMEOUT must be a number of seconds, got {raw!r}", raw=raw)) from None
    if not 0 <= value <= MAX_BUSY_TIMEOUT:  # NaN fails too
        raise UsageError(M_("LOYALTY_BUSY_TIMEOUT must be from 0 to {max_busy_timeout:,} seconds, got {raw!r}", max_busy_timeout=MAX_BUSY_TIMEOUT, raw=raw))
    return value


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's "database is locked/busy" after the busy timeout ran out."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_read_only(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc).lower()


def read_only_message(path) -> str:
    return (_("cannot write to {path}: the file or its folder is read-only (SQLite also writes {name}-wal and -shm beside it)").format(path=path, name=Path(path).name))


def _taken(target: Path) -> LoyaltyError:
    return LoyaltyError(M_("{target} already exists; choose a new file name for the backup", target=target))


def _place(partial: Path, target: Path) -> None:
    """Give a finished file its name, never overwriting one: a hard link fails if the name is
    taken. Where links do not exist (FAT and exFAT sticks, many network shares), the name is
    reserved with an exclusive create and the file renamed over that empty reservation."""
    try:
        os.link(partial, target)
        return
    except FileExistsError:
        raise _taken(target) from None
    except OSError:
        pass
    try:
        os.close(create_private_file(target, exclusive=True))
    except FileExistsError:
        raise _taken(target) from None
    os.replace(partial, target)


def _backup_disk_full(target: Path) -> LoyaltyError:
    return LoyaltyError(M_("the disk holding {target} is full: no backup was written; free some space there (or back up to another disk) and run the command again", target=target))


PARTIAL_MARK = ".partial-"  # a backup being written: .NAME.partial-XXXXXXXX beside NAME


def _open_private(path) -> int:
    """Open a small file beside the database for reading and writing, creating it 0600."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _remove_partial(partial: Path) -> bool | None:
    """Delete a partial backup and SQLite's files beside it: True if it was there, False if not,
    None if it could not be deleted (kept on the list, to try again). Only names a backup gives
    its partial are touched, whatever the list beside the database says."""
    import re

    if not re.fullmatch(r"\..+\.partial-[0-9a-f]{8}", partial.name):
        return False
    existed = os.path.lexists(partial)
    for leftover in (partial, *(Path(f"{partial}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
        try:
            leftover.unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError:
            return None
    return existed


def foreign_or_newer(conn: sqlite3.Connection, path) -> str | None:
    """Why this SQLite database is not one this loyalty may open, or None (for backups, opened
    read-only: a live database is recognised from its header by `examine` before it is opened)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        return newer_message(path, version)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "migrations" not in tables:
        return (_("{path} is another application's SQLite database (it has tables, none of loyalty's); give --db a new file or a loyalty database").format(path=path))
    return None


def newer_message(path, version: int) -> str:
    return (_("{path} was made by a newer version of loyalty (schema {version}; this one knows {n_migrations}); upgrade loyalty to use it").format(path=path, version=version, n_migrations=len(MIGRATIONS)))


# -- recognising a database file before SQLite opens it -----------------------------------
# What `examine` finds at a path. Only OURS and LEGACY are opened; nothing else is touched in
# any way (opening with sqlite3 would switch a foreign file to WAL and leave -wal/-shm beside it).
MISSING, EMPTY, OURS, LEGACY = "missing", "empty", "ours", "legacy"
SQLITE_MAGIC = b"SQLite format 3\x00"


def _header(path: Path) -> bytes:
    """The first 100 bytes of the file: SQLite's database header."""
    with open(path, "rb") as f:
        return f.read(100)


def examine(path: Path) -> str:
    """What the file at `path` is, read from its bytes without opening it with SQLite: MISSING,
    EMPTY (0 bytes), OURS (loyalty's application id in the header) or LEGACY (a loyalty database
    from before the id: its `migrations` table holds exactly our first migrations). Anything else
    raises LoyaltyError (exit 1) saying what the file is, and the file is left as it was."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # /dev/null, a pipe: never chmod-ed, never read
            raise NotOurs(path, _("not a regular file"))
        header = _header(path)
    except FileNotFoundError:
        return MISSING
    if not header:
        return EMPTY
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise NotOurs(path, _("not an SQLite database file"))
    user_version = int.from_bytes(header[60:64], "big")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id == APPLICATION_ID:
        if user_version > len(MIGRATIONS):
            raise LoyaltyError(newer_message(path, user_version))
        return OURS
    if application_id == 0 and _made_by_earlier_loyalty(path, user_version):
        return LEGACY
    raise NotOurs(path, _("another application's SQLite database"))


class NotOurs(LoyaltyError):
    """A file that is not a loyalty database; `what` says what it is instead."""

    def __init__(self, path, what: str):
        super().__init__(_("{path} is not a loyalty database ({what}); nothing was changed: give --db the path of your loyalty database, or a new file to create with: loyalty init --db PATH").format(path=path, what=what))
        self.what = what


def _made_by_earlier_loyalty(path: Path, user_version: int) -> bool:
    """A database made before loyalty stamped its application id: `migrations` lists exactly the
    first `user_version` of our migrations (the old migrate() set both in one transaction).
    Read with `immutable=1`, which takes no lock and creates no -wal or -shm file; if the file has
    live -wal and -shm files (a writer is at work, or one crashed), what is only in the WAL is read
    with mode=ro, which uses those existing files."""
    from urllib.parse import quote

    if not 1 <= user_version <= len(MIGRATIONS):
        return False
    expected = sorted(m.__name__ for m in MIGRATIONS[:user_version])
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    modes = ["&immutable=1"]
    if Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists():
        modes.append("")
    for extra in modes:
        try:
            conn = sqlite3.connect(uri + extra, uri=True)
            try:
                columns = [r[1] for r in conn.execute("PRAGMA table_info(migrations)")]
                if columns != ["name", "applied_at"]:
                    continue
                names = sorted(r[0] for r in conn.execute("SELECT name FROM migrations"))
            finally:
                conn.close()
        except sqlite3.Error:
            continue
        if names == expected:
            return True
    return False


def dangling_message(path: Path) -> str:
    """A symbolic link whose target does not exist: never created through silently (the target is
    often on a disk that is not mounted, or in a folder that moved: a new empty database there
    would hide the real one)."""
    import shlex

    target = os.readlink(path)
    where = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), target))
    return (_("{path} is a symbolic link to {target}, which does not exist; nothing was created: create the database at the link's target (loyalty init --db {quote}), or remove the link").format(path=path, target=target, quote=shlex.quote(where)))


def missing_message(path: Path, db) -> str:
    """Where a command looked for the database, and how to create one there on purpose."""
    import shlex

    where = os.path.abspath(path)
    create = _("loyalty init --db {quote}").format(quote=shlex.quote(where))
    if db is None and os.environ.get("LOYALTY_DB") is None:
        return (_("no loyalty database at {where} (the default location: neither --db nor LOYALTY_DB is set); nothing was created: give --db the path of your database, or create one here with: {create}").format(where=where, create=create))
    source = _("given by --db") if db is not None else _("from LOYALTY_DB")
    return (_("no loyalty database at {where} ({source}); nothing was created: check the path, or create the database with: {create}").format(where=where, source=source, create=create))


# -- failures of the disk or of the file, each with its own message ---------------------------
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_AUTH, SQLITE_NOTADB = 10, 11, 13, 14, 23, 26


def _primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code (Python 3.11 gives the extended one), else one read from the
    words of errors raised without a code."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    text = str(exc).lower()
    for words, guess in (("malformed", SQLITE_CORRUPT), ("file is not a database", SQLITE_NOTADB),
                         ("disk is full", SQLITE_FULL), ("disk i/o error", SQLITE_IOERR),
                         ("readonly", SQLITE_READONLY), ("unable to open", SQLITE_CANTOPEN)):
        if words in text:
            return guess
    return None


def damaged_message(path, words: str) -> str:
    return _("{path} is damaged ({words}); restore a backup: loyalty db restore BACKUP --yes").format(path=path, words=words)


def backup_damaged(backup, exc: sqlite3.Error):
    """The error for a backup that SQLite finds damaged while it is read for a restore (exit 4, as
    for a backup that fails db check: the live database is not touched), or None for any other error."""
    from loyalty_cli.errors import Damaged

    if _primary_code(exc) not in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return None
    return Damaged(M_("{backup} is damaged ({exc}): nothing was restored; choose another backup", backup=backup, exc=exc))


def full_message(path) -> str:
    if saved_changes():  # a command that commits in steps saved some of them
        return (_("the disk holding {path} is full: the command stopped after saving part of its work; free some space, then look at what is missing before running it again").format(path=path))
    return _("the disk holding {path} is full: nothing was written; free some space and run the command again").format(path=path)


FULL_BELOW = 64 * 1024  # free bytes under which an I/O error is taken for a full disk


def disk_full(path) -> bool:
    """Whether the file system holding `path` has (almost) no space left for us. SQLite reports a
    completely full disk as an I/O error (SQLITE_IOERR_SHMSIZE when the -shm file cannot grow,
    _WRITE, _FSYNC, _TRUNCATE…) rather than SQLITE_FULL; the free space tells the two apart."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except (OSError, TypeError, ValueError):
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW


def storage_failure(exc: BaseException, path) -> LoyaltyError | None:
    """The one-line error (with its exit code) for a failure of SQLite or of the file system that
    a user can cause or suffer, or None for anything else (a bug, reported as unexpected).
    `path` is the database; an OSError names its own file when it has one."""
    from loyalty_cli.errors import Damaged

    if "psycopg" in sys.modules:
        from loyalty_cli.store import postgres

        found = postgres.failure(exc, path)
        if found is not None:
            return found
    if isinstance(exc, sqlite3.Error):
        code = _primary_code(exc)
        words = str(exc)
        if code in (SQLITE_BUSY, SQLITE_LOCKED) or is_busy(exc):
            return Busy(BUSY_MESSAGE)
        if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return Damaged(damaged_message(path, words))
        if code == SQLITE_FULL or (code == SQLITE_IOERR and disk_full(path)):
            return LoyaltyError(full_message(path))
        if code == SQLITE_READONLY:
            return LoyaltyError(read_only_message(path))
        if code == SQLITE_IOERR:
            return LoyaltyError(M_("cannot read or write {path}: the disk reported an error ({words}); check the disk and its connection, then run: loyalty db check", path=path, words=words))
        if code == SQLITE_CANTOPEN:
            return LoyaltyError(M_("cannot open {path} ({words}); check that the file and its folder exist and that you may read and write them", path=path, words=words))
        if code in (SQLITE_PERM, SQLITE_AUTH):
            return LoyaltyError(M_("permission denied on {path} ({words}); check the owner and mode of the file and its folder", path=path, words=words))
        return None
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        import errno

        # (a write to an open file or to the output names no file)
        where = exc.filename if exc.filename is not None else _("the file or output being written")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return LoyaltyError(M_("the disk holding {where} is full ({strerror}): what it was writing is incomplete; free some space and run the command again", where=where, strerror=exc.strerror))
        if exc.errno in (errno.EACCES, errno.EPERM):
            return LoyaltyError(M_("permission denied on {where}; check the owner and mode of the file and its folder", where=where))
        if exc.errno == errno.EROFS:
            return LoyaltyError(M_("cannot write {where}: it is on a read-only file system", where=where))
        if exc.errno == errno.EIO:
            return LoyaltyError(M_("cannot read or write {where}: the disk reported an input/output error; check the disk and its connection, then run: loyalty db check", where=where))
        if exc.errno == errno.ENAMETOOLONG:
            return UsageError(M_("the path {where} is too long for the file system; give a shorter one", where=where))
    return None


_SAVED = False


def saved_changes() -> bool:
    """Whether a change was committed since `forget_saved` (so an interruption now must not say
    that nothing was written)."""
    return _SAVED


def forget_saved() -> None:
    """At the start of a command (tests run many in one process)."""
    global _SAVED
    _SAVED = False


BUSY_MESSAGE = M_("the database is busy (another loyalty command is writing to it); try again later, or raise "
                  "LOYALTY_BUSY_TIMEOUT")


def make_private_dir(path: Path) -> None:
    """Create a directory (and parents) with mode 0700."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        os.mkdir(d, 0o700)
        os.chmod(d, 0o700)


def create_private_file(path: Path, exclusive: bool = False):
    """Open a new file for writing with mode 0600, whatever the umask."""
    make_private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class Store:
    """One open database: a connection in autocommit mode with explicit transactions."""

    def __init__(self, path: Path, conn: sqlite3.Connection, now: str | None = None, key_file=None,
                 adopt: bool = True):
        self.path = path
        self.conn = conn
        self.now = now  # the caller's clock when opened: when migrations ran (the store never reads the clock)
        self.key_file = key_file
        self.notes: list[str] = []  # what a migration did, for the command to say on stderr
        self.announce = None  # how the command says them (see tell)
        self._signer = None
        self.adopt = adopt  # m009 extends the chain over existing rows (not for `db copy`'s target)

    @property
    def signer(self):
        """The chain key of this database (keys.py), read when the first block is written."""
        if self._signer is None:
            from loyalty_cli import keys
            from loyalty_cli.store.chain import Signer

            self._signer = Signer(keys.resolve_path(os.environ) if self.key_file is None else self.key_file)
        return self._signer

    @classmethod
    def open(cls, db: str | os.PathLike | None = None, migrate: bool = True, create: bool = False,
             now: str | None = None, _retried: bool = False, key_file=None, adopt: bool = True) -> "Store":
        """Open and migrate a loyalty database. Only with `create` (`loyalty init`, `db restore`)
        is a missing or 0-byte file made into one (mode 0600 before SQLite writes); a missing
        file is otherwise an error, and anything that is not a loyalty database is refused
        before SQLite opens it (see `examine`). `now`: the caller's time, recorded as when each
        migration ran (without it: MIGRATED_AT_UNKNOWN). A PostgreSQL URL opens store.postgres."""
        if is_postgres_url(db):
            from loyalty_cli.store.postgres import PgStore

            return PgStore.open(db, migrate, create, now, key_file=key_file, adopt=adopt)
        path = resolve_path(db)
        timeout = busy_timeout()
        if path.is_dir():
            raise UsageError(M_("{path} is a directory; give --db the path of a database file", path=path))
        try:
            kind = examine(path)
        except OSError as exc:
            raise storage_failure(exc, path) or LoyaltyError(M_("cannot read {path}: {strerror}", path=path, strerror=exc.strerror)) from None
        if kind == MISSING and os.path.islink(path):
            raise LoyaltyError(dangling_message(path))
        if kind == MISSING and not create:
            raise LoyaltyError(missing_message(path, db))
        if kind == EMPTY and not create:
            raise LoyaltyError(M_("{path} is an empty file, not a loyalty database; nothing was changed: to make a new database of it: loyalty init --db {path}", path=path))
        new = kind in (MISSING, EMPTY)
        if kind == MISSING:
            try:
                os.close(create_private_file(path, exclusive=True))
            except FileExistsError:  # made by someone else meanwhile: look at it again, once
                if os.path.islink(path) and not os.path.exists(path):
                    raise LoyaltyError(dangling_message(path)) from None
                if _retried:
                    raise LoyaltyError(M_("cannot create the database at {path}: a file appeared there and went again while it was being created; run the command again", path=path)) from None
                return cls.open(db, migrate, create, now, _retried=True, key_file=key_file, adopt=adopt)
            except OSError as exc:
                raise LoyaltyError(M_("cannot create the database at {path}: {strerror}", path=path, strerror=exc.strerror)) from None
        elif kind == EMPTY:
            os.chmod(path, 0o600)
        conn = None
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False,
                                   factory=Connection)
            store = cls(path, conn, now, key_file, adopt)
            if new:  # first, so that a database whose creation is cut short is still recognised
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            store._configure()
            if migrate:
                store.migrate()
            forget_saved()  # a migration is not the command's change (see saved_changes)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            failure = storage_failure(exc, path)
            if _primary_code(exc) in (SQLITE_READONLY, SQLITE_CANTOPEN, None) and \
                    not os.access(path.parent if str(path.parent) else ".", os.W_OK):
                # a read-only folder: SQLite cannot make the -wal and -shm files beside the database
                failure = LoyaltyError(read_only_message(path))
            raise failure or LoyaltyError(M_("cannot open {path} as a loyalty database ({exc})", path=path, exc=exc)) from None
        return store

    def _configure(self) -> None:
        c = self.conn
        if c.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("PRAGMA secure_delete=ON")
        # A larger page cache keeps a big import's dirty pages in memory instead of
        # spilling them to the WAL mid-transaction (pages are only allocated when used).
        c.execute(f"PRAGMA cache_size=-{CACHE_KIB}")

    def migrate(self) -> list[str]:
        """Run the migrations this database has not had yet; return their names."""
        if self.conn.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
            return []
        done = []
        with self.write():
            c = self.conn
            c.execute(MIGRATIONS_TABLE)
            applied = {r[0] for r in c.execute("SELECT name FROM migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ in applied:
                    continue
                for statement in migration(c):
                    c.execute(statement)
                c.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (migration.__name__, self.now or MIGRATED_AT_UNKNOWN),
                )
                done.append(migration.__name__)
            if "m009_chain" in done and self.adopt:  # once every migration ran: the rows as they now are (m010's store too)
                self._adopt()
            c.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        return done

    def _adopt(self) -> None:
        """Extend the new chain over the rows the database already holds, in the migration's
        transaction, and say what was done (an empty database: the first block names the key)."""
        from loyalty_cli.store import chain

        counts = chain.adopt(self.conn, self.conn.journal)
        self.conn.journal.write_block({"adopted": bool(counts)})
        if counts:
            what = ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in counts.items())
            self.notes.append(_("the chain now covers the rows recorded before it ({what}); 'loyalty db check' verifies them from here on").format(what=what))
        if self.signer.created:
            self.signer.notes.append(_("made a new chain key at {path}: keep a copy of it with your backups").format(path=self.signer.path))

    @contextmanager
    def write(self):
        """A write transaction that begins IMMEDIATE; nested calls join the outer one."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self._begin_immediate()
        changes = self.conn.total_changes
        from loyalty_cli.store.chain import Journal

        journal = self.conn.journal = Journal(self.conn, self.signer)
        try:
            yield self.conn
            journal.write_block()  # what the transaction changed, chained before it commits
            journal.finish()
        except BaseException:
            journal.abandon()
            self.conn.journal = None
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.journal = None
        try:
            failed = False
            try:
                self.conn.execute("COMMIT")
            except Exception:
                # A COMMIT that fails (a full disk) is rolled back by SQLite itself: out of the
                # transaction, with total_changes counting the undone rows, yet nothing was saved.
                failed = True
                raise
            finally:
                # Ctrl-C during COMMIT raises once it has returned: whoever reports the interruption
                # must know whether the change was saved (see saved_changes).
                if not failed and not self.conn.in_transaction and self.conn.total_changes != changes:
                    global _SAVED
                    _SAVED = True
        except Exception as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if is_busy(exc):
                raise Busy(BUSY_MESSAGE) from None
            raise

    def _begin_immediate(self) -> None:
        """BEGIN IMMEDIATE, waiting for other writers up to the busy timeout in short rounds:
        SQLite's own wait sleeps in C, where Ctrl-C cannot reach until it gives up."""
        import time

        timeout = busy_timeout()
        deadline = time.monotonic() + timeout
        round_ms = min(int(timeout * 1000), 100)
        self.conn.execute(f"PRAGMA busy_timeout = {round_ms}")
        try:
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Busy(BUSY_MESSAGE) from None
                    self.conn.execute(f"PRAGMA busy_timeout = {max(1, min(round_ms, int(left * 1000)))}")
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    @contextmanager
    def bulk_write(self):
        """`write()` with a larger page cache, for imports: a million purchases insert into
        member-ordered indexes far larger than the usual cache, and every page evicted
        mid-transaction is written to the WAL again. (At 1M rows a 48 MiB cache saved a tenth of
        the time but took the peak to 183 MiB of the 200 allowed; 32 MiB keeps a margin.)"""
        with page_cache(self.conn, BULK_CACHE_KIB), self.write() as conn:
            yield conn

    @contextmanager
    def read(self):
        """A read transaction: every query inside sees one consistent snapshot."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()
        self.tell()

    def tell(self) -> None:
        """Hand what a migration or the chain key did (`notes`) to `announce`, the command's way of
        saying it on stderr (the store never prints), once."""
        notes = self.notes + (self._signer.notes if self._signer is not None else [])
        self.notes = []
        if self._signer is not None:
            self._signer.notes = []
        if self.announce is not None:
            for note in notes:
                self.announce(note)

    # -- files beside the database -----------------------------------------
    @contextmanager
    def job_lock(self, name: str):
        """A per-database lock for nightly jobs: a second run gets `Busy` at once."""
        import fcntl

        # Named from the real file, so that two paths to one database (a symlink) share the lock.
        lock_path = Path(f"{os.path.realpath(self.path)}.{name}.lock")
        fd = create_private_file(lock_path) if not lock_path.exists() else os.open(lock_path, os.O_WRONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy(M_("another '{name}' job is running on {path}; try again when it has finished", name=name, path=self.path)) from None
            yield
        finally:
            os.close(fd)

    def backup_to(self, target: Path) -> list[str]:
        """SQLite's online backup API: a consistent copy, safe while others write. Returns the
        partial backups of killed runs that it removed first (see `remove_stale_partials`)."""
        import fcntl

        lock = self._backup_lock()
        try:
            removed = self._remove_partials_if_idle(lock)
            fcntl.flock(lock, fcntl.LOCK_SH)  # "a backup of this database is running"
            if target.exists():
                raise _taken(target)
            # Written under a temporary name and linked into place when whole: an interrupted backup
            # never leaves a half file under the name a restore (or tonight's cron) would take. The
            # name is listed beside the database first, so that a kill leaves a file someone finds.
            import secrets

            partial = target.with_name(f".{target.name}{PARTIAL_MARK}{secrets.token_hex(4)}")
            self._edit_partials(lambda paths: paths + [os.path.abspath(partial)])
            try:
                try:
                    os.close(create_private_file(partial, exclusive=True))
                except OSError as exc:
                    import errno

                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # not a wrong path: the backup's disk
                        raise _backup_disk_full(target) from None
                    raise UsageError(M_("cannot write the backup at {target}: {strerror}", target=target, strerror=exc.strerror)) from None
                dest = sqlite3.connect(partial)
                try:
                    try:
                        with dest:
                            self.conn.backup(dest)
                        dest.execute("PRAGMA journal_mode=DELETE")
                        self._check_copy(dest)
                    except sqlite3.Error as exc:  # the backup's disk, not the database's
                        raise self._backup_failure(exc, target) from None
                finally:
                    dest.close()
                os.chmod(partial, 0o600)
                _place(partial, target)
            finally:
                _remove_partial(partial)
                self._edit_partials(lambda paths: [p for p in paths if p != os.path.abspath(partial)])
        finally:
            os.close(lock)
        return removed

    def _backup_failure(self, exc: sqlite3.Error, target: Path) -> BaseException:
        """A failure while the copy is written: a full disk or an I/O error is the backup target's
        (its disk, named); anything else is reported as if it happened to the database."""
        code = _primary_code(exc)
        if code == SQLITE_FULL or (code == SQLITE_IOERR and disk_full(target)):
            return _backup_disk_full(target)
        if code == SQLITE_IOERR:
            return LoyaltyError(M_("cannot write the backup at {target}: the disk reported an error ({exc}); no backup was written; check that disk, or back up to another one", target=target, exc=exc))
        return exc

    def _check_copy(self, dest: sqlite3.Connection) -> None:
        """`PRAGMA quick_check` on the finished copy (not on the database, so that writers are not
        held up): the backup API copies pages as they are, so a damaged database would give a
        damaged backup that looks whole until the day it is restored."""
        from loyalty_cli.errors import Damaged

        try:
            found = [row[0] for row in dest.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            if _primary_code(exc) not in (SQLITE_CORRUPT, SQLITE_NOTADB):
                raise
            found = [str(exc)]
        if found != ["ok"]:
            raise Damaged(M_("{path} is damaged ({found_0}): the backup was not written; restore an earlier backup: loyalty db restore BACKUP --yes", path=self.path, found_0=found[0]))

    # -- partial backups left by a killed `db backup` ----------------------------
    # Each backup lists its partial file in DB.backup-partials (beside the database) before
    # creating it, and holds a shared lock on DB.backup.lock while it writes. When nobody holds
    # that lock no backup is running, so every partial still listed was left by a killed one.
    def _backup_lock(self) -> int:
        """The file every running backup of this database holds a shared lock on."""
        return _open_private(f"{os.path.realpath(self.path)}.backup.lock")

    def _partials_list(self) -> Path:
        return Path(f"{os.path.realpath(self.path)}.backup-partials")

    def _edit_partials(self, change) -> None:
        """Rewrite the list of partial backups under its own lock (backups may run side by side);
        the list is removed when it is empty, so that it is only there when something is listed."""
        import fcntl

        listing = self._partials_list()
        while True:
            fd = _open_private(listing)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(listing))
                except FileNotFoundError:
                    same = False
                if not same:
                    continue  # removed (emptied) by another process while we waited: open it again
                with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as f:
                    kept = change([line for line in f.read().splitlines() if line])
                    f.seek(0)
                    f.truncate()
                    f.write("".join(f"{p}\n" for p in kept))
                if not kept:
                    listing.unlink()
                return
            finally:
                os.close(fd)

    def _remove_partials_if_idle(self, lock: int) -> list[str]:
        import fcntl

        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # a backup is running: its partial is alive; stale ones wait for the next time
        if not self._partials_list().exists():
            return []
        removed = []

        def remove_all(paths):
            kept = []
            for path in paths:
                gone = _remove_partial(Path(path))
                if gone:
                    removed.append(path)
                elif gone is None:
                    kept.append(path)
            return kept
        self._edit_partials(remove_all)
        return removed

    def remove_stale_partials(self) -> list[str]:
        """Remove the partial backups (hidden full copies of the customer data, with their
        -journal) that killed `db backup` runs of this database left, unless a backup is running
        now; return their paths. Creates nothing when there is nothing to remove."""
        if not self._partials_list().exists():
            return []
        lock = self._backup_lock()
        try:
            return self._remove_partials_if_idle(lock)
        finally:
            os.close(lock)

    @classmethod
    def open_backup(cls, path: Path) -> "Store":
        """Open a backup read-only, to check it without changing a byte of it (no WAL files either)."""
        from loyalty_cli.errors import InputFileError

        try:  # from its header first: another application's file is refused before SQLite opens it
            if examine(Path(path)) == EMPTY:
                raise InputFileError(M_("{path} is not a loyalty backup (it is an empty file)", path=path))
        except NotOurs as exc:
            raise InputFileError(M_("{path} is not a loyalty backup ({what}); nothing was restored", path=path, what=exc.what)) from None
        except OSError as exc:
            raise InputFileError(M_("cannot read the backup {path}: {strerror}", path=path, strerror=exc.strerror)) from None
        except InputFileError:
            raise
        except LoyaltyError as exc:  # made by a newer loyalty
            raise InputFileError(str(exc)) from None
        try:
            from urllib.parse import quote

            conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger'").fetchone():
                raise InputFileError(M_("{path} is not a loyalty backup (it has no ledger)", path=path))
            problem = foreign_or_newer(conn, path)  # checked before anything is copied
            if problem:
                raise InputFileError(problem)
        except sqlite3.DatabaseError as exc:
            raise backup_damaged(path, exc) or InputFileError(M_("{path} is not a loyalty backup ({exc})", path=path, exc=exc)) from None
        return cls(Path(path), conn)

    def restore_from(self, backup: "Store") -> None:
        """Replace this database's contents with a backup's, through the backup API (safe with WAL)."""
        with self.write():
            pass  # waits for other writers (busy timeout) before the copy takes its locks
        try:
            backup.conn.backup(self.conn)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise Busy(BUSY_MESSAGE) from None
            raise
        self.migrate()

    def checkpoint(self) -> bool:
        """`wal_checkpoint(TRUNCATE)`; False when another process kept it from finishing."""
        busy, _log, _done = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0
