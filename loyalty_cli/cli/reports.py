"""`loyalty report …`, `loyalty dashboard` and `loyalty feedback add`.

Thin: parse options, call `loyalty_cli.reports` (or `feedback`), format money
and shares, hand rows to `render.Output`. The dashboard has its own small
renderer here: rich panels on a terminal, plain aligned text when piped; both
are built from the same formatted strings, so the text shows exactly the
figures of `--json`.
"""

from __future__ import annotations

import sys

import typer

from loyalty_cli import values
from loyalty_cli.cli.common import (GLOBAL_HELP, allow_future_option, as_of_option, at_option, call, group, masked, money,
                                    out, pii_columns, refuse_future)
from loyalty_cli.render import money_text, number, plural

app = group("Analyses: RFM, segments, Pareto, churn, liability, birthdays, expiring points, anomalies.",
            "loyalty report segments --as-of 2026-10-31\n  loyalty report churn --days 90 --csv > win-back.csv")
feedback_app = group("Customer feedback: 0-10 'would you recommend us?' scores, for the NPS.",
                     'loyalty feedback add M0001 9 --comment "lovely bread"')

TERMINAL_ROWS = 100  # a terminal shows this many rows unless --limit says otherwise

AS_OF_HELP = "Report as of the end of this date, YYYY-MM-DD (default: today)."
LIMIT_HELP = "At most this many rows (a terminal shows 100 by default)."
MAX_DAYS = 36_500  # a century: beyond it the calendar overflows
PII_HELP = "Show emails and phones unmasked."


def register(root) -> None:
    root.add_typer(app, name="report")
    root.command("dashboard", epilog=GLOBAL_HELP)(dashboard)
    root.add_typer(feedback_app, name="feedback")


dashboard_app = typer.Typer(add_completion=False)  # a one-command app: the root loads `dashboard` from here lazily


# -- formatting ------------------------------------------------------------------
def pct(share: float | None) -> str:
    """A share (0..1) as a percentage with one decimal; "–" when there is none (total ≤ 0)."""
    return "–" if share is None else f"{share * 100:.1f}%"


def nps_text(nps: float | None) -> str:
    if nps is None:
        return "–"
    text = f"{nps:.1f}".rstrip("0").rstrip(".")
    return text if text.startswith("-") or text == "0" else "+" + text


def _shown(o, rows: list[dict], limit: int | None, what: str) -> list[dict]:
    """Cap what a terminal shows (JSON, CSV and pipes get everything asked for)."""
    if limit is None and o.rich and len(rows) > TERMINAL_ROWS:
        o.note(f"showing {TERMINAL_ROWS} of {len(rows):,} {what}; use --limit N, or pipe/--csv/--json for all")
        return rows[:TERMINAL_ROWS]
    return rows


def _days(days: int) -> int:
    from loyalty_cli.errors import UsageError

    if days < 0:
        raise UsageError(f"--days must be zero or more, got {days}")
    return days


# -- report rfm ------------------------------------------------------------------------
RFM_COLUMNS = [("member_id", "member"), ("last_sale", "last sale"), ("recency_days", "days since"),
               ("frequency", "sales"), ("monetary", "spend"), ("r", "R"), ("f", "F"), ("m", "M"), ("segment", "segment")]


# SPEC §11's fields (the table adds the last sale's date): 13 MB of JSON for 100,000 members.
RFM_JSON = (("member_id", str), ("recency_days", int), ("frequency", int), ("monetary", str), ("r", int), ("f", int),
            ("m", int), ("segment", str))


