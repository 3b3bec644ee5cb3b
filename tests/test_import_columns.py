"""What an import does with the header's columns it does not read, and the words of its messages
(issue 15 audit).

A column spelled almost like one the import reads (`categry`, `knd`, `emial`) would otherwise be
ignored and silently change what is recorded (a refund booked as a sale, a member without email):
the file is refused (exit 3, nothing written). A purchases file given to the members import, and a
members file given to the purchases import, say which import they belong to. A till's other extra
columns (cashier, VAT) stay allowed and are named in a note. Settings taken from the environment
are named with their variable; the file is named as given; a dry run writes no --rejects file;
large limits are grouped for people.
"""

from __future__ import annotations

import json

import pytest

from tests.db import balance, members, purchases
from tests.helpers import ok, one_error_line, run

PURCHASES = "purchase_id,member_id,purchased_at,amount"


@pytest.fixture
def shop(tmp_path):
    """A database made by `init`, with member M1 and sale S1 of 10.00 (10 points)."""
    db = tmp_path / "shop.db"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2025-01-01")
    ok(db, "purchases", "add", "M1", "10.00", "--at", "2025-02-01", "--id", "S1")
    return db


def state(db):
    return ([(m.member_id, m.name, m.email, m.balance) for m in members(db)],
            [(p.purchase_id, p.kind) for p in purchases(db)])


def test_a_misspelled_refund_column_refuses_the_file_instead_of_booking_a_sale(shop, tmp_path):
    (tmp_path / "typo.csv").write_text(f"{PURCHASES},categry,knd,refnd_of\nTY1,M1,2025-03-01,5,food,refund,S1\n")
    before = state(shop)
    result = run(shop, "purchases", "import", "typo.csv")
    assert result.exit_code == 3
    assert one_error_line(result) == (
        "Error: typo.csv: the header has 'categry', which is not a column loyalty reads: did you mean "
        "'category'? (rename it, or --map category=categry)")
    assert state(shop) == before
    for header, wrong, right in [(f"{PURCHASES},category,knd", "knd", "kind"),
                                 (f"{PURCHASES},kind,refnd_of", "refnd_of", "refund_of")]:
        (tmp_path / "t.csv").write_text(header + "\nTY1,M1,2025-03-01,5,food\n")
        result = run(shop, "purchases", "import", "t.csv", "--dry-run")
        assert result.exit_code == 3 and f"did you mean {right!r}? (rename it, or --map {right}={wrong})" in result.stderr
    assert state(shop) == before


def test_a_mapped_near_miss_is_read(shop, tmp_path):
    (tmp_path / "r.csv").write_text(f"{PURCHASES},knd,refnd_of\nR1,M1,2025-03-01,4.00,refund,S1\n")
    result = ok(shop, "purchases", "import", "r.csv", "--map", "kind=knd", "--map", "refund_of=refnd_of")
    assert "note:" not in result.stderr
    assert [p.kind for p in purchases(shop, purchase_id="R1")] == ["refund"]
    assert balance(shop, "M1") == 6


def test_a_misspelled_member_column_refuses_the_file(shop, loyalty_proc):
    before = state(shop)
    for header, wrong, right in [("member_id,name,emial", "emial", "email"), ("member_id,name,phne", "phne", "phone"),
                                 ("member_id,name,birth_day", "birth_day", "birthday")]:
        result = loyalty_proc("--db", shop, "members", "import", "-", input=f"{header}\nTY2,Typo Person,x\n")
        assert result.returncode == 3 and result.stdout == ""
        assert result.stderr.splitlines()[0] == (
            f"Error: standard input: the header has {wrong!r}, which is not a column loyalty reads: "
            f"did you mean {right!r}? (rename it, or --map {right}={wrong})")
    assert state(shop) == before


def test_a_purchases_file_given_to_members_import_is_refused(shop, tmp_path):
    (tmp_path / "purchases.csv").write_text(f"{PURCHASES},category\nP9,M7,2025-03-01,5.00,food\n")
    before = state(shop)
    for extra in ([], ["--dry-run"]):
        result = run(shop, "members", "import", "purchases.csv", *extra)
        assert result.exit_code == 3
        assert one_error_line(result) == ("Error: purchases.csv: it looks like a purchases file (it has purchase_id, "
                                          "purchased_at, amount): use loyalty purchases import")
    assert state(shop) == before


def test_a_members_file_given_to_purchases_import_says_so(shop, tmp_path):
    (tmp_path / "members.csv").write_text("member_id,name,email\nM7,Bo,bo@shop.example\n")
    result = run(shop, "purchases", "import", "members.csv")
    assert result.exit_code == 3
    assert one_error_line(result) == ("Error: members.csv: the header lacks the required column 'purchase_id'; "
                                      "it looks like a members file (it has name, email): use loyalty members import")


