"""`loyalty households …`: families that pool their points (1+N): create, add, remove, show, list;
and what `points redeem --household`, `members show` and `points balance` print of them."""

from __future__ import annotations

import typer

from loyalty_cli.cli.common import (allow_future_option, as_of_option, at_option, call, group, money, out,
                                     refuse_future)
from loyalty_cli.i18n import N_, _
from loyalty_cli.render import human, plural

app = group(N_("Households: members who redeem from one pool of points (1+N) and may reach a tier together."),
            "loyalty households create LEE --head M0001")

AT = typer.Option(None, "--at", help=N_("When, YYYY-MM-DD[THH:MM[:SS]] (default: now)."))
ALLOW_FUTURE = allow_future_option()
NAME = typer.Argument(..., metavar="NAME", help=N_("The household's name: letters, digits, - _ . ' (no spaces)."))


@app.command("create")
def create(name: str = NAME,
           head: str = typer.Option(..., "--head", help=N_("The member who heads it (its first member).")),
           at: str = AT, allow_future: bool = ALLOW_FUTURE):
    """Create a household with its head as its first member.

    A name is 1-40 letters, digits, '-', '_', '.' or "'", without spaces, matched
    without regard to case; names are never reused. A member is in one household
    at a time; an erased member cannot join one.

    \b
    Example:
      loyalty households create LEE --head M0001
    """
    from loyalty_cli import households

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("create household {name} dated then").format(name=name.strip()))
    r = call(households.create, name, head, when)
    out(lists=False).done(_("created household {name}, head {head}").format(name=r['name'], head=r['head']), r)


@app.command("add")
def add(name: str = NAME, member_id: str = typer.Argument(..., metavar="MEMBER", help=N_("Member id.")),
        at: str = AT, allow_future: bool = ALLOW_FUTURE):
    """Add a member to a household: their points join its pool from --at on.

    They keep their own ledger, lots and balance. Refused for a member already in a
    household (remove them there first), an erased member, or a closed household.

    \b
    Example:
      loyalty households add LEE M0002
    """
    from loyalty_cli import households

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("add {member_id} to household {name} dated then").format(
        member_id=member_id.strip(), name=name.strip()))
    r = call(households.add, name, member_id, when)
    out(lists=False).done(_("added {member_id} to household {name} ({members}: {ids})").format(
        member_id=r['member_id'], name=r['name'], members=plural(len(r['members']), 'member'),
        ids=', '.join(r['members'])), r)


@app.command("remove")
def remove(name: str = NAME, member_id: str = typer.Argument(..., metavar="MEMBER", help=N_("Member id.")),
           new_head: str = typer.Option(None, "--new-head", help=N_("When removing the head: the member who heads "
                                        "the household from then on.")),
           at: str = AT, allow_future: bool = ALLOW_FUTURE):
    """Take a member out of a household from --at on; they keep their own points.

    The head can leave only with --new-head naming another member, or last: the
    household then has no members and is closed (kept in the history). The
    membership stays on record with the dates it began and ended.

    \b
    Example:
      loyalty households remove LEE M0002
      loyalty households remove LEE M0001 --new-head M0003
    """
    from loyalty_cli import households

    when = at_option(at)
    refuse_future(when, allow_future, "--at", _("remove {member_id} from household {name} dated then").format(
        member_id=member_id.strip(), name=name.strip()))
    r = call(households.remove, name, member_id, when, new_head)
    if r["closed"]:
        message = _("removed {member_id} from household {name}: it has no members now (closed)").format(
            member_id=r['member_id'], name=r['name'])
    elif new_head is not None:
        message = _("removed {member_id} from household {name} (members: {ids}); the head is now {head}").format(
            member_id=r['member_id'], name=r['name'], ids=', '.join(r['members']), head=r['head'])
    else:
        message = _("removed {member_id} from household {name} (members: {ids})").format(
            member_id=r['member_id'], name=r['name'], ids=', '.join(r['members']))
    out(lists=False).done(message, r)


