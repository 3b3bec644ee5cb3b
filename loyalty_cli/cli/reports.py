"""`loyalty report …`, `loyalty dashboard` and `loyalty feedback add`.

Thin: parse options, call `loyalty_cli.reports` (or `feedback`), format money
and shares, hand rows to `render.Output`; the dashboard is drawn by
`render.dashboard` from its --json document.
"""

from __future__ import annotations

import sys

import typer

from loyalty_cli import values
from loyalty_cli.cli.common import (GLOBAL_HELP, allow_future_option, as_of_option, at_option, call, group, masked, money,
                                    out, pii_columns, refuse_future)
from loyalty_cli.render import money_text, pct, plural
from loyalty_cli.i18n import M_, N_, _, display

app = group(N_("Analyses: RFM, segments, Pareto, churn, liability, birthdays, expiring points, anomalies."),
            "loyalty report segments --as-of 2026-10-31\n  loyalty report churn --days 90 --csv > win-back.csv")
feedback_app = group(N_("Customer feedback: 0-10 'would you recommend us?' scores, for the NPS."),
                     'loyalty feedback add M0001 9 --comment "lovely bread"')

TERMINAL_ROWS = 100  # a terminal shows this many rows unless --limit says otherwise

AS_OF_HELP = N_("Report as of the end of this date, YYYY-MM-DD (default: today).")
LIMIT_HELP = N_("At most this many rows (a terminal shows 100 by default).")
MAX_DAYS = 36_500  # a century: beyond it the calendar overflows
PII_HELP = N_("Show emails and phones unmasked.")
STORE_HELP = N_("Only the purchases rung up at this branch (a store name the purchases carry).")


def _at(r: dict) -> str:
    """A report title's words for the branch it is of ("" for the whole shop)."""
    return _(" at {store}").format(store=r['store']) if r.get("store") else ""


def _with_store(doc: dict, r: dict) -> dict:
    """A report's JSON with "store" when --store chose a branch (the whole shop's keeps its shape)."""
    return {**doc, "store": r["store"]} if r.get("store") else doc


def _branch(value: str | None) -> str | None:
    """A report's --store NAME, checked (the till's LOYALTY_STORE never filters a report)."""
    from loyalty_cli.cli.purchases import store_option

    return store_option(value, env=False)


dashboard_app = typer.Typer(add_completion=False)  # a one-command app: the root loads `dashboard` from here lazily


# -- formatting ------------------------------------------------------------------
def _shown(o, rows: list[dict], limit: int | None, what: str) -> list[dict]:
    """Cap what a terminal shows (JSON, CSV and pipes get everything asked for)."""
    if limit is None and o.rich and len(rows) > TERMINAL_ROWS:
        o.note(_("showing {terminal_rows} of {n_rows:,} {what}; use --limit N, or pipe/--csv/--json for all").format(terminal_rows=TERMINAL_ROWS, n_rows=len(rows), what=what))
        return rows[:TERMINAL_ROWS]
    return rows


# -- report rfm ------------------------------------------------------------------------
RFM_COLUMNS = [("member_id", N_("member")), ("last_sale", N_("last sale")), ("recency_days", N_("days since")),
               ("frequency", N_("sales")), ("monetary", N_("spend")), ("r", N_("R")), ("f", N_("F")), ("m", N_("M")), ("segment", N_("segment"))]


# SPEC §11's fields (the table adds the last sale's date): 13 MB of JSON for 100,000 members.
RFM_JSON = (("member_id", str), ("recency_days", int), ("frequency", int), ("monetary", str), ("r", int), ("f", int),
            ("m", int), ("segment", str))


