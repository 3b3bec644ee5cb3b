"""One place for output: rich on a terminal, plain text when piped, JSON, CSV.

Commands hand plain data here; nothing else in the tool prints data. Rich and
tabulate are imported only when a table is actually drawn, to keep start-up fast.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from dataclasses import dataclass

from loyalty_cli.values import Amount

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# What json.dumps(ensure_ascii=False) escapes in a string: quote, backslash, control characters.
NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


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
            self.json_doc({**head, key: [dict(zip((f for f, _ in fields), row)) for row in zip(*columns)]})
            return
        from json.encoder import encode_basestring  # the C escaper json.dumps uses

        slots = []
        for i, (_, kind) in enumerate(fields):
            if kind is int:
                slots.append("%d")
            elif NEEDS_ESCAPE.search("".join(columns[i])):  # one scan of the column, not a call per value
                columns[i] = map(encode_basestring, columns[i])
                slots.append("%s")
            else:
                slots.append('"%s"')
        template = "{" + ",".join(f"{json.dumps(f)}:{slot}" for (f, _), slot in zip(fields, slots)) + "}"
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
              json_obj=None, empty: str = "nothing to show") -> None:
        """A list: JSON (`json_obj` or the rows), CSV, a rich table, or plain columns."""
        if self.json:
            self.json_doc(rows if json_obj is None else json_obj)
            return
        if self.csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow([key for key, _ in columns])
            for row in rows:
                writer.writerow([safe_cell(_plain(row.get(key))) for key, _ in columns])
            return
        if self.quiet:
            return
        if not rows:
            sys.stderr.write(f"{empty}\n")
            return
        if self.rich:
            from rich.table import Table

            table = Table(title=title, title_justify="left", header_style="bold")
            for key, label in columns:
                numeric = all(isinstance(r.get(key), (int, float)) or r.get(key) is None for r in rows)
                table.add_column(label, justify="right" if numeric else "left")
            for row in rows:
                table.add_row(*("" if row.get(k) is None else str(row.get(k)) for k, _ in columns))
            self.console().print(table)
            return
        from tabulate import tabulate

        if title:
            sys.stdout.write(title + "\n")
        sys.stdout.write(tabulate([[_plain(r.get(k)) for k, _ in columns] for r in rows],
                                  headers=[label for _, label in columns], tablefmt="simple", disable_numparse=True) + "\n")

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
                grid.add_row(label, "" if value is None else str(value))
            self.console().print(Panel(grid, title=title, title_align="left", expand=False))
            return
        width = max((len(label) for label, _ in pairs), default=0)
        sys.stdout.write(title + "\n")
        for label, value in pairs:
            sys.stdout.write(f"  {label.ljust(width)}  {'' if value is None else value}\n")


def _broken_pipe() -> None:
    """A closed pipe under rich: raised on, for the CLI to end quietly with exit 0."""
    raise BrokenPipeError("the reader of the output has gone")


def _plain(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value
