"""Anchors: the chain's head written down outside the database (`db seal`), checked by `db check`.

The chain alone cannot tell a database whose last blocks were deleted, or whose history was
rewritten and every later hash recomputed (by someone holding the key), from an honest one:
nothing outside the file says where the chain had got to. `loyalty db seal` appends that fact to
a small text file kept elsewhere; `db check` then insists the chain still passes through every
fact recorded.

The anchors file is plain text, append-only, one record a line (`#` lines and blank lines are
comments):

    2026-12-05T02:30:00 blocks=1234 head=<64 hex digits> db=/srv/shop/loyalty.db
    2026-12-06T09:12:00 restore blocks=1200 head=<64 hex digits> db=/srv/shop/loyalty.db

The first kind is a seal: on that date the chain held `blocks` blocks and the hash of block number
`blocks` was `head`. The second is written by `db restore`: the database was replaced by a backup
whose head was that; the seals before it that the restore lost are still reported, with that
reason. `db=` (the rest of the line) names the database sealed, for the person reading the file;
it is not compared. Seals written before the chain (`entries=N`: the ledger's entry count and
the hash of its last entry) are verified against the ledger as they always were.

Formatting, parsing and comparing are pure; the file itself is opened by `append_line` and
`read_lines`, and the default location comes from the environment the CLI passes in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from loyalty_cli.errors import Problem
from loyalty_cli.ledger import GENESIS
from loyalty_cli.i18n import M_

HEADER = ("# loyalty anchors: the chain's head, one line per 'loyalty db seal'; 'loyalty db check' "
          "verifies the chain still passes through each. Append-only: do not edit.\n")

_LINE = re.compile(r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) (?:(?P<restore>restore) )?(?P<unit>entries|blocks)="
                   r"(?P<entries>\d{1,18}) "
                   r"head=(?P<head>[0-9a-f]{64}) db=(?P<db>.*)")


class Anchor:
    """One record of the anchors file: a seal, or a restore (`restore` True), at its line number."""

    __slots__ = ("at", "entries", "head", "db", "restore", "line", "unit")

    def __init__(self, at: str, entries: int, head: str, db: str, restore: bool = False, line: int = 0,
                 unit: str = "blocks"):
        self.at, self.entries, self.head, self.db, self.restore, self.line = at, entries, head, db, restore, line
        self.unit = unit  # "blocks" of the chain, or "entries" of the ledger (a seal made before the chain)

    def text(self) -> str:
        """The record as one line of the file (no newline)."""
        kind = "restore " if self.restore else ""
        return f"{self.at} {kind}{self.unit}={self.entries} head={self.head} db={self.db}"

    def as_dict(self, anchors_file: str) -> dict:
        return {"at": self.at, self.unit: self.entries, "head": self.head, "anchors": anchors_file}


def default_path(db_path: str, environ) -> Path:
    """`$XDG_CONFIG_HOME/loyalty/anchors/<db file name>-<12 hex of its real path>.anchors` (else under
    ~/.config): one per database, so two shops on one machine never share one."""
    import hashlib

    from loyalty_cli.keys import config_dir

    real = _where(db_path)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(real.split("?")[0])) or "loyalty"
    return config_dir(environ) / "anchors" / f"{name}-{digest}.anchors"


def resolve_path(given: str | None, db_path: str, environ) -> Path:
    """`--anchors` beats `LOYALTY_ANCHORS` beats the default beside the other settings."""
    from loyalty_cli.keys import chosen_path

    return chosen_path(given, "--anchors", "LOYALTY_ANCHORS", environ, M_("an anchors file")) or default_path(db_path, environ)


def seal(at: str, last_id: int, last_hash: str | None, db_path: str) -> Anchor:
    """The record sealing a chain whose last block is `last_id` with hash `last_hash` (0, None: empty)."""
    return Anchor(at, last_id, last_hash or GENESIS, _where(db_path, os.path.abspath))


def _where(db_path, local=os.path.realpath) -> str:
    """`local(path)` of a database file, or the database's URL (without a password) on PostgreSQL."""
    from loyalty_cli.store import is_postgres_url

    return str(db_path) if is_postgres_url(str(db_path)) else local(db_path)


