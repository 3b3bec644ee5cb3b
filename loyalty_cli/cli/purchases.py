"""`loyalty purchases …`: import the till's CSV, record a sale, refund one."""

from __future__ import annotations

from pathlib import Path

import typer

from loyalty_cli import values
from loyalty_cli.cli.common import (allow_future_option, at_option, call, existing_file, group, out,
                                     refuse_future, skipped_rows_summary, store, today)
from loyalty_cli.render import money_text, plural
from loyalty_cli.cli.members import _import_options, _progress
from loyalty_cli.i18n import M_, N_, _, display, message_of, worded

app = group(N_("Record sales and refunds; import them from the till."), 'loyalty purchases import sample_data/purchases.csv')
ALLOW_FUTURE = allow_future_option()


def _amount(text: str, decimals: int, refund: bool = False) -> int:
    """AMOUNT typed at the counter, in minor units; a usage error that names AMOUNT otherwise. A sign
    is refused with what to do instead (a refund is its own command, not a negative sale)."""
    from loyalty_cli.errors import UsageError

    refunded = _("AMOUNT must be more than 0 (the amount refunded), got {}")  # a sign or a zero: the same words
    if text.strip().startswith("-"):
        if refund:
            raise UsageError(refunded.format(text.strip()))
        instead = _(" (a refund is recorded with: loyalty purchases refund PURCHASE_ID [AMOUNT])")
        raise UsageError(M_("AMOUNT must be zero or more, got {strip}{instead}", strip=text.strip(), instead=instead))
    try:
        minor = values.parse_money(text, decimals)
    except ValueError as exc:
        message = str(exc)
        if not message.startswith("amount"):
            raise UsageError(message_of(exc)) from None
        raise UsageError(worded("AMOUNT" + message[len("amount"):],
                                _("{option}: {message}").format(option="AMOUNT", message=display(exc)))) from None
    if refund and minor <= 0:
        raise UsageError(refunded.format(text.strip()))
    return minor


STORE_HELP = (N_("The branch (shop) it was rung up at, 1-40 characters (env LOYALTY_STORE; default: none)."))


def store_option(value: str | None, env: bool = True) -> str | None:
    """--store NAME (or LOYALTY_STORE, when `env`: the till's branch) checked: trimmed, 1-40
    characters, no control characters; None when neither is given. A bad name is a usage error
    (exit 2) naming where it came from."""
    if value is None:
        return None
    import os

    from loyalty_cli.errors import UsageError

    what = _("--store (or LOYALTY_STORE)") if env and os.environ.get("LOYALTY_STORE") == value else "--store"
    try:
        name = values.parse_store(value, what)
    except ValueError as exc:
        raise UsageError(M_("{exc}, got {value!r}", exc=exc, value=value)) from None
    if name is None:
        raise UsageError(M_("{what} must be 1-{store_max} characters, got an empty name", what=what, store_max=values.STORE_MAX))
    return name


