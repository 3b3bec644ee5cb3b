"""`loyalty members …`: enrol, import, show, list, edit, erase."""

from __future__ import annotations

from pathlib import Path

import typer

from loyalty_cli import values
from loyalty_cli.cli.common import (pending_pairs, allow_future_option, as_of_option, call, date_option, existing_file, group, masked,
                                    money, operator, out, parse, pii_columns, refuse_future, skipped_rows_summary, store,
                                    today)
from loyalty_cli.render import human, plural
from loyalty_cli.i18n import M_, N_, _, display, worded

app = group(N_("Enrol and look after members."), 'loyalty members add --name "Ana Li" --email ana@shop.example')
ALLOW_FUTURE = allow_future_option()

LIST_COLUMNS = [("member_id", N_("member")), ("name", N_("name")), ("email", N_("email")), ("phone", N_("phone")), ("tier", N_("tier")),
                ("balance", N_("points")), ("joined_on", N_("joined"))]


def _profile_fields(name, email, phone, birthday, joined, referred_by) -> dict:
    born = date_option(birthday, "--birthday")
    if born is not None and born > today():  # not a date to allow: a typo (2090 for 1990)
        from loyalty_cli.errors import UsageError

        raise UsageError(M_("--birthday {born} is after today ({today}): a birthday is a date in the past", born=born, today=today()))
    return {
        "name": _name(name) if name is not None else None,
        "email": _named("--email", values.parse_email, email) if email is not None else None,
        "phone": _named("--phone", values.parse_phone, phone) if phone is not None else None,
        "birthday": born,
        "joined_on": date_option(joined, "--joined"),
        "referred_by": parse(values.parse_id, referred_by, "--referred-by") if referred_by is not None else None,
    }


def _named(option: str, parser, value: str):
    """`parser(value)`, its error naming the option typed ("--email is not a valid address ...")."""
    try:
        return parser(value)
    except ValueError as exc:
        from loyalty_cli.errors import UsageError

        subject, __, rest = str(exc).partition(" ")
        raise UsageError(worded(f"{option} {rest}", _("{option}: {message}").format(option=option, message=display(exc)))) from None


def consent_pairs(consent: dict) -> list[tuple[str, str]]:
    """The "email consent" and "sms consent" lines of `members show`: yes or no, with the date and
    source of the answer ("yes (2026-11-02, counter)"), "no (never asked)" for a channel not asked
    about. None for a member never asked about either (the default, no: what members show printed
    before consent existed; --json always has them)."""
    if not any((c or {}).get("at") for c in consent.values()):
        return []
    out = []
    for channel in ("email", "sms"):
        c = consent.get(channel) or {}
        answer = _("yes") if c.get("opt_in") else _("no")
        out.append((_("{channel} consent").format(channel=_(channel)),
                    _("{answer} ({day}, {source})").format(answer=answer, day=c['at'][:10], source=_(c['source']))
                    if c.get("at") else _("{answer} (never asked)").format(answer=answer)))
    return out


CONSENT_WORDS = (N_("email"), N_("sms"), N_("counter"), N_("edit"), N_("import"))  # channels and sources, shown translated


def _consent_option(value: str | None, option: str) -> bool | None:
    """--consent-email / --consent-sms: yes or no (true/false, 1/0), a usage error otherwise."""
    if value is None:
        return None
    from loyalty_cli import hygiene

    return parse(hygiene.parse_yes_no, value, option)


def _name(name: str) -> str:
    return parse(values.parse_text, name, "--name", 200)


