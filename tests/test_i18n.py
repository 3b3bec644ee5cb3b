"""The interface in Simplified Chinese: every message translated, the catalogue compiled from its
.po, the language chosen from --lang / LOYALTY_LANG / the locale, machine output unchanged, and
Chinese text lined up in piped tables.

The catalogue tests read the source with `ast` (tools/messages.py) and the .po with a small
reader: they need neither xgettext nor msgfmt.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.helpers import ok, run
from tests.test_readme import ROOT, first_session, run_session
from tools.messages import MO, PO, extract, read_po

SAMPLE = ROOT / "sample_data"
ZH = {"LANG": "zh_CN.UTF-8"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def cells(text: str) -> int:
    """The terminal cells a text takes: two for a wide (East Asian) character."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


# -- the catalogue --------------------------------------------------------------------------
def test_every_message_marked_in_the_source_has_a_chinese_translation():
    messages = extract()
    assert len(messages) > 800  # the extraction finds the tool's messages, not nothing
    translated = read_po(PO)
    missing = [m for m in messages if not translated.get(m)]
    assert not missing, f"{len(missing)} messages have no Chinese translation (run: make messages), e.g. {missing[:5]}"


def test_the_help_of_commands_is_extracted_and_translated():
    messages = extract()
    assert any(m.startswith("Spend points, or exchange them for a reward voucher; refused when the balance is short.\n")
               for m in messages)  # a docstring of several paragraphs is one message
    assert any(m.startswith("The owner's overview") for m in messages)  # a command registered by a call
    assert read_po(PO)["Enrol and look after members."] == "会员登记与维护。"


def test_the_compiled_catalogue_is_the_po_file_compiled():
    with open(MO, "rb") as f:
        compiled = gettext.GNUTranslations(f)._catalog
    source = {k: v for k, v in read_po(PO).items() if k and v}
    compiled = {k: v for k, v in compiled.items() if k}
    assert compiled == source, "loyalty.mo is stale: run make messages (or msgfmt) after editing loyalty.po"


def test_translations_use_only_the_placeholders_of_their_message():
    def fields(text):
        return {name for __, name, __, __ in string.Formatter().parse(text) if name is not None}

    for msgid, msgstr in read_po(PO).items():
        if msgid and msgstr and "{" in msgid:
            assert fields(msgstr) <= fields(msgid), (msgid, msgstr)


def test_a_catalogue_entry_is_read_as_msgfmt_reads_it(tmp_path):
    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr "Language: zh_CN\\n"\n\n#, fuzzy\nmsgid "a"\nmsgstr "甲"\n\n'
                  'msgid ""\n"two "\n"lines\\n"\nmsgstr "两\\n行"\n', encoding="utf-8")
    assert read_po(po) == {"": "Language: zh_CN\n", "two lines\n": "两\n行"}