def test_other_unknown_columns_are_allowed_and_named_in_a_note(shop, tmp_path):
    (tmp_path / "till.csv").write_text(f"{PURCHASES},cashier,VAT\nP1,M1,2025-03-01,5.00,bob,0.83\n")
    result = ok(shop, "purchases", "import", "till.csv")
    assert result.stderr == "note: columns not read: cashier, VAT\n"
    assert balance(shop, "M1") == 15
    (tmp_path / "m.csv").write_text("member_id,name,till\nM2,Bo,3\n")
    assert ok(shop, "members", "import", "m.csv", "--dry-run").stderr == "note: columns not read: till\n"
    assert ok(shop, "members", "import", "m.csv", "-q").stderr == ""
    doc = json.loads(ok(shop, "purchases", "import", "till.csv", "--json").stdout)
    assert "ignored_columns" not in doc and doc["duplicates"] == 1  # the JSON summary keeps its keys


@pytest.mark.parametrize("var, value, words", [
    ("LOYALTY_ENCODING", "bogus", "Error: --encoding (or LOYALTY_ENCODING) 'bogus' is not a text encoding"),
    ("LOYALTY_DELIMITER", "ab", "Error: --delimiter (or LOYALTY_DELIMITER) must be one character"),
    ("LOYALTY_DATE_FORMAT", "%Q", "Error: --date-format (or LOYALTY_DATE_FORMAT) '%Q' has %Q"),
])
def test_a_bad_setting_from_the_environment_names_its_variable(shop, tmp_path, var, value, words):
    (tmp_path / "g.csv").write_text(f"{PURCHASES}\nP1,M1,2025-03-01,5.00\n")
    for command in ("purchases", "members"):
        result = run(shop, command, "import", "g.csv", env={var: value})
        assert result.exit_code == 2 and one_error_line(result).startswith(words)
    flag = {"LOYALTY_ENCODING": "--encoding", "LOYALTY_DELIMITER": "--delimiter", "LOYALTY_DATE_FORMAT": "--date-format"}
    typed = run(shop, "purchases", "import", "g.csv", flag[var], value)
    assert typed.exit_code == 2 and f"(or {var})" not in typed.stderr


def test_messages_name_the_file_as_given(shop, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.csv").write_text("purchase_id;member_id\n")
    result = run(shop, "purchases", "import", "in/day.csv")
    assert result.exit_code == 3 and one_error_line(result).startswith("Error: in/day.csv: the header lacks")
    result = run(shop, "purchases", "import", "/dev/zero")
    assert result.exit_code == 3 and result.stderr.startswith("Error: /dev/zero: a line is longer than 1,048,576")


def test_a_dry_run_writes_no_rejects_file(shop, tmp_path):
    keep = tmp_path / "keep.csv"
    keep.write_text("my own notes\n")
    (tmp_path / "d.csv").write_text(f"{PURCHASES}\nD1,M1,2025-03-01,5.00\nD2,M1,2025-03-01,abc\n")
    before = state(shop)
    result = run(shop, "purchases", "import", "d.csv", "--dry-run", "--skip-bad", "--rejects", "keep.csv")
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.splitlines()[0].startswith(
        "Error: d.csv: 1 bad row skipped (dry run: --rejects keep.csv not written); 2 rows checked (dry run")
    assert "line 3: amount must be a number" in result.stderr
    assert keep.read_text() == "my own notes\n"
    assert state(shop) == before
    result = run(shop, "purchases", "import", "d.csv", "--skip-bad", "--rejects", "keep.csv")
    assert result.exit_code == 3 and "written to keep.csv" in result.stderr
    assert keep.read_text().splitlines()[1].startswith("3,")


def test_large_limits_are_grouped_for_people(shop):
    result = run(shop, "purchases", "add", "M1", "99999999999.99")
    assert result.exit_code == 2
    assert one_error_line(result) == "Error: AMOUNT '99999999999.99' is too large (at most 10,000,000,000.00)"
    result = run(shop, "members", "list", env={"LOYALTY_BUSY_TIMEOUT": "-1"})
    assert result.exit_code == 2
    assert one_error_line(result) == "Error: LOYALTY_BUSY_TIMEOUT must be from 0 to 2,147,483 seconds, got '-1'"


def test_by_names_its_variable_only_when_the_value_came_from_it(shop):
    bad = "a\tb"
    typed = run(shop, "points", "award", "M1", "5", "--reason", "x", "--by", bad)
    assert typed.exit_code == 2 and one_error_line(typed).startswith("Error: --by must be 1-100 characters")
    from_env = run(shop, "points", "award", "M1", "5", "--reason", "x", env={"LOYALTY_OPERATOR": bad})
    assert from_env.exit_code == 2
    assert one_error_line(from_env).startswith("Error: --by (or LOYALTY_OPERATOR) must be 1-100 characters")
    assert balance(shop, "M1") == 10
