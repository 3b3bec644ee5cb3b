"""`loyalty rewards …` and `loyalty vouchers …`: the catalogue and the voucher lifecycle."""

from __future__ import annotations

import typer

from loyalty_cli.cli.common import allow_future_option, at_option, call, group, operator, out, refuse_future
from loyalty_cli.render import plural
from loyalty_cli.i18n import N_, _

app = group(N_("The reward catalogue."), 'loyalty rewards add COFFEE --name "Free coffee" --cost 150')
vouchers_app = group(N_("Vouchers issued for rewards: list, use, cancel."), "loyalty vouchers list --member M0001")

ALLOW_FUTURE = allow_future_option()
COLUMNS = [("code", N_("code")), ("name", N_("name")), ("cost", N_("cost")), ("stock", N_("stock")), ("retired", N_("retired"))]


@app.command("add")
def add(code: str = typer.Argument(..., help=N_("Short code, e.g. COFFEE")),
        name: str = typer.Option(..., "--name", help=N_("What the member gets.")),
        cost: int = typer.Option(..., "--cost", help=N_("Points it costs.")),
        stock: int = typer.Option(None, "--stock", help=N_("How many are left (default: unlimited)."))):
    """Add a reward to the catalogue.

    \b
    Example:
      loyalty rewards add COFFEE --name "Free coffee" --cost 150 --stock 100
    """
    from loyalty_cli import rewards

    r = call(rewards.add, code, name, cost, stock)
    out(lists=False).done(_("added reward {code}: {name} for {points}").format(code=r['code'], name=r['name'], points=plural(r['cost'], 'point')), r)


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help=N_("Include retired rewards.")),
          sort: str = typer.Option("code", "--sort", help="code | cost | name"),
          limit: int = typer.Option(None, "--limit", min=1)):
    """List the rewards members can redeem.

    \b
    Example:
      loyalty rewards list --sort cost
    """
    from loyalty_cli import rewards

    rows = call(rewards.listing, all_, sort)
    out().table(rows[:limit] if limit else rows, COLUMNS, empty=_("no rewards yet (add one with: loyalty rewards add)"))


@app.command("edit")
def edit(code: str = typer.Argument(...), name: str = typer.Option(None, "--name"),
         cost: int = typer.Option(None, "--cost"), stock: int = typer.Option(None, "--stock")):
    """Change a reward's name, cost or stock.

    \b
    Example:
      loyalty rewards edit COFFEE --cost 120 --stock 50
    """
    from loyalty_cli import rewards

    r = call(rewards.edit, code, name, cost, stock)
    out(lists=False).done(_("updated reward {code}").format(code=r['code']), r)


@app.command("retire")
def retire(code: str = typer.Argument(...), at: str = typer.Option(None, "--at", help=N_("When (default: now).")),
           allow_future: bool = ALLOW_FUTURE):
    """Take a reward out of the catalogue (vouchers already issued stay valid).

    \b
    Example:
      loyalty rewards retire COFFEE
    """
    from loyalty_cli import rewards

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("record reward {strip} as retired then").format(strip=code.strip()))
    r = call(rewards.retire, code, when)
    out(lists=False).done(_("retired reward {code}").format(code=r['code']), r)


@vouchers_app.command("list")
def vouchers_list(member: str = typer.Option(None, "--member", help=N_("Only this member's vouchers.")),
                  status: str = typer.Option(None, "--status", help="issued | used | cancelled"),
                  sort: str = typer.Option("issued", "--sort", help="issued | code | member | status"),
                  limit: int = typer.Option(None, "--limit", min=1)):
    """List vouchers.

    \b
    Example:
      loyalty vouchers list --member M0001 --status issued
    """
    from loyalty_cli import rewards

    rows = call(rewards.vouchers, member, status, sort)
    out().table(rows[:limit] if limit else rows,
                [("code", N_("voucher")), ("member_id", N_("member")), ("reward", N_("reward")), ("points", N_("points")),
                 ("status", N_("status")), ("issued_at", N_("issued")), ("closed_at", N_("closed"))], empty=_("no vouchers"))


@vouchers_app.command("use")
def vouchers_use(code: str = typer.Argument(...), at: str = typer.Option(None, "--at"),
                 allow_future: bool = ALLOW_FUTURE):
    """Mark a voucher used at the counter (final).

    \b
    Example:
      loyalty vouchers use VAB12CD34
    """
    from loyalty_cli import rewards

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("record voucher {strip} as used then").format(strip=code.strip()))
    r = call(rewards.use, code, when)
    out(lists=False).done(_("voucher {code} used").format(code=r['code']), r)


@vouchers_app.command("cancel")
def vouchers_cancel(code: str = typer.Argument(...), at: str = typer.Option(None, "--at"),
                    by: str = typer.Option(None, "--by", envvar="LOYALTY_OPERATOR"), allow_future: bool = ALLOW_FUTURE):
    """Cancel an issued voucher: its points go back with their expiry dates.

    \b
    Example:
      loyalty vouchers cancel VAB12CD34
    """
    from loyalty_cli import rewards

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("cancel voucher {strip} and return its points dated then").format(strip=code.strip()))
    r = call(rewards.cancel, code, when, operator(by))
    lapsed = ("" if not r["points_expired"] else
              _(" ({points_expired:,} had lapsed and was written off)").format(points_expired=r['points_expired'])
              if r["points_expired"] == 1 else
              _(" ({points_expired:,} had lapsed and were written off)").format(points_expired=r['points_expired']))
    out(lists=False).done(_("voucher {code} cancelled: {points} back to {member_id}{lapsed}").format(code=r['code'], points=plural(r['points_returned'], 'point'), member_id=r['member_id'], lapsed=lapsed), r)
