"""`loyalty points …`: balance, statement, award, adjust, redeem, transfer, expire."""

from __future__ import annotations

import typer

from loyalty_cli.cli.common import (pending_pairs, today, allow_future_option, as_of_option, at_option, call, group, operator, out,
                                     as_stored, refuse_future, stored_member_id)
from loyalty_cli.render import plural
from loyalty_cli.i18n import M_, N_, _

app = group(N_("Balances, statements and manual points operations."), 'loyalty points balance M0001')

BY = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR", help=N_("Who did it (default: the OS user)."))
AT = typer.Option(None, "--at", help=N_("When, YYYY-MM-DD[THH:MM[:SS]] (default: now)."))
REASON = typer.Option(..., "--reason", help=N_("Why (kept in the ledger forever: no personal data)."))
ALLOW_FUTURE = allow_future_option()


@app.command("balance")
def balance(member_id: str = typer.Argument(..., help=N_("Member id.")),
            as_of: str = typer.Option(None, "--as-of", help=N_("Balance from the entries dated up to this date (default: today)."))):
    """Balance and upcoming expiries, earliest first, and points not yet spendable (earn.pending_days).

    \b
    Example:
      loyalty points balance M0001
      loyalty points balance M0001 --json --as-of 2026-03-31
    """
    from loyalty_cli import points

    day = as_of_option(as_of)  # entries dated after today (--allow-future) count from their date on
    r = call(points.balance, member_id, day)
    pairs = [(_("balance"), plural(r['balance'], 'point')), *pending_pairs(r["pending"])]
    for e in r["expiring"]:
        if e["date"] is None:
            pairs.append((_("never expires"), e["points"]))
        elif e["date"] < day:
            pairs.append((_("lapsed {date}").format(date=e['date']), _("{points:,} (written off by the next 'points expire')").format(points=e['points'])))
        else:
            pairs.append((_("expires {date}").format(date=e['date']), e["points"]))
    from loyalty_cli.cli.households import household_lines

    household_lines(r.get("household"), None, None, None, pairs)
    out(lists=False).record(pairs, title=_("points of {member_id}").format(member_id=r['member_id']), json_obj=r)


@app.command("history")
def history(member_id: str = typer.Argument(..., help=N_("Member id.")),
            limit: int = typer.Option(None, "--limit", min=1, help=N_("Only the last N entries recorded.")),
            sort: str = typer.Option("id", "--sort", help=N_("Order shown: id (as recorded), at, kind or points."))):
    """The member's statement: every ledger entry with the balance after it.

    A sale's points not yet spendable (earn.pending_days) are marked "until DATE" in a
    pending column; --json gives every entry's available_on (null: spendable at once).
    Points earned under an experiment's variant name it in an experiment column (--json:
    experiment, null for the others).

    \b
    Example:
      loyalty points history M0001 --limit 20
    """
    from loyalty_cli import points

    member_id = stored_member_id(member_id)
    rows = call(points.history, member_id, limit, sort)
    columns = [("id", N_("#")), ("at", N_("at")), ("kind", N_("kind")), ("points", N_("points")), ("balance_after", N_("balance")),
               ("ref", N_("ref")), ("note", N_("note"))]
    day = today()
    shown = rows
    if any(r["available_on"] and r["available_on"] > day for r in rows):  # the column only while some are pending
        shown = [dict(r, pending=_("until {available_on}").format(available_on=r['available_on']) if r["available_on"] and r["available_on"] > day else None)
                 for r in rows]
        columns.insert(4, ("pending", "pending"))
    if any(r["experiment"] for r in rows):  # the column only for a member who earned under a variant
        # keyed as an id: shown whole, like the ref (a name cut short would name no experiment)
        shown = [dict(r, experiment_id=r["experiment"]) for r in shown]
        columns.append(("experiment_id", "experiment"))
    out().table(shown, columns, title=_("statement of {member_id}").format(member_id=member_id), empty=_("{member_id} has no entries yet").format(member_id=member_id),
                json_obj=rows)


@app.command("award")
def award(member_id: str = typer.Argument(..., help=N_("Member id.")),
          points_: int = typer.Argument(..., metavar="POINTS", min=1, help=N_("Points to credit.")),
          reason: str = REASON, by: str = BY, at: str = AT, allow_future: bool = ALLOW_FUTURE):
    """Credit points by hand (a goodwill gesture, a competition prize).

    \b
    Example:
      loyalty points award M0001 100 --reason "sorry for the wait"
    """
    from loyalty_cli import points

    when = at_option(at)
    refuse_future(when, allow_future, "--at", lambda: _("credit {points} to {as_stored} dated then").format(points=plural(points_, 'point'), as_stored=as_stored(member_id)))
    r = call(points.award, member_id, points_, when, reason, operator(by))
    out(lists=False).done(_("awarded {points} to {member_id} (balance {balance:,})").format(points=plural(points_, 'point'), member_id=r['member_id'], balance=r['balance']), r)


