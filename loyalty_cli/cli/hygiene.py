"""`loyalty members merge`, `members export`, `campaign list` and `db audit`: member hygiene (issue 20).

The commands are registered on the members and db groups from here (imported at the end of
cli/members.py and cli/db.py); `campaign` is a group of its own.
"""

from __future__ import annotations

from pathlib import Path

import typer

from loyalty_cli.cli.common import (allow_future_option, as_of_option, at_option, call, database_file, group,
                                    operator, out, refuse_future, store, write_private)
from loyalty_cli.cli.members import app as members_app
from loyalty_cli.errors import UsageError
from loyalty_cli.i18n import M_, N_, _, display
from loyalty_cli.render import plural

campaign_app = group(N_("Contact lists for campaigns, of the members who agreed to be contacted."),
                     "loyalty campaign list birthdays --channel email --output birthdays.csv")


@members_app.command("merge")
def merge(
    member_id: str = typer.Argument(..., metavar="DUP", help=N_("The duplicate: the id to merge away.")),
    into: str = typer.Option(..., "--into", metavar="KEEP", help=N_("The member to keep.")),
    at: str = typer.Option(None, "--at", help=N_("When (default: now).")),
    yes: bool = typer.Option(False, "--yes", help=N_("Really merge (required when not asked on a terminal).")),
    by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who merges (default: the OS user).")),
    allow_future: bool = allow_future_option(),
):
    """Merge a member enrolled twice into the one to keep. It cannot be undone.

    DUP's points move to KEEP with their expiry dates (lapsed points are written
    off first); DUP's purchases stay in DUP's history, and a later refund of one
    takes the points back from KEEP. DUP becomes an alias: sales, imports and
    other activity naming DUP are recorded for KEEP, and 'members show DUP' says
    so. Members DUP referred count as KEEP's referrals; KEEP takes the higher of
    the two tiers until the next 'tiers recalc'. Refused (exit 1, nothing written)
    for a member into themself, into or from an erased or merged member, or a DUP
    below zero points. There is no undo: check the two ids first.

    \b
    Example:
      loyalty members merge M0420 --into M0042 --yes
      loyalty members merge M0420 --into M0042 --at 2026-11-15T10:00 --yes --json
    """
    from loyalty_cli import hygiene
    from loyalty_cli.cli.common import as_stored

    if not yes:
        import sys

        if not sys.stdin.isatty():
            raise UsageError(M_("merging members needs --yes (it cannot be undone)"))
        if not typer.confirm(_("Merge {dup} into {keep}? This cannot be undone").format(dup=as_stored(member_id),
                                                                                       keep=as_stored(into))):
            raise typer.Exit(1)
    when = at_option(at)
    refuse_future(when, allow_future, "--at", lambda: _("record the merge of {dup} as done then").format(dup=as_stored(member_id)))
    r = call(hygiene.merge, member_id, into, when, operator(by))
    tier = (_("; tier {before} → {after}").format(before=r['tier_before'], after=r['tier'])
            if r["tier"] != r["tier_before"] else "")
    h = r.get("household")
    if h:  # households.follow_merge: what the merge did to DUP's household
        if h["joined"]:
            tier += _("; {keep} takes {dup}'s place in household {name}").format(keep=h['joined'], dup=h['left'],
                                                                                  name=h['name'])
        elif h["closed"]:
            tier += _("; {dup} left household {name}, which closed").format(dup=h['left'], name=h['name'])
        else:
            tier += _("; {dup} left household {name}").format(dup=h['left'], name=h['name'])
        tier += _(" (head {head})").format(head=h['head']) if not h["closed"] else ""
    out(lists=False).done(_("merged {dup} into {keep}: {points} moved in {lots} (balance {balance:,}){tier}").format(
        dup=r['member_id'], keep=r['into'], points=plural(r['points_moved'], 'point'), lots=plural(r['lots_moved'], 'lot'),
        balance=r['balance'], tier=tier), r)


@members_app.command("export")
def export(
    member_id: str = typer.Argument(..., help=N_("Member id.")),
    output: Path = typer.Option(None, "--output", "-o", metavar="FILE",
                                help=N_("Write the document here (mode 0600, replaced whole) instead of stdout.")),
):
    """Everything the shop holds on one member, as one JSON document (right of access).

    Profile, consent and its history, purchases, ledger and lots, vouchers, tier
    history, merges, referrals and feedback. An erased member's export holds what
    remains. The document is personal data: keep the file private.

    \b
    Example:
      loyalty members export M0042 --output M0042.json
    """
    import json

    from loyalty_cli import hygiene

    o = out(lists=False)  # (--csv refused: one document)
    if output is not None:
        _check_output(output)
    doc = call(hygiene.export_member, member_id)
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        if not o.quiet:
            import sys

            sys.stdout.write(text)
        return
    write_private(output, text)
    o.note(_("wrote everything held on {member_id} to {path}").format(member_id=doc['member_id'], path=output))