@app.command("add")
def add(
    name: str = typer.Option(..., "--name", help=N_("The member's name.")),
    member_id: str = typer.Option(None, "--id", help=N_("Member id (a card barcode, the till's id); default: L + 8 digits.")),
    email: str = typer.Option(None, "--email"),
    phone: str = typer.Option(None, "--phone"),
    birthday: str = typer.Option(None, "--birthday", help="YYYY-MM-DD"),
    joined: str = typer.Option(None, "--joined", help=N_("Date joined, YYYY-MM-DD (default: today).")),
    referred_by: str = typer.Option(None, "--referred-by", help=N_("Id of the member who referred them.")),
    consent_email: str = typer.Option(None, "--consent-email", metavar="yes|no",
                                      help=N_("Whether they agree to marketing email (default no), recorded as given "
                                              "now at the counter.")),
    consent_sms: str = typer.Option(None, "--consent-sms", metavar="yes|no",
                                    help=N_("Whether they agree to marketing SMS (default no).")),
    by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who records their consent (default: the OS user).")),
    allow_future: bool = ALLOW_FUTURE,
):
    """Enrol a member and print their id; the signup bonus applies.

    \b
    Example:
      loyalty members add --name "Ana Li" --email ana@shop.example \\
        --birthday 1990-04-12 --consent-email yes --consent-sms no
    """
    fields = _profile_fields(name, email, phone, birthday, joined, referred_by)
    consent = {"email": _consent_option(consent_email, "--consent-email"),
               "sms": _consent_option(consent_sms, "--consent-sms")}
    consent = {k: v for k, v in consent.items() if v is not None}
    fields["joined_on"] = fields["joined_on"] or today()
    refuse_future(fields["joined_on"], allow_future, "--joined", _("enrol the member from then, with the signup bonus dated then"))
    mid = parse(values.parse_id, member_id, "--id") if member_id is not None else None
    from loyalty_cli import members

    from loyalty_cli.cli.common import now

    result = call(members.add, member_id=mid, consent=consent, consent_at=now(),
                  by=operator(by) if consent else None, **fields)
    o = out(lists=False)
    if o.json:
        o.json_doc(result)
    elif not o.quiet:
        print(result["member_id"])
        o.note(_("enrolled {member_id} ({tier}, {points})").format(member_id=result['member_id'], tier=result['tier'], points=plural(result['balance'], 'point')))


@app.command("show")
def show(
    member_id: str = typer.Argument(..., help=N_("Member id.")),
    as_of: str = typer.Option(None, "--as-of", help=N_("Show the tier held and balance on this date (default: today).")),
):
    """Profile, tier, balance, points expiring soon and progress to the next tier.

    \b
    Example:
      loyalty members show M0001
      loyalty members show M0001 --json --as-of 2026-06-30
    """
    from loyalty_cli import members

    date = as_of_option(as_of, default_today=False)
    p = call(members.profile, member_id, date, today())
    d = p["currency_decimals"]
    spend = money(p["spend_in_window"], d) if p["basis"] == "spend" else p["points_in_window"]
    to_next = money(p["to_next_tier"], d) if p["basis"] == "spend" else p["to_next_tier"]
    doc = {k: p[k] for k in ("member_id", "name", "email", "phone", "birthday", "joined_on", "tier", "balance")}
    doc.update(spend_in_window=money(p["spend_in_window"], d),
               points_in_window=p["points_in_window"], next_tier=p["next_tier"], to_next_tier=to_next,
               referred_by=p["referred_by"], tier_since=p["tier_since"], expiring=p["expiring"], erased=p["erased"],
               pending=p["pending"], consent=p["consent"], merged_into=p["merged_into"], merged_at=p["merged_at"],
               aliases=p["aliases"])
    day = date or today()
    upcoming = [e for e in p["expiring"] if e["date"] and e["date"] >= day]
    soon = ", ".join(_("{points:,} on {date}").format(points=e['points'], date=e['date']) for e in upcoming[:3]) or _("none")
    lapsed = sum(e["points"] for e in p["expiring"] if e["date"] and e["date"] < day)
    if lapsed:
        soon += _(" ({lapsed:,} lapsed, to be written off)").format(lapsed=lapsed)
    pairs = [(_("name"), p["name"]), (_("email"), p["email"]), (_("phone"), p["phone"]), (_("birthday"), p["birthday"]),
             (_("joined"), p["joined_on"]), (_("referred by"), p["referred_by"]),
             (_("tier"), _("{tier} (since {tier_since})").format(tier=p['tier'], tier_since=p['tier_since']) + (_(", held until {floor_until}").format(floor_until=p['floor_until']) if p["floor_until"] else "")),
             (_("balance"), plural(p['balance'], 'point')), *pending_pairs(p["pending"]), (_("expiring"), soon),
             (_("spend in window") if p["basis"] == "spend" else _("points in window"), spend),
             (_("next tier"), _("{next_tier}: {to_next} to go").format(next_tier=p['next_tier'], to_next=human(to_next)) if p["next_tier"] else _("top tier"))]
    pairs += consent_pairs(p["consent"])
    if p["aliases"]:
        pairs.append((_("aliases"), _("{ids} (merged into this member)").format(ids=", ".join(p["aliases"]))))
    if p["merged_into"]:
        pairs.insert(0, (_("merged into"), _("{keep} on {day}: this id is an alias, its new activity is {keep}'s").format(
            keep=p['merged_into'], day=p['merged_at'][:10])))
    if p["erased"]:
        pairs.insert(0, (_("erased"), _("personal data erased")))
    from loyalty_cli.cli.households import household_lines

    household = household_lines(p["household"], p["pooled_in_window"], p["basis"], d, pairs)
    if household is not None:  # only for a household's member: the document stays as it is for others
        doc["household"] = household
    out(lists=False).record(pairs, title=_("member {member_id}").format(member_id=p['member_id']), json_obj=doc)