@app.command("rfm")
def rfm(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    sort: str = typer.Option("id", "--sort", help="id | recency | frequency | monetary | segment | score"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    store_name: str = typer.Option(None, "--store", help=STORE_HELP),
):
    """Recency, frequency and spend of each member, scored 1-5, and their segment.

    Over the 365 days ending with --as-of: recency is the days since the last
    sale, frequency the number of sales, monetary the net spend (sales - refunds).
    A score is 1 + floor(5 x members strictly worse / members), so ties share a
    score. Segments, first match: champions (R,F,M >= 4), loyal (F >= 4, M >= 3),
    potential (R >= 4), at_risk (R <= 2 and F or M >= 3), lost (R <= 2), regular.
    With --store, of the members' purchases at that branch only.

    \b
    Example:
      loyalty report rfm --as-of 2026-10-31 --sort score --limit 20
      loyalty report rfm --csv > rfm.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.rfm, date, sort=sort, limit=limit, branch=_branch(store_name))
    d = r["currency_decimals"]
    if o.json:  # a year's RFM can be a hundred thousand rows: straight from columns
        o.json_records(_with_store({"as_of": r["as_of"]}, r), "members", RFM_JSON, r["columns"],
                       {3: lambda column: values.format_money_column(column, d)})
        return
    rows = [dict(zip(reports.RFM_FIELDS, (*m[:3], money(m[3], d), *m[4:]))) for m in zip(*r["columns"])]
    o.table(_shown(o, rows, limit, "members"), RFM_COLUMNS, title=_("RFM as of {as_of}{at} (365 days)").format(as_of=r['as_of'], at=_at(r)),
            empty=_("no member has bought anything yet"))


# -- report segments -----------------------------------------------------------------
SEGMENT_COLUMNS = [("segment", N_("segment")), ("members", N_("members")), ("share_of_members_text", N_("% members")),
                   ("spend", N_("spend")), ("share_of_spend_text", N_("% spend")), ("sales", N_("sales")),
                   ("average_order_value", N_("avg order"))]


@app.command("segments")
def segments(as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
             store_name: str = typer.Option(None, "--store", help=STORE_HELP)):
    """Each RFM segment's members, share of spend and average order value.

    Spend is the net spend of the 365 days ending with --as-of; the average order
    value is that spend divided by the segment's sales. A share is empty (null in
    JSON) when the total is zero or less.

    \b
    Example:
      loyalty report segments --as-of 2026-10-31
      loyalty members list --segment at_risk      # who they are
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.segments, date, branch=_branch(store_name))
    d = r["currency_decimals"]
    rows = []
    for seg in r["segments"]:
        rows.append({"segment": seg["segment"], "members": seg["members"], "share_of_members": seg["share_of_members"],
                     "spend": money(seg["spend"], d), "share_of_spend": seg["share_of_spend"], "sales": seg["sales"],
                     "average_order_value": money(seg["average_order_value"], d)})
    doc = _with_store({"as_of": r["as_of"], "members": r["members"], "spend": money(r["spend"], d), "segments": rows}, r)
    shown = [{**row, "share_of_members_text": pct(row["share_of_members"]), "share_of_spend_text": pct(row["share_of_spend"])}
             for row in rows]
    if o.csv:
        columns = [(k, k) for k in ("segment", N_("members"), "share_of_members", "spend", "share_of_spend", "sales",
                                    "average_order_value")]
        o.table(rows, columns)
        return
    o.table(shown, SEGMENT_COLUMNS, title=_("RFM segments as of {as_of}{at}: {members}, {money} net spend in 365 days").format(as_of=r['as_of'], at=_at(r), members=plural(r['members'], 'member'), money=money_text(money(r['spend'], d))), json_obj=doc)