@app.command("rfm")
def rfm(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    sort: str = typer.Option("id", "--sort", help="id | recency | frequency | monetary | segment | score"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
):
    """Recency, frequency and spend of each member, scored 1-5, and their segment.

    Over the 365 days ending with --as-of: recency is the days since the last
    sale, frequency the number of sales, monetary the net spend (sales - refunds).
    A score is 1 + floor(5 x members strictly worse / members), so ties share a
    score. Segments, first match: champions (R,F,M >= 4), loyal (F >= 4, M >= 3),
    potential (R >= 4), at_risk (R <= 2 and F or M >= 3), lost (R <= 2), regular.

    \b
    Example:
      loyalty report rfm --as-of 2026-10-31 --sort score --limit 20
      loyalty report rfm --csv > rfm.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.rfm, date, sort=sort, limit=limit)
    d = r["currency_decimals"]
    if o.json:  # a year's RFM can be a hundred thousand rows: straight from columns
        o.json_records({"as_of": r["as_of"]}, "members", RFM_JSON, r["columns"],
                       {3: lambda column: values.format_money_column(column, d)})
        return
    rows = [dict(zip(reports.RFM_FIELDS, (*m[:3], money(m[3], d), *m[4:]))) for m in zip(*r["columns"])]
    o.table(_shown(o, rows, limit, "members"), RFM_COLUMNS, title=f"RFM as of {r['as_of']} (365 days)",
            empty="no member has bought anything yet")


# -- report segments -----------------------------------------------------------------
SEGMENT_COLUMNS = [("segment", "segment"), ("members", "members"), ("share_of_members_text", "% members"),
                   ("spend", "spend"), ("share_of_spend_text", "% spend"), ("sales", "sales"),
                   ("average_order_value", "avg order")]


@app.command("segments")
def segments(as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP)):
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
    r = call(reports.segments, date)
    d = r["currency_decimals"]
    rows = []
    for seg in r["segments"]:
        rows.append({"segment": seg["segment"], "members": seg["members"], "share_of_members": seg["share_of_members"],
                     "spend": money(seg["spend"], d), "share_of_spend": seg["share_of_spend"], "sales": seg["sales"],
                     "average_order_value": money(seg["average_order_value"], d)})
    doc = {"as_of": r["as_of"], "members": r["members"], "spend": money(r["spend"], d), "segments": rows}
    shown = [{**row, "share_of_members_text": pct(row["share_of_members"]), "share_of_spend_text": pct(row["share_of_spend"])}
             for row in rows]
    if o.csv:
        columns = [(k, k) for k in ("segment", "members", "share_of_members", "spend", "share_of_spend", "sales",
                                    "average_order_value")]
        o.table(rows, columns)
        return
    o.table(shown, SEGMENT_COLUMNS, title=f"RFM segments as of {r['as_of']}: {plural(r['members'], 'member')}, "
                                          f"{money_text(money(r['spend'], d))} net spend in 365 days", json_obj=doc)


# -- report pareto ---------------------------------------------------------------------
@app.command("pareto")
def pareto(as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP)):
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
    r = call(reports.pareto, date)
    d = r["currency_decimals"]
    doc = {"as_of": r["as_of"], "top_shares": r["top_shares"], "members_share_for_80pct": r["members_share_for_80pct"],
           "member_count": r["member_count"], "total_spend": money(r["total_spend"], d), "top_counts": r["top_counts"],
           "top_spend": {p: money(v, d) for p, v in r["top_spend"].items()}}
    pairs = [("members", r["member_count"]), ("net spend (365 days)", money(r["total_spend"], d))]
    for p, share in r["top_shares"].items():
        k = r["top_counts"][p]
        pairs.append((f"top {p}%", f"{pct(share)} of spend ({k:,} member{'s' if k != 1 else ''}, {money_text(money(r['top_spend'][p], d))})"))
    k80 = r["members_share_for_80pct"]
    pairs.append(("80% of spend from", "–" if k80 is None else f"{pct(k80)} of members"))
    o.record(pairs, title=f"Pareto as of {r['as_of']}", json_obj=doc)


# -- report churn ----------------------------------------------------------------------
CHURN_COLUMNS = [("member_id", "member"), ("name", "name"), ("email", "email"), ("phone", "phone"),
                 ("last_sale", "last sale"), ("days_since", "days since"), ("lifetime_spend", "lifetime spend")]


@app.command("churn")
def churn(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    days: int = typer.Option(365, "--days", min=0, max=MAX_DAYS, help="Lapsed when the last sale is this many days or more before --as-of."),
    sort: str = typer.Option("last_sale", "--sort", help="last_sale | spend | id"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help=PII_HELP),
):
    """Members who stopped coming: no sale for --days days or more.

    With their last sale and lifetime net spend, for a win-back campaign.

    \b
    Example:
      loyalty report churn --days 90 --sort spend --limit 50
      loyalty report churn --days 180 --csv --show-pii > win-back.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.churn, date, _days(days), sort=sort, limit=limit)
    d = r["currency_decimals"]
    rows = masked([{**m, "lifetime_spend": money(m["lifetime_spend"], d)} for m in r["members"]], show_pii)
    doc = {"as_of": r["as_of"], "days": r["days"], "members": rows, "masked": not show_pii}
    o.table(_shown(o, rows, limit, "members"), pii_columns(CHURN_COLUMNS, show_pii), json_obj=doc,
            title=f"Lapsed members as of {r['as_of']}: no sale for {plural(days, 'day')} or more",
            empty=f"no member has been away {plural(days, 'day')} or more")