@app.command("list")
def list_(
    tier: str = typer.Option(None, "--tier", help=N_("Only members holding this tier.")),
    segment: str = typer.Option(None, "--segment", help=N_("Only members in this RFM segment (see loyalty report rfm).")),
    search: str = typer.Option(None, "--search", help=N_("Text found in the id, name, email or phone.")),
    sort: str = typer.Option("id", "--sort", help="id | name | joined | balance | tier"),
    limit: int = typer.Option(None, "--limit", min=1, help=N_("At most this many (a terminal shows 100 by default).")),
    show_pii: bool = typer.Option(False, "--show-pii", help=N_("Show emails and phones unmasked.")),
    as_of: str = typer.Option(None, "--as-of", help=N_("Balances and --segment as of this date (default: today).")),
    merged: bool = typer.Option(False, "--merged", help=N_("Also list members merged into another (loyalty members "
                                                            "merge): aliases, left out by default; a column says "
                                                            "whom each was merged into.")),
):
    """List members; emails and phones are masked unless --show-pii.

    \b
    Example:
      loyalty members list --tier Gold --sort balance --limit 20
      loyalty members list --search ana --csv > ana.csv
      loyalty members list --merged --search M042
    """
    from loyalty_cli import members

    o = out()
    if limit is None and o.rich:
        limit = 100
    date = as_of_option(as_of)  # checked even without --segment: a mistyped date is never ignored
    s = store()
    try:
        ids = None
        if segment is not None:
            from loyalty_cli import reports

            ids = reports.segment_members(s, segment, date)
        rows, total = members.listing(s, tier=tier, search=search, sort=sort, limit=None if ids is not None else limit,
                                      as_of=date, merged=merged)
    finally:
        s.close()
    if ids is not None:
        rows = [r for r in rows if r["member_id"] in ids]
        total = len(rows)
        rows = rows[:limit] if limit else rows
    rows = masked(rows, show_pii)
    if o.json and not show_pii:  # the keys say the values are masked, as the CSV header does (issue 15)
        rows = [{f"{k}_masked" if k in ("email", "phone") else k: v for k, v in r.items()} for r in rows]
    columns = LIST_COLUMNS + ([("merged_into", N_("merged into"))] if merged else [])
    o.table(rows, pii_columns(columns, show_pii), empty=_("no members match"))
    if o.rich and total > len(rows):
        o.note(_("showing {n_rows:,} of {members}; use --limit N, or pipe/--csv for all").format(n_rows=len(rows), members=plural(total, 'member')))


