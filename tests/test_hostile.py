"""Hostile input files: never a traceback; exit 0 or 3; nothing changed when a file is rejected.

The corpus in tests/data/hostile/ holds the shapes a till export or a prankster
produces (see the file names); hypothesis adds random bytes with and without a
valid header.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loyalty_cli import members
from loyalty_cli.cli import app
from loyalty_cli.store import Store
from tests.db import connect, raw, row

pytestmark = pytest.mark.any_backend  # every test opens a database: a copy of the template, or its own

CORPUS = Path(__file__).parent / "data" / "hostile"
HEADER = b"purchase_id,member_id,purchased_at,amount,category,kind,refund_of\n"
EXAMPLES = 3000 if os.environ.get("LOYALTY_STRESS") else 150  # `make stress` feeds many more random files

# Files a strict importer accepts (every row valid); all the others must be rejected (exit 3).
ACCEPTED = {
    "header_only.csv": 0,
    "crlf.csv": 2,
    "duplicate_ids_same_data.csv": 1,
    "formula_injection.csv": 1,
    "sql_text.csv": 1,
    "header_whitespace.csv": 1,
    "thousands_of_columns.csv": 1,  # extra columns are ignored
}


class Template:
    """A database with member M1 and one earlier sale (`db`: a SQLite file, or on the PostgreSQL run
    a database's URL) and its chain key, copied fresh for each import."""

    def __init__(self, db, key: Path):
        self.db, self.key = db, key


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Template:
    from tests import backend

    folder = tmp_path_factory.mktemp("hostile")
    key = folder / "chain.key"  # the template's chain key, copied where each copy's commands look (import_file)
    if backend.postgres():
        db = backend.new_database(keep=True)  # outlives the test that made it
        shutil.copyfile(backend.key_file(), key)
        store = Store.open(db, key_file=key)
    else:
        db = folder / "template.db"
        store = Store.open(db, create=True, key_file=key)
    members.add(store, member_id="M1", name="Ana", joined_on="2024-01-01")
    store.close()
    runner = CliRunner()
    assert runner.invoke(app, ["--db", str(db), "purchases", "add", "M1", "10.00", "--id", "OLD1",
                               "--at", "2024-06-01"], env={"LOYALTY_KEY_FILE": str(key)}).exit_code == 0
    return Template(db, key)


def use_template_key(template: Template) -> None:
    """The template's chain key where this test's commands look for it (the default place)."""
    import os

    target = Path(os.environ["XDG_CONFIG_HOME"]) / "loyalty" / "chain.key"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template.key, target)


def snapshot(db):
    with connect(db) as conn:
        return (conn.execute("SELECT count(*), coalesce(sum(points), 0) FROM ledger").fetchone(),
                conn.execute("SELECT count(*) FROM purchases").fetchone(),
                conn.execute("SELECT count(*) FROM members").fetchone())


def import_file(template: Template, folder: Path, source: Path, *extra: str):
    from tests import backend

    if backend.postgres():
        db = backend.clone(template.db)
    else:
        db = folder / "shop.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template.db, db)
    use_template_key(template)
    before = snapshot(db)
    result = CliRunner().invoke(app, ["--db", str(db), "purchases", "import", str(source), *extra])
    return db, before, result


def assert_well_behaved(db, before, result):
    assert result.exit_code in (0, 3), (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 3:
        assert result.stderr.startswith("Error:")
        assert result.stdout == ""
        assert snapshot(db) == before
    else:
        check = CliRunner().invoke(app, ["--db", str(db), "db", "check"])
        assert check.exit_code == 0, check.stdout


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.csv")))
def test_hostile_file(template, tmp_path, name):
    db, before, result = import_file(template, tmp_path, CORPUS / name)
    assert_well_behaved(db, before, result)
    if name in ACCEPTED:
        assert result.exit_code == 0, result.stderr
        assert snapshot(db)[1][0] == before[1][0] + ACCEPTED[name]  # new purchases
    else:
        assert result.exit_code == 3, f"{name} was accepted: {result.stdout}"


def test_rejected_rows_are_reported_with_their_lines(template, tmp_path):
    _, _, result = import_file(template, tmp_path, CORPUS / "impossible_dates.csv", "--json")
    import json

    report = json.loads(result.stdout)
    assert result.exit_code == 3
    assert [e["line"] for e in report["errors"]] == [2, 3, 4, 5]
    assert report["imported"] == 0 and report["rejected"] == 4


def test_semicolons_with_bom_import_when_told(template, tmp_path):
    db, before, result = import_file(template, tmp_path, CORPUS / "bom_semicolon.csv", "--delimiter", ";")
    assert result.exit_code == 0, result.stderr
    assert snapshot(db)[1][0] == before[1][0] + 1


def test_latin1_imports_with_its_encoding(template, tmp_path):
    db, _, result = import_file(template, tmp_path, CORPUS / "latin1.csv", "--encoding", "latin-1")
    assert result.exit_code == 0, result.stderr
    assert row(db, "purchases", purchase_id="P1").category == "café"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=600), with_header=st.booleans())