def parse(lines: list[str], file: str) -> tuple[list[Anchor], list[Problem]]:
    """The records of an anchors file, and a problem for each line that is not one (by line number)."""
    anchors, problems = [], []
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        m = _LINE.fullmatch(text)
        if m and _valid_datetime(m["at"]):
            anchors.append(Anchor(m["at"], int(m["entries"]), m["head"], m["db"], bool(m["restore"]), number,
                                  m["unit"]))
        else:
            shown = text if len(text) <= 60 else text[:57] + "..."
            problems.append(Problem(M_("anchors file {file}, line {number}: not an anchor ({shown!r}); expected 'YYYY-MM-DDTHH:MM:SS blocks=N head=<64 hex> db=PATH'", file=file, number=number, shown=shown), check="anchors"))
    return anchors, problems


def _valid_datetime(text: str) -> bool:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def verify(anchors: list[Anchor], heads: dict, file: str) -> list[Problem]:
    """A problem for each seal the chain (or, for a seal made before the chain, the ledger) no longer
    passes through. `heads`: {"blocks": (last block id, hash_of), "entries": (last entry id, hash_of)},
    `hash_of(n)` being block (entry) n's stored hash, or None when there is none. A seal followed in
    the file by a restore record that the seal lies beyond is still reported, with the restore named
    as the likely reason."""
    problems = []
    restores = [(i, r) for i, r in enumerate(anchors) if r.restore]  # usually none: one pass over the seals
    for i, anchor in enumerate(anchors):
        if anchor.restore:
            continue
        unit = anchor.unit
        one, whole = ("block", "chain") if unit == "blocks" else ("entry", "ledger")
        last_id, hash_of = heads[unit]
        restored = next((r for j, r in restores if j > i and r.unit == unit and r.entries < anchor.entries), None)
        reason = (M_(": restored from an older backup on {day} (at {entries:,} {unit})? {unit} after it are gone", day=_day(restored.at), entries=restored.entries, unit=unit) if restored else "")
        where = M_(" (anchors file {file}, line {line})", file=file, line=anchor.line)
        sealed = M_("sealed at {entries:,} {unit} on {day}", entries=anchor.entries, unit=unit, day=_day(anchor.at))
        if anchor.entries == 0:
            if anchor.head != GENESIS:
                problems.append(Problem(M_("the empty {whole} {sealed} has a head that is not the genesis hash: this anchor was not written by 'loyalty db seal'{where}", whole=whole, sealed=sealed, where=where), check="anchors"))
            continue
        if last_id < anchor.entries:
            message = M_("the {whole} has {last_id:,} {unit} but was {sealed}: {unit} were deleted{reason}", whole=whole, last_id=last_id, unit=unit, sealed=sealed, reason=reason)
        else:
            found = hash_of(anchor.entries)
            if found == anchor.head:
                continue
            if found is None:
                message = M_("{one} {entries:,} is missing but the {whole} was {sealed}: {unit} were deleted{reason}", one=one, entries=anchor.entries, whole=whole, sealed=sealed, unit=unit, reason=reason)
            else:
                message = M_("{one} {entries:,}'s hash is not the one {sealed}: history was rewritten{reason}", one=one, entries=anchor.entries, sealed=sealed, reason=reason)
        problems.append(Problem(message + where, check="anchors"))
    return problems


def last_verified_seal(anchors: list[Anchor], last_block: int, hash_of) -> int:
    """The block count of the latest seal of the chain it still passes through (0: none), where an
    incremental `db check` starts comparing history."""
    for anchor in reversed(anchors):
        if anchor.unit == "blocks" and not anchor.restore and 0 < anchor.entries <= last_block \
                and hash_of(anchor.entries) == anchor.head:
            return anchor.entries
    return 0


def _day(at: str) -> str:
    return at[:10]


# -- the file -----------------------------------------------------------------------------------
def read_lines(path: Path) -> list[str] | None:
    """The file's lines, or None when it does not exist (nothing sealed yet). Other errors raise OSError."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def append_line(path: Path, text: str) -> None:
    """Append one line, durably (fsync): the file is created 0600, its missing folders 0700."""
    from loyalty_cli.store import make_private_dir

    make_private_dir(path.parent)
    created = False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:  # the usual case; also when another seal created it a moment ago
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        if created:
            os.fchmod(fd, 0o600)
            os.write(fd, HEADER.encode())
        data = (text + "\n").encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new name itself survives a power cut
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