def _decimals(s) -> int:
    from loyalty_cli.program import currency_decimals

    return currency_decimals(s)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help=N_("Purchases CSV: purchase_id,member_id,purchased_at,amount[,category,kind,refund_of,store]")),
    dry_run: bool = typer.Option(False, "--dry-run", help=N_("Validate and report; change nothing.")),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=N_("Import the good rows; bad ones go to --rejects (exit 3).")),
    rejects: Path = typer.Option(None, "--rejects", help=N_("With --skip-bad: write bad rows here, with line and reason (a regular file, replaced; never a link, FIFO or device).")),
    create_members: bool = typer.Option(False, "--create-members", help=N_("Enrol unknown members as of their first purchase.")),
    encoding: str = typer.Option("utf-8", "--encoding", envvar="LOYALTY_ENCODING"),
    delimiter: str = typer.Option(",", "--delimiter", envvar="LOYALTY_DELIMITER", help=N_("Column separator, e.g. ';'.")),
    decimal_comma: bool = typer.Option(False, "--decimal-comma", help=N_("Amounts like 1.234,56 (never guessed).")),
    mapping: list[str] = typer.Option([], "--map", help=N_("FIELD=COLUMN for a till's own column names (repeatable).")),
    date_format: str = typer.Option(None, "--date-format", envvar="LOYALTY_DATE_FORMAT",
                                    help=N_("strftime format of purchased_at, e.g. '%d/%m/%Y %H:%M' (default ISO 8601).")),
    allow_future: bool = typer.Option(False, "--allow-future",
                                      help=N_("Accept rows dated after today (otherwise each is a bad row).")),
    store_name: str = typer.Option(None, "--store", envvar="LOYALTY_STORE",
                                   help=N_("The branch of rows with no store of their own (env LOYALTY_STORE): a row's own store column wins.")),
):
    """Import sales and refunds from CSV, awarding and reversing points.

    Exactly once: a purchase id already recorded is a duplicate (skipped) when its
    data match, an error when they differ. All or nothing by default: one bad row
    rejects the whole file (exit 3) and every bad row is listed with its line.

    Branches: the optional store column names the branch each row was rung up at
    (a refund's own, not its sale's); --store NAME fills the rows whose store is
    empty, or every row of a file without the column. A store name is 1-40
    characters; a bad one is a bad row.

    \b
    Example:
      loyalty purchases import sample_data/purchases.csv
      loyalty purchases import till.csv --delimiter ';' --decimal-comma \\
        --map purchase_id=Receipt
      loyalty purchases import day.csv --skip-bad --rejects bad-rows.csv --json
      till-export | loyalty purchases import -     # from standard input
    """
    from loyalty_cli import importer

    options = _import_options(mapping, encoding=encoding, delimiter=delimiter, decimal_comma=decimal_comma,
                              dry_run=dry_run, skip_bad=skip_bad, rejects=rejects, date_format=date_format,
                              create_members=create_members, today=today(),
                              latest=None if allow_future else today(), store=store_option(store_name))
    file = existing_file(file, _("CSV file"))

    def summary(counts: dict) -> str:
        """The one-line summary; rejected rows are read, never counted as imported."""
        def n(key, word):
            return plural(counts[key], word, grouped=True)
        c = {key: f"{value:,}" for key, value in counts.items() if isinstance(value, int)}
        if dry_run:
            return (_("{n} checked (dry run, nothing changed): {imported} to import, {n2}, {rejected} rejected; {n3} to award, {points_reversed} to reverse, {n4} to create").format(n=n('rows', 'row'), imported=c['imported'], n2=n('duplicates', N_('duplicate')), rejected=c['rejected'], n3=n('points_awarded', 'point'), points_reversed=c['points_reversed'], n4=n('members_created', 'member')))
        return (_("{n} read: {imported} imported, {n2}, {rejected} rejected; {n3} awarded, {points_reversed} reversed, {n4} created").format(n=n('rows', 'row'), imported=c['imported'], n2=n('duplicates', N_('duplicate')), rejected=c['rejected'], n3=n('points_awarded', 'point'), points_reversed=c['points_reversed'], n4=n('members_created', 'member')))

    with skipped_rows_summary(summary, skip_bad):
        counts = call(importer.import_purchases, file, options, progress=_progress())
    ignored = counts.pop("ignored_columns")  # the JSON summary keeps its keys (SPEC §11)
    counts["errors"] = []
    o = out(lists=False)
    if ignored:
        o.note(_("note: columns not read: {join}").format(join=', '.join(ignored)))
    o.done(summary(counts), counts)


@app.command("add")
def add(
    member_id: str = typer.Argument(..., help=N_("Member id.")),
    amount: str = typer.Argument(..., help=N_("Amount spent, e.g. 12.50")),
    purchase_id: str = typer.Option(None, "--id", help=N_("The till's receipt id (default: generated).")),
    at: str = typer.Option(None, "--at", help=N_("When, YYYY-MM-DD[THH:MM[:SS]] (default: now).")),
    category: str = typer.Option(None, "--category", help=N_("Product category, for category rules.")),
    store_name: str = typer.Option(None, "--store", envvar="LOYALTY_STORE", help=STORE_HELP),
    allow_future: bool = ALLOW_FUTURE,
):
    """Record one sale at the counter and award its points.

    \b
    Example:
      loyalty purchases add M0001 23.40 --category bakery
      LOYALTY_STORE=Harbour loyalty purchases add M0001 23.40
    """
    from loyalty_cli import purchases

    when = at_option(at)
    branch = store_option(store_name)
    from loyalty_cli.cli.common import as_stored

    refuse_future(when, allow_future, "--at", lambda: _("record a sale by {as_stored} dated then, and its points").format(as_stored=as_stored(member_id)))
    s = store()
    try:
        d = _decimals(s)
        minor = _amount(amount, d)
        r = purchases.add_sale(s, member_id, minor, when, purchase_id, category, branch)
    finally:
        s.close()
    r["amount"] = values.format_money(r["amount"], d)
    up = _("; now {tier}!").format(tier=r['tier']) if r["upgraded"] else ""
    out(lists=False).done(_("{purchase_id}: {points} to {member_id} (balance {balance:,}){up}").format(purchase_id=r['purchase_id'], points=plural(r['points'], 'point'), member_id=r['member_id'], balance=r['balance'], up=up), r)


