"""One place for output: rich on a terminal, plain text when piped, JSON, CSV.

Commands hand plain data here; nothing else in the tool prints data. Rich is
imported only when a table is drawn on a terminal, to keep start-up fast; plain
tables are laid out here (a hundred thousand rows in seconds, not tabulate's tens).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from dataclasses import dataclass

from loyalty_cli.values import Amount
from loyalty_cli.i18n import N_, Msg, _, display, language

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# What json.dumps(ensure_ascii=False) escapes in a string: quote, backslash, control characters.
NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def plural(n: int, word: str, many: str | None = None, grouped: bool = True) -> str:
    """A count with its noun in the right number: `1 row`, `2 rows`, `1 entry`, `3 entries`;
    thousands separated for a person (`1,234 points`) unless `grouped` is False."""
    number = f"{n:,}" if grouped else f"{n}"
    from loyalty_cli.i18n import language

    if language() != "en":  # no plural forms in Chinese: the word as translated, whatever the count
        return _("{number} {word}").format(number=number, word=_(word))
    return f"{number} {word if n == 1 else (many or word + 's')}"


def safe_cell(value):
    """Neutralise spreadsheet formulas in text cells; numbers stay numbers (SPEC §9), money we
    write as text included (an Amount, "-100.00"); other text starting with + or - (an id "-42",
    a phone "+44…") keeps its quote, so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not isinstance(value, Amount):
        return "'" + value
    return value


