"""Usage errors in the shop's words (issue 15): one `Error:` line, at most one hint, exit 2.

Click's own form is four lines (usage, "Try ...", blank, error) in a validation
library's wording ("Input should be a valid integer"), takes a negative amount for
an unknown option ("No such option: -5"), and Typer's help shows `{member_id}`,
`[[POINTS]]` and `<str>`. These pin the exact lines a shop owner sees instead.
"""

from __future__ import annotations

import re

import pytest
import typer

from loyalty_cli.cli import app
from tests.db import count

# (command line, the exact stderr lines) -- every one exits 2 with nothing on stdout.
USAGE_ERRORS = [
    # a negative number where only positive ones make sense
    ("points award M1 -5 --reason x", ["Error: POINTS must be a positive whole number, got -5"]),
    ("points redeem M1 -5", ["Error: POINTS must be a positive whole number, got -5"]),
    ("points transfer M1 M2 -3", ["Error: POINTS must be a positive whole number, got -3"]),
    ("purchases add M1 -5", ["Error: AMOUNT must be zero or more, got -5 "
                             "(a refund is recorded with: loyalty purchases refund PURCHASE_ID [AMOUNT])"]),
    ("purchases refund P1 -2.50", ["Error: AMOUNT must be more than 0 (the amount refunded), got -2.50"]),
    ("feedback add M1 11", ["Error: SCORE must be a whole number from 0 to 10, got 11"]),
    ("feedback add M1 -1", ["Error: SCORE must be a whole number from 0 to 10, got -1"]),
    ("members list --limit -5", ["Error: --limit must be a positive whole number, got -5"]),
    ("points history M1 --limit 0", ["Error: --limit must be a positive whole number, got 0"]),
    ("report churn --days -1", ["Error: --days must be a whole number from 0 to 36,500, got -1"]),
    ("dashboard --period 0", ["Error: --period must be a whole number from 1 to 36,500, got 0"]),
    # not a whole number at all
    ("points award M1 10.5 --reason x", ["Error: POINTS must be a positive whole number, got 10.5"]),
    ("points adjust M1 1.5 --reason x", ["Error: ±POINTS must be a whole number, got 1.5"]),
    ("rewards add X --name Y --cost lots", ["Error: --cost must be a whole number, got lots"]),
    ("report birthdays --days soon", ["Error: --days must be a whole number from 0 to 36,500, got soon"]),
    ("purchases add M1 12,50", ["Error: AMOUNT must be a number of money like 12.50 "
                                "(at most 2 decimals, no sign), got '12,50'"]),
    # a missing argument or option: the usage line is the hint
    ("points award", ["Error: MEMBER_ID is missing", "Usage: loyalty points award MEMBER_ID POINTS [OPTIONS]"]),
    ("tiers set M1", ["Error: TIER is missing", "Usage: loyalty tiers set MEMBER_ID TIER [OPTIONS]"]),
    ("points award M1 5", ["Error: --reason REASON is required",
                           "Usage: loyalty points award MEMBER_ID POINTS [OPTIONS]"]),
    ("points history M1 --limit", ["Error: --limit needs a value"]),
    ("report churn --show-pii=yes", ["Error: --show-pii takes no value (it is a switch: give --show-pii alone)"]),
    # an extra argument
    ("points award M1 5 6 --reason x", ["Error: unexpected extra argument: 6",
                                        "Usage: loyalty points award MEMBER_ID POINTS [OPTIONS]"]),
    # an unknown option, with a suggestion when one is close
    ("points award M1 5 --reasn x", ["Error: unknown option --reasn (did you mean --reason?)",
                                     "Try: loyalty points award --help"]),
    ("members list --bogus", ["Error: unknown option --bogus", "Try: loyalty members list --help"]),
    ("--bogus", ["Error: unknown option --bogus", "Try: loyalty --help"]),
    # no such command
    ("membres list", ["Error: no such command 'membres' (did you mean members?)", "Try: loyalty --help"]),
    ("points blance M1", ["Error: no such command 'blance' in loyalty points (did you mean balance?)",
                          "Try: loyalty points --help"]),
    # a bad choice or date, checked by the tool itself
    ("members list --sort zzz", ["Error: --sort must be one of id, name, joined, balance, tier, got 'zzz'"]),
    ("dashboard --as-of 2026-13-01", ["Error: --as-of must be a date YYYY-MM-DD, got '2026-13-01'"]),
    ("--db", ["Error: --db needs the path of a database file"]),
    # a bad value names the option it was given to
    ("members add --name A --email bad", ["Error: --email is not a valid address (expected something like "
                                          "name@shop.example)"]),
    ("members edit M1 --phone abc", ["Error: --phone must be digits, spaces and + ( ) - . only, with at least 5 digits"]),
]


@pytest.fixture
def shop(run):
    assert run("init").exit_code == 0
    assert run("members", "add", "--id", "M1", "--name", "Ana").exit_code == 0
    assert run("members", "add", "--id", "M2", "--name", "Bo").exit_code == 0
    return run


