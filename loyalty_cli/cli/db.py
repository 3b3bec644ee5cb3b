"""`loyalty db …`: check every invariant, back up online, restore a checked backup, copy to another database,
seal the chain's head."""

from __future__ import annotations

from pathlib import Path

import typer

from loyalty_cli.cli.common import (Invocation, allow_future_option, at_option, call, existing_file, group, now, out,
                                    refuse_future, store, today)
from loyalty_cli.render import plural
from loyalty_cli.i18n import N_, M_, _

app = group(N_("Check, back up, restore, copy and seal the database."),
            'loyalty db check && loyalty db backup ~/backups/loyalty-$(date +%F).db \\\n'
            '      && loyalty db seal')

ANCHORS_HELP = N_("The anchors file (env LOYALTY_ANCHORS; default: $XDG_CONFIG_HOME/loyalty/anchors/"
                  "<db name>-<hash of its path>.anchors, else under ~/.config).")


def anchors_option():
    return typer.Option(None, "--anchors", metavar="FILE", help=ANCHORS_HELP)


def _anchors_path(given: str | None) -> Path:
    """--anchors beats LOYALTY_ANCHORS beats the default for the database of --db / LOYALTY_DB."""
    import os

    from loyalty_cli import anchors
    from loyalty_cli.store import resolve_path

    return anchors.resolve_path(given, str(resolve_path(Invocation.db)), os.environ)


def _anchor_lines(path: Path):
    """(the anchors file's lines or None when there is none yet, a problem when it cannot be read)."""
    from loyalty_cli import anchors
    from loyalty_cli.errors import Problem

    try:
        return anchors.read_lines(path), []
    except OSError as exc:
        return None, [Problem(M_("cannot read the anchors file {path}: {value}", path=path, value=exc.strerror or exc), check="anchors")]


def _chain_key(no_key: bool):
    """(the chain key or None, problems): with --no-key none is read; a key file that is missing or
    is not a key is a problem (the nightly check must not quietly stop checking signatures)."""
    import os

    from loyalty_cli import keys
    from loyalty_cli.errors import LoyaltyError, Problem

    if no_key:
        return None, []
    path = keys.resolve_path(os.environ)
    try:
        key = keys.read(path)
    except LoyaltyError as exc:
        return None, [Problem(M_("{exc}; or run 'loyalty db check --no-key' to check everything else", exc=exc), check="key")]
    if key is None:
        return None, [Problem(M_("the chain key file {path} does not exist: the chain's signatures cannot be checked; restore the key file (or set LOYALTY_KEY_FILE to it), or run 'loyalty db check --no-key' to check everything else", path=path), check="key")]
    return key, []


@app.command("check")
def check(anchors: str = anchors_option(),
          full: bool = typer.Option(False, "--full", help=N_("Replay the whole chain and check every row, not only what changed since the last seal.")),
          no_key: bool = typer.Option(False, "--no-key", help=N_("Check without the chain key (LOYALTY_KEY_FILE): everything but the blocks' signatures."))):
    """Verify every ledger invariant, the chain and its anchors; exit 4 on any problem.

    Every state change is a block of the chain, hashed over the block before and
    signed with the chain key (LOYALTY_KEY_FILE; default:
    $XDG_CONFIG_HOME/loyalty/chain.key). 'db check' verifies every block's hash and
    signature, compares the
    ledger, lots, lot uses, purchases and tier changes row by row with the blocks
    that recorded them, and rebuilds from the chain what the tables of current
    state hold (balances, lots' remaining points, tiers, vouchers, stock, members'
    erasures, the programme, the summaries): any difference names the table, the
    row and the block. It also checks that the schema is exactly the one loyalty
    made (no trigger, table or view added by hand: one may copy personal data), and
    that the chain still passes through every head 'loyalty db seal' recorded in
    the anchors file.

    After a seal, 'db check' is incremental: rows are compared from the latest seal
    the chain still passes through, with the members and days those blocks touched
    and whole-database sums; --full replays everything (run it weekly).

    \b
    Example:
      loyalty db check && loyalty db seal
      loyalty db check --full --json
      loyalty db check --no-key --anchors /mnt/usb/shop.anchors
    """
    from loyalty_cli import checks
    from loyalty_cli.errors import CheckFailed

    import os

    anchors_path = _anchors_path(anchors)
    lines, unreadable = _anchor_lines(anchors_path)
    if lines is None and not unreadable and (anchors is not None or os.environ.get("LOYALTY_ANCHORS")):
        # Named on purpose (--anchors, LOYALTY_ANCHORS) but not there: an unmounted stick or a typo
        # must not turn the nightly check into one that compares nothing.
        from loyalty_cli.errors import Problem

        given = "--anchors" if anchors is not None else "LOYALTY_ANCHORS"
        unreadable = [Problem(M_("the anchors file {anchors_path} (given by {given}) does not exist: nothing could be compared; check the path (is the disk mounted?), or seal first: loyalty db seal", anchors_path=anchors_path, given=given),
                              check="anchors")]
    def run(s):
        # Unfinished backups of killed `db backup` runs go first: hidden copies of the customer data.
        removed = s.remove_stale_partials()
        key, key_problems = _chain_key(no_key)  # once opened: opening an older database makes its key
        outcome = checks.run(s, today(), lines, str(anchors_path), key, full)
        outcome.problems += key_problems
        return removed, outcome

    removed, outcome = call(run)
    outcome.problems += unreadable
    problems = outcome.problems
    o = out(lists=False)
    _removed_note(o, removed)
    if no_key:
        outcome.notes.append(_("the chain's signatures were not checked (--no-key): someone who can write the database could have rewritten it and its hashes; the anchors file still covers what was sealed"))
    for note in outcome.notes:
        o.note(_("note: {note}").format(note=note))
    doc = outcome.as_dict()
    if o.json:
        o.json_doc(doc)
    elif not problems:
        scope = ""  # a full check says no more than it always did
        if outcome.mode == "incremental":
            scope = (_(" (rows compared from the seal at block {since:,} of {blocks:,}; --full compares every row)").format(since=outcome.since, blocks=outcome.blocks))
        o.done(_("ok: every check passed{scope}").format(scope=scope), doc)
    if problems:
        raise CheckFailed(M_("db check found {problems}", problems=plural(len(problems), 'problem')), problems)


