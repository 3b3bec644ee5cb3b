"""A terminal a person reads (issue 15): the dashboard on one screen, tables that fit, thousands separators.

Everything here runs on the demo data of `make demo` (sample_data/ loaded, a month at
the counter), as the shop owner would see it: piped at COLUMNS=80 and on a rich
terminal of 80x24 (and 120x40), counting lines and cells.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from loyalty_cli import render
from loyalty_cli.cli import app
from tests.helpers import as_json, ok, run

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
AS_OF = "2026-10-31"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`run(*args, columns=80)`: the CLI on the demo database (built once, as `make demo` does)."""
    db = tmp_path_factory.mktemp("demo") / "loyalty.db"
    runner = CliRunner()

    def run(*args, columns=80, env=None):
        environ = {"COLUMNS": str(columns), "NO_COLOR": None, "TERM": None, **(env or {})}
        return runner.invoke(app, ["--db", str(db), *map(str, args)], env=environ)

    def ok(*args, **kw):
        result = run(*args, **kw)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    ok("init")
    ok("-q", "program", "load", SAMPLE / "program.toml")
    ok("-q", "members", "import", SAMPLE / "members.csv")
    ok("-q", "purchases", "import", SAMPLE / "purchases.csv")
    ok("-q", "rewards", "add", "COFFEE", "--name", "Free coffee", "--cost", "150")
    ok("-q", "rewards", "add", "CAKE", "--name", "Slice of cake", "--cost", "300", "--stock", "40")
    ok("-q", "points", "redeem", "M0099", "--reward", "CAKE", "--at", "2026-10-20T11:02")
    ok("-q", "points", "redeem", "M0002", "500", "--at", "2026-10-12T09:40")
    ok("-q", "points", "redeem", "M0042", "--reward", "COFFEE", "--at", "2026-10-25T16:15")
    for member, score in (("M0099", 10), ("M0002", 9), ("M0042", 8), ("M0116", 3)):
        ok("-q", "feedback", "add", member, score, "--at", "2026-10-30")
    ok("-q", "points", "expire", "--as-of", AS_OF)
    ok("-q", "tiers", "recalc", "--as-of", AS_OF)
    run.ok = ok
    return run


def rich_run(demo, monkeypatch, width, height, *args):
    """The command as drawn on a rich terminal of width x height: (exported text, result)."""
    from rich.console import Console

    console = Console(record=True, width=width, height=height, force_terminal=True, file=io.StringIO())
    monkeypatch.setattr(render.Output, "rich", property(lambda self: not (self.json or self.csv)))
    monkeypatch.setattr(render.Output, "console", lambda self, stderr=False: console)
    result = demo(*args, columns=width)
    assert result.exit_code == 0, result.stderr
    return console.export_text(), result


def size(text: str) -> tuple[int, int]:
    lines = text.splitlines()
    return len(lines), max((cell_len(line) for line in lines), default=0)


# -- the dashboard -------------------------------------------------------------------------------
def test_the_plain_dashboard_fits_one_80x24_screen_with_what_matters_first(demo):
    text = demo.ok("dashboard", "--as-of", AS_OF).stdout
    lines, widest = size(text)
    assert lines <= 23 and widest <= 80, text
    doc = json.loads(demo.ok("dashboard", "--as-of", AS_OF, "--json").stdout)
    assert text.startswith(f"Loyalty dashboard · as of {AS_OF}\n")
    # this period against the one before: net sales and counts with the change
    assert re.search(r"Last 30 days against the 30 before\s+this period\s+before\s+change", text)
    assert re.search(rf"net sales\s+{re.escape(render.money_text(doc['sales']['net']))}\s+[\d,]+\.\d\d\s+[+-]\d+\.\d%",
                     text)
    assert re.search(rf"\bsales\s+{doc['sales']['count']:,}\s+[\d,]+\s+[+-]\d+\.\d%", text)
    assert re.search(rf"active members\s+{doc['members']['active']:,}\s", text)
    # points outstanding and their value, with thousands separators
    assert f"{doc['points']['outstanding']:,} points outstanding" in text
    assert f"liability {render.money_text(doc['liability'])}" in text and "," in render.money_text(doc["liability"])
    for name, count in {**doc["tiers"], **doc["segments"]}.items():
        assert re.search(rf"\b{name}\s+{count:,}\s", text), name
    assert "Last 12 months" in text and "net sales" in text and "points issued" in text


def test_the_rich_dashboard_fits_80x24_and_120x40(demo, monkeypatch):
    text, _ = rich_run(demo, monkeypatch, 80, 24, "dashboard", "--as-of", AS_OF)
    lines, widest = size(text)
    assert lines <= 23 and widest <= 80, text
    assert "Loyalty dashboard" in text.splitlines()[0] and "points outstanding" in text and "champions" in text
    text, _ = rich_run(demo, monkeypatch, 120, 40, "dashboard", "--as-of", AS_OF)
    lines, widest = size(text)
    assert lines <= 40 and widest <= 120, text