# -- report liability ------------------------------------------------------------------
@app.command("liability")
def liability(as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP)):
    """Points outstanding, what they are worth, and when they expire.

    Also lists the members whose balance is below zero.

    Outstanding points are the sum of the positive balances at the end of
    --as-of, valued at the programme's point_value. Expiring: the points of that
    month and each of the 11 after it, by the expiry dates of the lots still
    unused on --as-of.

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
    pairs = [("outstanding points", r["outstanding_points"]),
             ("value", f"{money_text(money(r['value'], d))} (at {money_fraction(r['point_value'])} a point)"),
             ("expiring in 12 months", sum(e["points"] for e in r["expiring"])),
             ("balances below zero", len(r["negative"]))]
    o.record(pairs, title=f"Points liability as of {r['as_of']}", json_obj=doc)
    sys.stdout.flush()
    o.table([{**e, "value": money(e["value"], d)} for e in r["expiring"]],
            [("month", "month"), ("points", "points expiring"), ("value", "value")], title="Expiring by month")
    if r["negative"]:
        o.table(r["negative"], [("member_id", "member"), ("balance", "balance")], title="Balances below zero")


def money_fraction(value) -> str:
    """An exact point value (a Fraction of money) as decimal text: 1/100 → 0.01."""
    from loyalty_cli.tiers import fraction_text

    return fraction_text(value)


# -- report birthdays / expiring --------------------------------------------------------
BIRTHDAY_COLUMNS = [("date", "date"), ("member_id", "member"), ("name", "name"), ("email", "email"), ("phone", "phone"),
                    ("age", "age")]


@app.command("birthdays")
def birthdays(
    as_of: str = typer.Option(None, "--as-of", help="Count from this date, YYYY-MM-DD (default: today)."),
    days: int = typer.Option(30, "--days", min=0, max=MAX_DAYS, help="Birthdays from --as-of to this many days after it (inclusive)."),
    sort: str = typer.Option("date", "--sort", help="date | id | age"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help=PII_HELP),
):
    """Members with a birthday in the next --days days (a card, a treat).

    With the date and the age they turn. A 29 February birthday is on
    28 February in other years.

    \b
    Example:
      loyalty report birthdays --days 7
      loyalty report birthdays --days 31 --as-of 2026-12-01 --csv --show-pii > december.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.birthdays, date, _days(days), sort=sort, limit=limit)
    rows = masked(r["members"], show_pii)
    doc = {"as_of": r["as_of"], "days": r["days"], "members": rows, "masked": not show_pii}
    o.table(_shown(o, rows, limit, "members"), pii_columns(BIRTHDAY_COLUMNS, show_pii), json_obj=doc,
            title=f"Birthdays {r['as_of']} to {values.add_days(r['as_of'], days)}",
            empty=f"no birthdays in the {plural(days, 'day')} from {r['as_of']}")


EXPIRING_COLUMNS = [("date", "expires on"), ("member_id", "member"), ("name", "name"), ("email", "email"),
                    ("phone", "phone"), ("points", "points")]