# -- report pareto ---------------------------------------------------------------------
@app.command("pareto")
def pareto(as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
           store_name: str = typer.Option(None, "--store", help=STORE_HELP)):
    """How much of the year's spend comes from your best customers.

    Over the members with a sale up to --as-of, ranked by net spend in the 365
    days ending with it: the share made by the top 1%, 5%, 10% and 20% of them
    (the top ceil(n x p / 100) members), and the smallest share of members whose
    spend reaches 80% of the total.

    \b
    Example:
      loyalty report pareto --as-of 2026-10-31
      loyalty report pareto --json | jq .members_share_for_80pct
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out(lists=False)
    r = call(reports.pareto, date, branch=_branch(store_name))
    d = r["currency_decimals"]
    doc = {"as_of": r["as_of"], "top_shares": r["top_shares"], "members_share_for_80pct": r["members_share_for_80pct"],
           "member_count": r["member_count"], "total_spend": money(r["total_spend"], d), "top_counts": r["top_counts"],
           "top_spend": {p: money(v, d) for p, v in r["top_spend"].items()}}
    doc = _with_store(doc, r)
    pairs = [(_("members"), r["member_count"]), (_("net spend (365 days)"), money(r["total_spend"], d))]
    for p, share in r["top_shares"].items():
        k = r["top_counts"][p]
        pairs.append((_("top {p}%").format(p=p), _("{pct} of spend ({members}, {money})").format(pct=pct(share), members=plural(k, "member"), money=money_text(money(r['top_spend'][p], d)))))
    k80 = r["members_share_for_80pct"]
    pairs.append((_("80% of spend from"), "–" if k80 is None else _("{pct} of members").format(pct=pct(k80))))
    o.record(pairs, title=_("Pareto as of {as_of}{at}").format(as_of=r['as_of'], at=_at(r)), json_obj=doc)


# -- report churn ----------------------------------------------------------------------
CHURN_COLUMNS = [("member_id", N_("member")), ("name", N_("name")), ("email", N_("email")), ("phone", N_("phone")),
                 ("last_sale", N_("last sale")), ("days_since", N_("days since")), ("lifetime_spend", N_("lifetime spend"))]


@app.command("churn")
def churn(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    days: int = typer.Option(365, "--days", min=0, max=MAX_DAYS, help=N_("Lapsed when the last sale is this many days or more before --as-of.")),
    sort: str = typer.Option("last_sale", "--sort", help="last_sale | spend | id"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help=PII_HELP),
    store_name: str = typer.Option(None, "--store", help=STORE_HELP),
):
    """Members who stopped coming: no sale for --days days or more.

    With their last sale and lifetime net spend, for a win-back campaign. With
    --store: no sale at that branch for --days days (they may buy at another).

    \b
    Example:
      loyalty report churn --days 90 --sort spend --limit 50
      loyalty report churn --days 180 --csv --show-pii > win-back.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.churn, date, days, sort=sort, limit=limit, branch=_branch(store_name))
    d = r["currency_decimals"]
    rows = masked([{**m, "lifetime_spend": money(m["lifetime_spend"], d)} for m in r["members"]], show_pii)
    doc = _with_store({"as_of": r["as_of"], "days": r["days"], "members": rows, "masked": not show_pii}, r)
    o.table(_shown(o, rows, limit, "members"), pii_columns(CHURN_COLUMNS, show_pii), json_obj=doc,
            title=_("Lapsed members as of {as_of}: no sale{at} for {days} or more").format(as_of=r['as_of'], at=_at(r), days=plural(days, 'day')),
            empty=_("no member has been away {days} or more").format(days=plural(days, 'day')))