@app.command("backup")
def backup(file: Path = typer.Argument(..., help=N_("The backup file to write (must not exist)."))):
    """A consistent online backup (SQLite's backup API), safe while others write.

    \b
    Example:
      loyalty db backup ~/backups/loyalty-$(date +%F).db
    """
    s = store()
    try:
        removed = s.backup_to(file)
    finally:
        s.close()
    o = out(lists=False)
    _removed_note(o, removed)
    o.done(_("backed up to {file}").format(file=file), {"backup": str(file)})


def _removed_note(o, removed: list[str]) -> None:
    for path in removed:
        o.note(_("removed {path}, an unfinished copy left by a 'db backup' that was stopped").format(path=path))


@app.command("restore")
def restore(file: Path = typer.Argument(..., help=N_("A backup made by 'loyalty db backup'.")),
            yes: bool = typer.Option(False, "--yes", help=N_("Really replace the database (required).")),
            anchors: str = anchors_option()):
    """Replace the database with a backup, only if the backup passes 'db check'.

    The backup is checked without the anchors file: seals recorded after the backup was
    made lie beyond it by design. When the database has an anchors file, the restore is
    recorded in it, and 'db check' then names the restore as the reason the seals it
    lost fail.

    \b
    Example:
      loyalty db restore ~/backups/loyalty-2026-11-22.db --yes
      loyalty db restore ~/backups/loyalty-2026-11-22.db --yes \\
        --anchors /mnt/usb/shop.anchors
    """
    from loyalty_cli import checks
    from loyalty_cli.errors import CheckFailed, UsageError
    import sqlite3

    from loyalty_cli.store import Store, backup_damaged

    if not yes:
        raise UsageError(M_("restoring replaces the whole database; add --yes if you mean it"))
    existing_file(file, _("backup file"))
    backup = Store.open_backup(file)
    try:
        try:
            key, __ = _chain_key(False)  # a backup is checked with the key when there is one
            problems = [p for p in checks.run_checks(backup, today(), key=key) if p.check not in checks.RESTORABLE]
        except sqlite3.DatabaseError as exc:  # SQLite met a damaged page of the backup, not of --db
            raise backup_damaged(file, exc) or exc from None
        if problems:
            raise CheckFailed(M_("{file} fails db check ({problems}: first: {message}); nothing restored", file=file, problems=plural(len(problems), 'problem'), message=problems[0].message), problems)
        anchors_path = _anchors_path(anchors)
        target = store(create=True)  # restoring into a new file creates the database
        try:
            target.restore_from(backup)
        finally:
            target.close()
        o = out(lists=False)
        _record_restore(o, backup, anchors_path)
    finally:
        backup.close()
    o.done(_("restored the database from {file}").format(file=file), {"restored": str(file)})


