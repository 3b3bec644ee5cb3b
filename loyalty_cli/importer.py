"""CSV imports: stream the file, validate rows, apply them in one transaction.

Rows are read one at a time (memory does not grow with the file) and handled in
chunks: one query per chunk finds which purchase ids are already recorded and
loads the members involved, then each row goes through the same domain code as
the counter. Every bad row becomes a `Problem(line, message)`; by default one
bad row rejects the file and nothing is written.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from loyalty_cli import values
from loyalty_cli.errors import InputFileError, LoyaltyError, NotFound, Problem, UsageError
from loyalty_cli.render import plural
from loyalty_cli.store import imports as import_rows
from loyalty_cli.i18n import M_, _, display, message_of

CHUNK = 2000
csv.field_size_limit(1 << 20)
# The longest physical line read (characters). csv.reader would otherwise hold a whole line in
# memory before its field limit applies: a file with no newline (/dev/zero) would grow without end.
MAX_LINE = 1 << 20


class _LineTooLong(Exception):
    pass


def _bounded_lines(text):
    """The text's lines, as csv.reader wants them, none longer than MAX_LINE."""
    from functools import partial

    for line in iter(partial(text.readline, MAX_LINE), ""):
        if len(line) == MAX_LINE and line[-1] not in "\r\n":
            raise _LineTooLong()
        yield line

PURCHASE_FIELDS = {"purchase_id": True, "member_id": True, "purchased_at": True, "amount": True,
                   "category": False, "kind": False, "refund_of": False, "store": False}
MEMBER_FIELDS = {"member_id": False, "name": False, "email": False, "phone": False, "birthday": False,
                 "joined_on": False, "referred_by": False, "email_opt_in": False, "sms_opt_in": False}


@dataclass
class ImportOptions:
    """How to read a till's CSV; every flag of SPEC §5."""

    encoding: str = "utf-8"
    delimiter: str = ","
    decimal_comma: bool = False
    mapping: dict = field(default_factory=dict)
    date_format: str | None = None
    dry_run: bool = False
    skip_bad: bool = False
    rejects: Path | None = None
    create_members: bool = False
    today: str = "1970-01-01"
    latest: str | None = None  # rows dated after this day are bad rows (today, unless --allow-future)
    store: str | None = None  # --store (or LOYALTY_STORE), checked: the branch of rows whose store cell is empty


class _Counting(io.RawIOBase):
    """A binary reader under the text decoder: counts bytes (for the progress bar) and, for a
    regular file, hashes them as they pass (one hash update per buffer, not per row), so the
    import can tell that what it read is what the file still holds."""

    def __init__(self, raw, digest=None):
        self.raw = raw
        self.count = 0
        self.digest = digest

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.raw.readinto(buffer)
        if n:
            self.count += n
            if self.digest is not None:
                self.digest.update(buffer[:n])
        return n


READ_BUFFER = 1 << 16  # bytes per read of the file: the hash is updated once per buffer


def _new_digest():
    import hashlib

    return hashlib.sha1(usedforsecurity=False)  # the fastest of hashlib's here; no adversary to resist


def _is_stdin(path: Path) -> bool:
    return str(path) in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0")


def shown_path(path) -> str:
    """The file as the user named it, for messages: the path given (`/dev/zero`, `in/day.csv`), not
    only its last part; "standard input" for `-`."""
    return _("standard input") if _is_stdin(Path(path)) else str(path)


@dataclass(frozen=True)
class Fingerprint:
    """What one reading of a regular file saw: its identity, size and modification time when it was
    opened, how many bytes were read and their hash."""

    identity: tuple  # (st_dev, st_ino)
    size: int
    mtime_ns: int
    read: int
    digest: str

    def difference(self, other: "Fingerprint") -> str | None:
        """Why `other` (a later look at the same path) is not the file this one read, or None."""
        if other.identity != self.identity:
            return _("another file has taken its name")
        if other.size != self.size:
            return _("its size went from {bytes} to {size:,}").format(bytes=plural(self.size, 'byte', grouped=True), size=other.size)
        if other.mtime_ns != self.mtime_ns:
            return _("it was modified")
        if self.read != self.size:
            return _("{bytes} were read of the {size:,} it had when opened").format(bytes=plural(self.read, 'byte', grouped=True), size=self.size)
        if other.digest != self.digest:
            return _("what it holds now differs from what was read")
        return None


def _stat_key(st) -> tuple:
    return (st.st_dev, st.st_ino), st.st_size, st.st_mtime_ns


def current_fingerprint(path: Path) -> Fingerprint | str:
    """The file now at `path`, read through and hashed; or why it cannot be (a text)."""
    try:
        with open(path, "rb") as f:
            identity, size, mtime_ns = _stat_key(os.fstat(f.fileno()))
            digest, read = _new_digest(), 0
            buffer = bytearray(1 << 20)
            view = memoryview(buffer)
            while n := f.readinto(buffer):
                digest.update(view[:n])
                read += n
    except OSError as exc:
        return _("it can no longer be read: {strerror}").format(strerror=exc.strerror)
    return Fingerprint(identity, size, mtime_ns, read, digest.hexdigest())


def _flag(flag: str, value: str) -> str:
    """How a message names the setting a value came from: `--encoding`, or `--encoding (or
    LOYALTY_ENCODING)` when that variable holds the value (it may have been set, not typed), as
    `--by (or LOYALTY_OPERATOR)` says."""
    env = "LOYALTY_" + flag[2:].upper().replace("-", "_")
    return _("{flag} (or {env})").format(flag=flag, env=env) if os.environ.get(env) == value else flag