@app.command("refund")
def refund(
    purchase_id: str = typer.Argument(..., help=N_("The sale to refund.")),
    amount: str = typer.Argument(None, help=N_("Amount refunded (default: all that is left of the sale).")),
    refund_id: str = typer.Option(None, "--id", help=N_("The till's refund receipt id, so a later import of it is a duplicate.")),
    at: str = typer.Option(None, "--at", help=N_("When (default: now).")),
    store_name: str = typer.Option(None, "--store", envvar="LOYALTY_STORE",
                                   help=N_("The branch the refund is rung up at (its own, not the sale's; env LOYALTY_STORE; default: none).")),
    allow_future: bool = ALLOW_FUTURE,
):
    """Refund all or part of a sale, reversing its share of the points.

    \b
    Example:
      loyalty purchases refund T000123          # the whole sale
      loyalty purchases refund T000123 5.00 --id R000045
    """
    from loyalty_cli import purchases

    when = at_option(at)
    branch = store_option(store_name)
    refuse_future(when, allow_future, "--at", _("record a refund of {strip} dated then, reversing its points").format(strip=purchase_id.strip()))
    s = store()
    try:
        d = _decimals(s)
        minor = _amount(amount, d, refund=True) if amount is not None else None
        r = purchases.refund(s, purchase_id, minor, when, refund_id, branch)
    finally:
        s.close()
    r["amount"] = values.format_money(r["amount"], d)
    out(lists=False).done(_("{refund_id}: refunded {amount} of {purchase_id}; {points} reversed (balance {balance:,})").format(refund_id=r['refund_id'], amount=money_text(r['amount']), purchase_id=r['purchase_id'], points=plural(r['points_reversed'], 'point'), balance=r['balance']), r)


@app.command("explain")
def explain(purchase_id: str = typer.Argument(..., metavar="PURCHASE_ID", help=N_("The sale (or a refund of it)."))):
    """How a sale's points came about, step by step, recomputed by the earning engine.

    Shows the programme version in force, the experiment group if one ran, the base
    earn from the amount, each promotion and multiplier with its rule, the stacking
    rule, the tier bonus and each rounding; then the ledger's entries (and whether
    they agree with the recomputation), the lots written with their expiry dates,
    each later refund and what it reversed, and a referral bonus it paid.

    \b
    Example:
      loyalty purchases explain T000042
      loyalty purchases explain T000042 --json
    """
    from loyalty_cli import explain as explain_mod

    r = call(explain_mod.explain, purchase_id)
    out(lists=False).text(r, explain_lines)


