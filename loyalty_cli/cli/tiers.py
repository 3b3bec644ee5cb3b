"""`loyalty tiers …`: levels, the nightly recalc, manual tiers, history."""

from __future__ import annotations

import typer

from loyalty_cli.cli.common import (allow_future_option, as_of_option, at_option, call, date_option, group, money,
                                     now, operator, out, refuse_future, today)
from loyalty_cli.i18n import N_, _

app = group(N_("Tiers: levels, nightly recalculation, manual tiers."), 'loyalty tiers recalc --as-of 2026-10-31 --dry-run')


@app.command("list")
def list_(as_of: str = typer.Option(None, "--as-of", help=N_("Levels in force on this date (default: today)."))):
    """Tiers, their thresholds and multipliers, and how many members hold each.

    \b
    Example:
      loyalty tiers list
    """
    from loyalty_cli import tiers

    rows, rules = call(tiers.levels_with_counts, as_of_option(as_of))
    for r in rows:
        if r["min"] is not None and rules.tier_basis == "spend":
            r["min"] = money(r["min"], rules.currency_decimals)
    basis = _("spend") if rules.tier_basis == "spend" else _("points earned")
    out().table(rows, [("tier", N_("tier")), ("min", _("min {basis}").format(basis=basis)), ("multiplier", N_("multiplier")), ("members", N_("members"))],
                title=_("tiers by {basis}, window {tier_window}, held {hold_months} months").format(basis=basis, tier_window=rules.tier_window, hold_months=rules.hold_months))


@app.command("recalc")
def recalc(as_of: str = typer.Option(None, "--as-of", help=N_("Recalculate as of this date (default: today).")),
           dry_run: bool = typer.Option(False, "--dry-run", help=N_("Show what would change; change nothing.")),
           allow_future: bool = allow_future_option()):
    """Recalculate every member's tier (nightly): upgrades, downgrades after the hold, lapsed manual tiers.

    Running it twice for the same date changes nothing the second time; a recalc
    dated before the latest one is refused (exit 1) unless --dry-run. One dated
    after today is refused (exit 2) unless --allow-future or --dry-run. A second run
    while one is going exits 75 at once.

    \b
    Example (crontab, after the expiry job):
      15 2 * * *  loyalty tiers recalc -q
    """
    from loyalty_cli import tiers

    date = as_of_option(as_of)
    if not dry_run:  # a recalc dated after today would also refuse every nightly one until that date
        refuse_future(date, allow_future, "--as-of", _("change tiers dated then, and refuse every recalc (the nightly one included) dated before it"))
    r = call(tiers.recalc, date, dry_run, now())
    o = out(lists=False)
    if date > today() and not dry_run:  # allowed: say what it means for cron's nightly run
        o.note(_("note: this recalc is dated after today; recalcs dated before {date} are now refused (the nightly one included) until that date").format(date=date))
    doc = {k: r[k] for k in ("upgraded", "downgraded", "unchanged", "changes")}
    if o.json or o.quiet:
        o.done("", doc)
        return
    would = _("would change") if dry_run else _("changed")
    lines = [_("tiers as of {as_of}: {upgraded:,} upgraded, {downgraded:,} downgraded, {unchanged:,} unchanged").format(as_of=r['as_of'], upgraded=r['upgraded'], downgraded=r['downgraded'], unchanged=r['unchanged']) + (_(" (dry run: nothing changed)") if dry_run else "")]
    # The changes are data, on stdout with the summary (`> changes.txt` keeps them)
    lines += [f"  {c['member_id']}: {c['from']} → {c['to']} ({would})" for c in r["changes"][:50]]
    if len(r["changes"]) > 50:
        lines.append(_("  … and {n_changes:,} more (use --json for all)").format(n_changes=len(r['changes']) - 50))
    o.done("\n".join(lines), doc)


@app.command("set")
def set_(member_id: str = typer.Argument(...), tier: str = typer.Argument(...),
         until: str = typer.Option(None, "--until", help=N_("Hold this tier as a floor through this date.")),
         at: str = typer.Option(None, "--at", help=N_("When it applies (default: now).")),
         by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who (default: the OS user).")),
         allow_future: bool = allow_future_option()):
    """Give a member a tier by hand, at once (up or down); with --until it is a floor through that date.

    \b
    Example:
      loyalty tiers set M0001 Platinum --until 2026-12-31
    """
    from loyalty_cli import tiers

    when = at_option(at)
    from loyalty_cli.cli.common import as_stored

    refuse_future(when, allow_future, "--at", lambda: _("record {as_stored}'s change to {tier} dated then").format(as_stored=as_stored(member_id), tier=tier))
    r = call(tiers.set_tier, member_id, tier, when, date_option(until, "--until"), operator(by))
    held = _(", held through {until}").format(until=r['until']) if r["until"] else ""
    out(lists=False).done(f"{r['member_id']}: {r['from']} → {r['to']}{held}", r)


@app.command("history")
def history(member_id: str = typer.Argument(...),
            limit: int = typer.Option(None, "--limit", min=1, help=N_("Only the last N changes.")),
            sort: str = typer.Option("at", "--sort", help=N_("Order shown: at, to or reason."))):
    """Every tier change of a member, with date and reason (purchase, recalc, manual).

    \b
    Example:
      loyalty tiers history M0001
    """
    from loyalty_cli import tiers

    from loyalty_cli.cli.common import stored_member_id

    member_id = stored_member_id(member_id)
    rows = call(tiers.history, member_id, limit, sort)
    out().table(rows, [("at", N_("at")), ("from", N_("from")), ("to", N_("to")), ("reason", N_("reason")), ("until", N_("until")),
                       ("by", N_("by")), ("ref", N_("ref"))], empty=_("{member_id} has held their first tier since joining").format(member_id=member_id))