def _record_restore(o, backup, path: Path) -> None:
    """A restore record in the database's anchors file, if it has one (the restore is done: a file
    that cannot be written is said on stderr, not an error)."""
    from loyalty_cli import anchors
    from loyalty_cli.store import resolve_path

    try:
        lines = anchors.read_lines(path)
        if lines is None:
            return
        with backup.read() as tx:
            last_id, last_hash = _chain_head(tx)
        record = anchors.seal(now(), last_id, last_hash, str(resolve_path(Invocation.db)))
        record.restore = True
        anchors.append_line(path, record.text())
        sealed, __ = anchors.parse(lines, str(path))
        if any(a.entries > last_id for a in sealed):  # the nightly `db check && db seal` would stop here
            o.note(_("note: {path} holds seals made after this backup: db check will report them until that file is moved aside and the database sealed again (loyalty db seal)").format(path=path))
    except OSError as exc:
        o.note(_("could not record the restore in the anchors file {path}: {value}").format(path=path, value=exc.strerror or exc))


def _chain_head(tx) -> tuple[int, str | None]:
    """(the chain's last block, its hash): what a seal records."""
    from loyalty_cli.store import chain as chain_rows

    if not chain_rows.has_chain(tx):  # a backup made before the chain
        return 0, None
    last, h, __, __ = chain_rows.head(tx)
    return last, (h if last else None)


@app.command("copy")
def copy(to: str = typer.Option(..., "--to", metavar="FILE|URL",
                                help=N_("A new SQLite file, or the URL of an empty PostgreSQL database."))):
    """Copy the whole database to a new SQLite file or an empty PostgreSQL database, and verify it.

    Moving a shop to PostgreSQL (and back): every row is copied as it is (ids,
    hashes, the chain), the copy is checked with 'db check' and the chain key before
    it is committed, and the chain head both sides agree on is printed. A target
    that holds anything is refused; a copy that fails its check leaves the target
    empty. On PostgreSQL, a copy to a SQLite file is also the portable backup.

    \b
    Example:
      loyalty db copy --to postgresql://shop@db.example.com/loyalty
      loyalty --db postgresql://shop@db/loyalty db copy --to shop-$(date +%F).db
    """
    from loyalty_cli import checks
    from loyalty_cli.errors import CheckFailed, LoyaltyError, UsageError
    from loyalty_cli.store import Store, copy as copying, is_postgres_url, resolve_path
    from loyalty_cli.store import ledger as ledger_rows

    if not to.strip():
        raise UsageError(M_("--to was given an empty path; give a new file or a PostgreSQL URL"))
    made_file = None
    to_file = not is_postgres_url(to)
    if to_file:
        target_path = Path(to)
        if target_path.is_dir():
            raise UsageError(M_("{to} is a directory; give --to the path of a new database file", to=to))
        if target_path.exists() and target_path.stat().st_size:
            raise LoyaltyError(M_("{to} already exists; db copy writes only to a new file or an empty database", to=to))
        made_file = None if target_path.exists() else target_path
    source = store()
    try:
        from_file = not is_postgres_url(str(source.path))
        if (Path(to).resolve() == Path(source.path).resolve() if to_file and from_file
                else str(resolve_path(to)) == str(source.path)):
            raise UsageError(M_("--to names the database being copied; give another file or database"))
        key, __ = _chain_key(False)
        target = Store.open(to, create=True, now=now(), adopt=False)
        target.announce = source.announce
        try:
            with source.read() as src, target.write() as dst:
                found = copying.state(dst)
                if found == copying.BEGUN:
                    raise LoyaltyError(M_("{path} was set up with 'loyalty init' (its chain has begun); db copy needs an empty database and creates the schema itself (nothing was copied)", path=target.path))
                if found != copying.EMPTY:
                    raise LoyaltyError(M_("{path} already holds data; db copy writes only to a new file or an empty database (nothing was copied)", path=target.path))
                try:
                    counts = copying.copy_rows(src, dst)
                except ValueError as exc:
                    raise LoyaltyError(M_("cannot copy to {path}: {exc} (is it from another version of loyalty?); nothing was copied", path=target.path, exc=exc)) from None
                problems = checks.run(target, today(), key=key, full=True).problems
                if problems:
                    raise CheckFailed(M_("the copy fails db check ({problems}: first: {message}); nothing was copied", problems=plural(len(problems), 'problem'), message=problems[0].message), problems)
                heads = [(_chain_head(tx), ledger_rows.head(tx)[1]) for tx in (src, dst)]
                if heads[0] != heads[1]:
                    raise LoyaltyError(M_("the copy's chain head {heads_1} is not the source's {heads_0}; nothing was copied", heads_1=heads[1], heads_0=heads[0]))
        finally:
            target.close()
    except BaseException:
        if made_file is not None:
            for leftover in (made_file, *(Path(f"{made_file}{x}") for x in ("-wal", "-shm", "-journal"))):
                leftover.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    (block, block_hash), ledger_head = heads[0]
    rows = sum(counts.values())
    where = str(target.path)
    out(lists=False).done(
        _("copied {rows} to {where}; db check passed on the copy; both sides' chain head: block {block:,} {value}").format(rows=plural(rows, 'row'), where=where, block=block, value=block_hash or '-'),
        {"to": where, "rows": counts, "chain_head": {"block": block, "hash": block_hash}, "ledger_head": ledger_head})