# -- report liability ------------------------------------------------------------------
@app.command("liability")
def liability(as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP)):
    """Points outstanding, what they are worth, and when they expire.

    Also lists the members whose balance is below zero.

    Outstanding points are the sum of the positive balances at the end of
    --as-of, valued at the programme's point_value. Expiring: the points of that
    month and each of the 11 after it, by the expiry dates of the lots still
    unused on --as-of. Points belong to members, not to a branch: this report is
    the whole shop's and takes no --store.

    \b
    Example:
      loyalty report liability --as-of 2026-10-31
      loyalty report liability --json | jq '.expiring[0]'
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out(lists=False)
    r = call(reports.liability, date)
    d = r["currency_decimals"]
    doc = {"as_of": r["as_of"], "outstanding_points": r["outstanding_points"], "value": money(r["value"], d),
           "expiring": [{"month": e["month"], "points": e["points"]} for e in r["expiring"]], "negative": r["negative"]}
    if o.json:
        o.json_doc(doc)
        return
    if o.quiet:
        return
    pairs = [(_("outstanding points"), r["outstanding_points"]),
             (_("value"), _("{money} (at {money_fraction} a point)").format(money=money_text(money(r['value'], d)), money_fraction=money_fraction(r['point_value']))),
             (_("expiring in 12 months"), sum(e["points"] for e in r["expiring"])),
             (_("balances below zero"), len(r["negative"]))]
    o.record(pairs, title=_("Points liability as of {as_of}").format(as_of=r['as_of']), json_obj=doc)
    sys.stdout.flush()
    o.table([{**e, "value": money(e["value"], d)} for e in r["expiring"]],
            [("month", N_("month")), ("points", _("points expiring")), ("value", N_("value"))], title=_("Expiring by month"))
    if r["negative"]:
        o.table(r["negative"], [("member_id", N_("member")), (_("balance"), N_("balance"))], title=_("Balances below zero"))


def money_fraction(value) -> str:
    """An exact point value (a Fraction of money) as decimal text: 1/100 → 0.01."""
    from loyalty_cli.tiers import fraction_text

    return fraction_text(value)


# -- report birthdays / expiring --------------------------------------------------------
BIRTHDAY_COLUMNS = [("date", N_("date")), ("member_id", N_("member")), ("name", N_("name")), ("email", N_("email")), ("phone", N_("phone")),
                    ("age", N_("age"))]


@app.command("birthdays")
def birthdays(
    as_of: str = typer.Option(None, "--as-of", help=N_("Count from this date, YYYY-MM-DD (default: today).")),
    days: int = typer.Option(30, "--days", min=0, max=MAX_DAYS, help=N_("Birthdays from --as-of to this many days after it (inclusive).")),
    sort: str = typer.Option("date", "--sort", help="date | id | age"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help=PII_HELP),
):
    """Members with a birthday in the next --days days (a card, a treat).

    With the date and the age they turn. A 29 February birthday is on
    28 February in other years. Members belong to no branch: no --store.

    \b
    Example:
      loyalty report birthdays --days 7
      loyalty report birthdays --days 31 --as-of 2026-12-01 --csv --show-pii \\
        > december.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.birthdays, date, days, sort=sort, limit=limit)
    rows = masked(r["members"], show_pii)
    doc = {"as_of": r["as_of"], "days": r["days"], "members": rows, "masked": not show_pii}
    o.table(_shown(o, rows, limit, "members"), pii_columns(BIRTHDAY_COLUMNS, show_pii), json_obj=doc,
            title=_("Birthdays {as_of} to {add_days}").format(as_of=r['as_of'], add_days=values.add_days(r['as_of'], days)),
            empty=_("no birthdays in the {days} from {as_of}").format(days=plural(days, 'day'), as_of=r['as_of']))


EXPIRING_COLUMNS = [("date", N_("expires on")), ("member_id", N_("member")), ("name", N_("name")), ("email", N_("email")),
                    ("phone", N_("phone")), ("points", N_("points"))]