@campaign_app.command("list")
def campaign_list(
    list_name: str = typer.Argument(..., metavar="LIST", help="birthdays | churn-risk | segment | expiring"),
    segment: str = typer.Argument(None, metavar="[NAME]", help=N_("For 'segment': the RFM segment (see report segments).")),
    channel: str = typer.Option(..., "--channel", metavar="email|sms", help=N_("Who agreed to be contacted this way.")),
    as_of: str = typer.Option(None, "--as-of", help=N_("The lists as of this date (default: today).")),
    days: int = typer.Option(None, "--days", help=N_("birthdays: in the next N days (30); churn-risk: no sale for N "
                             "days (365, as report churn); expiring: points expiring in N days (30).")),
    output: Path = typer.Option(None, "--output", "-o", metavar="FILE",
                                help=N_("Write the list here (CSV, or JSON with --json; mode 0600, replaced whole).")),
    by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who exports (default: the OS user).")),
):
    """The contact list of a campaign: members of LIST who opted in to the channel.

    Only members who agreed to the channel, are not erased and were not merged
    into another; with their contact details unmasked (that is the list's
    purpose: keep it private). The members come from the reports: birthdays
    (report birthdays), churn-risk (report churn), segment NAME (report
    segments), expiring (report expiring). Every list shown or written is
    recorded (who, when, which list, channel, how many): see loyalty db audit.

    \b
    Example:
      loyalty campaign list birthdays --channel email --output birthdays.csv
      loyalty campaign list segment at_risk --channel sms --csv
      loyalty campaign list expiring --channel email --days 14 --json
    """
    from loyalty_cli import hygiene

    day = as_of_option(as_of)
    if output is not None:
        _check_output(output)
    who = operator(by)
    s = store()
    try:
        members = hygiene.campaign_members(s, list_name, channel, day, segment, days)
        name = list_name + (f" {segment}" if segment else "")
        # Recorded before it is written: an audit that names an export that then failed is safer
        # than an export the audit never shows.
        from loyalty_cli.cli.common import now

        hygiene.record_export(s, name, channel, day, len(members), str(output) if output else "stdout", now(), who)
    finally:
        s.close()
    columns = _campaign_columns(members, channel)
    doc = {"list": name, "channel": channel, "as_of": day, "members": members}
    if output is not None:
        write_private(output, _json_text(doc) if out(lists=True).json else _csv_text(members, columns))
        out(lists=True).note(_("wrote {members} ({name}, {channel}) to {path}").format(
            members=plural(len(members), 'member'), name=name, channel=channel, path=output))
        return
    out().table(members, [(c, CAMPAIGN_LABELS.get(c, c.replace("_", " "))) for c in columns], json_obj=doc,
                empty=_("no member of {name} agreed to {channel}").format(name=name, channel=channel))


# The headers of a campaign list's columns (shown translated; CSV and JSON keep the keys)
CAMPAIGN_LABELS = {"member_id": N_("member"), "name": N_("name"), "email": N_("email"), "phone": N_("phone"),
                   "sms": N_("sms"), "birthday": N_("birthday"), "date": N_("date"), "last_sale": N_("last sale"),
                   "days_since": N_("days since"), "segment": N_("segment"), "points": N_("points")}


def _campaign_columns(members: list[dict], channel: str) -> list[str]:
    columns = ["member_id", "name", channel]
    for row in members:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def _json_text(doc) -> str:
    import json

    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    import csv
    import io

    from loyalty_cli.render import safe_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _check_output(path: Path) -> None:
    """--output must be a regular file or a new path in an existing folder, never the database."""
    import os
    import stat

    text = str(path)
    if not text or text in (".", "-"):
        raise UsageError(M_("--output needs a file name"))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(M_("--output {path} is not a regular file (a link, folder or device): give a file name",
                            path=path))
    if not path.parent.is_dir():
        raise UsageError(M_("--output {path}: the folder {folder} does not exist", path=path, folder=path.parent))
    if database_file(path) is not None:
        raise UsageError(M_("--output {path} is the database or one of its files: give another file", path=path))


def audit(
    kind: str = typer.Option(None, "--kind", help=N_("Only this kind: export | merge | erasure.")),
    sort: str = typer.Option("at", "--sort", help="at | kind | by"),
    limit: int = typer.Option(None, "--limit", min=1, help=N_("At most this many.")),
):
    """What was done with members' personal data: campaign lists exported, merges, erasures.

    Each campaign list shown or written by 'loyalty campaign list' is one line: when,
    who, which list by which channel as of which date, where to, and how many
    members it named.

    \b
    Example:
      loyalty db audit
      loyalty db audit --kind export --sort by --limit 20 --csv > exports.csv
    """
    from loyalty_cli import hygiene

    rows = call(hygiene.audit, kind, sort, limit)
    o = out()
    shown = rows if o.csv else [dict(row, what=display(row["what"])) for row in rows]  # CSV stays English
    o.table(shown, [("at", N_("at")), ("kind", N_("kind")), ("by", N_("by")), ("members", N_("members")),
                    ("what", N_("what"))], empty=N_("nothing recorded yet"), json_obj=rows)


AUDIT_KINDS = (N_("campaign export"), N_("merge"), N_("erasure"))  # the kind column's words, shown translated
MERGE_KINDS = (N_("merge_in"), N_("merge_out"))  # a merge's ledger entries, shown translated by points history