@pytest.mark.parametrize("line, expected", USAGE_ERRORS, ids=[line for line, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_error_line_and_at_most_one_hint(shop, cli, db, line, expected):
    args = line.split()
    result = cli(*args) if args[0] == "--db" else shop(*args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == expected


def test_the_same_lines_on_a_terminal(shop, monkeypatch):
    """With rich markup (a terminal), Typer would draw a boxed panel: the lines stay the same."""
    monkeypatch.setattr(app, "rich_markup_mode", "rich")
    result = shop("points", "award", "M1", "-5", "--reason", "x")
    assert (result.exit_code, result.stderr) == (2, "Error: POINTS must be a positive whole number, got -5\n")
    result = shop("points", "award", "M1", "5", "--reasn", "x")
    assert result.stderr.splitlines() == ["Error: unknown option --reasn (did you mean --reason?)",
                                          "Try: loyalty points award --help"]


def test_adjust_still_takes_a_negative_correction_as_written(shop):
    assert shop("points", "award", "M1", "50", "--reason", "gift").exit_code == 0
    result = shop("points", "adjust", "M1", "-20", "--reason", "double scan", "--json")
    assert result.exit_code == 0, result.stderr
    assert shop("points", "balance", "M1", "--json").stdout.count('"balance":30') == 1


def test_a_refused_value_changes_nothing(shop, db):
    before = count(db, "ledger")
    for args in (("points", "award", "M1", "-5", "--reason", "x"), ("purchases", "add", "M1", "-5")):
        assert shop(*args).exit_code == 2
    assert count(db, "ledger") == before


def _tree(command, path=()):
    """Every command path under `command`, groups included (the root is ())."""
    yield path
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            yield from _tree(command.get_command(ctx, name), (*path, name))


PLACEHOLDERS = re.compile(r"<\w+>|\{|\[\[|\bTEXT\b|\bINTEGER\b")
RANGE_NOTATION = re.compile(r"x\s*[<>]=|[<>]=\s*x")  # ranges are said in words: "a whole number from 0 to 36,500"


@pytest.mark.parametrize("markup", [None, "rich"])
def test_every_help_shows_real_placeholders(cli, monkeypatch, markup):
    monkeypatch.setattr(app, "rich_markup_mode", markup)
    paths = list(_tree(typer.main.get_command(app)))
    assert ("points", "award") in paths and ("report", "churn") in paths and ("dashboard",) in paths
    for path in paths:
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        bad = PLACEHOLDERS.findall(result.stdout) + RANGE_NOTATION.findall(result.stdout)
        assert not bad, (path, bad, result.stdout)
    def shows(path, *pairs):
        text = cli(*path, "--help").stdout
        return all(re.search(r"\s+".join(map(re.escape, pair.split())), text) for pair in pairs)

    assert shows(("points", "award"), "MEMBER_ID", "POINTS", "--reason REASON", "--at DATETIME", "--by NAME")
    assert shows(("dashboard",), "--as-of DATE", "--period DAYS")
    assert shows(("report", "churn"), "--limit N", "--days DAYS", "--sort KEY")
    assert shows(("purchases", "import"), "FILE", "--rejects FILE", "--map FIELD=COLUMN")


FILLERS = {"POINTS": "5", "±POINTS": "5", "AMOUNT": "5", "SCORE": "5", "TIER": "Gold", "KEY": "earn.signup_bonus",
           "VALUE": "10", "FROM": "M1", "TO": "M2"}


def _filled(command, skip):
    """Values for every required parameter of `command` but `skip`, so that only `skip` is wrong."""
    args = []
    for param in command.params:
        if param is skip:
            continue
        if "--yes" in param.opts:
            args.append("--yes")
        if param.param_type_name != "argument" and not param.required:
            continue
        if param.param_type_name == "argument":
            args.append("shop.csv" if param.metavar == "FILE" else FILLERS.get(param.metavar, "M1"))
        else:
            args += [max(param.opts, key=len), FILLERS.get(param.metavar, "5")]
    return args


def _typed_parameters():
    """(command path, parameter) for every parameter that takes a number, a date or a time."""
    root = typer.main.get_command(app)
    found = []
    for path in _tree(root):
        command, ctx = root, typer.Context(root)
        for name in path:
            command = command.get_command(ctx, name)
            ctx = typer.Context(command)
        if hasattr(command, "list_commands"):
            continue
        for param in command.params:
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if annotation is int or param.metavar in ("DATE", "DATETIME"):
                found.append((path, command, param))
    return found


TYPED = _typed_parameters()


@pytest.mark.parametrize("path, command, param", TYPED, ids=[f"{' '.join(p)} {q.metavar}" for p, _, q in TYPED])
def test_every_number_date_and_time_parameter_says_what_it_takes(shop, tmp_path, path, command, param):
    (tmp_path / "shop.csv").write_text("member_id,name\n")
    name = max(param.opts, key=len) if param.param_type_name == "option" else param.metavar
    bad = "2026-02-30" if param.metavar in ("DATE", "DATETIME") else "1.5"
    args = list(path) + _filled(command, param)
    if param.param_type_name == "option":
        args += [name, bad]
    else:  # an argument in its place among the others
        position = [p for p in command.params if p.param_type_name == "argument"].index(param)
        args.insert(len(path) + position, bad)
    result = shop(*args)
    assert (result.exit_code, result.stdout) == (2, ""), (args, result.stdout, result.stderr)
    line = result.stderr.splitlines()
    assert len(line) == 1 and line[0].startswith(f"Error: {name} must be "), (args, result.stderr)
    assert bad in line[0]


def test_every_help_fits_80_columns(cli, monkeypatch):
    """Help is read on a terminal: at 80 columns no line of any --help, examples included, is wider."""
    monkeypatch.setenv("COLUMNS", "80")
    for path in _tree(typer.main.get_command(app)):
        result = cli(*path, "--help")
        wide = [line for line in result.stdout.splitlines() if len(line) > 80]
        assert result.exit_code == 0 and not wide, (path, wide)
