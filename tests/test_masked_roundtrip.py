"""A round trip through a spreadsheet (issue 15): a masked export imported again must never write
stars over the real emails and phones. Masked CSV exports say so in their header (email_masked,
phone_masked); `members import` refuses such a file, and any cell that looks masked, with the line."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.db import members

MEMBERS = ("member_id,name,email,phone\n"
           "M1,Ana Li,ana.li@shop.example,+44 7700 900001\n"
           "M2,Bo Chen,bo.chen@shop.example,07700 900002\n")
REAL = [("M1", "ana.li@shop.example", "+44 7700 900001"), ("M2", "bo.chen@shop.example", "07700 900002")]


@pytest.fixture
def shop(run, tmp_path, db):
    assert run("init").exit_code == 0
    f = tmp_path / "members.csv"
    f.write_text(MEMBERS)
    assert run("members", "import", f).exit_code == 0
    return lambda: [(m.member_id, m.email, m.phone) for m in members(db)]


def test_a_masked_members_export_imported_again_is_refused_and_changes_nothing(run, shop, tmp_path):
    exported = run("members", "list", "--csv")
    assert exported.exit_code == 0
    header = next(csv.reader(io.StringIO(exported.stdout)))
    assert "email_masked" in header and "phone_masked" in header and "email" not in header
    f = tmp_path / "export.csv"
    f.write_text(exported.stdout)
    r = run("members", "import", f)
    assert r.exit_code == 3 and r.stdout == ""
    assert r.stderr.startswith(f"Error: {f}: the header has email_masked and phone_masked")
    assert "--show-pii" in r.stderr
    assert shop() == REAL


def test_an_export_with_show_pii_round_trips(run, shop, tmp_path):
    exported = run("members", "list", "--csv", "--show-pii").stdout
    assert next(csv.reader(io.StringIO(exported)))[:4] == ["member_id", "name", "email", "phone"]
    f = tmp_path / "export.csv"
    f.write_text(exported)
    r = run("members", "import", f, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["unchanged"] == 2
    assert shop() == REAL


def test_masked_cells_under_plain_headers_are_bad_rows_named_by_line(run, shop, tmp_path):
    # An older export, or masked cells pasted into a till's file: every such row is refused.
    f = tmp_path / "pasted.csv"
    f.write_text("member_id,name,email,phone\nM1,Ana Li,a***@shop.example,\nM2,Bo Chen,,********0002\n")
    r = run("members", "import", f, "--json")
    assert r.exit_code == 3
    errors = json.loads(r.stdout)["errors"]
    assert [e["line"] for e in errors] == [2, 3]
    assert "masked" in errors[0]["message"] and "masked" in errors[1]["message"]
    assert shop() == REAL


@pytest.mark.parametrize("args", [
    ("members", "add", "--name", "Cy", "--email", "c***@shop.example"),
    ("members", "add", "--name", "Cy", "--phone", "*******0003"),
    ("members", "edit", "M1", "--email", "a***@shop.example"),
    ("members", "edit", "M1", "--phone", "********0001"),
])
def test_add_and_edit_refuse_a_masked_email_or_phone(run, shop, args):
    r = run(*args)
    assert r.exit_code == 2 and r.stdout == ""
    assert "masked value" in r.stderr and len(r.stderr.splitlines()) == 1
    assert shop() == REAL


@pytest.mark.parametrize("report", [
    ("report", "churn", "--as-of", "2026-12-31", "--days", "1"),
    ("report", "birthdays", "--as-of", "2027-04-01", "--days", "30"),
    ("report", "expiring", "--as-of", "2027-01-01", "--days", "60"),
])
def test_every_masked_csv_list_says_so_in_its_header(run, shop, tmp_path, report):
    sales = tmp_path / "sales.csv"
    sales.write_text("purchase_id,member_id,purchased_at,amount\nP1,M1,2026-01-05,10.00\n")
    assert run("purchases", "import", sales).exit_code == 0
    assert run("members", "edit", "M1", "--birthday", "1990-04-12").exit_code == 0
    masked = run(*report, "--csv").stdout
    header = next(csv.reader(io.StringIO(masked)))
    assert "email_masked" in header and "phone_masked" in header and "email" not in header
    assert "a***@shop.example" in masked and "ana.li@" not in masked
    shown = run(*report, "--csv", "--show-pii").stdout
    header = next(csv.reader(io.StringIO(shown)))
    assert "email" in header and "email_masked" not in header and "ana.li@shop.example" in shown