class CsvSource:
    """A CSV file matched by header name: `rows()` yields (line, {field: text})."""

    def __init__(self, path: Path, fields: dict, options: ImportOptions):
        self.path = Path(path)
        self.fields = fields
        self.options = options
        self.size = 0
        self.header: list[str] = []
        self.ignored: list[str] = []  # header columns this import does not read (a till's extras)
        self._index: dict[str, int] = {}
        if len(options.delimiter) != 1 or options.delimiter in '\r\n"':
            raise UsageError(M_("{flag} must be one character other than a quote or a line end, got {delimiter!r}", flag=_flag('--delimiter', options.delimiter), delimiter=options.delimiter))
        if options.date_format:
            try:
                values.check_date_format(options.date_format)
            except ValueError as exc:
                raise UsageError(display(message_of(exc)).replace("--date-format", _flag("--date-format", options.date_format), 1)) from None
        try:
            import codecs

            codec = codecs.lookup(options.encoding)
            text_encoding = codec._is_text_encoding  # False for hex, rot13, uu…
            self._utf8 = codec.name == "utf-8"  # utf-8, UTF8, u8…: a BOM is skipped
        except LookupError:
            text_encoding = False
        if not text_encoding:
            raise UsageError(M_("{flag} {encoding!r} is not a text encoding Python knows (e.g. utf-8, latin-1, cp1252, utf-16)", flag=_flag('--encoding', options.encoding), encoding=options.encoding))

    def __enter__(self):
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise InputFileError(M_("cannot read {path}: {strerror}", path=self.path, strerror=exc.strerror)) from None
        import stat

        st = os.fstat(self._file.fileno())
        self.size = st.st_size
        # A regular file is checked before the import commits (it may be rewritten while it is read);
        # standard input is read once and is its own snapshot.
        self.regular = stat.S_ISREG(st.st_mode) and not _is_stdin(self.path)
        self._opened = _stat_key(st)
        self.earlier: list[Fingerprint] = []  # other readings of the file (the --create-members pre-scan)
        self.counter = _Counting(self._file, _new_digest() if self.regular else None)
        encoding = "utf-8-sig" if self._utf8 else self.options.encoding
        self._text = io.TextIOWrapper(io.BufferedReader(self.counter, READ_BUFFER), encoding=encoding, newline="")
        self._reader = csv.reader(_bounded_lines(self._text), delimiter=self.options.delimiter, strict=True)
        try:
            self._read_header()
        except BaseException:
            self._file.close()
            raise
        return self

    def __exit__(self, *exc):
        self._file.close()

    def fingerprint(self) -> Fingerprint | None:
        """What this reading saw of a regular file, once the rest of it is read (and hashed) too;
        None for standard input or a pipe."""
        if not self.regular:
            return None
        buffer = bytearray(READ_BUFFER)
        try:
            while self.counter.readinto(buffer):
                pass
        except OSError:
            pass  # the count then falls short of the size, and says so
        identity, size, mtime_ns = self._opened
        return Fingerprint(identity, size, mtime_ns, self.counter.count, self.counter.digest.hexdigest())

    def changed(self, thorough: bool = True) -> str | None:
        """Why the file is no longer what this import read (size, modification time, identity or
        contents, and the same for an earlier reading of it), or None when it is unchanged.
        Not `thorough` (a file already refused midway): identity, size and time only, so a refused
        file of gigabytes is not read again to the end."""
        if not self.regular:
            return None
        if not thorough:
            try:
                identity, size, mtime_ns = _stat_key(os.stat(self.path))
            except OSError as exc:
                return _("it can no longer be read: {strerror}").format(strerror=exc.strerror)
            opened = Fingerprint(*self._opened, self._opened[1], "")  # (read to its end: not compared)
            return opened.difference(Fingerprint(identity, size, mtime_ns, size, ""))
        mine = self.fingerprint()
        for other in self.earlier:
            why = other.difference(mine)
            if why:
                return why
        now = current_fingerprint(self.path)
        if isinstance(now, str):
            return now
        return mine.difference(now)

    def _fail(self, message: str, line: int | None = None):
        where = _("line {line}: ").format(line=line) if line is not None and line > 1 else ""
        raise InputFileError(f"{shown_path(self.path)}: {where}{message}", [Problem(message, line)])

    def _next(self):
        try:
            return next(self._reader)
        except csv.Error as exc:
            self._fail(_("malformed CSV ({exc})").format(exc=exc), self._reader.line_num)
        except _LineTooLong:
            self._fail(_("a line is longer than {max_line:,} characters: not a till's CSV file").format(max_line=MAX_LINE), self._reader.line_num + 1)
        except UnicodeError:  # UnicodeDecodeError, or UTF-16 without its BOM
            line = _undecodable_line(self.path, self._text.encoding)
            self._fail(_("not valid {encoding} text (give the file's encoding with --encoding, e.g. --encoding latin-1)").format(encoding=self.options.encoding), line)

    def _read_header(self) -> None:
        try:
            header = self._next()
        except StopIteration:
            raise InputFileError(M_("{path} is empty: no header and no rows (a CSV file starts with a header row naming its columns)", path=shown_path(self.path)), [Problem(M_("the file is empty"), None)]) from None
        if header and header[0].startswith("\ufeff"):  # a BOM the codec keeps (utf-16-le, utf-16-be)
            header[0] = header[0][1:]
        if any("\x00" in h for h in header):
            self._fail(_("the header holds NUL characters: the file looks like UTF-16 (give its encoding: --encoding utf-16-le or utf-16-be)"), 1)
        names = [h.strip().lower() for h in header]
        seen = set()
        for name in names:
            if name and name in seen:
                self._fail(_("the header names column {name!r} twice").format(name=name), 1)
            seen.add(name)
        mapping = {k.lower(): v.strip().lower() for k, v in self.options.mapping.items()}
        for fld in mapping:
            if fld not in self.fields:
                raise UsageError(M_("--map names {fld!r}, which is not one of {join}", fld=fld, join=', '.join(self.fields)))
        read_by: dict[str, str] = {}
        for fld, required in self.fields.items():
            column = mapping.get(fld, fld)
            if column in names:
                if column in read_by:
                    raise UsageError(M_("--map makes {read_by} and {fld} both read column {column!r}; each field needs its own column", read_by=read_by[column], fld=fld, column=column))
                read_by[column] = fld
                self._index[fld] = names.index(column)
            elif required:
                hint = self._delimiter_hint(header, mapping) or self._other_import_hint(names) or (
                    _(" (--map {fld}={column} was given)").format(fld=fld, column=column) if fld in mapping
                    else _(" (use --map {fld}=COLUMN if your till names it differently)").format(fld=fld))
                self._fail(_("the header lacks the required column {column!r}{hint}").format(column=column, hint=hint), 1)
        if self.fields is MEMBER_FIELDS and not self._index.keys() & {"member_id", "email"}:
            # every row needs one of them: without either column no row could be imported
            hint = self._delimiter_hint(header, mapping) or _(" (use --map member_id=COLUMN or --map email=COLUMN if your till names it differently)")
            self._fail(_("the header names neither a member_id nor an email column{hint}").format(hint=hint), 1)
        self._check_unread_columns(names, header)
        self.header = header

    def _other_import_hint(self, names: list[str]) -> str | None:
        """For a purchases file lacking a required column: the words saying it is a members file, when
        its header names members columns (the file given to the wrong import)."""
        found = [c for c in MEMBER_FIELDS if c != "member_id" and c in names]
        if self.fields is PURCHASE_FIELDS and found:
            return _("; it looks like a members file (it has {join}): use loyalty members import").format(join=', '.join(found))
        return None

    def _check_unread_columns(self, names: list[str], header: list[str]) -> None:
        """Columns the import does not read (SPEC §5 matches by name; a till's extra columns such as
        cashier or vat are allowed), with two exceptions that refuse the file (exit 3), since either
        would silently change what is recorded: a column spelled almost like a field this import
        reads but finds no column for (`categry`, `knd`, `emial`), and a purchases file given to the
        members import. The others are kept in `self.ignored` (header spelling) for the note."""
        read = set(self._index.values())
        unread = [(i, n) for i, n in enumerate(names) if n and i not in read]
        if self.fields is MEMBER_FIELDS and not self._index.keys() - {"member_id"}:
            found = [c for c in ("purchase_id", "purchased_at", "amount") if c in names]
            if found:
                self._fail(_("it looks like a purchases file (it has {join}): use loyalty purchases import").format(join=', '.join(found)), 1)
        missing = [f for f in self.fields if f not in self._index]
        for __, name in unread:
            near = _near_miss(name, missing)
            if near:
                self._fail(_("the header has {name!r}, which is not a column loyalty reads: did you mean {near!r}? (rename it, or --map {near}={name})").format(name=name, near=near), 1)
        self.ignored = [header[i].strip() for i, name in unread if name not in MASKED_COLUMNS]

    def _delimiter_hint(self, header: list[str], mapping: dict) -> str | None:
        """When the header lacks needed columns with the chosen delimiter but has them with another
        one, the words saying so (`; it looks like ';'-separated: add --delimiter ';'`). Only the
        header line is looked at; a delimiter is never guessed for the rows."""
        line = self.options.delimiter.join(header)
        for other in (";", "\t", "|", ","):
            if other == self.options.delimiter:
                continue
            try:
                names = {h.strip().lower() for h in next(csv.reader([line], delimiter=other))}
            except (csv.Error, StopIteration):
                continue
            columns = {fld: mapping.get(fld, fld) for fld in self.fields}
            if self.fields is MEMBER_FIELDS:
                fits = columns["member_id"] in names or columns["email"] in names
            else:
                fits = all(columns[f] in names for f, required in self.fields.items() if required)
            if fits:
                shown = "\\t" if other == "\t" else other
                what = _("tab") if other == "\t" else repr(other)
                return _("; it looks like {what}-separated: add --delimiter '{shown}'").format(what=what, shown=shown)
        return None

    def raw_rows(self):
        """(line, cells, values) with the fields' cells, unstripped, in `fields` order ("" when absent),
        or an error text instead of values. The fast path of the purchases import (no dict per row)."""
        width = len(self.header)
        getter = operator.itemgetter(*(self._index.get(f, width) for f in self.fields))
        pad = [""] * (width + 1)
        while True:
            start = self._reader.line_num + 1
            try:
                cells = self._next()
            except StopIteration:
                return
            n = len(cells)
            if not cells or (not cells[0].strip() and not any(c.strip() for c in cells)):
                continue  # a blank line, or a row of empty cells as spreadsheets write them
            if n > width:
                if any(c.strip() for c in cells[width:]):
                    yield start, cells, M_("has {n} cells but the header has {width}", n=n, width=width)
                    continue
                yield start, cells, getter(cells[:width] + [""])
            else:
                yield start, cells, getter(cells + pad[n:])

    def rows(self):
        """(line, cells, {field: stripped text}) or an error text: the members import's convenient form."""
        fields = tuple(self.fields)
        for start, cells, values_ in self.raw_rows():
            if isinstance(values_, str):
                yield start, cells, values_
            else:
                yield start, cells, {f: v.strip() for f, v in zip(fields, values_)}