@app.command("expiring")
def expiring(
    as_of: str = typer.Option(None, "--as-of", help="Count from this date, YYYY-MM-DD (default: today)."),
    days: int = typer.Option(30, "--days", min=0, max=MAX_DAYS, help="Expiry dates from --as-of to this many days after it (inclusive)."),
    sort: str = typer.Option("date", "--sort", help="date | points | id"),
    limit: int = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help=PII_HELP),
):
    """Members whose points expire in the next --days days (a reminder).

    One row per member and expiry date, with the points that will lapse.

    \b
    Example:
      loyalty report expiring --days 30 --sort points
      loyalty report expiring --as-of 2026-10-31 --csv --show-pii > remind.csv
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out()
    r = call(reports.expiring, date, _days(days), sort=sort, limit=limit)
    rows = masked(r["members"], show_pii)
    doc = {"as_of": r["as_of"], "days": r["days"], "members": rows, "masked": not show_pii}
    o.table(_shown(o, rows, limit, "rows"), pii_columns(EXPIRING_COLUMNS, show_pii), json_obj=doc,
            title=f"Points expiring {r['as_of']} to {values.add_days(r['as_of'], days)}"
                  + ("" if limit else f": {plural(sum(m['points'] for m in rows), 'point')}, "
                                      f"{plural(len({m['member_id'] for m in rows}), 'member')}"),
            empty=f"no points expire in the {plural(days, 'day')} from {r['as_of']}")


# -- report anomalies ------------------------------------------------------------------
ANOMALY_COLUMNS = [("date", "date"), ("member_id", "member"), ("rule", "rule"), ("reason", "reason")]


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
    redeemed within award_redeem_days).

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
            title=f"Anomalies in the 365 days to {r['as_of']}", empty="no anomalies found")


# -- dashboard ---------------------------------------------------------------------------
def dashboard(
    as_of: str = typer.Option(None, "--as-of", help=AS_OF_HELP),
    period: int = typer.Option(30, "--period", min=1, max=MAX_DAYS, help="The period: this many days ending with --as-of."),
    show_pii: bool = typer.Option(False, "--show-pii", help="Show the top members' emails and phones unmasked."),
    full: bool = typer.Option(False, "--full", help="Every figure, the monthly table and the top 10 members."),
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

    \b
    Example:
      loyalty dashboard
      loyalty dashboard --as-of 2026-10-31 --period 7 --full
      loyalty dashboard --json | jq .sales
    """
    from loyalty_cli import reports

    date = as_of_option(as_of)
    o = out(lists=False)
    r = call(reports.dashboard, date, period)
    doc = dashboard_json(r, show_pii)
    if o.json:
        o.json_doc(doc)
        return
    if o.quiet:
        return
    view = DashboardView(doc, previous_figures(r))
    if o.rich:
        console = o.console()
        console.print(view.rich(console.width) if full else view.compact_rich(console.width))
    else:
        from loyalty_cli.render import plain_width

        sys.stdout.write(view.plain(plain_width()) if full else view.compact_plain(plain_width()))


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
    }


def previous_figures(r: dict) -> dict:
    """The period before this one (not part of --json), money as text like the rest."""
    d, prev = r["currency_decimals"], r["previous"]
    return {"start": prev["start"], "members": prev["members"], "points": prev["points"],
            "sales": {"count": prev["sales"]["count"], "net": money(prev["sales"]["net"], d),
                      "average_order_value": money(prev["sales"]["average_order_value"], d)}}


def change(now, before) -> str:
    """This period against the one before, as a signed percentage ("–" when the one before had none)."""
    now, before = float(now or 0), float(before or 0)
    if before <= 0:
        return "–"
    return f"{(now - before) / before * 100:+.1f}%"


SPARKS = "▁▂▃▄▅▆▇█"


def spark(values_: list[float], cells: int = 1) -> str:
    """A one-line chart: each value as one of eight block heights (`cells` wide), scaled to the largest."""
    top = max(values_, default=0)
    out = []
    for v in values_:
        level = 0 if top <= 0 or v <= 0 else min(7, max(0, round(v / top * 7)))
        out.append((SPARKS[level] if v > 0 else " ") * cells)
    return "".join(out)


BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: float, top: float, width: int) -> str:
    """A horizontal bar of block characters, `width` cells for `top`, in eighths of a cell."""
    if top <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = round(value / top * width * 8)
    full, part = divmod(max(eighths, 1), 8)
    return "█" * full + (BLOCKS[part] if part else "")


dashboard_app.command("dashboard", epilog=GLOBAL_HELP)(dashboard)