def plain_wanted() -> bool:
    """NO_COLOR or TERM=dumb: no colour and no box drawing either (CLI-CHECKLIST)."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def use_color(stream) -> bool:
    if plain_wanted():
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty()


@dataclass
class Output:
    """The output mode of one invocation (`--json`, `--csv`, `-q`)."""

    json: bool = False
    csv: bool = False
    quiet: bool = False

    @property
    def rich(self) -> bool:
        return not (self.json or self.csv) and sys.stdout.isatty() and not plain_wanted()

    def console(self, stderr: bool = False):
        from rich.console import Console

        stream = sys.stderr if stderr else sys.stdout
        # Without colour, no escape codes at all: Rich's no_color alone still writes bold and italic.
        colour = use_color(stream)
        console = Console(file=stream, no_color=not colour, color_system="auto" if colour else None, highlight=False,
                          soft_wrap=False)
        console.on_broken_pipe = _broken_pipe  # the CLI decides what a closed pipe means (rich exits 1)
        return console

    # -- documents ----------------------------------------------------------
    def json_doc(self, obj) -> None:
        """One JSON document: indented on a terminal, compact when piped (the C encoder, much faster)."""
        if sys.stdout.isatty():
            sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
        else:
            sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def text(self, doc, lines) -> None:
        """A document read as lines of prose (purchases explain, report experiment): `doc` as JSON,
        else `lines(doc)` unless -q."""
        if self.json:
            self.json_doc(doc)
        elif not self.quiet:
            sys.stdout.write("\n".join(lines(doc)) + "\n")

    def json_records(self, head: dict, key: str, fields: tuple[tuple[str, type], ...], columns: tuple,
                     convert: dict | None = None) -> None:
        """`head` plus `key`: a list of objects, written straight from columns (no dict per row).

        `fields` are (name, int or str) for the first of `columns` (any more are left out); no
        value may be null. `convert` maps a column's position to a function from the whole
        column to a new one (money to text, say). The same JSON `json_doc` writes when piped, at
        a fraction of the cost for a hundred thousand rows: each column is converted and escaped
        as a whole, then every row fills one template. On a terminal (indented) it is `json_doc`.
        """
        columns = list(columns[:len(fields)])
        for i, fn in (convert or {}).items():
            columns[i] = fn(columns[i])
        if sys.stdout.isatty():
            self.json_doc({**head, key: [dict(zip((f for f, __ in fields), row)) for row in zip(*columns)]})
            return
        from json.encoder import encode_basestring  # the C escaper json.dumps uses

        slots = []
        for i, (__, kind) in enumerate(fields):
            if kind is int:
                slots.append("%d")
            elif NEEDS_ESCAPE.search("".join(columns[i])):  # one scan of the column, not a call per value
                columns[i] = map(encode_basestring, columns[i])
                slots.append("%s")
            else:
                slots.append('"%s"')
        template = "{" + ",".join(f"{json.dumps(f)}:{slot}" for (f, __), slot in zip(fields, slots)) + "}"
        start = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
        sys.stdout.write(f'{start}{"," if head else ""}{json.dumps(key)}:[')
        sys.stdout.write(",".join(map(template.__mod__, zip(*columns))))
        sys.stdout.write("]}\n")

    def done(self, message: str, result) -> None:
        """A write command's result: JSON with --json, else one summary line (nothing with -q)."""
        if self.json:
            self.json_doc(result)
        elif not self.quiet:
            sys.stdout.write(message + "\n")

    def note(self, message: str) -> None:
        """A message for the person at the terminal (stderr), silenced by -q and --json."""
        if not self.quiet and not self.json:
            sys.stderr.write(message + "\n")

    # -- lists ----------------------------------------------------------------
    def table(self, rows: list[dict], columns: list[tuple[str, str]], *, title: str | None = None,
              json_obj=None, empty: str = N_("nothing to show")) -> None:
        """A list: JSON (`json_obj` or the rows), CSV, a rich table, or plain columns.

        On a terminal and in plain text the table fits the width (`fit_columns`): ids, dates,
        times, money and numbers are shown whole; names, emails and notes shrink with "…"; the
        least important columns are left out, with a note on stderr naming them. Numbers get
        thousands separators there, never in JSON or CSV.
        """
        if self.json:
            self.json_doc(rows if json_obj is None else json_obj)
            return
        if self.csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            # A column's CSV header is its key, or a third element naming it otherwise (email_masked)
            writer.writerow([column[2] if len(column) > 2 else column[0] for column in columns])
            for row in rows:
                writer.writerow([safe_cell(_plain(row.get(key))) for key, *__ in columns])
            return
        if self.quiet:
            return
        if not rows:
            sys.stderr.write(f"{_(empty)}\n")
            return
        specs = [Column(key, _(label), column_kind(key, rows)) for key, label, *__ in columns]
        cells = [[human(row.get(c.key), c.kind) for c in specs] for row in rows]
        words = [i for i, c in enumerate(specs) if c.key in WORD_KEYS]
        if words and language() != "en":  # the tool's own words in a cell (a segment, a kind) translated
            for row in cells:
                for i in words:
                    row[i] = _(row[i]) if row[i] else row[i]
        if self.rich:
            from rich.table import Table

            console = self.console()
            kept, widths, left_out = fit_columns(specs, cells, console.width, rich_overhead, cells_of)
            table = Table(title=title, title_justify="left", header_style="bold")
            for i in kept:
                c = specs[i]
                if c.whole:
                    table.add_column(c.label, justify=c.justify, no_wrap=True, min_width=widths[i])
                else:
                    table.add_column(c.label, justify=c.justify, no_wrap=True, overflow="ellipsis", max_width=widths[i])
            for row in cells:
                table.add_row(*(row[i] for i in kept))
            console.print(table)
        else:
            width = plain_width()
            kept, widths, left_out = fit_columns(specs, cells, width, plain_overhead, cells_of)
            if title:
                sys.stdout.write(title + "\n")
            sys.stdout.write(plain_table(specs, cells, kept, widths))
        if left_out:
            sys.stdout.flush()
            self.note(_("note: {join} left out to fit; --csv, --json or a wider terminal show them").format(join=', '.join((specs[i].label for i in left_out))))

    def record(self, pairs: list[tuple[str, object]], *, title: str, json_obj) -> None:
        """One thing (a member, a balance): a rich panel or aligned plain lines."""
        if self.json:
            self.json_doc(json_obj)
            return
        if self.quiet:
            return
        if self.rich:
            from rich.panel import Panel
            from rich.table import Table

            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for label, value in pairs:
                grid.add_row(label, human(value))
            self.console().print(Panel(grid, title=title, title_align="left", expand=False))
            return
        width = max((cells_of(label) for label, __ in pairs), default=0)
        sys.stdout.write(title + "\n")
        room = max(plain_width() - width - 4, 20)
        for label, value in pairs:
            text = human(value)
            if cells_of(text) > room:  # a long value (the expiry dates of members show) wraps under itself
                text = ("\n" + " " * (width + 4)).join(wrap_cells(text, room)) or text
            sys.stdout.write(f"  {label}{' ' * (width - cells_of(label))}  {text}\n")


def _broken_pipe() -> None:
    """A closed pipe under rich: raised on, for the CLI to end quietly with exit 0."""
    raise BrokenPipeError("the reader of the output has gone")