@app.command("show")
def show(name: str = NAME,
         as_of: str = typer.Option(None, "--as-of", help=N_("Members and balances at the end of this date "
                                   "(default: today)."))):
    """A household: its members with their own balances, the pool, and the tier basis.

    The tier basis is the members' combined spend (or points, under tiers.basis =
    "points") in the tier window, and the tier it reaches: what they qualify on
    together under tiers.pooling = "household".

    \b
    Example:
      loyalty households show LEE
      loyalty households show LEE --json --as-of 2026-06-30
    """
    from loyalty_cli import households

    r = call(households.show, name, as_of_option(as_of))
    d = r.pop("currency_decimals")
    spend = r["basis"] == "spend"
    shown = money(r["combined_in_window"], d) if spend else r["combined_in_window"]
    doc = dict(r, combined_in_window=shown)
    together = _("qualifies together") if r["pooling"] == "household" else _("each member on their own")
    pairs = [(_("head"), r["head"]), (_("created"), r["created_at"][:10])]
    if r["closed_at"]:
        pairs.append((_("closed"), _("{day} (no members)").format(day=r['closed_at'][:10])))
    pairs += [(_("members"), len(r["members"])), (_("pool"), plural(r["pool"], "point")),
              (_("spend in window") if spend else _("points in window"), _("{value} combined").format(value=human(shown))),
              (_("tier basis"), _("{tier} (tiers.pooling = {pooling}: {together})").format(
                  tier=r['qualifies_for'] or '-', pooling=r['pooling'], together=together))]
    o = out(lists=False)
    o.record(pairs, title=_("household {name} as of {day}").format(name=r['name'], day=r['as_of']), json_obj=doc)
    if o.json or o.quiet or not r["members"]:
        return
    rows = [{"member_id": m["member_id"] + (_(" (head)") if m["head"] else "") + (_(" (erased)") if m["erased"] else ""),
             "joined": m["joined_at"][:10], "balance": m["balance"], "tier": m["tier"],
             "in_window": money(m["in_window"], d) if spend else m["in_window"]} for m in r["members"]]
    o.table(rows, [("member_id", N_("member")), ("joined", N_("joined")), ("balance", N_("balance")), ("tier", N_("tier")),
                   ("in_window", N_("spend in window") if spend else N_("points in window"))], title=_("its members"))


@app.command("list")
def list_(as_of: str = typer.Option(None, "--as-of", help=N_("Members and pools at the end of this date "
                                    "(default: today).")),
          sort: str = typer.Option("name", "--sort", help="name | created | members | pool"),
          limit: int = typer.Option(None, "--limit", min=1, help=N_("At most this many."))):
    """Every household, closed ones too: head, members now, pool.

    \b
    Example:
      loyalty households list --sort pool
      loyalty households list --csv > households.csv
    """
    from loyalty_cli import households

    rows = call(households.listing, as_of_option(as_of), sort)
    rows = rows[:limit] if limit else rows
    shown = [dict(h, created=h["created_at"][:10], closed=(h["closed_at"] or "")[:10] or None) for h in rows]
    out().table(shown, [("name", N_("household")), ("head", N_("head")), ("members", N_("members")), ("pool", N_("pool")),
                        ("created", N_("created")), ("closed", N_("closed"))], title=_("households"),
                empty=N_("no households yet (create one with: loyalty households create NAME --head MEMBER)"),
                json_obj=rows)


def pooled_redeem(member_id: str, points_: int | None, reward: str | None, when: str, by: str) -> None:
    """`points redeem … --household`: spend from the pool and say who paid what."""
    from loyalty_cli import households

    r = call(households.redeem, member_id, points_, reward, when, by)
    each = ", ".join(_("{member_id} {points:,} (balance {balance:,})").format(
        member_id=e['member_id'], points=e['points'], balance=e['balance']) for e in r["entries"])
    extra = _("; voucher {code}").format(code=r['voucher']) if r["voucher"] else ""
    out(lists=False).done(_("redeemed {points} from household {household} for {member_id}: {each}; pool {pool:,}{extra}")
                          .format(points=plural(r['points'], 'point'), household=r['household'],
                                  member_id=r['member_id'], each=each, pool=r['pool'], extra=extra), r)


def household_lines(household: dict | None, pooled: int | None, basis: str | None, decimals: int | None,
                    pairs: list) -> dict | None:
    """The lines `members show` and `points balance` add for a household member (the household, the
    pool, and under tiers.pooling the combined value), appended to `pairs`; returns the JSON object
    (`household`: {"name", "head", "members", "pool", "combined_in_window"}) or None."""
    if household is None:
        return None
    pairs.append((_("household"), _("{name} (head {head}; {members})").format(
        name=household['name'], head=household['head'], members=plural(len(household['members']), 'member'))))
    pairs.append((_("pool"), plural(household["pool"], "point")))
    combined = None
    if pooled is not None:
        combined = money(pooled, decimals) if basis == "spend" else pooled
        pairs.append((_("household spend") if basis == "spend" else _("household points"),
                      _("{value} in window").format(value=human(combined))))
    return dict(household, combined_in_window=combined)