def explain_lines(r: dict) -> list[str]:
    """`purchases explain` as text: a label column and what it says, wrapped to 80 terminal cells (a
    Chinese label or word takes two)."""
    from loyalty_cli.render import cells_of, wrap_cells

    lines: list[str] = []

    def say(label: str, text: str) -> None:
        label = _(label)
        wrapped = wrap_cells(display(text), 80 - 13) or [""]
        lines.append(label + " " * max(12 - cells_of(label), 0) + " " + wrapped[0])
        lines.extend(" " * 13 + more for more in wrapped[1:])

    head = _("sale {purchase_id} of {member_id}, {at}, amount {amount}").format(
        purchase_id=r['purchase_id'], member_id=r['member_id'], at=r['at'].replace('T', ' '), amount=r['amount'])
    extra = [_("category {category}").format(category=r['category'])] if r["category"] else []
    extra += [_("store {store}").format(store=r['store'])] if r["store"] else []
    lines.append(head + (_(" ({details})").format(details=', '.join(extra)) if extra else ""))
    if r["asked_for"]:
        lines.append(_("({refund_id} is a refund of this sale: see refunds)").format(refund_id=r['asked_for']))
    if r.get("merged"):
        say(N_("merged"), _("{dup} was merged into {keep} on {day}: its points moved there, and refunds since reverse "
                            "from {keep}").format(dup=r['member_id'], keep=r['merged']['into'],
                                                   day=r['merged']['at'][:10]))
    v = r["programme"]
    say(N_("programme"), _("version #{id}, in force from {day} ({source})").format(
        id=v['id'], day=v['applies_from'], source=v['source']) if v else _("the defaults (no programme loaded then)"))
    e = r["experiment"]
    if e is None:
        say(N_("experiment"), _("none running that day"))
    elif e["group"] == "variant":
        import json

        say(N_("experiment"), _("{name}: variant group (share {share}), earning under {variant}").format(
            name=e['name'], share=e['share'], variant=json.dumps(e['variant'], ensure_ascii=False, separators=(', ', ': '))))
    else:
        say(N_("experiment"), _("{name}: control group: the programme as it is").format(name=e['name']))
    base = r["steps"][0]
    if base["step"] == "below_min_amount":
        say(N_("base"), _("{amount} is below earn.min_amount {min_amount}: no points").format(
            amount=r['amount'], min_amount=r['min_amount']))
    else:
        cat = _(" × category {multiplier}").format(multiplier=base['category_multiplier']) if base["category_multiplier"] else ""
        per_unit = (_("{amount} × {multiplier} point per unit{category}") if base['multiplier'] == '1'
                    else _("{amount} × {multiplier} points per unit{category}")).format(
            amount=r['amount'], multiplier=base['multiplier'], category=cat)
        say(N_("base"), per_unit + _(" = {exact} → {total:,} (rounding {rounding}): earn {points:,}").format(
            exact=base['exact'], total=base['total'], rounding=r['rounding'], points=base['points']))
    for p in r["promotions"]:
        why = _("applies") if p["applies"] else _("not applied: {why}").format(why=display(p['why_not']))
        say(N_("promotion"), _("{rule} ×{multiplier} ({why})").format(rule=p['rule'], multiplier=p['multiplier'], why=why))
    if not r["promotions"]:
        say(N_("promotion"), _("none applies (not a first purchase, not the birth month, no campaign)"))
    else:
        say(N_("stacking"), f"{r['stacking']}: " + (_("only the largest promotion applies") if r["stacking"] == "max"
                                                      else _("every promotion applies, one step each")))
    say(N_("tier"), _("{tier} ({source})").format(tier=r['tier'] or _('none'), source=display(r['tier_from'])))
    for s in r["steps"][1:]:
        label = N_("tier bonus") if s["step"] == "tier" else N_("step")
        say(label, _("{rule}: {start} × {multiplier} = {exact} → {total:,}: bonus {points:+,}").format(
            rule=s['rule'], start=s['from'], multiplier=s['multiplier'], exact=s['exact'], total=s['total'],
            points=s['points']))
    if not any(s["step"] == "tier" for s in r["steps"]):
        say(N_("tier bonus"), _("none ({tier} has a multiplier of 1)").format(tier=r['tier'] or _('no tier')))
    say(N_("total"), _("{points:,} points (each step rounded {rounding} from the exact product)").format(
        points=r['points'], rounding=r['rounding']))
    recorded = ", ".join(f"#{x['id']} {_(x['kind'])}{' ' + x['rule'] if x['rule'] else ''} {x['points']:,}"
                         + (_(" (experiment {name})").format(name=x['experiment']) if x["experiment"] else "")
                         for x in r["ledger"])
    say(N_("ledger"), (recorded or _("no entries")) + (_(": agrees") if r["agrees"] else ""))
    for d in r["disagreements"]:
        say(N_("DISAGREES"), d)
    for lot in r["lots"]:
        what = _("lot {lot}: {points:,} points, ").format(lot=lot['lot'], points=lot['points']) + (
            _("expires {day}").format(day=lot['expires_on']) if lot["expires_on"] else _("never expires"))
        if lot["available_on"]:
            what += _(", spendable from {day}").format(day=lot['available_on'])
        if lot["returned"] == "merge":
            what += _(" (moved to {keep} by the merge)").format(keep=lot['member_id'])
        elif lot["returned"]:
            what += _(" (returned by a cancelled voucher)")
        say(N_("lot"), what + _("; {remaining:,} left").format(remaining=lot['remaining']))
    if r["expired"]:
        say(N_("expired"), _("{points:,} points of its lots were written off").format(points=r['expired']))
    for f in r["refunds"]:
        source = _(" from {member_id}").format(member_id=f['member_id']) \
            if f.get("member_id") not in (None, r["member_id"]) else ""
        say(N_("refund"), _("{refund_id} on {day}, {amount} (refunded so far {so_far}): reversed {points:,}{source} = "
                            "{formula}").format(refund_id=f['refund_id'], day=f['at'][:10], amount=f['amount'],
                                                so_far=f['refunded_so_far'], points=f['points_reversed'], source=source,
                                                formula=display(f['formula'])))
    if not r["refunds"]:
        say(N_("refunds"), _("none"))
    if r["referral"]:
        ref = r["referral"]
        say(N_("referral"), _("first sale: paid {member_id} a referral bonus of {points:,}").format(
            member_id=ref['member_id'], points=ref['points'])
            + (_(" (experiment {name})").format(name=ref['experiment']) if ref["experiment"] else ""))
    return lines