def _near_miss(name: str, fields: list[str]) -> str | None:
    """The field `name` looks like a misspelling of (a close difflib match, or the same letters in
    another order: `categry`, `knd`, `refnd_of`, `emial`, `birth_day`), or None."""
    import difflib

    for fld in fields:
        if sorted(name) == sorted(fld) or sorted(name.replace("_", "")) == sorted(fld.replace("_", "")):
            return fld
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.8)
    return close[0] if close else None


def _undecodable_line(path: Path, encoding: str) -> int | None:
    """The line of the first bytes that are not valid `encoding` (the reader decodes ahead of the
    rows it has returned, so its own line count would point too early)."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    return line + chunk.count(b"\n", 0, max(exc.start, 0))
                except UnicodeError:  # not a position in the text (a UTF-16 file without its BOM)
                    return line
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeError:
        return line
    except OSError:
        return None
    return None


_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)*")


class Rejects:
    """Bad rows for `--rejects FILE` (mode 0600), with line and reason.

    They go to a new file beside FILE, which replaces FILE (a rename: a link at that path is
    replaced, never followed) once it is written and synced: `finish()`, before the import commits.
    If they cannot be written (a full disk), the import commits nothing (`RejectsUnwritable`)."""

    def __init__(self, path: Path | None, header: list[str]):
        self.path = path
        self.header = header
        self.count = 0
        self._file = None
        self._part = None
        if path is None:
            return
        import tempfile

        from loyalty_cli.render import safe_cell
        from loyalty_cli.store import make_private_dir

        self._safe = safe_cell
        try:
            make_private_dir(path.parent)
            fd, part = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # 0600, O_EXCL
            self._part = Path(part)
            self._file = os.fdopen(fd, "w", newline="", encoding="utf-8")
        except OSError as exc:
            self.discard()
            raise UsageError(M_("cannot write --rejects {path}: {strerror}", path=path, strerror=exc.strerror)) from None
        self._writer = csv.writer(self._file)
        self._write(["line", "reason", *self.header])

    def _write(self, row: list) -> None:
        try:
            self._writer.writerow(row)
        except OSError as exc:
            self._unwritable(exc)

    def _unwritable(self, exc: OSError):
        self.discard()
        raise RejectsUnwritable(_("cannot write the rejected rows to --rejects {path}: {os_reason}; nothing was imported").format(path=self.path, os_reason=_os_reason(exc))) from None

    def add(self, line: int, reason: str, cells: list[str]) -> None:
        if self._file is None:
            return
        self.count += 1
        # The till's cells as they were, so the rows can be fixed and imported again; formulas are
        # neutralised (SPEC §9), but a plain number like -3 is no formula and stays as it is.
        self._write([line, self._safe(reason),
                     *(c if _PLAIN_NUMBER.fullmatch(c) else self._safe(c) for c in cells)])

    def finish(self) -> None:
        """Sync the rejected rows and put them at FILE (before the import commits); no rows, no file."""
        if self._file is None:
            return
        if not self.count:
            self.discard()
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            _check_regular_or_absent(self.path)  # it may have become a FIFO or a device meanwhile
            os.replace(self._part, self.path)
            self._part = None
        except OSError as exc:
            self._unwritable(exc)

    def discard(self) -> None:
        """Drop the unfinished rejects file (the import failed, or nothing was rejected)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        if self._part is not None:
            try:
                os.unlink(self._part)
            except OSError:
                pass
        self._file = self._part = None