def test_full_shows_everything_the_dashboard_showed(demo):
    text = demo.ok("dashboard", "--as-of", AS_OF, "--full").stdout
    doc = json.loads(demo.ok("dashboard", "--as-of", AS_OF, "--json").stdout)
    assert "Top 10 members by net spend" in text
    assert size(text)[1] <= 80, text  # separators do not push it past the screen
    for m in doc["monthly"]:
        assert re.search(rf"{m['month']}\s+{re.escape(render.money_text(m['net_sales']))}\s.*\s{m['points_issued']:,}(\s|$)",
                         text), m
    for t in doc["top_members"]:
        assert t["member_id"] in text and render.money_text(t["net_spend"]) in text
    for label in ("points redeemed", "points expired", "repeat rate", "redemption rate", "NPS (365 days)"):
        assert label in text


def test_json_keeps_its_shape_and_plain_numbers(demo):
    doc = json.loads(demo.ok("dashboard", "--as-of", AS_OF, "--json").stdout)
    assert set(doc) == {"as_of", "period_days", "members", "sales", "repeat_rate", "retention", "points", "liability",
                        "redemption_rate", "tiers", "segments", "nps", "monthly", "top_members", "masked",
                        "stores"}
    assert re.fullmatch(r"\d+\.\d\d", doc["sales"]["net"]) and re.fullmatch(r"\d+\.\d\d", doc["liability"])
    assert json.loads(demo.ok("dashboard", "--as-of", AS_OF, "--full", "--json").stdout) == doc


# -- thousands separators in human output, never in --json or --csv -----------------------------------
def test_numbers_have_thousands_separators_for_people_only(demo):
    doc = json.loads(demo.ok("members", "show", "M0099", "--as-of", AS_OF, "--json").stdout)
    assert doc["balance"] >= 1000
    shown = demo.ok("members", "show", "M0099", "--as-of", AS_OF).stdout
    assert f"{doc['balance']:,} points" in shown and render.money_text(doc["spend_in_window"]) in shown
    balance = demo.ok("points", "balance", "M0099", "--as-of", AS_OF).stdout
    assert f"{doc['balance']:,} points" in balance
    liability = json.loads(demo.ok("report", "liability", "--as-of", AS_OF, "--json").stdout)
    text = demo.ok("report", "liability", "--as-of", AS_OF).stdout
    assert f"{liability['outstanding_points']:,}" in text and render.money_text(liability["value"]) in text
    assert "5,000.00" in demo.ok("tiers", "list").stdout  # Platinum's threshold in sample_data/program.toml
    table = demo.ok("members", "list", "--sort", "balance", "--limit", "1").stdout
    top = json.loads(demo.ok("members", "list", "--sort", "balance", "--limit", "1", "--json").stdout)[0]
    assert f"{top['balance']:,}" in table
    rows = list(csv.DictReader(io.StringIO(demo.ok("members", "list", "--sort", "balance", "--limit", "1",
                                                   "--csv").stdout)))
    assert rows[0]["balance"] == str(top["balance"])  # no separator in CSV
    segments = demo.ok("report", "segments", "--as-of", AS_OF).stdout
    assert re.search(r"\d,\d{3}\.\d\d net spend", segments)


# -- every list fits 80 columns without cutting an id, a date or an amount -------------------------------
LISTS = [
    ("members", "list", "--limit", "30"),
    ("points", "history", "M0099", "--limit", "30"),
    ("vouchers", "list"),
    ("rewards", "list"),
    ("tiers", "list"),
    ("tiers", "history", "M0099"),
    ("report", "churn", "--as-of", AS_OF, "--limit", "30"),
    ("report", "birthdays", "--as-of", AS_OF, "--days", "60"),
    ("report", "expiring", "--as-of", AS_OF, "--limit", "30"),
    ("report", "rfm", "--as-of", AS_OF, "--limit", "30"),
    ("report", "anomalies", "--as-of", AS_OF, "--limit", "30"),
    ("report", "segments", "--as-of", AS_OF),
]
WHOLE = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d)?|\d{4}-\d\d|-?\d+\.\d\d|[A-Z][A-Z0-9]+")


def whole_values(csv_text: str) -> set[str]:
    """The ids, dates, times and amounts of a list's CSV, as a person's table must show them."""
    found = set()
    for row in csv.DictReader(io.StringIO(csv_text)):
        for key, value in row.items():
            if key in ("name", "email", "phone", "note", "reason", "by") or not WHOLE.fullmatch(value or ""):
                continue
            found.add(render.money_text(value) if re.fullmatch(r"-?\d+\.\d\d", value) else value)
    return found