@app.command("edit")
def edit(
    member_id: str = typer.Argument(..., help=N_("Member id.")),
    name: str = typer.Option(None, "--name"),
    email: str = typer.Option(None, "--email"),
    phone: str = typer.Option(None, "--phone"),
    birthday: str = typer.Option(None, "--birthday", help="YYYY-MM-DD"),
    joined: str = typer.Option(None, "--joined", help="YYYY-MM-DD"),
    referred_by: str = typer.Option(None, "--referred-by"),
    consent_email: str = typer.Option(None, "--consent-email", metavar="yes|no",
                                      help=N_("Their answer on marketing email, recorded now with source 'edit'.")),
    consent_sms: str = typer.Option(None, "--consent-sms", metavar="yes|no",
                                    help=N_("Their answer on marketing SMS, recorded now with source 'edit'.")),
    by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who records their consent (default: the OS user).")),
    allow_future: bool = ALLOW_FUTURE,
):
    """Change a member's profile fields and consent; fields not given stay as they are.

    \b
    Example:
      loyalty members edit M0001 --email ana.li@shop.example \\
        --phone "+44 7700 900123"
      loyalty members edit M0001 --consent-email no --consent-sms yes
    """
    from loyalty_cli import members

    changes = _profile_fields(name, email, phone, birthday, joined, referred_by)
    consent = {"email": _consent_option(consent_email, "--consent-email"),
               "sms": _consent_option(consent_sms, "--consent-sms")}
    from loyalty_cli.cli.common import as_stored

    refuse_future(changes["joined_on"], allow_future, "--joined", lambda: _("record {as_stored} as joining then").format(as_stored=as_stored(member_id)))
    from loyalty_cli.cli.common import now

    given = any(v is not None for v in consent.values())
    p = call(members.edit, member_id, changes, consent, now(), operator(by) if given else None)
    changed = ", ".join([k for k, v in changes.items() if v is not None]
                        + [_("{channel} consent").format(channel=_(k)) for k, v in consent.items() if v is not None])
    out(lists=False).done(_("updated {member_id}: {changed}").format(member_id=p['member_id'], changed=changed),
                          {k: p[k] for k in ("member_id", "name", "email", "phone", "birthday", "joined_on", "referred_by")})


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help=N_("Members CSV: member_id,name,email,phone,birthday,joined_on,referred_by "
                                             "(and email_opt_in, sms_opt_in: yes/no)")),
    dry_run: bool = typer.Option(False, "--dry-run", help=N_("Validate and report; change nothing.")),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=N_("Import the good rows; bad ones go to --rejects (exit 3).")),
    rejects: Path = typer.Option(None, "--rejects", help=N_("With --skip-bad: write bad rows here, with line and reason (a regular file, replaced; never a link, FIFO or device).")),
    encoding: str = typer.Option("utf-8", "--encoding", envvar="LOYALTY_ENCODING"),
    delimiter: str = typer.Option(",", "--delimiter", envvar="LOYALTY_DELIMITER"),
    mapping: list[str] = typer.Option([], "--map", help=N_("FIELD=COLUMN for a till's own column names (repeatable).")),
    date_format: str = typer.Option(None, "--date-format", envvar="LOYALTY_DATE_FORMAT",
                                    help=N_("strftime format of birthday/joined_on (default ISO).")),
    at: str = typer.Option(None, "--at", metavar="DATE", help=N_("The import's date: joined_on of new members without one (default: today).")),
    allow_future: bool = typer.Option(False, "--allow-future",
                                      help=N_("Accept joined_on (and --at) after today (otherwise such a row is a bad row).")),
):
    """Enrol or update members from CSV: matched by member_id, else email; never duplicated.

    All or nothing by default: one bad row rejects the file (exit 3), every bad row
    is listed with its line number. New members get the signup bonus dated joined_on.

    Columns email_opt_in and sms_opt_in (yes/no, true/false, 1/0) record the
    member's consent with source "import", dated the import's --at; an empty cell
    leaves it as it is, a new member without one has not opted in.

    \b
    Example:
      loyalty members import sample_data/members.csv
      loyalty members import till.csv --delimiter ';' \\
        --map member_id=CustomerNo --dry-run
    """
    from loyalty_cli import importer

    day = as_of_option(at, "--at")
    refuse_future(day, allow_future, "--at", _("enrol the new members without a joined_on from then, with their signup bonus dated then"))
    options = _import_options(mapping, encoding=encoding, delimiter=delimiter, dry_run=dry_run, skip_bad=skip_bad,
                              rejects=rejects, date_format=date_format, today=day,
                              latest=None if allow_future else today())
    file = existing_file(file, _("CSV file"))

    def summary(counts: dict) -> str:
        """The one-line summary; rejected rows are read, never counted as imported."""
        rows = plural(counts["rows"], "row", grouped=True)
        c = {key: f"{value:,}" for key, value in counts.items() if isinstance(value, int)}
        if dry_run:
            return (_("{rows} checked: {created} to create, {updated} to update, {unchanged} unchanged, {rejected} rejected (dry run: nothing changed)").format(rows=rows, created=c['created'], updated=c['updated'], unchanged=c['unchanged'], rejected=c['rejected']))
        return _("{rows} read: {created} created, {updated} updated, {unchanged} unchanged, {rejected} rejected").format(rows=rows, created=c['created'], updated=c['updated'], unchanged=c['unchanged'], rejected=c['rejected'])

    with skipped_rows_summary(summary, skip_bad):
        counts = call(importer.import_members, file, options, progress=_progress())
    ignored = counts.pop("ignored_columns")  # the JSON summary keeps its keys (SPEC §11)
    counts["errors"] = []
    o = out(lists=False)
    if ignored:
        o.note(_("note: columns not read: {join}").format(join=', '.join(ignored)))
    o.done(summary(counts), counts)


