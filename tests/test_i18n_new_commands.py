"""The commands added beside the translation (experiments, simulate, explain, households, merge,
consent, campaign lists, audit, export) in Simplified Chinese too, and the data the tool stores
the same whatever the language of the person who ran it.

- Every row of every table written by one session is identical when the session runs under
  LANG=C and under LANG=zh_CN.UTF-8: ledger notes, tier-change reasons, audit records and chain
  records are data, never translated (a refund's note once was).
- The JSON (and CSV) of every new command is byte-identical in English and Chinese.
- Their human output is Chinese, fits 80 columns, and lines up with double-width text.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata

import pytest

from tests import db as dbr
from tests.helpers import fresh_db, ok, run
from tests.test_readme import ROOT, first_session

SAMPLE = ROOT / "sample_data"
ZH = {"LANG": "zh_CN.UTF-8"}
EN = {"LANG": "C"}
CJK = re.compile(r"[\u4e00-\u9fff]")
TODAY = "2026-11-02"
VARIANT = '[earn]\npoints_per_unit = "2"\n'


def cells(text: str) -> int:
    """The terminal cells a text takes: two for a wide (East Asian) character."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    """The CLI's today is 2026-11-02, the day after the sample history ends, so the experiment can
    start then and every step is dated (--at, --as-of) rather than taken from the clock. Its clock (now) is pinned
    too, and the codes it draws at random, so even what the tool stamps with the time of the command is the same in both runs. Every
    CLI module is imported first: one first imported under the patch would keep the pinned day."""
    import importlib
    import pkgutil

    from loyalty_cli import cli
    from loyalty_cli.cli import common

    original_now = common.now
    for module in pkgutil.iter_modules(cli.__path__):
        loaded = importlib.import_module(f"loyalty_cli.cli.{module.name}")
        if getattr(loaded, "now", None) is original_now:  # `from …common import now`
            monkeypatch.setattr(loaded, "now", lambda: TODAY + "T07:00:00")
    monkeypatch.setattr(common, "today", lambda: TODAY)
    monkeypatch.setattr(common, "now", lambda: TODAY + "T07:00:00")
    import secrets

    monkeypatch.setattr(secrets, "choice", lambda seq: seq[CHANCE.randrange(len(seq))])
    monkeypatch.setattr(secrets, "randbelow", lambda n: CHANCE.randrange(n))


CHANCE = random.Random()  # voucher codes and generated ids: the same sequence in each run (session)


def session(db, tmp_path, env) -> dict:
    """The README's first session, then households, a merge, consent, an experiment with sales
    and a refund, a reward, a tier recalculation and a campaign list, in `env`'s language.
    Every step is dated, so two runs store the same rows."""
    tmp_path.mkdir(exist_ok=True)
    CHANCE.seed(21)
    for command, __ in first_session((ROOT / "README.md").read_text(encoding="utf-8")):
        words = command.split("#")[0].split()
        if words[:1] != ["loyalty"] or words[3:4] == ["init"]:
            continue  # `echo $?`; the database is made by fresh_db
        args = [str(ROOT / w) if w.startswith("sample_data/") else w for w in words[3:]]
        run(db, *args, env=env)  # the refused redeem exits 1: its data must not differ either
    variant = tmp_path / "dbl.toml"
    variant.write_text(VARIANT, encoding="utf-8")
    steps = [
        ("households", "create", "LEE", "--head", "M0042", "--at", "2026-10-31T12:00"),
        ("households", "add", "LEE", "M0043", "--at", "2026-10-31T12:05"),
        ("households", "add", "LEE", "M0044", "--at", "2026-10-31T12:06"),
        ("points", "redeem", "M0043", "300", "--household", "--at", "2026-10-31T12:10"),
        ("households", "remove", "LEE", "M0044", "--at", "2026-10-31T12:20"),
        ("members", "add", "--id", "D1", "--name", "Dup Lee", "--joined", "2026-10-01"),
        ("purchases", "add", "D1", "25.00", "--id", "PD1", "--at", "2026-10-02T10:00"),
        ("members", "merge", "D1", "--into", "M0001", "--yes", "--at", "2026-10-31T13:00"),
        ("members", "edit", "M0001", "--consent-email", "yes", "--consent-sms", "no"),
        ("members", "edit", "M0002", "--consent-email", "yes"),
        ("rewards", "add", "COFFEE", "--name", "Free coffee", "--cost", "150"),
        ("points", "redeem", "M0042", "--reward", "COFFEE", "--at", "2026-10-31T14:00"),
        ("points", "award", "M0002", "40", "--reason", "goodwill", "--at", "2026-10-31T14:30"),
        ("program", "experiment", "start", "dbl", variant, "--share", "0.5", "--from", TODAY),
        ("purchases", "add", "M0001", "80.00", "--id", "PX1", "--at", TODAY + "T08:00"),
        ("purchases", "add", "M0002", "60.00", "--id", "PX2", "--at", TODAY + "T08:10"),
        ("purchases", "refund", "PX1", "30.00", "--id", "RX1", "--at", TODAY + "T08:30"),
        ("tiers", "recalc", "--as-of", "2026-10-31"),
        ("campaign", "list", "birthdays", "--channel", "email", "--as-of", TODAY, "--days", "365"),
        ("members", "export", "M0001", "--output", tmp_path / "M0001.json"),
        ("points", "expire", "--as-of", "2026-10-31"),
    ]
    for args in steps:
        ok(db, *args, env=env)


def tables(db) -> list[str]:
    if dbr.is_url(db):
        found = dbr.raw(db, "SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
    else:
        found = dbr.raw(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    return sorted(name for (name,) in found)


def test_a_session_stores_the_same_rows_in_english_and_in_chinese(tmp_path):
    english, chinese = fresh_db(tmp_path / "en.db"), fresh_db(tmp_path / "zh.db")
    session(english, tmp_path / "en", EN)
    session(chinese, tmp_path / "zh", ZH)
    names = sorted(tables(english), key=lambda name: (name == "chain", name))  # a row's difference before its block's
    assert names == sorted(tables(chinese), key=lambda name: (name == "chain", name))
    assert {"ledger", "tier_changes", "member_merges", "households", "campaign_exports"} <= set(names)
    for table in names:
        en_rows, zh_rows = dbr.rows(english, table), dbr.rows(chinese, table)
        assert len(en_rows) == len(zh_rows), table
        for a, b in zip(en_rows, zh_rows):
            assert a == b, (table, a, b)
    notes = {e.note for e in dbr.entries(chinese) if e.note}
    assert not any(CJK.search(n) for n in notes), notes


@pytest.fixture
def shop(tmp_path):
    """A database after the session (in English)."""
    db = fresh_db(tmp_path / "shop.db")
    session(db, tmp_path / "files", EN)
    return db


NEW_COMMANDS = [
    ("program", "simulate", SAMPLE / "program.toml", "--from", "2026-01-01", "--to", "2026-10-31"),
    ("program", "experiment", "list"),
    ("report", "experiment", "dbl", "--as-of", TODAY),
    ("purchases", "explain", "PX1"),
    ("purchases", "explain", "PD1"),
    ("households", "show", "LEE", "--as-of", "2026-10-31"),
    ("households", "list", "--as-of", "2026-10-31"),
    ("members", "show", "M0043", "--as-of", "2026-10-31"),  # in a household
    ("members", "show", "D1", "--as-of", "2026-10-31"),  # merged into M0001
    ("members", "show", "M0001", "--as-of", TODAY),  # consent, the merge kept
    ("points", "balance", "M0042", "--as-of", "2026-10-31"),
    ("points", "history", "M0001"),
    ("campaign", "list", "birthdays", "--channel", "email", "--as-of", TODAY, "--days", "365"),
    ("db", "audit"),
]


def test_the_new_commands_json_and_csv_are_byte_identical_in_every_language(shop):
    for args in NEW_COMMANDS:
        english = ok(shop, *args, "--json", env=EN)
        chinese = ok(shop, *args, "--json", env=ZH)
        assert chinese.stdout == english.stdout, args
        json.loads(english.stdout)
    for args in (("households", "list"), ("db", "audit"), ("program", "experiment", "list"),
                 ("campaign", "list", "birthdays", "--channel", "email", "--as-of", TODAY, "--days", "365")):
        assert ok(shop, *args, "--csv", env=ZH).stdout == ok(shop, *args, "--csv", env=EN).stdout, args
    export = ok(shop, "members", "export", "M0001", env=EN).stdout
    assert ok(shop, "members", "export", "M0001", env=ZH).stdout == export
    assert json.loads(export)["member_id"] == "M0001"


def test_the_new_commands_speak_chinese_within_80_columns(shop):
    for args in NEW_COMMANDS:
        result = ok(shop, *args, env={**ZH, "COLUMNS": "80"})
        lines = (result.stdout + result.stderr).splitlines()
        assert any(CJK.search(line) for line in lines), (args, result.stdout)
        assert max(cells(line) for line in lines) <= 80, (args, max(lines, key=cells))
        english = ok(shop, *args, env={**EN, "COLUMNS": "80"}).stdout
        left = [p for p in re.findall(r"\b[a-z]{3,} [a-z]{3,}\b", english) if p in result.stdout]
        assert not left, (args, left)  # an English phrase left untranslated


def test_a_household_table_lines_up_chinese_names(shop):
    ok(shop, "members", "add", "--id", "Z1", "--name", "张伟", "--joined", "2026-01-02")
    ok(shop, "households", "create", "ZHANG", "--head", "Z1", "--at", "2026-10-31T15:00")
    lines = ok(shop, "households", "list", "--as-of", "2026-10-31", env=ZH).stdout.splitlines()
    rule = next(line for line in lines if set(line) == {"-", " "})
    starts = [m.start() for m in re.finditer(r"-+", rule)]
    for line in lines[lines.index(rule) - 1:]:
        if line == rule:
            continue
        grid = "".join(ch * 2 if cells(ch) == 2 else ch for ch in line).ljust(len(rule))
        for start in starts[1:]:
            assert grid[start - 2:start] == "  ", (line, start)


def test_a_default_wording_follows_the_language_of_each_invocation(db):
    """A default argument's wording ("member id") is decided when the message is shown, not when
    the module was first imported (the tests run many invocations, in both languages, in one process)."""
    for env, named in ((EN, "member id"), (ZH, "会员编号"), (EN, "member id")):
        result = run(db, "points", "balance", "M\u200b1", env=env)
        assert result.exit_code == 2, result.stderr
        assert named in result.stderr, result.stderr


def every_command():
    """The command path of every command and group of the tool."""
    import typer

    from loyalty_cli.cli import app

    def walk(command, path, parent=None):
        yield path
        ctx = command.make_context(path[-1] if path else "loyalty", [], parent=parent, resilient_parsing=True)
        for name in getattr(command, "list_commands", lambda ctx: [])(ctx):
            yield from walk(command.get_command(ctx, name), [*path, name], ctx)

    return list(walk(typer.main.get_command(app), []))


def test_every_help_in_chinese_fits_80_columns(tmp_path):
    """Plain help wraps by terminal cells: a Chinese character takes two."""
    paths = every_command()
    assert ["households", "create"] in paths and ["program", "experiment", "start"] in paths
    for path in paths:
        result = run(tmp_path / "none.db", *path, "--help", env={**ZH, "COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        lines = result.stdout.splitlines()
        assert any(CJK.search(line) for line in lines), path
        assert max(cells(line) for line in lines) <= 80, (path, max(lines, key=cells))


def test_the_new_checks_say_their_problems_in_english_json_and_chinese_lines(shop):
    """db check's problems about households, merges, consent and experiments: --json keeps them
    English (byte-identical), a person reads every line in Chinese, the details too."""
    from tests.db import connect
    from tests.helpers import guards_dropped

    with connect(shop) as conn:
        with guards_dropped(conn, "household_members"):
            conn.execute("UPDATE household_members SET left_at = NULL WHERE member_id = 'M0044'")
        conn.execute("UPDATE members SET merged_into = NULL WHERE member_id = 'D1'")
        conn.execute("UPDATE members SET email_opt_in = 0 WHERE member_id = 'M0002'")
        with guards_dropped(conn, "experiments"):
            conn.execute("UPDATE experiments SET share = '0.9' WHERE name = 'dbl'")
    english = run(shop, "db", "check", "--full", "--json", env=EN)
    chinese = run(shop, "db", "check", "--full", "--json", env=ZH)
    assert (english.exit_code, chinese.exit_code) == (4, 4)
    assert chinese.stdout == english.stdout
    said = english.stdout
    for text in ("household membership row", "no longer marked merged", "email consent is no",
                 "experiment dbl: share is"):
        assert text in said, text
    lines = run(shop, "db", "check", "--full", env=ZH).stderr.splitlines()
    assert lines[0].startswith("错误: db check 发现 "), lines
    for text in ("家庭成员关系第", "不再被标记为已合并", "营销同意为 否", "实验 dbl：share 为"):
        assert any(text in line for line in lines), (text, lines)
    assert all(CJK.search(line) for line in lines), lines
    assert not any(re.search(r"\bbut the chain recorded\b|\bbehind the tool's back\b", line) for line in lines), lines