@pytest.mark.parametrize("args", LISTS, ids=[" ".join(a[:2]) for a in LISTS])
def test_lists_fit_80_columns_and_never_cut_ids_dates_or_money(demo, args):
    result = demo.ok(*args)
    lines = result.stdout.splitlines()
    assert lines and max(cell_len(line) for line in lines) <= 80, result.stdout
    values = whole_values(demo.ok(*args, "--csv").stdout)
    assert values
    for value in values:
        assert re.search(rf"(^|\s){re.escape(value)}(\s|$)", result.stdout, re.M), (value, result.stdout)
    assert "…" not in "".join(values)


@pytest.mark.parametrize("args", LISTS[:2] + LISTS[6:9], ids=[" ".join(a[:2]) for a in LISTS[:2] + LISTS[6:9]])
def test_rich_lists_fit_80_columns_and_never_cut_ids_dates_or_money(demo, monkeypatch, args):
    values = whole_values(demo.ok(*args, "--csv").stdout)
    text, _ = rich_run(demo, monkeypatch, 80, 24, *args)
    assert size(text)[1] <= 80, text
    for value in values:
        assert re.search(rf"(^|[\s│]){re.escape(value)}([\s│]|$)", text, re.M), (value, text)


def test_columns_left_out_are_named_on_stderr(demo):
    narrow = demo.ok("report", "churn", "--as-of", AS_OF, "--limit", "5")
    assert narrow.stderr == "note: phone left out to fit; --csv, --json or a wider terminal show them\n"
    assert "phone" not in narrow.stdout.splitlines()[1]
    wide = demo.ok("report", "churn", "--as-of", AS_OF, "--limit", "5", columns=160)
    assert wide.stderr == "" and "phone" in wide.stdout
    assert demo.ok("report", "churn", "--as-of", AS_OF, "--limit", "5", "-q").stderr == ""


def test_a_refusal_reads_large_numbers_with_separators(demo):
    balance = json.loads(demo.ok("points", "balance", "M0099", "--json").stdout)["balance"]
    result = demo("points", "redeem", "M0099", "50000", "--at", AS_OF)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: member M0099 has {balance:,} points available, not enough for 50,000\n"


# -- the compact dashboard with many tiers and very large figures (issue 15 audit) -------------------
NINE_TIERS = "[tiers]\nlevels = [\n" + "".join(
    f'  {{ name = "T{i}", min = "{m}", multiplier = "1" }},\n'
    for i, m in enumerate((0, 100, 200, 300, 400, 500, 700, 1000, 2000), 1)) + "]\n"


def test_nine_tiers_still_fit_one_screen_with_the_rest_added_up(tmp_path):
    from loyalty_cli.render.dashboard import compact_tiers

    tiers = [(f"T{i}", n) for i, n in enumerate((150, 39, 32, 24, 5, 3, 1, 18, 28), 1)]
    assert compact_tiers(tiers) == [("T1", 150), ("T2", 39), ("T3", 32), ("T4", 24), ("T9", 28), ("+4 more", 27)]
    assert compact_tiers(tiers[:6]) == tiers[:6]

    db = tmp_path / "nine.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2026-01-01")
    ok(db, "purchases", "add", "M1", "250.00", "--at", "2026-10-01")
    (tmp_path / "nine.toml").write_text(NINE_TIERS)
    ok(db, "program", "load", tmp_path / "nine.toml")
    text = run(db, "dashboard", "--as-of", "2026-10-31", env={"COLUMNS": "80"}).stdout
    lines = text.splitlines()
    assert len(lines) <= 23 and max(map(len, lines)) <= 80
    assert re.search(r"^  \+\d more +\d", text, re.M)  # the levels beyond five, added up on one line


def test_very_large_figures_are_never_cut_on_the_compact_dashboard(tmp_path, monkeypatch):
    db = tmp_path / "big.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2026-01-01")
    ok(db, "purchases", "add", "M1", "9999999999.99", "--at", "2026-10-20")
    ok(db, "members", "add", "--id", "M2", "--name", "Bo", "--joined", "2026-01-01")
    ok(db, "purchases", "add", "M2", "9999999999.99", "--at", "2026-09-20")  # the period before, as large
    doc = as_json(db, "dashboard", "--as-of", "2026-10-31")
    figures = (f"{doc['points']['outstanding']:,}", "9,999,999,999.99", render.money_text(doc["liability"]))
    text = run(db, "dashboard", "--as-of", "2026-10-31", env={"COLUMNS": "80"}).stdout
    assert max(map(len, text.splitlines())) <= 80 and all(f in text for f in figures)

    def on_screen(*args, columns):
        return run(db, *args, env={"COLUMNS": str(columns)})

    shown, _ = rich_run(on_screen, monkeypatch, 80, 24, "dashboard", "--as-of", "2026-10-31")
    lines, widest = size(shown)
    assert lines <= 23 and widest <= 80 and all(f in shown for f in figures), shown