def test_the_catalogues_ship_with_the_package():
    """Built wheels and `pip install .` take package data from pyproject's package-data (checked
    here: no network to build a wheel in the tests); the files are committed beside the code."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["loyalty_cli"]
    package = ROOT / "loyalty_cli"
    for path in (MO, PO):
        assert any(path.relative_to(package).match(p) for p in patterns), path
        assert path.is_file()


# -- choosing the language ----------------------------------------------------------------------
@pytest.mark.parametrize("env, args, chinese", [
    ({"LANG": "zh_CN.UTF-8"}, (), True),
    ({"LANG": "zh_CN"}, (), True),
    ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_GB.UTF-8"}, (), True),
    ({"LC_MESSAGES": "zh", "LANG": "C"}, (), True),
    ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, (), False),  # LC_ALL wins, as POSIX reads them
    ({"LANG": "zh_TW.UTF-8"}, (), False),
    ({"LANG": "fr_FR.UTF-8"}, (), False),
    ({"LOYALTY_LANG": "zh", "LANG": "C"}, (), True),
    ({"LOYALTY_LANG": "en", "LANG": "zh_CN.UTF-8"}, (), False),
    ({"LANG": "zh_CN.UTF-8"}, ("--lang", "en"), False),
    ({"LOYALTY_LANG": "zh"}, ("--lang=en",), False),
    ({"LANG": "C.UTF-8"}, ("--lang", "zh"), True),
])
def test_the_language_comes_from_lang_then_loyalty_lang_then_the_locale(db, env, args, chinese):
    result = run(db, "points", "balance", "NOBODY", *args, env=env)
    assert result.exit_code == 1
    line = result.stderr.strip()
    if chinese:
        assert line.startswith("错误: 找不到会员 NOBODY"), line
    else:
        assert line.startswith("Error: member NOBODY not found"), line


def test_lang_is_accepted_anywhere_on_the_line(db):
    result = run(db, "points", "balance", "--lang", "zh", "NOBODY")
    assert result.stderr.startswith("错误: 找不到会员 NOBODY")


@pytest.mark.parametrize("args, env, named", [
    (("--lang", "fr"), {}, "--lang"),
    (("--lang=de",), {"LANG": "zh_CN.UTF-8"}, "--lang"),
    (("--lang",), {}, "--lang"),
    ((), {"LOYALTY_LANG": "klingon"}, "LOYALTY_LANG"),
])
def test_a_bad_language_is_a_usage_error(db, args, env, named):
    result = run(db, "members", "list", *args, env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert lines[0].startswith("错误:" if env.get("LANG", "").startswith("zh") else "Error:")


def test_english_never_opens_a_catalogue(tmp_path):
    code = ("import sys; sys.argv = ['loyalty', '--db', 'x.db', 'members', '--help']\n"
            "from loyalty_cli.cli import app\n"
            "from loyalty_cli import i18n\n"
            "try:\n    app(prog_name='loyalty')\nexcept SystemExit:\n    pass\n"
            "print('LOADED', i18n._loaded, i18n._catalogue)")
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "LOYALTY_LANG")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**env, "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)})
    assert "Usage:" in proc.stdout
    assert "LOADED {} None" in proc.stdout, proc.stdout + proc.stderr


# -- what people read ----------------------------------------------------------------------------
def test_the_readme_first_session_prints_chinese(tmp_path, monkeypatch):
    steps = first_session((ROOT / "README.md").read_text(encoding="utf-8"))
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "sample_data").symlink_to(SAMPLE)
    english = {command: actual for command, __, actual in run_session(steps, shop, tmp_path)}
    for name in list(shop.iterdir()):
        if name.name != "sample_data":
            name.unlink()
    chinese = run_session(steps, shop, tmp_path / "zh", LANG="zh_CN.UTF-8")
    assert len(chinese) >= 8
    for command, __, actual in chinese:
        if command == "echo $?":
            assert actual == english[command]  # the exit code does not change with the language
            continue
        assert any(CJK.search(line) for line in actual), f"`{command}` printed no Chinese:\n" + "\n".join(actual)
    said = {command: "\n".join(actual) for command, __, actual in chinese}
    assert "数据库已就绪" in said["loyalty --db shop.db init"]
    assert said["loyalty --db shop.db members import sample_data/members.csv"] == (
        "读取 300 行：新建 300，更新 0，未变 0，拒绝 0")
    show = said["loyalty --db shop.db members show M0042 --as-of 2026-10-31"]
    assert "会员 M0042" in show and "余额" in show and "4,115 积分" in show
    assert said["loyalty --db shop.db points redeem M0042 99999 --at 2026-10-31"] == (
        "错误: 会员 M0042 可用 3,595 积分，不足 99,999")
    assert said["loyalty --db shop.db db check"] == "ok：全部检查通过"


@pytest.fixture
def shop(tmp_path):
    """The sample shop, loaded, with a reward, a voucher and some feedback (as `make demo` does)."""
    from tests.helpers import fresh_db

    db = fresh_db(tmp_path / "shop.db")
    ok(db, "program", "load", SAMPLE / "program.toml")
    ok(db, "members", "import", SAMPLE / "members.csv")
    ok(db, "purchases", "import", SAMPLE / "purchases.csv")
    ok(db, "rewards", "add", "COFFEE", "--name", "Free coffee", "--cost", "150")
    ok(db, "points", "redeem", "M0042", "--reward", "COFFEE", "--at", "2026-10-25T16:15")
    ok(db, "feedback", "add", "M0042", "9", "--at", "2026-10-30")
    return db


MACHINE_OUTPUT = [
    ("members", "show", "M0042", "--as-of", "2026-10-31", "--json"),
    ("members", "list", "--json", "--limit", "20"),
    ("members", "list", "--csv"),
    ("points", "balance", "M0042", "--as-of", "2026-10-31", "--json"),
    ("points", "history", "M0042", "--json"),
    ("points", "history", "M0042", "--csv"),
    ("tiers", "list", "--json"),
    ("tiers", "history", "M0042", "--json"),
    ("tiers", "recalc", "--as-of", "2026-10-31", "--dry-run", "--json"),
    ("rewards", "list", "--json"),
    ("vouchers", "list", "--csv"),
    ("report", "rfm", "--as-of", "2026-10-31", "--json"),
    ("report", "rfm", "--as-of", "2026-10-31", "--csv"),
    ("report", "segments", "--as-of", "2026-10-31", "--json"),
    ("report", "pareto", "--as-of", "2026-10-31", "--json"),
    ("report", "churn", "--as-of", "2026-10-31", "--json"),
    ("report", "liability", "--as-of", "2026-10-31", "--json"),
    ("report", "birthdays", "--as-of", "2026-10-31", "--json"),
    ("report", "expiring", "--as-of", "2026-10-31", "--csv"),
    ("report", "anomalies", "--as-of", "2026-10-31", "--json"),
    ("report", "anomalies", "--as-of", "2026-10-31", "--csv"),
    ("dashboard", "--as-of", "2026-10-31", "--json"),
    ("program", "show", "--json"),
    ("db", "check", "--json"),
    ("purchases", "import", str(SAMPLE / "purchases.csv"), "--dry-run", "--json"),
]


def test_json_and_csv_are_byte_identical_in_every_language(shop):
    for args in MACHINE_OUTPUT:
        english = ok(shop, *args)
        chinese = ok(shop, *args, env=ZH)
        assert chinese.stdout == english.stdout, args
        assert english.stdout.strip(), args


def test_a_refused_import_lists_its_bad_rows_in_english_json(tmp_path, db):
    bad = tmp_path / "bad.csv"
    bad.write_text("purchase_id,member_id,purchased_at,amount\nP1,M1,2026-01-01,abc\n", encoding="utf-8")
    english = run(db, "purchases", "import", bad, "--json")
    chinese = run(db, "purchases", "import", bad, "--json", env=ZH)
    assert (english.exit_code, chinese.exit_code) == (3, 3)
    assert chinese.stdout == english.stdout
    assert "amount must be a number" in json.loads(chinese.stdout)["errors"][0]["message"]
    assert chinese.stderr.startswith("错误: ") and "金额必须是" in chinese.stderr


def test_tables_headers_segments_and_help_are_chinese(shop):
    segments = ok(shop, "report", "segments", "--as-of", "2026-10-31", env=ZH).stdout
    assert "分群" in segments.splitlines()[1] and "重要价值" in segments and "流失风险" in segments
    history = ok(shop, "points", "history", "M0042", env=ZH).stdout
    assert "消费积分" in history and "兑换" in history
    anomalies = ok(shop, "report", "anomalies", "--as-of", "2026-10-31", env=ZH).stdout
    assert "单日消费过多" in anomalies and "一天 6 笔消费（超过每天 5 笔）" in anomalies
    help_text = ok(shop, "points", "redeem", "--help", env=ZH).stdout
    assert help_text.startswith("用法：loyalty points redeem")
    assert "使用积分，或兑换奖品券" in help_text and "显示此帮助并退出。" in help_text
    assert "示例:\n    loyalty points redeem M0001 250" in help_text  # the example's commands stay as typed
    assert "选项:" in help_text and "参数:" in help_text


def test_the_dashboard_fits_80_by_24_in_chinese(shop):
    result = run(shop, "dashboard", "--as-of", "2026-10-31", env={**ZH, "COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and "会员看板 · 截至 2026-10-31" in lines[0]
    assert len(lines) <= 24
    assert max(cells(line) for line in lines) <= 80, max(lines, key=cells)


def test_piped_tables_line_up_chinese_names_with_latin_ones(db):
    ok(db, "members", "add", "--id", "M1", "--name", "张伟", "--joined", "2026-01-02")
    ok(db, "members", "add", "--id", "M2", "--name", "Ann", "--joined", "2026-01-02")
    ok(db, "members", "add", "--id", "M3", "--name", "欧阳娜娜 Nana", "--joined", "2026-01-02")
    for env in ({}, ZH):
        lines = ok(db, "members", "list", env=env).stdout.splitlines()
        rule = lines[1]
        assert set(rule) == {"-", " "}
        # Each column starts at the same terminal cell on every line: the cells under the rule's gaps
        # are blank on every line, and each column's text begins right after a gap.
        starts = [m.start() for m in re.finditer(r"-+", rule)]
        for line in [lines[0], *lines[2:]]:
            grid = "".join(ch * 2 if cells(ch) == 2 else ch for ch in line)  # one character per cell
            for start in starts[1:]:
                assert grid[start - 2:start] == "  ", (line, start)
            assert cells(line) <= len(rule)
        names = {line.split()[1] for line in lines[2:]}
        assert {"张伟", "Ann", "欧阳娜娜"} <= names


def test_a_record_lines_up_chinese_labels(db):
    ok(db, "members", "add", "--id", "M1", "--name", "张伟", "--email", "zhang.wei@shop.example",
       "--joined", "2026-01-02")
    lines = ok(db, "members", "show", "M1", "--as-of", "2026-01-02", env=ZH).stdout.splitlines()
    assert lines[0] == "会员 M1"
    values_at = {cells(line) - cells(line.split("  ")[-1].lstrip()) for line in lines[1:] if line.split()[1:]}
    assert len(values_at) == 1, lines  # every value starts at the same terminal cell


# -- the currency symbol --------------------------------------------------------------------------
def test_the_currency_symbol_is_shown_to_people_only(shop):
    ok(shop, "program", "set", "currency_symbol", "¥", "--from", "2026-01-01")
    show = ok(shop, "members", "show", "M0042", "--as-of", "2026-10-31").stdout
    assert "spend in window  ¥2,235.42" in show and "Platinum: ¥2,764.58 to go" in show
    assert re.search(r"净销售额 +¥[0-9,]+\.[0-9]{2} +¥[0-9,]+\.[0-9]{2}", ok(shop, "dashboard", "--as-of", "2026-10-31", env=ZH).stdout)
    doc = json.loads(ok(shop, "members", "show", "M0042", "--as-of", "2026-10-31", "--json").stdout)
    assert doc["spend_in_window"] == "2235.42"
    assert "¥" not in ok(shop, "report", "rfm", "--as-of", "2026-10-31", "--csv").stdout
    assert "¥" not in ok(shop, "dashboard", "--as-of", "2026-10-31", "--json").stdout


@pytest.mark.parametrize("value", ["12", "¥ ", "-", "TOOLONG", '"'])
def test_a_bad_currency_symbol_is_refused(db, value):
    result = run(db, "program", "set", "currency_symbol", value)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: currency_symbol must be 1-4 characters")
    assert "currency_symbol" not in ok(db, "program", "show").stdout


def test_a_programme_file_may_give_the_currency_symbol(tmp_path, db):
    toml = tmp_path / "p.toml"
    toml.write_text('currency_symbol = "€"\n', encoding="utf-8")
    ok(db, "program", "load", toml)
    assert 'currency_symbol = "€"' in ok(db, "program", "show").stdout
    toml.write_text('currency_symbol = 5\n', encoding="utf-8")
    assert run(db, "program", "load", toml).exit_code == 3


# -- the Chinese sample shop -------------------------------------------------------------------
def test_the_chinese_sample_shop_loads_with_its_tiers_and_yuan(db):
    zh = SAMPLE / "zh"
    ok(db, "program", "load", zh / "program.toml")
    assert ok(db, "members", "import", zh / "members.csv", env=ZH).stdout == "读取 200 行：新建 200，更新 0，未变 0，拒绝 0\n"
    imported = json.loads(ok(db, "purchases", "import", zh / "purchases.csv", "--json").stdout)
    assert imported["imported"] >= 3000 and imported["rejected"] == 0
    rows = json.loads(ok(db, "members", "import", zh / "members.csv", "--json", "--dry-run").stdout)
    assert rows["unchanged"] == 200
    tiers = ok(db, "tiers", "list", "--as-of", "2026-10-31", env=ZH).stdout
    for name in ("铜卡", "银卡", "金卡", "白金卡"):
        assert name in tiers
    assert "¥2,500.00" in tiers
    members = (zh / "members.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert all(",+86 1" in line for line in members)
    assert all(CJK.search(line.split(",")[1]) for line in members)


def test_a_failed_db_check_says_its_problems_in_english_json_and_chinese_lines(tmp_path):
    from tests.helpers import fresh_db
    from tests.test_tamper import some_activity, tamper

    db = fresh_db(tmp_path / "shop.db")
    some_activity(db)
    tamper(db)
    english = run(db, "db", "check", "--json")
    chinese = run(db, "db", "check", "--json", env=ZH)
    assert (english.exit_code, chinese.exit_code) == (4, 4)
    assert chinese.stdout == english.stdout and "behind the tool's back" in english.stdout
    lines = run(db, "db", "check", env=ZH).stderr.splitlines()
    assert lines[0].startswith("错误: db check 发现 ") and "个问题" in lines[0]
    assert any("被绕过本工具修改" in line for line in lines[1:]), lines
    assert all(CJK.search(line) for line in lines), lines  # every problem in Chinese, the schema's too
    assert any("缺失：它本该拒绝的操作" in line for line in lines), lines


def test_every_kind_of_bad_row_is_english_in_json_and_chinese_on_stderr(tmp_path, db):
    ok(db, "members", "add", "--id", "M1", "--name", "张伟", "--joined", "2026-01-02")
    bad = tmp_path / "bad.csv"
    bad.write_text("purchase_id,member_id,purchased_at,amount,kind,refund_of\n"
                   "P1,M1,2026-01-05,abc,sale,\n"          # not an amount
                   "P2,M9,2026-01-05,5.00,sale,\n"         # no such member
                   "P3,M1,2026-01-05,5.00,gift,\n"         # not a kind
                   "P4,M1,2026-01-05,5.00,sale,P1\n"       # a sale refunding
                   "P5,M1,2099-01-05,5.00,sale,\n"         # dated after today
                   "P6,,2026-01-05,5.00,sale,\n"           # no member
                   "P7,M1,2026-01-05\n"                    # too few cells
                   "P8,M1,2026-01-05,5.00,refund,P404\n",  # refunds nothing recorded
                   encoding="utf-8")
    members = tmp_path / "members.csv"
    members.write_text("member_id,name,email,phone,birthday,joined_on,referred_by\n"
                       "M2,Ann,not-an-email,,,,\nM3,Bo,,12,,,\nM4,Cy,,,2099-01-01,,\nM5,Di,,,,,M404\n", encoding="utf-8")
    for args in (("purchases", "import", bad), ("members", "import", members)):
        english = run(db, *args, "--json")
        chinese = run(db, *args, "--json", env=ZH)
        assert (english.exit_code, chinese.exit_code) == (3, 3)
        assert chinese.stdout == english.stdout, args
        shown = run(db, *args, env=ZH).stderr.splitlines()
        assert len(shown) == len(json.loads(english.stdout)["errors"]) + 1
        assert all(CJK.search(line) for line in shown), shown


def test_a_long_chinese_value_wraps_within_the_width(shop):
    for columns in ("40", "46", "50", "56", "60", "80"):
        lines = ok(shop, "members", "show", "M0042", "--as-of", "2026-10-31", env={**ZH, "COLUMNS": columns}).stdout
        assert max(cells(line) for line in lines.splitlines()) <= int(columns), lines
        assert "即将过期" in lines and "2027-01-31" in lines  # wrapped, not cut