@app.command("rekey")
def rekey(yes: bool = typer.Option(False, "--yes", help=N_("Really accept the blocks signed before (required)."))):
    """Sign the chain from here on with the key in LOYALTY_KEY_FILE, when the old key is lost for good.

    The chain must first pass 'loyalty db check --no-key' (everything but the
    signatures); then one block, signed with the key the key file holds (made there
    if there is none), records that you accept every block before it as it is.
    'loyalty db check' with that key then notes those blocks as not verified instead
    of reporting them; the anchors file still covers what was sealed. Only someone
    who holds the new key can write that block: a block signed with any other key
    stays a problem.

    \b
    Example:
      loyalty db check --no-key && loyalty db rekey --yes && loyalty db seal
    """
    from loyalty_cli import checks, keys
    from loyalty_cli.errors import CheckFailed, UsageError
    from loyalty_cli.store import chain as chain_rows

    import os

    if not yes:
        raise UsageError(M_("rekeying accepts every block signed before it without its signature; add --yes if you mean it"))
    s = store()
    try:
        problems = checks.run(s, today(), None, "", None, full=True).problems
        if problems:
            raise CheckFailed(M_("the chain must pass 'loyalty db check --no-key' before it is rekeyed ({problems}: first: {message}); nothing was changed", problems=plural(len(problems), 'problem'), message=problems[0].message),
                              problems)
        with s.write() as tx:
            through = chain_rows.head(tx)[0]
            block = chain_rows.rekey(tx, through)
            signed_by = s.signer.key_for(None)[1]
    finally:
        s.close()
    path = keys.resolve_path(os.environ)
    out(lists=False).done(_("blocks 1..{through:,} accepted; the chain is signed with key {signed_by} ({path}) from block {block:,} on: seal it now (loyalty db seal)").format(through=through, signed_by=signed_by, path=path, block=block),
                          {"accepted_through": through, "block": block, "key": signed_by, "key_file": str(path)})


@app.command("seal")
def seal(anchors: str = anchors_option(),
         at: str = typer.Option(None, "--at", metavar="DATETIME", help=N_("The date of the seal (default: now).")),
         allow_future: bool = allow_future_option()):
    """Record the chain's head (block count and head hash) in the anchors file, outside the database.

    Appends one line, `DATETIME blocks=N head=HASH db=PATH`, to the anchors file and
    prints it. 'loyalty db check' then verifies that the chain still passes through
    every head recorded, so deleting the last blocks, or rewriting history and
    recomputing the hashes and signatures (someone holding the key), is found; and
    the next 'db check' compares rows from this seal on (--full: all). Sealing does not verify the ledger: run
    'loyalty db check' first. Sealing again at the same head appends another line
    (a dated record that nothing changed). Keep a copy of the anchors file somewhere
    the database's users cannot write (mail it, print it).

    \b
    Example:
      loyalty db check && loyalty db seal
      loyalty db seal --anchors /mnt/usb/shop.anchors --json
    """
    from loyalty_cli import anchors as anchor_file
    from loyalty_cli.errors import LoyaltyError

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("record a seal dated after today"))
    path = _anchors_path(anchors)
    s = store()
    try:
        with s.read() as tx:
            last_id, last_hash = _chain_head(tx)
        db_path = str(s.path)
    finally:
        s.close()
    record = anchor_file.seal(when, last_id, last_hash, db_path)
    try:
        anchor_file.append_line(path, record.text())
    except OSError as exc:
        raise LoyaltyError(M_("cannot write the anchors file {path}: {value}; nothing was sealed", path=path, value=exc.strerror or exc)) from None
    out(lists=False).done(record.text(), record.as_dict(str(path)))


from loyalty_cli.cli.hygiene import audit as _audit  # noqa: E402  (db audit: what was done with personal data)

app.command("audit")(_audit)