@app.command("expiring")
def expiring(
    as_of: str = typer.Option(None, "--as-of", help=N_("Count from this date, YYYY-MM-DD (default: today).")),
    days: int = typer.Option(30, "--days", min=0, max=MAX_DAYS, help=N_("Expiry dates from --as-of to this many days after it (inclusive).")),
    sort: str = typer.Option("date", "--sort", help="date | points | id"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help=PII_HELP),
):
    """Members whose points expire in the next --days days (a reminder).

    One row per member and expiry date, with the points that will lapse.
    Points belong to members, not to a branch: no --store.

    \b
    Example:
      loyalty report expiring --days 30 --sort points
      loyalty report expiring --as-of 2026-10-31 --csv --show-pii > remind.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.expiring, date, days, sort=sort, limit=limit)
    rows = masked(r["members"], show_pii)
    doc = {"as_of": r["as_of"], "days": r["days"], "members": rows, "masked": not show_pii}
    o.table(_shown(o, rows, limit, "rows"), pii_columns(EXPIRING_COLUMNS, show_pii), json_obj=doc,
            title=_("Points expiring {as_of} to {add_days}").format(as_of=r['as_of'], add_days=values.add_days(r['as_of'], days))
                  + ("" if limit else _(": {points}, {members}").format(
                      points=plural(sum(m['points'] for m in rows), 'point'),
                      members=plural(len({m['member_id'] for m in rows}), 'member'))),
            empty=_("no points expire in the {days} from {as_of}").format(days=plural(days, 'day'), as_of=r['as_of']))


# -- report anomalies ------------------------------------------------------------------
ANOMALY_COLUMNS = [("date", N_("date")), ("member_id", N_("member")), ("rule", N_("rule")), ("reason", N_("reason"))]


@app.command("anomalies")
def anomalies(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    sort: str = typer.Option("date", "--sort", help="date | id | rule"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
):
    """Activity worth a second look, by the programme's [anomalies] rules.

    Looks at the 365 days to --as-of. Rules: sales_per_day (more sales by one member in a day than
    max_sales_per_day), small_burst (small_burst or more sales under small_sale
    within small_burst_minutes), refund_ratio (a member's refunds/sales count
    above refund_ratio_factor x the shop's, for members with at least 3 sales
    and 2 refunds), award_redeem (a manual award of award_redeem_points or more
    redeemed within award_redeem_days), refund_after_spend (a refund that left the
    balance below zero after points of that sale were transferred out or redeemed;
    earn.pending_days stops it). A member's pattern spans every branch: no
    --store.

    \b
    Example:
      loyalty report anomalies --as-of 2026-10-31
      loyalty report anomalies --sort rule --json
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.anomalies, date, sort=sort, limit=limit)
    rows = r["findings"]
    o.table(_shown(o, rows, limit, "findings"), ANOMALY_COLUMNS, json_obj={"as_of": r["as_of"], "findings": rows},
            title=_("Anomalies in the 365 days to {as_of}").format(as_of=r['as_of']), empty=_("no anomalies found"))