class DashboardView:
    """The dashboard as text: every figure formatted once, then laid out for rich or for plain text."""

    def __init__(self, doc: dict, previous: dict | None = None):
        self.doc = doc
        m, s, p = doc["members"], doc["sales"], doc["points"]
        start = values.add_days(doc["as_of"], 1 - doc["period_days"])
        self.title = f"Loyalty dashboard · as of {doc['as_of']}"
        self.period_title = f"Last {plural(doc['period_days'], 'day')} ({start} to {doc['as_of']})"
        self.now_title = f"On {doc['as_of']}"
        self.period_kpis = [
            ("net sales", money_text(s["net"])), ("sales", number(s["count"])),
            ("average order", money_text(s["average_order_value"]) or "–"),
            ("active members", number(m["active"])), ("new members", number(m["new"])),
            ("repeat rate", pct(doc["repeat_rate"])), ("retention", pct(doc["retention"])),
            ("points issued", number(p["issued"])), ("points redeemed", number(p["redeemed"])),
            ("points expired", number(p["expired"])),
        ]
        self.now_kpis = [
            ("members", number(m["total"])), ("points outstanding", number(p["outstanding"])),
            ("liability", money_text(doc["liability"])),
            ("redemption rate", pct(doc["redemption_rate"])), ("NPS (365 days)", nps_text(doc["nps"])),
        ]
        self.tiers = list(doc["tiers"].items())
        self.segments = list(doc["segments"].items())
        # (month, net sales as text, net sales as a number for the bars, points issued)
        self.monthly = [(row["month"], money_text(row["net_sales"]), float(row["net_sales"]), row["points_issued"])
                        for row in doc["monthly"]]
        self.top = [(str(i), t["member_id"], t["name"] or "(erased)", t["email"] or "", t["phone"] or "",
                     money_text(t["net_spend"])) for i, t in enumerate(doc["top_members"], 1)]
        self.comparison = self._comparison(doc, previous) if previous else []

    @staticmethod
    def _comparison(doc: dict, prev: dict) -> list[tuple[str, str, str, str]]:
        """(figure, this period, the period before, change) for the compact view."""
        s, m, p = doc["sales"], doc["members"], doc["points"]
        ps, pm, pp = prev["sales"], prev["members"], prev["points"]
        return [
            ("net sales", money_text(s["net"]), money_text(ps["net"]), change(s["net"], ps["net"])),
            ("sales", number(s["count"]), number(ps["count"]), change(s["count"], ps["count"])),
            ("average order", money_text(s["average_order_value"]) or "–", money_text(ps["average_order_value"]) or "–",
             change(s["average_order_value"], ps["average_order_value"])),
            ("active members", number(m["active"]), number(pm["active"]), change(m["active"], pm["active"])),
            ("new members", number(m["new"]), number(pm["new"]), change(m["new"], pm["new"])),
            ("points issued", number(p["issued"]), number(pp["issued"]), change(p["issued"], pp["issued"])),
        ]

    # -- the default: one 80x24 screen -----------------------------------------------------
    def compact_lines(self, width: int) -> list[list[tuple[str, str]]]:
        """The compact dashboard as lines of (text, style) pieces, at most `width` cells each.

        What an owner looks at first: this period against the one before, what is owed in
        points, tiers and segments side by side, and the 12 months as one line per series.
        """
        doc, p = self.doc, self.doc["points"]
        days = doc["period_days"]
        heading = f"Last {days:,} days against the {days:,} before" if days > 1 else "This day against the day before"
        fig_w = max(len(heading) - 2, *(len(row[0]) for row in self.comparison))
        now_w = max(len("this period"), *(len(row[1]) for row in self.comparison))
        before_w = max(len("before"), *(len(row[2]) for row in self.comparison))
        lines: list[list[tuple[str, str]]] = [[(f"{heading:{fig_w + 2}}", "bold"),
                                               (f"  {'this period':>{now_w}}  {'before':>{before_w}}  {'change':>7}", "dim")]]
        for figure, now, before, delta in self.comparison:
            style = "green" if delta.startswith("+") else "red" if delta.startswith("-") else "dim"
            lines.append([(f"  {figure:{fig_w}}  ", ""), (f"{now:>{now_w}}", "bold cyan"), (f"  {before:>{before_w}}  ", ""),
                          (f"{delta:>7}", style)])
        lines.append([])
        figures = (number(doc["members"]["total"]), number(p["outstanding"]), money_text(doc["liability"]))
        words = (" members · ", " points outstanding · liability ")
        if len(self.now_title) + 2 + sum(map(len, figures + words)) > width:  # large figures: shorter words
            words = (" members · ", " points owed · value ")
        lines.append([(f"{self.now_title}: ", "bold"), (figures[0], "bold cyan"), (words[0], ""),
                      (figures[1], "bold cyan"), (words[1], ""), (figures[2], "bold cyan")])
        lines.append([(f"  redemption rate {pct(doc['redemption_rate'])} · repeat rate {pct(doc['repeat_rate'])} · "
                       f"retention {pct(doc['retention'])} · NPS {nps_text(doc['nps'])}", "")])
        lines.append([])
        half = width // 2
        left = self._compact_distribution("Tiers held", self.tiers, half - 1, "yellow")
        right = self._compact_distribution("RFM segments (365 days)", self.segments, width - half - 1, "green")
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else []
            b = right[i] if i < len(right) else []
            pad = half + 1 - sum(len(t) for t, _ in a)
            lines.append(a + [(" " * pad, "")] + b)
        months = [row[0] for row in self.monthly]
        lines.append([(f"Last 12 months ({months[0]} to {months[-1]})", "bold")])
        best_sales = max(self.monthly, key=lambda row: row[2])
        best_points = max(self.monthly, key=lambda row: row[3])
        notes = [f"  top {best_sales[1]} ({best_sales[0]})" if best_sales[2] > 0 else "  no sales in the 12 months",
                 f"  top {number(best_points[3])} ({best_points[0]})" if best_points[3] > 0 else "  none issued"]
        cells = max(1, min(4, (width - 17 - max(map(len, notes))) // 12))
        lines.append([("  net sales     ", ""), (spark([row[2] for row in self.monthly], cells), "blue"), (notes[0], "dim")])
        lines.append([("  points issued ", ""), (spark([row[3] for row in self.monthly], cells), "magenta"),
                      (notes[1], "dim")])
        return [[(text, style) for text, style in line if text] for line in lines]

    def _compact_distribution(self, title: str, items: list[tuple[str, int]], width: int, style: str):
        total = sum(n for _, n in items)
        top = max((n for _, n in items), default=0)
        name_w = max((len(k) for k, _ in items), default=0)
        num_w = max((len(number(n)) for _, n in items), default=1)
        bar_w = max(1, width - 2 - name_w - 1 - num_w - 1 - 6 - 1)
        out = [[(title, "bold")]]
        for name, n in items:
            out.append([(f"  {name:{name_w}} {number(n):>{num_w}} {pct(n / total if total else None):>6} ", ""),
                        (bar(n, top, bar_w), style)])
        return out

    def compact_plain(self, width: int = 80) -> str:
        lines = [self.title, *("".join(text for text, _ in line) for line in self.compact_lines(width)),
                 "(loyalty dashboard --full: every figure, the monthly table and the top members)"]
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def compact_rich(self, width: int = 80):
        from rich.panel import Panel
        from rich.text import Text

        body = Text("\n").join(Text.assemble(*line) if line else Text("") for line in self.compact_lines(width - 4))
        body.no_wrap = True
        body.overflow = "crop"
        return Panel(body, title=f"[bold]{self.title}[/bold]", title_align="left", border_style="bright_blue",
                     subtitle="[dim]--full: every figure and the top members[/dim]", subtitle_align="right",
                     padding=(0, 1))

    # -- plain text (piped) --------------------------------------------------------------
    def plain(self, width: int = 80) -> str:
        lines = [self.title, ""]
        blocks = [(self.period_title, self.period_kpis), (self.now_title, self.now_kpis)]
        pairs = _plain_pairs(blocks, 3)
        if max(map(len, pairs)) > width:  # large figures: two to a line
            pairs = _plain_pairs(blocks, 2)
        lines += pairs
        lines += self._plain_distribution("Tiers (members by the tier they hold)", self.tiers, width) + [""]
        lines += self._plain_distribution("Segments (RFM, 365 days)", self.segments, width) + [""]
        lines += self._plain_monthly(width) + [""]
        lines.append("Top 10 members by net spend (365 days)")
        if self.top:
            from loyalty_cli.render import Column, cells_of, fit_columns, plain_overhead, plain_table

            specs = [Column("rank", "#", "number"), Column("member_id", "member", "id"), Column("name", "name", "text"),
                     Column("email", "email", "text"), Column("phone", "phone", "phone"),
                     Column("net_spend", "net spend", "money")]
            cells = [list(row) for row in self.top]
            kept, widths, _ = fit_columns(specs, cells, width, plain_overhead, cells_of)
            lines.append(plain_table(specs, cells, kept, widths).rstrip("\n"))
        else:
            lines.append("  no sales in the 365 days")
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def _plain_distribution(self, title: str, items: list[tuple[str, int]], width: int) -> list[str]:
        total = sum(n for _, n in items)
        top = max((n for _, n in items), default=0)
        name_w = max((len(k) for k, _ in items), default=0)
        num_w = max((len(number(n)) for _, n in items), default=1)
        bar_w = max(10, min(40, width - name_w - num_w - 14))
        out = [title]
        for name, n in items:
            out.append(f"  {name.ljust(name_w)}  {number(n).rjust(num_w)}  {pct(n / total if total else None).rjust(6)}  "
                       f"{bar(n, top, bar_w)}")
        return out

    def _plain_monthly(self, width: int) -> list[str]:
        sales_w = max(len("net sales"), *(len(v) for _, v, _, _ in self.monthly))
        points_w = max(len("points issued"), *(len(number(v)) for _, _, _, v in self.monthly))
        bar_w = max(8, (width - 2 - 7 - sales_w - points_w - 8) // 2)
        top_sales = max(v for _, _, v, _ in self.monthly)
        top_points = max(p for _, _, _, p in self.monthly)
        out = ["Last 12 months",
               f"  {'month':7}  {'net sales'.rjust(sales_w)} {''.ljust(bar_w)}  {'points issued'.rjust(points_w)}"]
        for month, net, net_value, points in self.monthly:
            out.append(f"  {month:7}  {net.rjust(sales_w)} {bar(net_value, top_sales, bar_w).ljust(bar_w)}  "
                       f"{number(points).rjust(points_w)} {bar(points, top_points, bar_w)}")
        return out

    # -- rich (terminal) ------------------------------------------------------------------
    def rich(self, width: int = 110):
        from rich import box
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        def tiles(pairs, per_row):
            grid = Table.grid(expand=True, padding=(0, 2))
            for _ in range(per_row):
                grid.add_column(ratio=1, no_wrap=True)
            for i in range(0, len(pairs), per_row):
                chunk = pairs[i:i + per_row]
                chunk += [("", "")] * (per_row - len(chunk))
                grid.add_row(*(Text(v, style="bold cyan") for _, v in chunk))
                grid.add_row(*(Text(label, style="dim") for label, _ in chunk))
                if i + per_row < len(pairs):
                    grid.add_row(*([""] * per_row))
            return grid

        per_row = max(2, min(5, (width - 8) // 20))  # KPI tiles across: 5 on a wide terminal
        rows = max(len(self.tiers), len(self.segments))  # both panels the same height

        def distribution(items, style, bar_width):
            total = sum(n for _, n in items)
            top = max((n for _, n in items), default=0)
            t = Table.grid(padding=(0, 1))
            t.add_column(no_wrap=True)
            t.add_column(justify="right")
            t.add_column(justify="right", style="dim")
            t.add_column(no_wrap=True)
            for name, n in items:
                t.add_row(name, number(n), pct(n / total if total else None), Text(bar(n, top, bar_width), style=style))
            for _ in range(rows - len(items)):
                t.add_row("", "", "", "")
            return t

        half = max(10, (width - 8) // 2 - 24)
        dist_row = Table.grid(expand=True, padding=(0, 1))
        dist_row.add_column(ratio=1)
        dist_row.add_column(ratio=1)
        dist_row.add_row(
            Panel(distribution(self.tiers, "yellow", half), title="Tiers held", title_align="left", border_style="cyan"),
            Panel(distribution(self.segments, "green", half), title="RFM segments (365 days)", title_align="left",
                  border_style="cyan"))

        top_sales = max(v for _, _, v, _ in self.monthly)
        top_points = max(p for _, _, _, p in self.monthly)
        sales_w = max(len("net sales"), *(len(v) for _, v, _, _ in self.monthly))
        points_w = max(len("points issued"), *(len(number(v)) for _, _, _, v in self.monthly))
        bar_w = max(8, (width - 8 - 7 - sales_w - points_w - 14) // 2)
        chart = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
        chart.add_column("month", no_wrap=True)
        chart.add_column("net sales", justify="right", no_wrap=True)
        chart.add_column("", no_wrap=True, width=bar_w, overflow="crop")
        chart.add_column("points issued", justify="right", no_wrap=True)
        chart.add_column("", no_wrap=True, width=bar_w, overflow="crop")
        for month, net, net_value, points in self.monthly:
            chart.add_row(month, net, Text(bar(net_value, top_sales, bar_w), style="blue"),
                          number(points), Text(bar(points, top_points, bar_w), style="magenta"))

        wide = width >= 100  # the phone column only where there is room for it
        top = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False)
        for label, justify in (("#", "right"), ("member", "left"), ("name", "left"), ("email", "left"),
                               ("phone", "left"), ("net spend", "right")):
            if label != "phone" or wide:
                top.add_column(label, justify=justify, no_wrap=True, overflow="ellipsis")
        for row in self.top:
            top.add_row(*(row if wide else row[:4] + row[5:]))
        if not self.top:
            top.add_row("", "no sales in the 365 days", *[""] * (4 if wide else 3))

        return Panel(
            Group(Panel(tiles(self.period_kpis, per_row), title=self.period_title, title_align="left", border_style="cyan"),
                  Panel(tiles(self.now_kpis, per_row), title=self.now_title, title_align="left", border_style="cyan"),
                  dist_row,
                  Panel(chart, title="Last 12 months", title_align="left", border_style="cyan"),
                  Panel(top, title="Top 10 members by net spend (365 days)", title_align="left", border_style="cyan")),
            title=f"[bold]{self.title}[/bold]", border_style="bright_blue", padding=(0, 1))


def _plain_pairs(blocks: list[tuple[str, list[tuple[str, str]]]], per_line: int) -> list[str]:
    """Titled blocks of `label value` pairs, `per_line` to a line, columns aligned across all blocks."""
    rows = [(title, [pairs[i:i + per_line] for i in range(0, len(pairs), per_line)]) for title, pairs in blocks]
    label_w = [0] * per_line
    value_w = [0] * per_line
    for _, lines in rows:
        for line in lines:
            for col, (label, value) in enumerate(line):
                label_w[col] = max(label_w[col], len(label))
                value_w[col] = max(value_w[col], len(value))
    out = []
    for title, lines in rows:
        out.append(title)
        for line in lines:
            out.append("  " + "  ".join(f"{label.ljust(label_w[c])}  {value.rjust(value_w[c])}"
                                        for c, (label, value) in enumerate(line)))
        out.append("")
    return out


# -- feedback ---------------------------------------------------------------------------
@feedback_app.command("add")
def feedback_add(
    member_id: str = typer.Argument(..., help="Member id."),
    score: str = typer.Argument(..., help="0-10: how likely they are to recommend the shop."),
    comment: str = typer.Option(None, "--comment", help="What they said (erased with the member's personal data)."),
    at: str = typer.Option(None, "--at", help="When, YYYY-MM-DD[THH:MM[:SS]] (default: now)."),
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
        raise UsageError(f"SCORE must be a whole number from 0 to 10, got {text or repr(score)}")
    value = int(text)
    when = at_option(at)
    from loyalty_cli.cli.common import as_stored

    refuse_future(when, allow_future, "--at", lambda: f"record {as_stored(member_id)}'s score dated then")
    r = call(feedback.add, member_id, value, when, comment)
    out(lists=False).done(f"recorded score {r['score']} from {r['member_id']} ({r['at']})", r)
