"""`loyalty program simulate`: a proposed programme tried on the shop's own history, side by side
with today's rules, without changing the database (loyalty_cli/simulate.py does the work)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from loyalty_cli.cli.common import Invocation, date_option, existing_file, now, out, today
from loyalty_cli.i18n import M_, N_, _, display
from loyalty_cli.render import plural


def simulate(
    proposal: Path = typer.Argument(..., metavar="PROPOSED.toml",
                                    help=N_("The proposed programme: a TOML file, as for program load.")),
    from_: str = typer.Option(None, "--from", help=N_("First day of the period, from which the proposal applies "
                              "(default: twelve months before --to).")),
    to: str = typer.Option(None, "--to", metavar="DATE", help=N_("Last day of the period (default: the day of the last purchase).")),
    members: Path = typer.Option(None, "--members", metavar="FILE", help=N_("Also write each member's figures under both programmes "
                                 "to this CSV file (replaced if it exists).")),
    show_pii: bool = typer.Option(False, "--show-pii", help=N_("Real emails and phones in --members (masked otherwise).")),
):
    """Try a programme on the shop's own history before loading it.

    Replays the period's sales, refunds, redemptions, awards and transfers twice,
    each in a scratch copy (the database is only read, never changed): under the
    programme in force today, and under PROPOSED.toml in force from --from. Prints
    both side by side with the change: points issued by rule, reversed, expired,
    redeemed, redemptions the proposal would have refused, outstanding points and
    their value, points cost as a share of net sales, redemption rate, members per
    tier at the end, members who would move up or down a tier, and where the
    points go by RFM segment. A bad proposal gets the errors of program load
    (exit 3); a shop with no sales in the period, exit 1.

    \b
    Example:
      loyalty program simulate proposal.toml
      loyalty program simulate weekends.toml --from 2026-01-01 --to 2026-06-30
      loyalty program simulate gold-1000.toml --members moves.csv --json
    """
    from loyalty_cli import program
    from loyalty_cli import simulate as sim
    from loyalty_cli.cli.program import programme_text
    from loyalty_cli.store.simulate import open_read_only

    start = date_option(from_, "--from")  # usage errors (exit 2) before the file's (exit 3)
    last = date_option(to, "--to")
    if start and last and start > last:
        from loyalty_cli.errors import UsageError

        raise UsageError(M_("--from {start} is after --to {last}: the period must start on or before its last day",
                            start=start, last=last))
    o = out(lists=False)
    if members is not None:
        _check_members_path(members)
    file = existing_file(proposal, _("programme file"))
    text = programme_text(file)
    moment = now()

    def shop():
        s = open_read_only(Invocation.db, moment)
        s.announce = None
        return s

    s = shop()
    try:
        rules = program.check_file(s, text, file.name)
    finally:
        s.close()
    with _busy(o):
        report = sim.simulate(shop, rules, file.name, start, last, today(), members_wanted=members is not None)
    if members is not None:
        written = _write_members(members, report.pop("members"), show_pii)
        o.note(_("wrote {members} to {path}").format(members=plural(written, "member"), path=members))
    doc = as_json(report)
    if o.json:
        o.json_doc(doc)
        return
    if o.quiet:
        return
    _render(o, report, doc)


class _busy:
    """A transient status line on a terminal while the replays run (nothing when piped)."""

    def __init__(self, o):
        self.status = None
        if sys.stderr.isatty() and not o.quiet and not o.json:
            self.status = o.console(stderr=True).status(_("replaying the history under both programmes…"))

    def __enter__(self):
        if self.status is not None:
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)


# -- JSON ----------------------------------------------------------------------------------------
def as_json(report: dict) -> dict:
    """The document of --json: English keys, money as decimal text, shares as numbers (0..1)."""
    from loyalty_cli.values import format_money

    d = report["decimals"]

    def figures(f: dict) -> dict:
        out = dict(f)
        for key in ("liability", "points_cost"):
            out[key] = format_money(f[key], d)
        return out

    return {
        "period": {"from": report["from"], "to": report["to"]},
        "programmes": {"baseline": report["baseline"], "proposed": report["proposal"]},
        "history": {"members": report["members_count"], "sales": report["sales"], "refunds": report["refunds"],
                    "net_sales": format_money(report["net_sales"], d)},
        "baseline": figures(report["figures"]["baseline"]),
        "proposed": figures(report["figures"]["proposed"]),
        "change": figures(report["figures"]["change"]) | {
            key: report["figures"]["change"][key] for key in ("points_cost_share", "redemption_rate")},
        "tier_moves": report["tier_moves"],
        "segments": [{"segment": s["segment"], "members": s["members"],
                      "points_issued": {"baseline": s["points_issued_baseline"], "proposed": s["points_issued_proposed"],
                                        "change": s["points_issued_change"]},
                      "moved_up": s["moved_up"], "moved_down": s["moved_down"]} for s in report["segments"]],
        "sales_not_replayed": report["skipped"],
    }


# -- the table -----------------------------------------------------------------------------------
def _signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"{n:,}"


def _share(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}"


def _share_change(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "–"
    diff = round((b - a) * 100, 1)
    return f"+{diff:.1f}" if diff > 0 else f"{diff:.1f}" if diff < 0 else "0.0"


RULE_LABELS = {"earn": N_("earn"), "signup": N_("signup bonus"), "referral": N_("referral bonus"),
               "manual": N_("awards, adjustments"), "first_purchase": N_("first purchase"), "birthday": N_("birthday")}


def _rule_label(rule: str) -> str:
    if rule in RULE_LABELS:
        return _(RULE_LABELS[rule])
    if rule.startswith("tier:"):
        return _("tier bonus {tier}").format(tier=rule[5:])
    if rule.startswith("campaign:"):
        return _("campaign {name}").format(name=rule[9:])
    return rule.replace("_", " ")


def _rows(report: dict, doc: dict) -> list[dict]:
    """The lines of the side-by-side table: (figure, baseline, proposed, change) as text."""
    from loyalty_cli.render import money_text

    a, b, c = (report["figures"][k] for k in ("baseline", "proposed", "change"))
    rows = []

    def points(label: str, key: str) -> None:
        rows.append({"figure": _(label), "baseline": f"{a[key]:,}", "proposed": f"{b[key]:,}", "change": _signed(c[key])})

    found = list(a["points_issued_by_rule"])
    order = {"earn": 0, "first_purchase": 1, "birthday": 2, "signup": 8, "referral": 9, "manual": 10}
    issued_rules = sorted(found, key=lambda r: (order.get(r, 5 if r.startswith("tier:") else 3), found.index(r)))
    for rule in issued_rules:
        rows.append({"figure": _("issued: {rule}").format(rule=_rule_label(rule)), "baseline": f"{a['points_issued_by_rule'][rule]:,}",
                     "proposed": f"{b['points_issued_by_rule'][rule]:,}",
                     "change": _signed(c["points_issued_by_rule"][rule])})
    points(N_("points issued"), "points_issued")
    points(N_("points reversed (refunds)"), "points_reversed")
    points(N_("points expired"), "points_expired")
    points(N_("points redeemed"), "points_redeemed")
    points(N_("redemptions refused"), "redemptions_refused")
    if a["other_debits_refused"] or b["other_debits_refused"]:
        points(N_("other debits refused"), "other_debits_refused")
    points(N_("outstanding points (end)"), "outstanding_points")
    money = {k: doc[k]["liability"] for k in ("baseline", "proposed", "change")}
    change = money_text(money["change"])
    rows.append({"figure": _("liability (end)"), "baseline": money_text(money["baseline"]),
                 "proposed": money_text(money["proposed"]),
                 "change": change if change.startswith("-") or change in ("0", "0.00", "0.0") or set(change) <= set("0.")
                 else "+" + change})
    rows.append({"figure": _("points cost, % of net sales"), "baseline": _share(a["points_cost_share"]),
                 "proposed": _share(b["points_cost_share"]),
                 "change": _share_change(a["points_cost_share"], b["points_cost_share"])})
    rows.append({"figure": _("redemption rate, %"), "baseline": _share(a["redemption_rate"]),
                 "proposed": _share(b["redemption_rate"]),
                 "change": _share_change(a["redemption_rate"], b["redemption_rate"])})
    for tier in a["tiers"]:
        rows.append({"figure": _("members in {tier} (end)").format(tier=tier), "baseline": f"{a['tiers'][tier]:,}",
                     "proposed": f"{b['tiers'][tier]:,}", "change": _signed(c["tiers"][tier])})
    return rows


def _render(o, report: dict, doc: dict) -> None:
    moves = report["tier_moves"]
    lines = [_("period {start} to {last}: {sales}, {refunds}, {members}").format(
                 start=report['from'], last=report['to'], sales=plural(report['sales'], "sale"),
                 refunds=plural(report['refunds'], "refund"), members=plural(report['members_count'], "member")),
             _("baseline: {programme}").format(programme=display(report['baseline'])),
             _("proposed: {programme}, in force from {start}").format(programme=report['proposal'], start=report['from'])]
    sys.stdout.write("\n".join(lines) + "\n\n")
    o.table(_rows(report, doc), [("figure", ""), ("baseline", N_("baseline")), ("proposed", N_("proposed")),
                                 ("change", N_("change"))])
    sys.stdout.write("\n" + _("members who would move up a tier: {up:,}; down a tier: {down:,}").format(
        up=moves['up'], down=moves['down']) + "\n\n")
    segments = [{"segment": s["segment"], "members": s["members"], "baseline": f"{s['points_issued_baseline']:,}",
                 "proposed": f"{s['points_issued_proposed']:,}", "change": _signed(s["points_issued_change"]),
                 "up": s["moved_up"], "down": s["moved_down"]} for s in report["segments"]]
    sys.stdout.write(_("points issued by RFM segment (as of {day}; none: no sale in its year)").format(day=report['to'])
                     + "\n")
    o.table(segments, [("segment", N_("segment")), ("members", N_("members")), ("baseline", N_("baseline")),
                       ("proposed", N_("proposed")), ("change", N_("change")), ("up", N_("up")), ("down", N_("down"))])
    skipped = report["skipped"]
    if skipped["baseline"] or skipped["proposed"]:
        o.note(_("note: sales the programme refused (too many points), with their refunds, not replayed: "
                 "{baseline:,} under the baseline, {proposed:,} under the proposal").format(
                     baseline=skipped['baseline'], proposed=skipped['proposed']))


# -- --members ----------------------------------------------------------------------------------
MEMBER_COLUMNS = ("member_id", "email", "phone", "segment", "tier_baseline", "tier_proposed",
                  "points_issued_baseline", "points_issued_proposed", "points_issued_change",
                  "balance_baseline", "balance_proposed", "balance_change",
                  "redemptions_refused_baseline", "redemptions_refused_proposed")


def _check_members_path(path: Path) -> None:
    """--members FILE: a new path or a regular file, never the database or its journal files (usage
    error, exit 2, before any work)."""
    import stat

    from loyalty_cli.cli.common import database_file
    from loyalty_cli.errors import UsageError

    kind = database_file(path)
    if kind is not None:
        what = M_("the database's {kind} file", kind=kind) if kind else M_("the database")
        raise UsageError(M_("--members {path} is {what}; give another file for the members' figures",
                            path=path, what=what))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not path.parent.is_dir() and str(path.parent) not in ("", "."):
            raise UsageError(M_("--members {path}: the folder {folder} does not exist", path=path,
                                folder=path.parent)) from None
        return
    except OSError as exc:
        raise UsageError(M_("cannot write --members {path}: {reason}", path=path, reason=exc.strerror)) from None
    if not stat.S_ISREG(mode):
        raise UsageError(M_("--members {path} is not a regular file; give the path of a CSV file", path=path))


def _write_members(path: Path, rows: list[dict], show_pii: bool) -> int:
    """The members' figures as CSV, written whole beside FILE and then renamed over it (mode 0600);
    emails and phones masked (headed email_masked, phone_masked) unless `show_pii`; formulas
    neutralised."""
    import csv
    import io

    from loyalty_cli.cli.common import masked, pii_columns, write_private
    from loyalty_cli.errors import LoyaltyError
    from loyalty_cli.render import safe_cell

    columns = pii_columns([(key, key) for key in MEMBER_COLUMNS], show_pii)
    masked(rows, show_pii)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([c[2] if len(c) > 2 else c[0] for c in columns])
    for row in rows:
        writer.writerow([safe_cell("" if row[key] is None else row[key]) for key in MEMBER_COLUMNS])
    try:
        write_private(path, text.getvalue())
    except OSError as exc:
        raise LoyaltyError(M_("cannot write --members {path}: {reason}; the simulation's figures were not written "
                              "there", path=path, reason=exc.strerror or str(exc))) from None
    return len(rows)