# -- dashboard ---------------------------------------------------------------------------
def dashboard(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    period: int = typer.Option(30, "--period", min=1, max=MAX_DAYS, help=N_("The period: this many days ending with --as-of.")),
    show_pii: bool = typer.Option(False, "--show-pii", help=N_("Show the top members' emails and phones unmasked.")),
    full: bool = typer.Option(False, "--full", help=N_("Every figure, the monthly table and the top 10 members.")),
    store_name: str = typer.Option(None, "--store", help=N_("One branch's sales, active members, segments and top members (points, tiers and NPS stay the whole shop's).")),
):
    """The owner's overview: sales, members, points, tiers, top customers.

    By default one 80x24 screen: this period against the one before, points
    outstanding and their value, tiers, segments and a 12-month chart; --full
    shows every figure, the monthly table and the top members.

    The period is the --period days ending with --as-of; "active" members made a
    sale in it; retention is the share of the previous period's active members
    who came back in this one. Points issued exclude transfers; the redemption
    rate is all-time redeemed / issued. NPS uses each member's latest score in
    the 365 days (loyalty feedback add).

    Branches: when the period's purchases were rung up at more than one store,
    a "By branch" table lists each one's sales, net sales and buyers (on the
    one-screen view in place of the RFM segments). --store NAME shows one
    branch: its sales, active members, repeat rate, retention, monthly net
    sales, segments and top members, from its purchases alone; members, points,
    liability, tiers and NPS belong to no branch and stay the whole shop's.

    \b
    Example:
      loyalty dashboard
      loyalty dashboard --store Harbour
      loyalty dashboard --as-of 2026-10-31 --period 7 --full
      loyalty dashboard --json | jq .sales
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out(lists=False)
    r = call(reports.dashboard, date, period, _branch(store_name))
    doc = dashboard_json(r, show_pii)
    if o.json:
        o.json_doc(doc)
        return
    if o.quiet:
        return
    from loyalty_cli.render import dashboard as dashboard_view

    dashboard_view.draw(o, doc, previous_figures(r), full)


def dashboard_json(r: dict, show_pii: bool = False) -> dict:
    """The dashboard's figures in the JSON shape of SPEC §11 (money as decimal strings)."""
    d = r["currency_decimals"]
    top = masked([{"member_id": t["member_id"], "name": t["name"], "email": t["email"], "phone": t["phone"],
                   "net_spend": money(t["net_spend"], d)} for t in r["top_members"]], show_pii)
    return {
        "as_of": r["as_of"],
        "period_days": r["period_days"],
        "members": r["members"],
        "sales": {"count": r["sales"]["count"], "net": money(r["sales"]["net"], d),
                  "average_order_value": money(r["sales"]["average_order_value"], d)},
        "repeat_rate": r["repeat_rate"],
        "retention": r["retention"],
        "points": r["points"],
        "liability": money(r["liability"], d),
        "redemption_rate": r["redemption_rate"],
        "tiers": r["tiers"],
        "segments": r["segments"],
        "nps": r["nps"],
        "monthly": [{"month": m["month"], "net_sales": money(m["net_sales"], d), "points_issued": m["points_issued"]}
                    for m in r["monthly"]],
        "top_members": top,
        "masked": not show_pii,  # whether top_members' emails and phones are masked (issue 15)
        # The period's branches, most net sales first (issue 18; with --store, that one).
        "stores": [{"store": b["store"], "sales": b["sales"], "net": money(b["net"], d), "buyers": b["buyers"]}
                   for b in r["stores"]],
        **({"store": r["store"]} if r["store"] else {}),  # --store: the branch the purchase figures are of
    }


def previous_figures(r: dict) -> dict:
    """The period before this one (not part of --json), money as text like the rest."""
    d, prev = r["currency_decimals"], r["previous"]
    return {"start": prev["start"], "members": prev["members"], "points": prev["points"],
            "sales": {"count": prev["sales"]["count"], "net": money(prev["sales"]["net"], d),
                      "average_order_value": money(prev["sales"]["average_order_value"], d)}}


dashboard_app.command("dashboard", epilog=GLOBAL_HELP)(dashboard)


# -- feedback ---------------------------------------------------------------------------
@feedback_app.command("add")
def feedback_add(
    member_id: str = typer.Argument(..., help=N_("Member id.")),
    score: str = typer.Argument(..., help=N_("0-10: how likely they are to recommend the shop.")),
    comment: str = typer.Option(None, "--comment", help=N_("What they said (erased with the member's personal data).")),
    at: str = typer.Option(None, "--at", help=N_("When, YYYY-MM-DD[THH:MM[:SS]] (default: now).")),
    allow_future: bool = allow_future_option(),
):
    """Record a member's 0-10 recommendation score (for the NPS).

    The dashboard's NPS uses each member's latest score in the 365 days.

    \b
    Example:
      loyalty feedback add M0001 9 --comment "lovely bread"
      loyalty feedback add M0002 4 --at 2026-10-30
    """
    from loyalty_cli import feedback
    from loyalty_cli.errors import UsageError

    text = score.strip()
    if not (text.isascii() and text.isdigit() and int(text) <= 10):
        raise UsageError(M_("SCORE must be a whole number from 0 to 10, got {value}", value=text or repr(score)))
    value = int(text)
    when = at_option(at)
    from loyalty_cli.cli.common import as_stored

    refuse_future(when, allow_future, "--at", lambda: _("record {as_stored}'s score dated then").format(as_stored=as_stored(member_id)))
    r = call(feedback.add, member_id, value, when, comment)
    out(lists=False).done(_("recorded score {score} from {member_id} ({at})").format(score=r['score'], member_id=r['member_id'], at=r['at']), r)