class ImportProgress:
    """An import's progress (importer.Progress) as a transient rich bar on stderr, drawn only when
    stderr is a terminal and the command is not --quiet."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def start(self, total: int) -> None:
        """Show the bar for a file of `total` bytes."""
        if self.enabled and total:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(_("importing")), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("import", total=total)

    def update(self, done: int) -> None:
        """Move the bar to `done` bytes read."""
        if self.bar:
            self.bar.update(self.task, completed=done)

    def close(self) -> None:
        """Take the bar away."""
        if self.bar:
            self.bar.stop()


def _progress() -> ImportProgress:
    import sys

    from loyalty_cli.cli.common import Invocation

    return ImportProgress(sys.stderr.isatty() and not Invocation.quiet)


def _import_options(mapping: list[str], **kw):
    from loyalty_cli.errors import UsageError
    from loyalty_cli.importer import ImportOptions

    pairs = {}
    for item in mapping:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise UsageError(M_("--map takes FIELD=COLUMN, got {item!r}", item=item))
        pairs[field.strip()] = column.strip()
    if kw.get("rejects") and not kw.get("skip_bad"):
        raise UsageError(M_("--rejects goes with --skip-bad"))
    if kw.get("delimiter") in ("\\t", "tab", "TAB"):
        kw["delimiter"] = "\t"
    if kw.get("date_format") == "":
        kw["date_format"] = None
    return ImportOptions(mapping=pairs, **kw)


@app.command("erase")
def erase(
    member_id: str = typer.Argument(..., help=N_("Member id.")),
    yes: bool = typer.Option(False, "--yes", help=N_("Really erase (required).")),
    by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who is erasing (default: the OS user).")),
    at: str = typer.Option(None, "--at", help=N_("When (default: now).")),
    allow_future: bool = ALLOW_FUTURE,
):
    """Erase a member's personal data (name, email, phone, birthday); keep the ledger.

    The member id, points and history stay so totals still add up. Backups taken
    before keep what they held.

    \b
    Example:
      loyalty members erase M0042 --yes
    """
    from loyalty_cli import members
    from loyalty_cli.cli.common import as_stored, at_option, stored_member_id
    from loyalty_cli.errors import UsageError

    if not yes:
        import sys

        if sys.stdin.isatty() and not typer.confirm(_("Erase the personal data of {stored_member_id}? This cannot be undone").format(stored_member_id=stored_member_id(member_id))):
            raise typer.Exit(1)
        elif not sys.stdin.isatty():
            raise UsageError(M_("erasing personal data needs --yes"))
    when = at_option(at)
    refuse_future(when, allow_future, "--at", lambda: _("record the erasure of {as_stored} as done then").format(as_stored=as_stored(member_id)))
    result = call(members.erase, member_id, when, operator(by))
    out(lists=False).done(_("erased the personal data of {member_id}").format(member_id=result['member_id']), result)


from loyalty_cli.cli import hygiene as _hygiene  # noqa: E402,F401  (registers members merge and members export)
