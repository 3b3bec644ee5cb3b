"""The dashboard drawn: rich panels on a terminal, plain aligned text when piped.

Both are built from the same formatted strings (DashboardView), so the text shows
exactly the figures of `--json`; bars and sparklines are block characters. Rich is
imported only when the terminal view is drawn, to keep start-up fast.
"""

from __future__ import annotations

import sys

from loyalty_cli import values
from loyalty_cli.render import (Column, _cut, cells_of, fit_columns, money_text, number, pct, plain_overhead,
                                plain_table, plain_width, plural)
from loyalty_cli.i18n import _


def lj(text: str, width: int) -> str:
    """`text` padded on the right to `width` terminal cells (a Chinese character takes two)."""
    return text + " " * (width - cells_of(text))


def rj(text: str, width: int) -> str:
    """`text` padded on the left to `width` terminal cells."""
    return " " * (width - cells_of(text)) + text


def draw(o, doc: dict, previous: dict, full: bool) -> None:
    """The dashboard of `doc` (its --json shape) against the period before (`previous`), on `o`'s
    terminal (rich) or piped (plain text); `full` for every figure and the top members, else one screen."""
    view = DashboardView(doc, previous)
    if o.rich:
        console = o.console()
        console.print(view.rich(console.width) if full else view.compact_rich(console.width))
    else:
        sys.stdout.write(view.plain(plain_width()) if full else view.compact_plain(plain_width()))


def nps_text(nps: float | None) -> str:
    """The NPS with its sign and at most one decimal ("+40", "-12.5", "0"); "–" when nobody scored."""
    if nps is None:
        return "–"
    text = f"{nps:.1f}".rstrip("0").rstrip(".")
    return text if text.startswith("-") or text == "0" else "+" + text


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


COMPACT_TIERS = 6  # the tiers block stands beside the six RFM segments: no taller than they are


COMPACT_BRANCHES = 6  # the branches block stands in for the six RFM segments: no taller than they are


