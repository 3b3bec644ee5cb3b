"""`loyalty members import FILE` (SPEC §5): upsert by member_id, else by email; all or nothing.

Each test writes its own small CSV, runs the import through the CLI and reads the
database back (tests/db.py).
"""

from __future__ import annotations

import csv
import json
import re
import stat
import time

import pytest

import tests.db as saved
from tests.db import entries, member, raw

HEADER = "member_id,name,email,phone,birthday,joined_on,referred_by\n"


@pytest.fixture
def write(tmp_path):
    """`write(text, name="members.csv", encoding="utf-8") -> path` of a CSV written exactly as given."""

    def make(text, name="members.csv", encoding="utf-8"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return make


@pytest.fixture
def members(db):
    """`members()`: every member as (member_id, name, email, phone, birthday, joined_on, referred_by), by id."""

    def rows():
        return [(m.member_id, m.name, m.email, m.phone, m.birthday, m.joined_on, m.referred_by) for m in saved.members(db)]

    return rows


def summary(result) -> dict:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def reported_lines(stderr: str) -> list[int]:
    """The line numbers listed under the `Error:` line (`  line 3: …`)."""
    return [int(n) for n in re.findall(r"^  line (\d+): ", stderr, flags=re.M)]


# -- creating and updating --------------------------------------------------------------


def test_import_creates_members(run, write, members):
    path = write(HEADER +
                 "M1,Ana Li,ana@shop.example,07700 900001,1990-04-12,2025-01-10,\n"
                 "M2,Bo Chen,bo@shop.example,,,2025-02-01,M1\n"
                 "00042,Cy Park,,,,2025-03-15,\n")
    result = run("members", "import", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "3 rows read: 3 created, 0 updated, 0 unchanged, 0 rejected\n"
    assert members() == [
        ("00042", "Cy Park", None, None, None, "2025-03-15", None),
        ("M1", "Ana Li", "ana@shop.example", "07700 900001", "1990-04-12", "2025-01-10", None),
        ("M2", "Bo Chen", "bo@shop.example", None, None, "2025-02-01", "M1"),
    ]


def test_import_json_summary(run, write):
    path = write(HEADER + "M1,Ana Li,,,,2025-01-10,\nM2,Bo Chen,,,,2025-01-10,\n")
    result = run("members", "import", path, "--json")
    assert result.exit_code == 0
    assert summary(result) == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}


def test_reimporting_the_same_file_changes_nothing(run, write, members):
    path = write(HEADER + "M1,Ana Li,ana@shop.example,,,2025-01-10,\nM2,Bo Chen,,,,2025-01-10,M1\n")
    assert run("members", "import", path).exit_code == 0
    before = members()
    result = run("members", "import", path, "--json")
    assert result.exit_code == 0
    assert summary(result)["unchanged"] == 2
    assert summary(result)["created"] == 0
    assert members() == before


def test_reimport_with_a_changed_phone_updates_by_member_id(run, write, members):
    run("members", "import", write(HEADER + "M1,Ana Li,ana@shop.example,07700 900001,1990-04-12,2025-01-10,\n"))
    result = run("members", "import", write(HEADER + "M1,Ana Li,ana@shop.example,07700 999999,1990-04-12,2025-01-10,\n",
                                            name="again.csv"), "--json")
    assert result.exit_code == 0
    assert summary(result)["updated"] == 1
    assert members() == [("M1", "Ana Li", "ana@shop.example", "07700 999999", "1990-04-12", "2025-01-10", None)]


def test_a_row_with_only_an_email_updates_the_member_with_that_email(run, write, members):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--email", "ana@shop.example", "--joined", "2025-01-10")
    # Emails are compared case-insensitively: ANA@Shop.Example is Ana.
    result = run("members", "import", write("email,phone\nANA@Shop.Example,07700 900001\n"), "--json")
    assert result.exit_code == 0
    assert summary(result)["updated"] == 1
    assert summary(result)["created"] == 0
    assert members() == [("M1", "Ana Li", "ana@shop.example", "07700 900001", None, "2025-01-10", None)]


def test_a_row_with_only_an_unknown_email_enrols_a_new_member(run, write, members):
    result = run("members", "import", write("email,name\nnew@shop.example,Nia Obi\n"), "--json")
    assert result.exit_code == 0
    assert summary(result)["created"] == 1
    [(member_id, name, email, *_)] = members()
    assert re.fullmatch(r"L\d{8}", member_id)
    assert (name, email) == ("Nia Obi", "new@shop.example")


def test_blank_cells_leave_fields_as_they_are(run, write, members):
    run("members", "import", write(HEADER + "M1,Ana Li,ana@shop.example,07700 900001,1990-04-12,2025-01-10,\n"))
    result = run("members", "import", write(HEADER + "M1,,,07700 999999,,,\n", name="phone-only.csv"))
    assert result.exit_code == 0
    assert members() == [("M1", "Ana Li", "ana@shop.example", "07700 999999", "1990-04-12", "2025-01-10", None)]


def test_an_email_of_another_member_in_any_case_is_rejected_never_duplicated(run, write, members):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--email", "ana@shop.example", "--joined", "2025-01-10")
    result = run("members", "import", write(HEADER + "M9,Ana Twin,ANA@SHOP.EXAMPLE,,,2025-01-10,\n"))
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [2]
    assert [m[0] for m in members()] == ["M1"]


def test_the_same_email_twice_in_one_file_is_rejected(run, write, members):
    path = write(HEADER + "M1,Ana Li,ana@shop.example,,,2025-01-10,\nM2,Ana Two,Ana@Shop.example,,,2025-01-10,\n")
    result = run("members", "import", path)
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [3]
    assert members() == []


def test_new_members_get_the_signup_bonus_dated_joined_on_once(run, write, db, tmp_path):
    program = tmp_path / "program.toml"
    program.write_text("[earn]\nsignup_bonus = 50\n")
    assert run("program", "load", program).exit_code == 0
    path = write(HEADER + "M1,Ana Li,,,,2025-01-10,\nM2,Bo Chen,,,,2025-02-01,\n")
    assert run("members", "import", path).exit_code == 0
    assert run("members", "import", path).exit_code == 0  # a re-import awards nothing again
    assert [(e.member_id, e.at, e.kind, e.points) for e in entries(db)] == [
        ("M1", "2025-01-10T00:00:00", "signup", 50),
        ("M2", "2025-02-01T00:00:00", "signup", 50),
    ]
    assert [(m.member_id, m.balance) for m in saved.members(db)] == [("M1", 50), ("M2", 50)]


# -- referrals --------------------------------------------------------------------------


def test_referred_by_an_earlier_row_of_the_same_file(run, write, members):
    path = write(HEADER + "M1,Ana Li,,,,2025-01-10,\nM2,Bo Chen,,,,2025-01-11,M1\n")
    result = run("members", "import", path)
    assert result.exit_code == 0, result.stderr
    assert [(m[0], m[6]) for m in members()] == [("M1", None), ("M2", "M1")]


def test_referred_by_a_missing_member_rejects_the_whole_file(run, write, members):
    path = write(HEADER + "M1,Ana Li,,,,2025-01-10,\nM2,Bo Chen,,,,2025-01-11,NOBODY\nM3,Cy Park,,,,2025-01-12,\n")
    result = run("members", "import", path)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")
    assert "line 3" in result.stderr.splitlines()[0]
    assert reported_lines(result.stderr) == [3]
    assert "NOBODY" in result.stderr
    assert members() == []


def test_referred_by_a_later_row_is_not_yet_a_member(run, write, members):
    path = write(HEADER + "M2,Bo Chen,,,,2025-01-11,M3\nM3,Cy Park,,,,2025-01-12,\n")
    result = run("members", "import", path)
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [2]
    assert members() == []


def test_a_member_cannot_refer_themself(run, write, members):
    result = run("members", "import", write(HEADER + "M1,Ana Li,,,,2025-01-10,M1\n"))
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [2]
    assert members() == []


# -- all or nothing, every bad row reported ------------------------------------------------


BAD_FILE = (
    HEADER +
    "M1,Ana Li,ana@shop.example,,,2025-01-10,\n"      # line 2: good
    "M2,Bo Chen,bo-at-shop,,,2025-01-10,\n"           # line 3: bad email
    "M3,Cy Park,,,,2025-01-10,\n"                     # line 4: good
    "M4,Di Okafor,,,1990-02-30,2025-01-10,\n"         # line 5: no such day
    ",Nobody,,,,,\n"                                  # line 6: neither member_id nor email
    "M5,Eve Ray,,call me,,2025-01-10,\n"              # line 7: bad phone
    "M6,Fay Wu,,,,15/01/2025,\n"                      # line 8: joined_on not ISO
)


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_written(run, write, members):
    result = run("members", "import", write(BAD_FILE))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith("Error:")
    assert reported_lines(result.stderr) == [3, 5, 6, 7, 8]
    assert "Traceback" not in result.stderr
    assert members() == []


def test_json_report_of_a_rejected_file(run, write, members):
    result = run("members", "import", write(BAD_FILE), "--json")
    assert result.exit_code == 3
    doc = summary(result)
    assert [e["line"] for e in doc["errors"]] == [3, 5, 6, 7, 8]
    assert "email" in doc["errors"][0]["message"]
    assert "birthday" in doc["errors"][1]["message"]
    assert (doc["rows"], doc["rejected"]) == (7, 5)
    assert members() == []


def test_line_numbers_count_physical_lines_of_quoted_cells(run, write, members):
    path = write(HEADER +
                 'M1,"Ana\nLi",,,,2025-01-10,\n'                    # lines 2-3: a name with a line break
                 "M2,Bo Chen,bo-at-shop,,,2025-01-10,\n")           # line 4
    result = run("members", "import", path)
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [2, 4]
    assert members() == []


def test_a_row_with_more_cells_than_the_header_is_rejected(run, write, members):
    result = run("members", "import", write("member_id,name\nM1,Ana Li\nM2,Bo Chen,extra\n"))
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [3]
    assert members() == []


def test_quiet_import_prints_nothing(run, write, members):
    result = run("members", "import", write(HEADER + "M1,Ana Li,,,,2025-01-10,\n"), "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert [m[0] for m in members()] == ["M1"]


def test_dry_run_reports_and_changes_nothing(run, write, members, db):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-01-10")
    before = members()
    path = write(HEADER + "M1,Ana Lee,,,,,\nM2,Bo Chen,,,,2025-01-10,M1\n")
    result = run("members", "import", path, "--dry-run", "--json")
    assert result.exit_code == 0
    assert summary(result) == {"rows": 2, "created": 1, "updated": 1, "unchanged": 0, "rejected": 0, "errors": []}
    assert members() == before
    assert "dry run" in run("members", "import", path, "--dry-run").stdout
    assert members() == before


def test_dry_run_of_a_bad_file_reports_every_problem(run, write, members):
    result = run("members", "import", write(BAD_FILE), "--dry-run")
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [3, 5, 6, 7, 8]
    assert members() == []


def test_skip_bad_imports_good_rows_and_writes_rejects(run, write, members, tmp_path, umask_zero):
    rejects = tmp_path / "rejects.csv"
    result = run("members", "import", write(BAD_FILE), "--skip-bad", "--rejects", rejects)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")
    assert reported_lines(result.stderr) == [3, 5, 6, 7, 8]
    assert [m[0] for m in members()] == ["M1", "M3"]
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    with open(rejects, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "member_id", "name", "email", "phone", "birthday", "joined_on", "referred_by"]
    assert [r[0] for r in rows[1:]] == ["3", "5", "6", "7", "8"]
    assert rows[1][2:] == ["M2", "Bo Chen", "bo-at-shop", "", "", "2025-01-10", ""]
    assert "email" in rows[1][1]
    assert "1990-02-30" in rows[2][1]


def test_skip_bad_with_nothing_bad_exits_zero_and_writes_no_rejects(run, write, tmp_path):
    rejects = tmp_path / "rejects.csv"
    result = run("members", "import", write(HEADER + "M1,Ana Li,,,,2025-01-10,\n"), "--skip-bad", "--rejects", rejects)
    assert result.exit_code == 0
    assert not rejects.exists()


def test_rejects_without_skip_bad_is_a_usage_error(run, write, tmp_path, members):
    run("init")
    result = run("members", "import", write(HEADER + "M1,Ana Li,,,,2025-01-10,\n"), "--rejects", tmp_path / "r.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error:")
    assert members() == []


# -- the shape of the file ------------------------------------------------------------------


def test_bom_semicolons_and_a_mapped_column(run, write, members):
    path = write("\ufeffCustomerNo;Name;Email\n7001;Ana Li;ana@shop.example\n7002;Bo Chen;\n")
    result = run("members", "import", path, "--delimiter", ";", "--map", "member_id=CustomerNo")
    assert result.exit_code == 0, result.stderr
    assert [m[:3] for m in members()] == [("7001", "Ana Li", "ana@shop.example"), ("7002", "Bo Chen", None)]


def test_delimiter_from_the_environment(run, write, members, monkeypatch):
    monkeypatch.setenv("LOYALTY_DELIMITER", ";")
    result = run("members", "import", write("member_id;name\nM1;Ana Li\n"))
    assert result.exit_code == 0, result.stderr
    assert [m[:2] for m in members()] == [("M1", "Ana Li")]


def test_headers_are_matched_by_name_in_any_order_and_case(run, write, members):
    result = run("members", "import", write("Name,EMAIL,Member_ID\nAna Li,ana@shop.example,M1\n"))
    assert result.exit_code == 0, result.stderr
    assert [m[:3] for m in members()] == [("M1", "Ana Li", "ana@shop.example")]


@pytest.mark.parametrize("header", ["member_id,name,name", "member_id,Email,EMAIL"])
def test_a_header_naming_a_column_twice_rejects_the_file(run, write, members, header):
    result = run("members", "import", write(header + "\nM1,Ana Li,x\n"))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error:")
    assert "twice" in result.stderr
    assert members() == []


def test_map_naming_an_unknown_field_is_a_usage_error(run, write):
    result = run("members", "import", write("CustomerNo\n7001\n"), "--map", "customer=CustomerNo")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error:")


def test_latin1_file_with_its_encoding(run, write, members):
    path = write("member_id,name\nM1,José Müller\n", encoding="latin-1")
    result = run("members", "import", path, "--encoding", "latin-1")
    assert result.exit_code == 0, result.stderr
    assert [m[:2] for m in members()] == [("M1", "José Müller")]


def test_latin1_file_read_as_utf8_is_rejected_not_a_traceback(run, write, members):
    path = write("member_id,name\nM1,José Müller\n", encoding="latin-1")
    result = run("members", "import", path)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")
    assert "--encoding" in result.stderr
    assert "Traceback" not in result.output
    assert members() == []


def test_an_empty_file_is_rejected(run, write):
    result = run("members", "import", write(""))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error:")


def test_a_missing_file_is_rejected(run, tmp_path):
    result = run("members", "import", tmp_path / "no-such.csv")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error:")
    assert "no-such.csv" in result.stderr


def test_date_format_applies_to_birthday_and_joined_on(run, write, members):
    path = write(HEADER + "M1,Ana Li,,,12/04/1990,10/01/2025,\n")
    result = run("members", "import", path, "--date-format", "%d/%m/%Y")
    assert result.exit_code == 0, result.stderr
    assert members() == [("M1", "Ana Li", None, None, "1990-04-12", "2025-01-10", None)]


# -- erased members -------------------------------------------------------------------------


def test_an_erased_member_named_in_a_later_import_is_rejected(run, write, members):
    run("members", "import", write(HEADER + "M1,Ana Li,ana@shop.example,07700 900001,,2025-01-10,\n"
                                            "M2,Bo Chen,,,,2025-01-10,\n"))
    assert run("members", "erase", "M1", "--yes").exit_code == 0
    result = run("members", "import", write(HEADER + "M2,Bo Chen,,07700 900002,,,\n"
                                                     "M1,Ana Li,,,,,\n", name="later.csv"))
    assert result.exit_code == 3
    assert reported_lines(result.stderr) == [3]
    assert "erased" in result.stderr
    assert members() == [
        ("M1", None, None, None, None, "2025-01-10", None),
        ("M2", "Bo Chen", None, None, None, "2025-01-10", None),  # all or nothing: line 2 not applied either
    ]


def test_skip_bad_still_rejects_the_erased_member(run, write, members, tmp_path):
    run("members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-01-10")
    run("members", "erase", "M1", "--yes")
    result = run("members", "import", write(HEADER + "M1,Ana Li,,,,,\nM2,Bo Chen,,,,2025-01-10,\n"),
                 "--skip-bad", "--rejects", tmp_path / "rejects.csv")
    assert result.exit_code == 3
    assert [m[:2] for m in members()] == [("M1", None), ("M2", "Bo Chen")]


# -- a big file -------------------------------------------------------------------------------


def test_import_100000_members(run, tmp_path, db):
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["member_id", "name", "email", "phone", "birthday", "joined_on", "referred_by"])
        for i in range(1, 100_001):
            writer.writerow([f"M{i:06d}", f"Member {i}", f"m{i}@shop.example", f"07700 {i:06d}",
                             f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}", f"2025-{1 + i % 12:02d}-01",
                             f"M{i - 1:06d}" if i % 10 == 0 else ""])
    started = time.perf_counter()
    result = run("members", "import", path, "--json")
    elapsed = time.perf_counter() - started
    print(f"imported 100,000 members in {elapsed:.1f} s")
    assert result.exit_code == 0, result.stderr
    assert summary(result) == {"rows": 100_000, "created": 100_000, "updated": 0, "unchanged": 0, "rejected": 0,
                               "errors": []}
    assert raw(db, "SELECT count(*), count(DISTINCT email), count(referred_by) FROM members") == [(100_000, 100_000, 10_000)]
    assert raw(db, "SELECT member_id, name, email, phone, birthday, joined_on, referred_by FROM members "
               "WHERE member_id = 'M100000'") == [
        ("M100000", "Member 100000", "m100000@shop.example", "07700 100000", "1950-05-13", "2025-05-01", "M099999")]


def test_the_import_date_is_the_joined_on_of_members_without_one(run, db, tmp_path):
    source = tmp_path / "new.csv"
    source.write_text("member_id,name\nM1,Ana\n")
    assert run("program", "set", "earn.signup_bonus", "25").exit_code == 0
    result = run("members", "import", source, "--at", "2026-02-03")
    assert result.exit_code == 0, result.stderr
    assert member(db, "M1").joined_on == "2026-02-03"
    assert [(e.kind, e.points, e.at) for e in entries(db)] == [("signup", 25, "2026-02-03T00:00:00")]
    assert run("members", "import", source, "--at", "2026-02-30").exit_code == 2