def _plain(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


# -- human output: thousands separators, columns that fit --------------------------------------
def number(value: int) -> str:
    """An integer for a person: 152,016 (never in JSON or CSV)."""
    return f"{value:,}"


def money_text(value) -> str:
    """Money text ("8301.69", an Amount) for a person: 8,301.69, after the programme's
    currency_symbol when it has one (¥8,301.69, -¥12.00); anything else as it is."""
    if value is None:
        return ""
    text = str(value)
    sign = "-" if text.startswith("-") else ""
    units, dot, fraction = text.lstrip("-").partition(".")
    if not units.isdigit():
        return text
    return f"{sign}{currency_symbol()}{int(units):,}{dot}{fraction}"


_currency: dict = {"symbol": "", "loader": None}


def currency_from(loader) -> None:
    """The programme's currency_symbol for this invocation comes from `loader()`, asked the first
    time money is shown to a person (JSON and CSV never show it, and never ask)."""
    _currency.update(symbol=None if loader else "", loader=loader)


def currency_symbol() -> str:
    if _currency["symbol"] is None:
        try:
            _currency["symbol"] = _currency["loader"]() or ""
        except Exception:  # no database to ask (the symbol is a nicety: money is shown without it)
            _currency["symbol"] = ""
    return _currency["symbol"]


def pct(share: float | None) -> str:
    """A share (0..1) as a percentage with one decimal; "–" when there is none (total ≤ 0)."""
    return "–" if share is None else f"{share * 100:.1f}%"


def human(value, kind: str = "") -> str:
    """One value as a person reads it: numbers and money grouped by thousands, ids as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if kind == "id":
        return str(value)
    if isinstance(value, int):
        return number(value)
    if isinstance(value, Amount):
        return money_text(value)
    if isinstance(value, Msg):  # a message kept English for --json: shown in the reader's language
        return display(value)
    return str(value)


class Column:
    """A table column: its key, header, and kind (which says whether it may shrink or be left out).
    A plain class, not a dataclass: building one at import costs start-up time on every command."""

    __slots__ = ("key", "label", "kind")

    def __init__(self, key: str, label: str, kind: str):
        self.key, self.label, self.kind = key, label, kind

    @property
    def whole(self) -> bool:
        """Ids, dates, times, money and numbers are never cut: a cut one would be a wrong one."""
        return self.kind != "text"

    @property
    def justify(self) -> str:
        return "right" if self.kind in ("money", "number") else "left"


# Columns whose values are the tool's own words (an RFM segment, an entry's kind, a voucher's
# status): shown translated; JSON and CSV keep them as they are.
WORD_KEYS = {"segment", "kind", "status", "rule", "check", "reason"}
SHOWN_WORDS = (  # the values of those columns, marked for the catalogue
    N_("champions"), N_("loyal"), N_("potential"), N_("at_risk"), N_("lost"), N_("regular"),
    N_("earn"), N_("bonus"), N_("reversal"), N_("expire"), N_("redeem"), N_("signup"), N_("referral"), N_("award"),
    N_("adjust"), N_("transfer_in"), N_("transfer_out"), N_("voucher_cancel"),
    N_("issued"), N_("used"), N_("cancelled"),
    N_("sales_per_day"), N_("small_burst"), N_("refund_ratio"), N_("award_redeem"), N_("refund_after_spend"),
    N_("purchase"), N_("recalc"), N_("manual"),
)
ID_KEYS = {"id", "code", "ref", "member", "voucher", "tier", "from", "to", "segment", "kind", "status", "rule", "month"}
DATE_KEYS = {"date", "until", "last_sale", "birthday", "joined", "expires"}
# Text columns left out first when a table does not fit (lower first); other columns go after
# every text one, right-most first; the first column always stays.
DROP_FIRST = {"phone": 10, "email": 20, "by": 30, "closed_at": 35, "retired": 35, "note": 40, "reason": 45, "name": 60}


def column_kind(key: str, rows: list[dict]) -> str:
    """id, phone, datetime, date, money, number or text, from the column's name and values."""
    if key in ID_KEYS or key.endswith("_id"):
        return "id"
    if key == "phone":
        return "phone"  # masked, only its last digits tell: shown whole or left out, never cut
    if key == "at" or key.endswith("_at"):
        return "datetime"
    if key in DATE_KEYS or key.endswith(("_on", "_date")):
        return "date"
    present = [r.get(key) for r in rows if r.get(key) is not None]
    if present and all(isinstance(v, Amount) for v in present):
        return "money"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "number"
    if present and all(isinstance(v, str) and NUMBER_TEXT.fullmatch(v) for v in present):
        return "number"  # a share ("26.6%", "–" for none) or a multiplier ("1.25")
    return "text"


NUMBER_TEXT = re.compile(r"–|[+-]?[0-9][0-9,]*(\.[0-9]+)?%?")


def rich_overhead(count: int) -> int:
    """A rich table's borders and padding: one rule between and around columns, a space each side."""
    return 3 * count + 1


def plain_overhead(count: int) -> int:
    """tabulate's "simple" format: two spaces between columns."""
    return 2 * max(count - 1, 0)


def plain_width() -> int:
    """The width plain text is laid out for: COLUMNS, else the terminal, else 80."""
    import shutil

    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def fit_columns(specs: list[Column], cells: list[list[str]], width: int, overhead, measure):
    """Which columns to show and how wide, so a table fits `width` cells.

    Whole columns (ids, dates, money, numbers) keep their longest value; text columns shrink
    down to min(longest, max(header, 12)); while even that does not fit, the least important
    column is left out (DROP_FIRST, then text, then right-most). Returns (kept indexes, widths by index,
    left-out indexes).
    """
    natural = [max([measure(c.label)] + [measure(row[i]) for row in cells]) for i, c in enumerate(specs)]
    floor = [n if c.whole else min(n, max(measure(c.label), 12)) for c, n in zip(specs, natural)]
    kept = list(range(len(specs)))
    left_out: list[int] = []

    def priority(i: int):
        c = specs[i]
        return (DROP_FIRST.get(c.key, 100 if c.whole else 50), -i)

    while len(kept) > 1 and overhead(len(kept)) + sum(floor[i] for i in kept) > width:
        victim = min(kept[1:], key=priority)
        kept.remove(victim)
        left_out.append(victim)
    widths = {i: natural[i] for i in kept}
    text = [i for i in kept if not specs[i].whole]
    room = width - overhead(len(kept)) - sum(natural[i] for i in kept if specs[i].whole)
    if text and sum(natural[i] for i in text) > room:
        for i in text:
            widths[i] = floor[i]
        spare = room - sum(floor[i] for i in text)
        while spare > 0:
            growing = [i for i in text if widths[i] < natural[i]]
            if not growing:
                break
            for i in growing[:spare]:
                widths[i] += 1
            spare -= min(len(growing), spare)
    return kept, widths, sorted(left_out)


def cells_of(text: str) -> int:
    """The terminal cells a text takes: its length when ASCII (fast), else as rich counts them."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def wrap_cells(text: str, room: int) -> list[str]:
    """`text` in lines of at most `room` terminal cells, broken at spaces (textwrap's lines when
    ASCII; a Chinese character takes two cells, and a run of them longer than a line is broken
    anywhere, as Chinese is)."""
    if text.isascii():
        import textwrap

        return textwrap.wrap(text, room, break_on_hyphens=False)
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cells_of(candidate) <= room:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:  # a word wider than the room, or the start of the next line
            if cells_of(line + ch) > room:
                lines.append(line)
                line = ""
            line += ch
    if line:
        lines.append(line)
    return lines


def _cut(text: str, width: int) -> str:
    """Text cut to `width` cells with "…" (only text columns are ever narrower than their values)."""
    if cells_of(text) <= width:
        return text
    if text.isascii():
        return text[:max(width - 1, 0)] + "…"
    from rich.cells import set_cell_size

    return set_cell_size(text, max(width - 1, 0)) + "…"


def plain_table(specs: list[Column], cells: list[list[str]], kept: list[int], widths: dict[int, int]) -> str:
    """Columns two spaces apart under a header and a dashed rule (the layout of tabulate's "simple"),
    each column `widths` cells wide; numbers and money right-aligned."""

    def line(values) -> str:
        parts = []
        for i, text in zip(kept, values):
            text = _cut(text, widths[i])
            pad = " " * (widths[i] - cells_of(text))
            parts.append(pad + text if specs[i].justify == "right" else text + pad)
        return "  ".join(parts).rstrip()

    out = [line([specs[i].label for i in kept]), "  ".join("-" * widths[i] for i in kept)]
    out.extend(line([row[i] for i in kept]) for row in cells)
    return "\n".join(out) + "\n"
