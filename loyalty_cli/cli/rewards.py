"""`loyalty rewards …` and `loyalty vouchers …`: the catalogue and the voucher lifecycle."""

from __future__ import annotations

import typer

from loyalty_cli.cli.common import allow_future_option, at_option, call, group, operator, out, refuse_future
from loyalty_cli.render import plural

app = group("The reward catalogue.", 'loyalty rewards add COFFEE --name "Free coffee" --cost 150')
vouchers_app = group("Vouchers issued for rewards: list, use, cancel.", "loyalty vouchers list --member M0001")

ALLOW_FUTURE = allow_future_option()
COLUMNS = [("code", "code"), ("name", "name"), ("cost", "cost"), ("stock", "stock"), ("retired", "retired")]


@app.command("add")
def add(code: str = typer.Argument(..., help="Short code, e.g. COFFEE"),
        name: str = typer.Option(..., "--name", help="What the member gets."),
        cost: int = typer.Option(..., "--cost", help="Points it costs."),
        stock: int = typer.Option(None, "--stock", help="How many are left (default: unlimited).")):
    """Add a reward to the catalogue.

    \b
    Example:
      loyalty rewards add COFFEE --name "Free coffee" --cost 150 --stock 100
    """
    from loyalty_cli import rewards

    r = call(rewards.add, code, name, cost, stock)
    out(lists=False).done(f"added reward {r['code']}: {r['name']} for {plural(r['cost'], 'point')}", r)


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include retired rewards."),
          sort: str = typer.Option("code", "--sort", help="code | cost | name"),
          limit: int = typer.Option(None, "--limit", min=1)):
    """List the rewards members can redeem.

    \b
    Example:
      loyalty rewards list --sort cost
    """
    from loyalty_cli import rewards

    rows = call(rewards.listing, all_, sort)
    out().table(rows[:limit] if limit else rows, COLUMNS, empty="no rewards yet (add one with: loyalty rewards add)")


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
    out(lists=False).done(f"updated reward {r['code']}", r)


@app.command("retire")
def retire(code: str = typer.Argument(...), at: str = typer.Option(None, "--at", help="When (default: now)."),
           allow_future: bool = ALLOW_FUTURE):
    """Take a reward out of the catalogue (vouchers already issued stay valid).

    \b
    Example:
      loyalty rewards retire COFFEE
    """
    from loyalty_cli import rewards

    when = at_option(at)
    refuse_future(when, allow_future, "--at", f"record reward {code.strip()} as retired then")
    r = call(rewards.retire, code, when)
    out(lists=False).done(f"retired reward {r['code']}", r)


@vouchers_app.command("list")
def vouchers_list(member: str = typer.Option(None, "--member", help="Only this member's vouchers."),
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
                [("code", "voucher"), ("member_id", "member"), ("reward", "reward"), ("points", "points"),
                 ("status", "status"), ("issued_at", "issued"), ("closed_at", "closed")], empty="no vouchers")


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
    refuse_future(when, allow_future, "--at", f"record voucher {code.strip()} as used then")
    r = call(rewards.use, code, when)
    out(lists=False).done(f"voucher {r['code']} used", r)


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
    refuse_future(when, allow_future, "--at", f"cancel voucher {code.strip()} and return its points dated then")
    r = call(rewards.cancel, code, when, operator(by))
    lapsed = (f" ({r['points_expired']:,} had lapsed and {'was' if r['points_expired'] == 1 else 'were'} written off)"
              if r["points_expired"] else "")
    out(lists=False).done(f"voucher {r['code']} cancelled: {plural(r['points_returned'], 'point')} back to {r['member_id']}{lapsed}", r)