@app.command("experiment")
def experiment(name: str = typer.Argument(..., help=N_("The experiment's name (see: loyalty program experiment list).")),
               as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP)):
    """An experiment's control and variant groups side by side, and whether they differ.

    Per group, over the experiment's days up to --as-of (or its stop): members, active
    members, sales, spend, visits (days with a sale) and points issued per member, the
    repeat rate (active members with 2 visits or more) and the points' cost. Each
    difference (variant - control) has a 95% confidence interval (Welch, exact Student t
    quantile), and one line says what it means, or how many more weeks would be needed.

    \b
    Example:
      loyalty report experiment dbl --as-of 2027-02-28
    """
    from loyalty_cli import experiment_report

    day = as_of_option(as_of)
    r = call(experiment_report.report, name, day)
    out(lists=False).text(r, experiment_lines)


def experiment_lines(r: dict) -> list[str]:
    """`report experiment` as text, within 80 terminal cells (a Chinese label or word takes two)."""
    from loyalty_cli.render import cells_of, wrap_cells

    def left(text: str, width: int) -> str:
        return text + " " * max(width - cells_of(text), 0)

    def right(text: str, width: int) -> str:
        return " " * max(width - cells_of(text), 0) + text

    c, v, d = r["groups"]["control"], r["groups"]["variant"], r["differences"]
    days = plural(r['days'], 'day')
    lines = wrap_cells((_("experiment {name}: {start} to {last} ({days}, stopped from {stopped}), share {share}")
                        if r["stopped_from"] else _("experiment {name}: {start} to {last} ({days}), share {share}"))
                       .format(name=r['experiment'], start=r['from'], last=r['to'], days=days,
                               stopped=r['stopped_from'], share=r['share']), 80) + [""]
    head = (left("", 22) + right(_("control"), 11) + right(_("variant"), 11) + right(_("difference"), 12) + "  "
            + _("95% CI"))
    lines += [head, "-" * cells_of(head)]

    def rate(x):
        return "" if x is None else f"{float(x) * 100:.1f}%"

    def row(label, a, b, diff=None):
        ci = "  " + _("{low} to {high}").format(low=diff['ci_low'], high=diff['ci_high']) if diff else ""
        delta = str(diff["difference"]) if diff else ""
        if diff and delta.lstrip("-+").strip("0.") == "":
            delta = delta.lstrip("-+")  # rounded to nothing: no sign ("-0.00" said a difference that is not there)
        elif diff and not delta.startswith("-"):
            delta = "+" + delta
        lines.append(f"{left(_(label), 22)}{a:>11}{b:>11}{delta:>12}{ci}".rstrip())

    row(N_("members"), f"{c['members']:,}", f"{v['members']:,}")
    row(N_("active members"), f"{c['active_members']:,}", f"{v['active_members']:,}")
    row(N_("sales per member"), c["sales_per_member"], v["sales_per_member"], d["sales"])
    row(N_("spend per member"), c["spend_per_member"], v["spend_per_member"], d["spend"])
    row(N_("visits per member"), c["visits_per_member"], v["visits_per_member"], d["visits"])
    row(N_("repeat rate"), rate(c["repeat_rate"]), rate(v["repeat_rate"]))
    row(N_("points per member"), c["points_per_member"], v["points_per_member"], d["points"])
    row(N_("points cost per member"), c["points_cost_per_member"], v["points_cost_per_member"], d["points_cost"])
    lines.append("")
    lines += wrap_cells(display(r["verdict"]), 80)
    return lines