def test_random_bytes_never_crash(template, tmp_path, body, with_header):
    source = tmp_path / "random.csv"
    source.write_bytes((HEADER if with_header else b"") + body)
    db, before, result = import_file(template, tmp_path, source)
    assert_well_behaved(db, before, result)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.sampled_from(
    ["P1", "P2", "M1", "M2", "2025-01-01", "2025-01-01T10:00", "1.00", "0", "-1", "1e2", "refund", "sale", "",
     "P1", "12,50", "2025-02-30", "\u00e9", "=1+1", "\x00"]), min_size=0, max_size=8), max_size=6))
def test_random_rows_never_crash(template, tmp_path, rows):
    source = tmp_path / "rows.csv"
    source.write_text(HEADER.decode() + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    db, before, result = import_file(template, tmp_path, source)
    assert_well_behaved(db, before, result)


# -- hostile text typed at the counter: exit 2, nothing stored ---------------------------------
from tests.helpers import fresh_db, ok as _ok, run as _run  # noqa: E402

RTL, ESC, NEL = "\u202e", "\x1b[2J", "\x85"


@pytest.mark.parametrize("args", [
    ["purchases", "add", "A", "1.00", "--id", " "],
    ["purchases", "add", "A", "1.00", "--id", "P" * 65],
    ["purchases", "add", "A", "1.00", "--id", f"A{RTL}B"],
    ["purchases", "add", "A", "1.00", "--category", f"a{ESC}b"],
    ["purchases", "add", "A", "1.00", "--category", "c" * 101],
    ["purchases", "refund", "S1", "1.00", "--id", f"R\a{RTL}1"],
    ["purchases", "refund", "S1", "0"],
    ["members", "add", "--name", "X", "--id", f"N{NEL}1"],
    ["members", "add", "--name", "X", "--id", f"N{RTL}1"],
    ["members", "add", "--name", "A\x7fnn"],
    ["members", "add", "--name", f"Ann{RTL}"],
    ["members", "add", "--name", "X", "--referred-by", ""],
    ["members", "add", "--name", "X", "--email", "a\x00b@x.com"],
    ["rewards", "add", "R5", "--name", f"X{ESC}", "--cost", "10"],
    ["rewards", "add", "R1", "--name", "", "--cost", "10"],
    ["rewards", "add", "R\a1", "--name", "Mug", "--cost", "10"],
    ["points", "award", "A", "5", "--reason", "x", "--by", f"{ESC}evil"],
    ["points", "award", "A", "5", "--reason", "x", "--by", "B" * 101],
    ["points", "award", "A", "5", "--reason", f"x{NEL}y"],
    ["feedback", "add", "A", "9", "--comment", f"nice{ESC}"],
])
def test_hostile_text_at_the_counter_is_a_usage_error(tmp_path, args):
    db = fresh_db(tmp_path / "shop.db")
    _ok(db, "members", "add", "--id", "A", "--name", "Ann", "--joined", "2025-01-01")
    _ok(db, "purchases", "add", "A", "5.00", "--id", "S1", "--at", "2025-02-01")
    before = [raw(db, f"SELECT * FROM {t}") for t in ("members", "purchases", "ledger", "rewards", "feedback")]
    result = _run(db, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error:") and "Traceback" not in result.output
    assert [raw(db, f"SELECT * FROM {t}") for t in ("members", "purchases", "ledger", "rewards", "feedback")] == before


def test_the_operator_from_the_environment_is_checked_too(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    _ok(db, "members", "add", "--id", "A", "--name", "Ann", "--joined", "2025-01-01")
    result = _run(db, "points", "award", "A", "5", "--reason", "x", env={"LOYALTY_OPERATOR": "\x1b[31mop\n2"})
    assert result.exit_code == 2 and "LOYALTY_OPERATOR" in result.stderr
    doc = _run(db, "points", "award", "A", "5", "--reason", "x", "--json", env={"LOYALTY_OPERATOR": "Zoë Ørsted"})
    assert doc.exit_code == 0 and raw(db, "SELECT by FROM ledger WHERE kind = 'award'") == [("Zoë Ørsted",)]


def test_names_in_any_script_are_welcome(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    for name in ("Zoë Ørsted", "محمد", "王小明", "नमस्ते", "Ana\u200dMaria"):  # ZWJ, ZWNJ-like joiners are text
        assert _run(db, "members", "add", "--name", name).exit_code == 0