class RejectsUnwritable(LoyaltyError):
    """The rejected rows could not be written (exit 1): the import commits nothing."""


def _os_reason(exc: OSError) -> str:
    import errno

    words = {errno.ENOSPC: _("the disk is full"), errno.EDQUOT: _("the disk quota is used up"),
             errno.EROFS: _("the file system is read-only"), errno.EACCES: _("permission denied"),
             errno.EIO: _("an input/output error (a failing disk?)")}
    return words.get(exc.errno) or exc.strerror or str(exc)


def _check_regular_or_absent(path: Path) -> None:
    """--rejects FILE must be a regular file or not exist yet: never a link (it is not followed), a
    FIFO (opening one blocks), a device, a socket or a directory (usage error, exit 2)."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(M_("cannot write --rejects {path}: {strerror}", path=path, strerror=exc.strerror)) from None
    kinds = [(stat.S_ISLNK, _("a symbolic link (it is not followed)")), (stat.S_ISFIFO, _("a FIFO (named pipe)")),
             (stat.S_ISCHR, _("a device")), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, _("a socket")),
             (stat.S_ISDIR, _("a directory"))]
    for test, what in kinds:
        if test(mode):
            raise UsageError(M_("--rejects {path} is {what}, not a regular file; give the path of a file for the rejected rows", path=path, what=what))


class Progress(Protocol):
    """How an import reports its progress to whoever draws it (the CLI's bar): `start` with the
    file's size in bytes, `update` with the bytes read after each chunk, `close` when done."""

    def start(self, total: int) -> None: ...

    def update(self, done: int) -> None: ...

    def close(self) -> None: ...


def _parse_at(text: str, options: ImportOptions, cache: dict, what: str) -> str:
    """A purchase's date; strptime formats are slow, so those results are cached (a day's worth)."""
    if not options.date_format:
        return values.parse_datetime(text, what)
    hit = cache.get(text)
    if hit is None:
        hit = values.parse_with_format(text, options.date_format, what)
        if len(cache) > 20_000:
            cache.clear()
        cache[text] = hit
    return hit


def import_purchases(store, path: Path, options: ImportOptions, progress: Progress | None = None) -> dict:
    """`purchases import`: exactly once by purchase id, all or nothing by default."""
    from loyalty_cli import members as members_mod
    from loyalty_cli import tiers
    from loyalty_cli.ids import Resolver
    from loyalty_cli.ids import erased as erased_member
    from loyalty_cli.ledger import Book
    from loyalty_cli.purchases import check_new_members_sale, record_refund, record_sale

    counts = dict(rows=0, imported=0, duplicates=0, rejected=0, points_awarded=0, points_reversed=0, members_created=0)
    with _importing(store, path, PURCHASE_FIELDS, options, progress, counts) as (conn, source, reject):
        book = Book(conn)
        parse_row = _row_parser(options, book.programme.currency_decimals, "store" in source._index)
        estimated_rows = None  # the file's rows, estimated once the first chunk is read
        erased = import_rows.erased_members(conn)
        ids = Resolver(conn)  # member ids match without regard to case: resolved once per distinct id
        earliest_sales = _earliest_sales(conn, source, options, parse_row) if options.create_members else None

        def run(chunk):
            nonlocal estimated_rows
            book.flush(members=False)
            found = []  # bad rows, reported in line order once the chunk is done (checks run in two passes)

            def bad(line, cells, message):
                found.append((line, cells, message))
            parsed = []
            for line, cells, row in chunk:
                if isinstance(row, str):
                    bad(line, cells, row)
                    continue
                try:
                    parsed.append((line, cells) + parse_row(row))
                except ValueError as exc:
                    bad(line, cells, message_of(exc))
            known = import_rows.recorded(conn, {p[2] for p in parsed})
            ids.prepare([p[3] for p in parsed])
            fresh = [ids.peek(p[3]) for p in parsed if p[2] not in known]
            if estimated_rows is not None and parsed:
                # Of about how many new rows (a re-import, all duplicates, writes none): see store.imports.defer_indexes.
                book.defer_indexes(estimated_rows * len(fresh) // len(parsed))
                estimated_rows = None
            refunds = [p for p in parsed if p[7] == "refund" and p[2] not in known]
            book.prefetch_sales([p[8] for p in refunds], [ids.peek(p[3]) for p in refunds],
                                max((p[4][:10] for p in refunds), default=None))
            if fresh:
                book.load_members(fresh)
                tiers.preload(book, fresh, book.rules_for(parsed[0][4]).tier_basis)
            # --create-members: a new member's earliest sale (files are not always sorted) in the file
            # (read once ahead), or in the chunk when the file cannot be read twice (a pipe).
            first_sale_on = earliest_sales
            if options.create_members and earliest_sales is None:
                first_sale_on = {}
                for p in parsed:
                    if p[7] == "sale" and ids.peek(p[3]) not in book.members and p[2] not in known \
                            and p[4] < first_sale_on.get(ids.key(p[3]), "9999"):
                        first_sale_on[ids.key(p[3])] = p[4]
            for line, cells, pid, mid, at, amount, category, kind, refund_of, branch in parsed:
                try:
                    mid = ids.get(mid)  # the stored spelling (`m0042` is `M0042`), members this import enrolled too
                except LoyaltyError as exc:
                    bad(line, cells, message_of(exc))
                    continue
                sig = (mid, kind, amount, refund_of, at[:10])
                if mid in erased:  # SPEC §9: even a row already recorded (their purchases stay, the row is refused)
                    bad(line, cells, str(erased_member(mid)))
                    continue
                if pid in known:
                    if known[pid] == sig or (ids.aliases.get(known[pid][0]) == mid and known[pid][1:] == sig[1:]):
                        # (recorded before its member was merged into `mid`: the same row)
                        counts["duplicates"] += 1
                    else:
                        bad(line, cells, _("purchase {pid} is already recorded with different data (member, kind, amount, refund_of or date differ)").format(pid=pid))
                    continue
                m = book.members.get(mid)
                if m is None and mid not in book.members:
                    book.load_members([mid])
                    m = book.members.get(mid)
                if m is None:
                    if not options.create_members:
                        bad(line, cells, M_("member {mid} not found (add them first, or import with --create-members)", mid=mid))
                        continue
                    if kind == "refund":  # never enrol anyone for a row that is then rejected
                        bad(line, cells, M_("refund {pid} is for member {mid}, who is not enrolled (a refund needs the member's sale)", pid=pid, mid=mid))
                        continue
                    try:
                        mid_checked = values.parse_id(mid)
                        joined_on = first_sale_on.get(ids.key(mid), at)[:10]
                        check_new_members_sale(book, pid, at, amount, category, joined_on, mid_checked)  # never enrol for a rejected row
                        m = members_mod.enrol(book, member_id=mid_checked, name=None, joined_on=joined_on)
                    except (ValueError, LoyaltyError) as exc:
                        bad(line, cells, message_of(exc))
                        continue
                    ids.add(m.member_id)  # a later row spelling the id another way is this member
                    counts["members_created"] += 1
                try:
                    if kind == "sale":
                        record_sale(book, m, pid, at, amount, category, branch)
                    else:
                        counts["points_reversed"] += record_refund(book, m, pid, at, amount, refund_of, None, branch)
                except LoyaltyError as exc:
                    bad(line, cells, message_of(exc))
                    continue
                known[pid] = sig
                counts["imported"] += 1
            for line, cells, message in sorted(found, key=lambda bad_row: bad_row[0]):
                reject(line, cells, message)
            source.progress()

        def first_chunk_read():
            nonlocal estimated_rows  # the file's size over the first rows' size: about how many rows
            estimated_rows = source.size * CHUNK // max(source.counter.count, 1)

        _in_chunks(source.raw_rows(), counts, run, first_chunk_read)
        book.flush()
        counts["points_awarded"] = book.points_in
    return counts


def _row_parser(options: ImportOptions, decimals: int, store_column: bool = False):
    """A function from a purchases row's cells (PURCHASE_FIELDS order) to
    (purchase_id, member_id, at, amount, category, kind, refund_of, store), or ValueError saying what is wrong.

    store: the row's own `store` cell when it has one (`store_column`: the file has the column),
    else --store (options.store, None when not given); a file without the column costs nothing more."""
    parse_id, parse_category, parse_money = values.parse_id, values.parse_category, values.parse_money
    decimal_comma = options.decimal_comma
    pattern = values.money_pattern(decimals, decimal_comma)
    date_cache: dict = {}
    latest = options.latest
    parse_at = (lambda text, what: _parse_at(text, options, date_cache, what)) if options.date_format \
        else values.parse_datetime

    default_store = options.store
    parse_store = values.parse_store

    def parse_row(row):
        pid, mid, at_text, amount_text, category, kind, refund_of, store = row
        pid = parse_id(pid, "purchase_id")
        mid = parse_id(mid, "member_id")
        category = parse_category(category)
        at = parse_at(at_text.strip(), "purchased_at")
        if latest is not None and at[:10] > latest:
            raise ValueError(future_row("purchased_at", at, latest))
        amount = parse_money(amount_text, decimals, decimal_comma, pattern)
        kind = kind.strip().lower() or "sale"
        if kind != "sale" and kind != "refund":
            raise ValueError(M_("kind must be sale or refund, got {kind!r}", kind=kind))
        refund_of = values.id_lookup(refund_of) or None
        if kind == "sale" and refund_of:
            raise ValueError(M_("a sale cannot have refund_of (set kind to refund)"))
        if store_column:
            store = parse_store(store) or default_store
        else:
            store = default_store
        return pid, mid, at, amount, category, kind, refund_of, store
    return parse_row


def _earliest_sales(conn, main: CsvSource, options: ImportOptions, parse_row) -> dict | None:
    """--create-members: {member id: the date of their earliest sale in the file}, for the members
    not enrolled yet, so that one first seen late in an unsorted file still joins on their first
    purchase (SPEC §5). Only sales the import can keep count: a row it refuses for its own sake
    (any bad cell, a refund, an id already recorded) does not. None when the file cannot be read
    twice (a pipe, standard input): the import then looks chunk by chunk. What this reading saw
    joins the import's check that the file did not change (`main.earlier`)."""
    if not main.regular:
        return None
    path = main.path
    earliest: dict[str, str] = {}  # keyed by values.member_key: two spellings of an id are one member
    batch: list[tuple] = []

    def settle():
        recorded = import_rows.recorded(conn, {pid for pid, __, __ in batch})
        enrolled = import_rows.enrolled_keys(conn, list({values.member_key(mid) for __, mid, __ in batch}))
        for pid, mid, at in batch:
            key = values.member_key(mid)
            if pid not in recorded and key not in enrolled and at < earliest.get(key, "9999"):
                earliest[key] = at
        batch.clear()
    try:
        with CsvSource(path, PURCHASE_FIELDS, options) as source:
            try:
                for _line, _cells, row in source.raw_rows():
                    if isinstance(row, str):
                        continue
                    try:
                        pid, mid, at, _amount, _category, kind, _refund_of, _store = parse_row(row)
                    except ValueError:
                        continue
                    if kind == "sale":
                        batch.append((pid, mid, at))
                    if len(batch) >= CHUNK:
                        settle()
            except InputFileError:
                pass  # the import's own reading reports it, with the rows before it
            main.earlier.append(source.fingerprint())
    except InputFileError:
        pass  # its header refused, when the import's was not: the file changed, which the import tells
    settle()
    return earliest


@contextmanager
def _importing(store, path: Path, fields: dict, options: ImportOptions, progress: Progress | None, counts: dict):
    """What both imports share: read the file, one transaction, bad rows, rejects, progress, the verdict.

    Yields (conn, source, bad) where `bad(line, cells, message)` records a bad row.
    Any bad row rolls everything back unless --skip-bad; --dry-run always does. Before the
    commit, the file is checked to be what was read (a file rewritten meanwhile is refused
    whole) and the rejected rows are written and synced (if they cannot be, nothing commits).
    """
    problems: list[Problem] = []
    if options.rejects is not None:
        _check_rejects_path(Path(options.rejects), Path(path), store.path)
    source = None
    try:
        with CsvSource(path, fields, options) as source, _no_cyclic_gc():
            # a dry run writes no file: its rejected rows are in the report (stderr, --json)
            rejects = Rejects(Path(options.rejects) if options.rejects is not None and options.skip_bad
                              and not options.dry_run else None, source.header)
            source.progress = lambda: None
            if progress is not None:
                progress.start(source.size)
                source.progress = lambda: progress.update(source.counter.count)

            def bad(line, cells, message):
                problems.append(Problem(message, line))
                counts["rejected"] += 1
                rejects.add(line, message, cells)

            try:
                with store.bulk_write() as conn:
                    yield conn, source, bad
                    _refuse_if_changed(source, path, options, counts)
                    if problems and not options.skip_bad:
                        raise InputFileError(_reject_message(path, problems), problems, _nothing_written(counts))
                    rejects.finish()
                    if options.dry_run:
                        raise _DryRun()
            except _DryRun:
                pass
            except InputFileError as exc:
                if not getattr(exc, "changed", False):
                    # rows refused (or the file refused midway) may only be the mark of a file
                    # rewritten while it was read: then that is what to say
                    _refuse_if_changed(source, path, options, counts, thorough=exc.summary is not None)
                raise
            finally:
                if progress is not None:
                    progress.close()
                rejects.discard()
    except InputFileError as exc:
        if exc.summary is None:  # the file itself was refused (header, quoting, encoding): the same report
            row_problem = any(p.line is not None and p.line > 1 for p in exc.problems)
            counts["rows"] += row_problem
            counts["rejected"] += row_problem
            exc.summary = _nothing_written(counts)
            exc.problems = problems + exc.problems
        raise
    if problems:
        raise InputFileError(_("{path}: {rows} skipped").format(path=shown_path(path), rows=plural(len(problems), 'bad row')) + (
            _(" (dry run: --rejects {rejects} not written)").format(rejects=options.rejects) if options.rejects and options.dry_run
            else _(", written to {rejects}").format(rejects=options.rejects) if options.rejects else ""), problems, counts, rows_skipped=True)
    counts["ignored_columns"] = source.ignored  # for the CLI's note; not part of the JSON summary (SPEC §11)


def _refuse_if_changed(source: "CsvSource", path: Path, options: ImportOptions, counts: dict,
                       thorough: bool = True) -> None:
    """InputFileError (exit 3; the transaction rolls back) when the file is not what was read."""
    why = source.changed(thorough)
    if why is None:
        return
    doing, again = (_("checked"), _("check")) if options.dry_run else (_("imported"), _("import"))
    message = (_("{path} changed while it was being {doing} ({why}); nothing was imported: {again} it again once it is complete").format(path=path, doing=doing, why=why, again=again))
    exc = InputFileError(message, [Problem(message, None)], _nothing_written(counts))
    exc.changed = True
    raise exc


def _check_rejects_path(rejects: Path, source: Path, db: Path) -> None:
    """--rejects FILE is replaced (like a shell's `>`), but never the file being imported, the
    database or its journal files: a typo there would destroy what the import reads or writes.
    Nor anything but a regular file: a link, a FIFO, a device, a socket or a directory."""
    protected = [(source, _("the file being imported"))] + [
        (Path(f"{db}{suffix}"), _("the database") if not suffix else _("the database's {suffix} file").format(suffix=suffix[1:]))
        for suffix in ("", "-wal", "-shm", "-journal")]
    for other, what in protected:
        try:
            same = rejects.exists() and other.exists() and os.path.samefile(rejects, other)
        except OSError:
            same = False
        if same or os.path.abspath(rejects) == os.path.abspath(other):
            raise UsageError(M_("--rejects {rejects} is {what}; give another file for the rejected rows", rejects=rejects, what=what))
    _check_regular_or_absent(rejects)


# What a rejected file reports as written: nothing (it was all rolled back).
WRITE_COUNTS = ("imported", "points_awarded", "points_reversed", "members_created", "created", "updated")


def _nothing_written(counts: dict) -> dict:
    return {key: 0 if key in WRITE_COUNTS else value for key, value in counts.items()}


@contextmanager
def _no_cyclic_gc():
    """An import allocates millions of short-lived tuples and makes no reference cycles worth
    collecting: the cycle collector's passes over the buffers cost a twentieth of the time."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _DryRun(Exception):
    """Raised inside the transaction so `--dry-run` rolls everything back."""


def _reject_message(path: Path, problems: list[Problem]) -> str:
    first = problems[0]
    more = _(" (and {rows})").format(rows=plural(len(problems) - 1, 'more bad row')) if len(problems) > 1 else ""
    return _("{path} rejected, nothing imported: line {line}: {message}{more}").format(path=shown_path(path), line=first.line, message=display(first.message), more=more)


def import_members(store, path: Path, options: ImportOptions, progress: Progress | None = None) -> dict:
    """`members import`: upsert by member_id, else by email; never duplicates.

    Rows are applied one by one, in file order, in chunks of CHUNK: the members a chunk names (by
    id, referrer and email) are read with a few queries first (store.members.ImportLookups), the
    members it enrols written together, so a row costs no round trip to a database server."""
    from loyalty_cli import members as members_mod
    from loyalty_cli.ledger import Book
    from loyalty_cli.store.members import ImportLookups

    counts = dict(rows=0, created=0, updated=0, unchanged=0, rejected=0)
    with _importing(store, path, MEMBER_FIELDS, options, progress, counts) as (conn, source, bad):
        _refuse_masked_columns(source, options)
        book = Book(conn)
        lookups = ImportLookups(conn)

        def run(chunk):
            _prepare_members(lookups, chunk)
            for line, cells, row in chunk:
                try:
                    if isinstance(row, str):
                        raise ValueError(row)
                    outcome = _upsert_member(book, conn, row, options, members_mod, lookups)
                except (ValueError, LoyaltyError) as exc:
                    bad(line, cells, message_of(exc))
                    continue
                counts[outcome] += 1
            lookups.forget()  # (written before the ledger: its entries name the new members)
            book.flush(members=False)  # members' rows and the daily totals once, at the end
            source.progress()

        _in_chunks(source.rows(), counts, run)
        book.flush()
    return counts


def _in_chunks(rows, counts: dict, run, first_chunk_read=None) -> None:
    """Hand the rows to `run` CHUNK at a time (the last chunk may be short, or empty), counting them
    in counts["rows"]; `first_chunk_read()` is called once the first whole chunk is read, before it
    runs. A file refused part way (InputFileError) still runs the rows read before it: their bad
    rows are reported too."""
    chunk: list = []
    try:
        for item in rows:
            counts["rows"] += 1
            chunk.append(item)
            if len(chunk) >= CHUNK:
                if first_chunk_read is not None and counts["rows"] == CHUNK:
                    first_chunk_read()
                run(chunk)
                chunk = []
    except InputFileError:
        run(chunk)
        raise
    run(chunk)


def _prepare_members(lookups, chunk: list) -> None:
    """Read the members a chunk of members-import rows names, by id, referrer and email, in bulk.
    Only a guess at what the rows will ask (a cell that does not parse is skipped here and refused
    by the row itself): whatever is not read here is asked of the database when needed."""
    keys, ids, emails = set(), set(), set()
    unnamed = 0  # rows without a member_id: a new member among them is given a generated id
    for __, __, row in chunk:
        if isinstance(row, str):
            continue
        unnamed += not row.get("member_id")
        for column in ("member_id", "referred_by"):
            text = _unquoted(row.get(column) or "")
            if text:
                try:
                    typed = values.parse_id(text)
                except ValueError:
                    continue
                ids.add(typed)
                keys.add(values.member_key(typed))
        if row.get("email"):
            try:
                emails.add(values.parse_email(_unquoted(row["email"])))
            except ValueError:
                pass
    lookups.prepare(keys, ids, emails)
    if unnamed:
        from loyalty_cli.members import new_member_id

        offered = [new_member_id() for __ in range(unnamed)]
        lookups.offer_ids(offered, [values.member_key(mid) for mid in offered])


def future_row(column: str, value: str, latest: str) -> str:
    """A bad row's reason when its date is after today (SPEC §3: writing the future needs --allow-future)."""
    return (M_("{column} {value} is after today ({latest}): import with --allow-future if rows dated after today are meant", column=column, value=value, latest=latest))


def _member_date(text: str | None, options: ImportOptions, what: str) -> str | None:
    """A date cell of the members CSV, in ISO form or the --date-format given."""
    if not text:
        return None
    if options.date_format:
        return values.parse_with_format(text, options.date_format, what)[:10]
    return values.parse_date(text, what)


# The columns a masked export names (cli.common.pii_columns): their cells are stars, never data.
MASKED_COLUMNS = ("email_masked", "phone_masked")


def _refuse_masked_columns(source: CsvSource, options: ImportOptions) -> None:
    """A members export made without --show-pii says so in its header (email_masked, phone_masked):
    imported again it would overwrite real emails and phones with stars, so the file is refused."""
    names = [h.strip().lower() for h in source.header]
    found = [name for name in MASKED_COLUMNS if name in names]
    if found:
        raise InputFileError(
            M_("{path}: the header has {join}: this is an export with masked emails and phones (made without --show-pii), which would overwrite the real ones; export with --show-pii to import it again", path=shown_path(source.path), join=' and '.join(found)), [Problem(M_("masked columns {join}", join=', '.join(found)), 1)])


def _unquoted(cell: str) -> str:
    """A cell as the tool wrote it before neutralising a formula (render.safe_cell: `'+44 …` for
    `+44 …`), so a `members list --csv --show-pii` export imports again unchanged."""
    from loyalty_cli.render import FORMULA_STARTS

    return cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1:].startswith(FORMULA_STARTS) else cell


def _upsert_member(book, conn, row: dict, options: ImportOptions, members_mod, lookups=None) -> str:
    """Apply one row; `lookups`: the import's member rows (store.members.ImportLookups), or None to ask
    the database for each."""
    from loyalty_cli.ids import resolve_member

    row = {k: _unquoted(v) for k, v in row.items()}

    mid = values.parse_id(row["member_id"]) if row.get("member_id") else None
    if mid is not None:
        mid = resolve_member(conn, mid, alias=False, rows=lookups)  # the stored spelling: `m0042` updates `M0042`
        from loyalty_cli import hygiene

        hygiene.refuse_merged_profile(conn, mid, lookups)
    email = values.parse_email(row["email"]) if row.get("email") else None
    if mid is None and email is None:
        raise ValueError(M_("a row needs a member_id or an email"))
    fields = {
        "name": row.get("name") or None,
        "email": email,
        "phone": values.parse_phone(row["phone"]) if row.get("phone") else None,
        "birthday": _member_date(row.get("birthday"), options, "birthday"),
        "joined_on": _member_date(row.get("joined_on"), options, "joined_on"),
        "referred_by": resolve_member(conn, values.parse_id(row["referred_by"], "referred_by"), "referred_by",
                                      rows=lookups) if row.get("referred_by") else None,
    }
    if fields["name"] is not None:
        fields["name"] = values.parse_text(fields["name"], "name", 200)
    if options.latest is not None and fields["joined_on"] and fields["joined_on"] > options.latest:
        raise ValueError(future_row("joined_on", fields["joined_on"], options.latest))
    if options.latest is not None and fields["birthday"] and fields["birthday"] > options.latest:  # a typo (2090)
        raise ValueError(M_("birthday {birthday} is after today ({latest}): a birthday is a date in the past", birthday=fields['birthday'], latest=options.latest))
    from loyalty_cli import hygiene

    # Consent (members import's email_opt_in, sms_opt_in): an empty cell or no column leaves it as it is.
    consent = {channel: hygiene.parse_yes_no(row[f"{channel}_opt_in"], f"{channel}_opt_in")
               for channel in hygiene.CHANNELS if row.get(f"{channel}_opt_in")}
    match = members_mod.import_match(conn, mid, email, lookups)
    try:  # enrol and change_profile check the referrer: enrolled, active, not the member themself
        if match is None:
            joined = fields.pop("joined_on") or options.today
            m = members_mod.enrol(book, member_id=mid, joined_on=joined, **fields, rows=lookups)
            hygiene.set_consent(conn, m.member_id, consent, options.today, "import", None, lookups)
            return "created"
        changed = members_mod.change_profile(conn, match, fields, lookups)
        changed = hygiene.set_consent(conn, match, consent, options.today, "import", None, lookups) or changed
        return "updated" if changed else "unchanged"
    except NotFound:  # only the referrer can be missing
        raise LoyaltyError(M_("referred_by names member {referred_by}, who is not enrolled (earlier rows of the file count)", referred_by=fields['referred_by'])) from None