def compact_branches(branches: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """The branches for the one-screen view: all of them when they fit, else the five with the most
    net sales and one line naming how many more (--full and --json list every one)."""
    if len(branches) <= COMPACT_BRANCHES:
        return branches
    rest = len(branches) - (COMPACT_BRANCHES - 1)
    return branches[:COMPACT_BRANCHES - 1] + [(_("+{rest} more").format(rest=rest), "", "", "")]


def branch_lines(branches: list[tuple[str, str, str, str]], title: str, width: int) -> list[list[tuple[str, str]]]:
    """The branches (name, net sales, sales, buyers) as lines of (text, style) pieces, at most `width`
    cells, under a title naming the columns: figures are never cut, names shrink with "…", and when
    the figures alone are too wide, buyers then sales go (--full and --json have them)."""
    labels = (_("net sales"), _("sales"), _("buyers"))
    for shown in (3, 2, 1):
        widths = [max(cells_of(labels[i]), *(len(row[1 + i]) for row in branches)) for i in range(shown)]
        figures = sum(w + 2 for w in widths)
        name_w = width - 2 - figures
        if name_w >= 10 or shown == 1:
            break
    name_w = max(1, min(name_w, max(max(cells_of(row[0]) for row in branches), cells_of(title) - 2)))
    head = "  ".join(rj(labels[i], widths[i]) for i in range(shown))
    title_text = _cut(title, 2 + name_w)
    lines = [[(title_text + " " * (2 + name_w - cells_of(title_text)), "bold"), ("  " + head, "dim")]]
    for row in branches:
        name = _cut(row[0], name_w)
        figures_text = "  ".join(f"{row[1 + i]:>{widths[i]}}" for i in range(shown))
        lines.append([(f"  {name}{' ' * (name_w - cells_of(name))}  ", ""), (figures_text, "bold cyan")])
    return lines


def compact_tiers(tiers: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The tiers for the one-screen view: all of them when they fit beside the segments, else the
    five holding the most members (in level order) and one line adding up the rest, so a
    programme of nine levels still fits 80×24 (`--full` and `tiers list` show every level)."""
    if len(tiers) <= COMPACT_TIERS:
        return tiers
    biggest = sorted(range(len(tiers)), key=lambda i: (-tiers[i][1], i))[:COMPACT_TIERS - 1]
    shown = [tiers[i] for i in sorted(biggest)]
    rest = [tiers[i][1] for i in range(len(tiers)) if i not in biggest]
    return shown + [(_("+{rest} more").format(rest=len(rest)), sum(rest))]


class DashboardView:
    """The dashboard as text: every figure formatted once, then laid out for rich or for plain text."""

    def __init__(self, doc: dict, previous: dict | None = None):
        self.doc = doc
        m, s, p = doc["members"], doc["sales"], doc["points"]
        start = values.add_days(doc["as_of"], 1 - doc["period_days"])
        store = doc.get("store")
        self.title = _("Loyalty dashboard · as of {as_of}").format(as_of=doc['as_of']) + (f" · {store}" if store else "")
        self.period_title = _("Last {days} ({start} to {as_of})").format(days=plural(doc['period_days'], 'day'),
                                                                       start=start, as_of=doc['as_of'])
        self.now_title = _("On {as_of}").format(as_of=doc['as_of'])
        self.period_kpis = [
            (_("net sales"), money_text(s["net"])), (_("sales"), number(s["count"])),
            (_("average order"), money_text(s["average_order_value"]) or "–"),
            (_("active members"), number(m["active"])), (_("new members"), number(m["new"])),
            (_("repeat rate"), pct(doc["repeat_rate"])), (_("retention"), pct(doc["retention"])),
            (_("points issued"), number(p["issued"])), (_("points redeemed"), number(p["redeemed"])),
            (_("points expired"), number(p["expired"])),
        ]
        self.now_kpis = [
            (_("members"), number(m["total"])), (_("points outstanding"), number(p["outstanding"])),
            (_("liability"), money_text(doc["liability"])),
            (_("redemption rate"), pct(doc["redemption_rate"])), (_("NPS (365 days)"), nps_text(doc["nps"])),
        ]
        self.tiers = list(doc["tiers"].items())
        self.segments = [(_(name), n) for name, n in doc["segments"].items()]  # the names shown in the language
        # (month, net sales as text, net sales as a number for the bars, points issued)
        self.monthly = [(row["month"], money_text(row["net_sales"]), float(row["net_sales"]), row["points_issued"])
                        for row in doc["monthly"]]
        self.top = [(str(i), t["member_id"], t["name"] or _("(erased)"), t["email"] or "", t["phone"] or "",
                     money_text(t["net_spend"])) for i, t in enumerate(doc["top_members"], 1)]
        self.comparison = self._comparison(doc, previous) if previous else []
        # (branch, net sales, sales, buyers) of the period, most net sales first: shown when the
        # period's purchases were rung up at more than one branch (and no --store chose one).
        stores = doc.get("stores") or []
        self.branches = [(b["store"], money_text(b["net"]), number(b["sales"]), number(b["buyers"]))
                         for b in stores] if len(stores) > 1 and not store else []
        self.branch_title = _("By branch (last {days})").format(days=plural(doc['period_days'], 'day'))

    @staticmethod
    def _comparison(doc: dict, prev: dict) -> list[tuple[str, str, str, str]]:
        """(figure, this period, the period before, change) for the compact view."""
        s, m, p = doc["sales"], doc["members"], doc["points"]
        ps, pm, pp = prev["sales"], prev["members"], prev["points"]
        return [
            (_("net sales"), money_text(s["net"]), money_text(ps["net"]), change(s["net"], ps["net"])),
            (_("sales"), number(s["count"]), number(ps["count"]), change(s["count"], ps["count"])),
            (_("average order"), money_text(s["average_order_value"]) or "–", money_text(ps["average_order_value"]) or "–",
             change(s["average_order_value"], ps["average_order_value"])),
            (_("active members"), number(m["active"]), number(pm["active"]), change(m["active"], pm["active"])),
            (_("new members"), number(m["new"]), number(pm["new"]), change(m["new"], pm["new"])),
            (_("points issued"), number(p["issued"]), number(pp["issued"]), change(p["issued"], pp["issued"])),
        ]

    # -- the default: one 80x24 screen -----------------------------------------------------
    def compact_lines(self, width: int) -> list[list[tuple[str, str]]]:
        """The compact dashboard as lines of (text, style) pieces, at most `width` cells each.

        What an owner looks at first: this period against the one before, what is owed in
        points, tiers and segments side by side, and the 12 months as one line per series.
        """
        doc, p = self.doc, self.doc["points"]
        days = doc["period_days"]
        heading = _("Last {days:,} days against the {days:,} before").format(days=days) if days > 1 else _("This day against the day before")
        fig_w = max(cells_of(heading) - 2, *(cells_of(row[0]) for row in self.comparison))
        now_w = max(cells_of(_("this period")), *(len(row[1]) for row in self.comparison))
        before_w = max(cells_of(_("before")), *(len(row[2]) for row in self.comparison))
        # Figures are never cut: when they are too large for the width, the period before goes
        # (--full and --json have it).
        with_before = fig_w + 4 + now_w + 2 + before_w + 2 + 7 <= width
        head = f"  {rj(_('this period'), now_w)}" + (f"  {rj(_('before'), before_w)}" if with_before else "") + f"  {rj(_('change'), 7)}"
        lines: list[list[tuple[str, str]]] = [[(lj(heading, fig_w + 2), "bold"), (head, "dim")]]
        for figure, now, before, delta in self.comparison:
            style = "green" if delta.startswith("+") else "red" if delta.startswith("-") else "dim"
            lines.append([(f"  {lj(figure, fig_w)}  ", ""), (f"{now:>{now_w}}", "bold cyan"),
                          (f"  {before:>{before_w}}  " if with_before else "  ", ""), (f"{delta:>7}", style)])
        lines.append([])
        figures = (number(doc["members"]["total"]), number(p["outstanding"]), money_text(doc["liability"]))
        words = (_(" members · "), _(" points outstanding · liability "))
        if cells_of(self.now_title) + 2 + sum(map(cells_of, figures + words)) > width:  # large figures: shorter words
            words = (_(" members · "), _(" points owed · value "))
        if cells_of(self.now_title) + 2 + sum(map(cells_of, figures + words)) > width:  # still too wide: two lines
            lines.append([(f"{self.now_title}: ", "bold"), (figures[0], "bold cyan"), (words[0].rstrip(" ·"), "")])
            lines.append([("  ", ""), (figures[1], "bold cyan"), (words[1], ""), (figures[2], "bold cyan")])
        else:
            lines.append([(f"{self.now_title}: ", "bold"), (figures[0], "bold cyan"), (words[0], ""),
                          (figures[1], "bold cyan"), (words[1], ""), (figures[2], "bold cyan")])
        lines.append([(_("  redemption rate {pct} · repeat rate {pct2} · retention {pct3} · NPS {nps_text}").format(pct=pct(doc['redemption_rate']), pct2=pct(doc['repeat_rate']), pct3=pct(doc['retention']), nps_text=nps_text(doc['nps'])), "")])
        lines.append([])
        half = width // 2
        left = self._compact_distribution(_("Tiers held"), compact_tiers(self.tiers), half - 1, "yellow")
        if self.branches:  # a shop with branches reads them here; the segments are in --full
            right = branch_lines(compact_branches(self.branches), _("By branch"), width - half - 1)
        else:
            right = self._compact_distribution(_("RFM segments (365 days)"), self.segments, width - half - 1, "green")
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else []
            b = right[i] if i < len(right) else []
            pad = half + 1 - sum(cells_of(t) for t, __ in a)
            lines.append(a + [(" " * pad, "")] + b)
        months = [row[0] for row in self.monthly]
        lines.append([(_("Last 12 months ({months_0} to {months})").format(months_0=months[0], months=months[-1]), "bold")])
        best_sales = max(self.monthly, key=lambda row: row[2])
        best_points = max(self.monthly, key=lambda row: row[3])
        notes = ["  " + _("top {figure} ({month})").format(figure=best_sales[1], month=best_sales[0])
                 if best_sales[2] > 0 else "  " + _("no sales in the 12 months"),
                 "  " + _("top {figure} ({month})").format(figure=number(best_points[3]), month=best_points[0])
                 if best_points[3] > 0 else "  " + _("none issued")]
        series = (_("net sales"), _("points issued"))
        label_w = max(map(cells_of, series))
        cells = max(1, min(4, (width - label_w - 3 - max(map(cells_of, notes))) // 12))
        lines.append([(f"  {lj(series[0], label_w)} ", ""), (spark([row[2] for row in self.monthly], cells), "blue"), (notes[0], "dim")])
        lines.append([(f"  {lj(series[1], label_w)} ", ""), (spark([row[3] for row in self.monthly], cells), "magenta"),
                      (notes[1], "dim")])
        return [[(text, style) for text, style in line if text] for line in lines]

    def _compact_distribution(self, title: str, items: list[tuple[str, int]], width: int, style: str):
        total = sum(n for __, n in items)
        top = max((n for __, n in items), default=0)
        name_w = max((cells_of(k) for k, __ in items), default=0)
        num_w = max((len(number(n)) for __, n in items), default=1)
        bar_w = max(1, width - 2 - name_w - 1 - num_w - 1 - 6 - 1)
        out = [[(title, "bold")]]
        for name, n in items:
            out.append([(f"  {lj(name, name_w)} {number(n):>{num_w}} {pct(n / total if total else None):>6} ", ""),
                        (bar(n, top, bar_w), style)])
        return out

    def compact_plain(self, width: int = 80) -> str:
        lines = [self.title, *("".join(text for text, __ in line) for line in self.compact_lines(width)),
                 _("(loyalty dashboard --full: every figure, the monthly table and the top members)")]
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def compact_rich(self, width: int = 80):
        from rich.panel import Panel
        from rich.text import Text

        body = Text("\n").join(Text.assemble(*line) if line else Text("") for line in self.compact_lines(width - 4))
        body.no_wrap = True
        body.overflow = "crop"
        return Panel(body, title=f"[bold]{self.title}[/bold]", title_align="left", border_style="bright_blue",
                     subtitle=_("[dim]--full: every figure and the top members[/dim]"), subtitle_align="right",
                     padding=(0, 1))

    # -- plain text (piped) --------------------------------------------------------------
    def plain(self, width: int = 80) -> str:
        lines = [self.title, ""]
        blocks = [(self.period_title, self.period_kpis), (self.now_title, self.now_kpis)]
        pairs = _plain_pairs(blocks, 3)
        if max(map(cells_of, pairs)) > width:  # large figures: two to a line
            pairs = _plain_pairs(blocks, 2)
        lines += pairs
        lines += self._plain_distribution(_("Tiers (members by the tier they hold)"), self.tiers, width) + [""]
        lines += self._plain_distribution(_("Segments (RFM, 365 days)"), self.segments, width) + [""]
        if self.branches:
            lines += ["".join(text for text, __ in line) for line in branch_lines(self.branches, self.branch_title,
                                                                               width)] + [""]
        lines += self._plain_monthly(width) + [""]
        lines.append(_("Top 10 members by net spend (365 days)"))
        if self.top:
            specs = [Column("rank", "#", "number"), Column("member_id", _("member"), "id"), Column("name", _("name"), "text"),
                     Column("email", _("email"), "text"), Column("phone", _("phone"), "phone"),
                     Column("net_spend", _("net spend"), "money")]
            cells = [list(row) for row in self.top]
            kept, widths, __ = fit_columns(specs, cells, width, plain_overhead, cells_of)
            lines.append(plain_table(specs, cells, kept, widths).rstrip("\n"))
        else:
            lines.append(_("  no sales in the 365 days"))
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def _plain_distribution(self, title: str, items: list[tuple[str, int]], width: int) -> list[str]:
        total = sum(n for __, n in items)
        top = max((n for __, n in items), default=0)
        name_w = max((cells_of(k) for k, __ in items), default=0)
        num_w = max((len(number(n)) for __, n in items), default=1)
        bar_w = max(10, min(40, width - name_w - num_w - 14))
        out = [title]
        for name, n in items:
            out.append(f"  {lj(name, name_w)}  {number(n).rjust(num_w)}  {pct(n / total if total else None).rjust(6)}  "
                       f"{bar(n, top, bar_w)}")
        return out

    def _plain_monthly(self, width: int) -> list[str]:
        sales_w = max(cells_of(_("net sales")), *(len(v) for __, v, __, __ in self.monthly))
        points_w = max(cells_of(_("points issued")), *(len(number(v)) for __, __, __, v in self.monthly))
        bar_w = max(8, (width - 2 - 7 - sales_w - points_w - 8) // 2)
        top_sales = max(v for __, __, v, __ in self.monthly)
        top_points = max(p for __, __, __, p in self.monthly)
        out = [_("Last 12 months"),
               f"  {lj(_('month'), 7)}  {rj(_('net sales'), sales_w)} {''.ljust(bar_w)}  {rj(_('points issued'), points_w)}"]
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
            for __ in range(per_row):
                grid.add_column(ratio=1, no_wrap=True)
            for i in range(0, len(pairs), per_row):
                chunk = pairs[i:i + per_row]
                chunk += [("", "")] * (per_row - len(chunk))
                grid.add_row(*(Text(v, style="bold cyan") for __, v in chunk))
                grid.add_row(*(Text(label, style="dim") for label, __ in chunk))
                if i + per_row < len(pairs):
                    grid.add_row(*([""] * per_row))
            return grid

        per_row = max(2, min(5, (width - 8) // 20))  # KPI tiles across: 5 on a wide terminal
        rows = max(len(self.tiers), len(self.segments))  # both panels the same height

        def distribution(items, style, bar_width):
            total = sum(n for __, n in items)
            top = max((n for __, n in items), default=0)
            t = Table.grid(padding=(0, 1))
            t.add_column(no_wrap=True)
            t.add_column(justify="right")
            t.add_column(justify="right", style="dim")
            t.add_column(no_wrap=True)
            for name, n in items:
                t.add_row(name, number(n), pct(n / total if total else None), Text(bar(n, top, bar_width), style=style))
            for __ in range(rows - len(items)):
                t.add_row("", "", "", "")
            return t

        half = max(10, (width - 8) // 2 - 24)
        dist_row = Table.grid(expand=True, padding=(0, 1))
        dist_row.add_column(ratio=1)
        dist_row.add_column(ratio=1)
        dist_row.add_row(
            Panel(distribution(self.tiers, "yellow", half), title=_("Tiers held"), title_align="left", border_style="cyan"),
            Panel(distribution(self.segments, "green", half), title=_("RFM segments (365 days)"), title_align="left",
                  border_style="cyan"))

        top_sales = max(v for __, __, v, __ in self.monthly)
        top_points = max(p for __, __, __, p in self.monthly)
        sales_w = max(cells_of(_("net sales")), *(len(v) for __, v, __, __ in self.monthly))
        points_w = max(cells_of(_("points issued")), *(len(number(v)) for __, __, __, v in self.monthly))
        bar_w = max(8, (width - 8 - 7 - sales_w - points_w - 14) // 2)
        chart = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
        chart.add_column(_("month"), no_wrap=True)
        chart.add_column(_("net sales"), justify="right", no_wrap=True)
        chart.add_column("", no_wrap=True, width=bar_w, overflow="crop")
        chart.add_column(_("points issued"), justify="right", no_wrap=True)
        chart.add_column("", no_wrap=True, width=bar_w, overflow="crop")
        for month, net, net_value, points in self.monthly:
            chart.add_row(month, net, Text(bar(net_value, top_sales, bar_w), style="blue"),
                          number(points), Text(bar(points, top_points, bar_w), style="magenta"))

        wide = width >= 100  # the phone column only where there is room for it
        top = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False)
        for label, justify in (("#", "right"), ("member", "left"), ("name", "left"), ("email", "left"),
                               ("phone", "left"), ("net spend", "right")):
            if label != "phone" or wide:
                top.add_column(_(label), justify=justify, no_wrap=True, overflow="ellipsis")
        for row in self.top:
            top.add_row(*(row if wide else row[:4] + row[5:]))
        if not self.top:
            top.add_row("", _("no sales in the 365 days"), *[""] * (4 if wide else 3))

        branches = []
        if self.branches:
            body = Text("\n").join(Text.assemble(*line) for line in branch_lines(self.branches, "", width - 8))
            body.no_wrap = True
            branches = [Panel(body, title=self.branch_title, title_align="left", border_style="cyan")]
        return Panel(
            Group(Panel(tiles(self.period_kpis, per_row), title=self.period_title, title_align="left", border_style="cyan"),
                  Panel(tiles(self.now_kpis, per_row), title=self.now_title, title_align="left", border_style="cyan"),
                  dist_row, *branches,
                  Panel(chart, title=_("Last 12 months"), title_align="left", border_style="cyan"),
                  Panel(top, title=_("Top 10 members by net spend (365 days)"), title_align="left", border_style="cyan")),
            title=f"[bold]{self.title}[/bold]", border_style="bright_blue", padding=(0, 1))


def _plain_pairs(blocks: list[tuple[str, list[tuple[str, str]]]], per_line: int) -> list[str]:
    """Titled blocks of `label value` pairs, `per_line` to a line, columns aligned across all blocks."""
    rows = [(title, [pairs[i:i + per_line] for i in range(0, len(pairs), per_line)]) for title, pairs in blocks]
    label_w = [0] * per_line
    value_w = [0] * per_line
    for __, lines in rows:
        for line in lines:
            for col, (label, value) in enumerate(line):
                label_w[col] = max(label_w[col], cells_of(label))
                value_w[col] = max(value_w[col], len(value))
    out = []
    for title, lines in rows:
        out.append(title)
        for line in lines:
            out.append("  " + "  ".join(f"{lj(label, label_w[c])}  {value.rjust(value_w[c])}"
                                        for c, (label, value) in enumerate(line)))
        out.append("")
    return out