@app.command("adjust", context_settings={"ignore_unknown_options": True})
def adjust(member_id: str = typer.Argument(..., help=N_("Member id.")),
           points_: int = typer.Argument(..., metavar="±POINTS", help=N_("Points to add (20) or take away (-20).")),
           reason: str = REASON, by: str = BY, at: str = AT, allow_future: bool = ALLOW_FUTURE):
    """Correct a balance by hand, up or down (never below zero).

    \b
    Example:
      loyalty points adjust M0001 -20 --reason "double-scanned receipt"
    """
    from loyalty_cli import points

    when = at_option(at)
    refuse_future(when, allow_future, "--at", lambda: _("adjust {as_stored} by {points:+,d} points dated then").format(as_stored=as_stored(member_id), points=points_))
    r = call(points.adjust, member_id, points_, when, reason, operator(by))
    unit = _("point") if abs(points_) == 1 else _("points")
    out(lists=False).done(_("adjusted {member_id} by {points:+,d} {unit} (balance {balance:,})").format(member_id=r['member_id'], points=points_, unit=unit, balance=r['balance']), r)


@app.command("redeem")
def redeem(member_id: str = typer.Argument(..., help=N_("Member id.")),
           points_: int = typer.Argument(None, metavar="POINTS", min=1, help=N_("Points to spend (or use --reward).")),
           reward: str = typer.Option(None, "--reward", help=N_("Reward code: spends its cost and issues a voucher.")),
           household: bool = typer.Option(False, "--household", help=N_("Spend from the pool of the member's "
                                             "household: every member's points, earliest expiry first.")),
           by: str = BY, at: str = AT, allow_future: bool = ALLOW_FUTURE):
    """Spend points, or exchange them for a reward voucher; refused when the balance is short.

    With --household the points come from the pool of the member's household (see
    loyalty households): one redeem entry per member whose points were used.

    \b
    Example:
      loyalty points redeem M0001 250
      loyalty points redeem M0001 --reward COFFEE
      loyalty points redeem M0002 500 --household
    """
    from loyalty_cli import points
    from loyalty_cli.errors import UsageError

    if points_ is None and reward is None:
        raise UsageError(M_("give POINTS to spend or --reward CODE"))
    when = at_option(at)
    refuse_future(when, allow_future, "--at", lambda: _("record a redemption by {as_stored} dated then").format(as_stored=as_stored(member_id)))
    if household:
        from loyalty_cli.cli.households import pooled_redeem

        return pooled_redeem(member_id, points_, reward, when, operator(by))
    r = call(points.redeem, member_id, points_, reward, when, operator(by))
    extra = _("; voucher {voucher}").format(voucher=r['voucher']) if r["voucher"] else ""
    out(lists=False).done(_("redeemed {points} from {member_id} (balance {balance:,}){extra}").format(points=plural(r['points'], 'point'), member_id=r['member_id'], balance=r['balance'], extra=extra), r)


@app.command("transfer")
def transfer(sender: str = typer.Argument(..., metavar="FROM"), receiver: str = typer.Argument(..., metavar="TO"),
             points_: int = typer.Argument(..., metavar="POINTS", min=1), by: str = BY, at: str = AT,
             allow_future: bool = ALLOW_FUTURE):
    """Gift points to another member (within the programme's monthly limit).

    \b
    Example:
      loyalty points transfer M0001 M0002 300
    """
    from loyalty_cli import points

    when = at_option(at)
    refuse_future(when, allow_future, "--at", lambda: _("move {points} from {as_stored} to {as_stored2} dated then").format(points=plural(points_, 'point'), as_stored=as_stored(sender), as_stored2=as_stored(receiver)))
    r = call(points.transfer, sender, receiver, points_, when, operator(by))
    out(lists=False).done(_("moved {points} from {v_from} (balance {from_balance:,}) to {to} (balance {to_balance:,})").format(points=plural(points_, 'point'), v_from=r['from'], from_balance=r['from_balance'], to=r['to'], to_balance=r['to_balance']), r)


@app.command("expire")
def expire(as_of: str = typer.Option(None, "--as-of", help=N_("Write off points that lapsed before this date (default: today).")),
           allow_future: bool = ALLOW_FUTURE):
    """Write off lapsed points: one expire entry per member (nightly; running it again writes nothing).

    \b
    Example (crontab, 02:00 every night):
      0 2 * * *  loyalty points expire -q
    """
    from loyalty_cli import points

    date = as_of_option(as_of)
    refuse_future(date, allow_future, "--as-of", _("write off every member's points that lapse by then"))
    r = call(points.expire, date)
    out(lists=False).done(_("expired {points} of {members} as of {as_of}").format(points=plural(r['points'], 'point', grouped=True), members=plural(r['members'], 'member'), as_of=r['as_of']),
                          {"members": r["members"], "points": r["points"]})
