"""`loyalty db …`: check every invariant, back up online, restore a checked backup."""

from __future__ import annotations

from pathlib import Path

import typer

from loyalty_cli.cli.common import call, existing_file, group, out, store, today
from loyalty_cli.render import plural

app = group("Check, back up and restore the database.", 'loyalty db check && loyalty db backup ~/backups/loyalty-$(date +%F).db')


@app.command("check")
def check():
    """Verify every ledger invariant (balances, lots, hash chain, SQLite integrity); exit 4 on any problem.

    Also that the outstanding points the reports show, today and on the days after it
    that have entries, are the sum of the balances the ledger gives; and that the schema is
    exactly the one loyalty made: every trigger refusing edits to the history in place and
    unchanged, and no trigger, table, view or index added by hand (one may copy personal data).

    \b
    Example:
      loyalty db check --json
    """
    from loyalty_cli import checks
    from loyalty_cli.errors import CheckFailed

    # Unfinished backups of killed `db backup` runs go first: hidden copies of the customer data.
    removed, problems = call(lambda s: (s.remove_stale_partials(), checks.run_checks(s, today())))
    o = out(lists=False)
    _removed_note(o, removed)
    doc = {"ok": not problems,
           "problems": [{"check": p.check, "message": p.message, "member_id": p.member_id} for p in problems]}
    if o.json:
        o.json_doc(doc)
    elif not problems:
        o.done("ok: every check passed", doc)
    if problems:
        raise CheckFailed(f"db check found {plural(len(problems), 'problem')}", problems)


@app.command("backup")
def backup(file: Path = typer.Argument(..., help="The backup file to write (must not exist).")):
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
    o.done(f"backed up to {file}", {"backup": str(file)})


def _removed_note(o, removed: list[str]) -> None:
    for path in removed:
        o.note(f"removed {path}, an unfinished copy left by a 'db backup' that was stopped")


@app.command("restore")
def restore(file: Path = typer.Argument(..., help="A backup made by 'loyalty db backup'."),
            yes: bool = typer.Option(False, "--yes", help="Really replace the database (required).")):
    """Replace the database with a backup, only if the backup passes 'db check'.

    \b
    Example:
      loyalty db restore ~/backups/loyalty-2026-11-22.db --yes
    """
    from loyalty_cli import checks
    from loyalty_cli.errors import CheckFailed, UsageError
    import sqlite3

    from loyalty_cli.store import Store, backup_damaged

    if not yes:
        raise UsageError("restoring replaces the whole database; add --yes if you mean it")
    existing_file(file, "backup file")
    backup = Store.open_backup(file)
    try:
        try:
            problems = [p for p in checks.run_checks(backup, today()) if p.check not in checks.RESTORABLE]
        except sqlite3.DatabaseError as exc:  # SQLite met a damaged page of the backup, not of --db
            raise backup_damaged(file, exc) or exc from None
        if problems:
            raise CheckFailed(f"{file} fails db check ({plural(len(problems), 'problem')}: "
                              f"first: {problems[0].message}); "
                              "nothing restored", problems)
        target = store(create=True)  # restoring into a new file creates the database
        try:
            target.restore_from(backup)
        finally:
            target.close()
    finally:
        backup.close()
    out(lists=False).done(f"restored the database from {file}", {"restored": str(file)})
