"""`members import` reads the members a file names in bulk (store.members.ImportLookups): a few
statements per chunk of rows, not about ten per row (each a round trip to a PostgreSQL server),
with exactly the results of asking the database row by row.

The worked file below is read in chunks of two rows (importer.CHUNK patched), so that each thing a
row can ask about (an id in another spelling, an email, a referrer, consent) was written by a row
of an earlier chunk, of the same chunk, or is already in the database:

    line 2  M1  Ana, ana@x, consent email yes        created
    line 3  m1  phone 07700 900001                   updated (m1 is M1)
    line 4  ana@x only, name Ana Li                  updated (the email is M1's)
    line 5  M2  referred by m1, email bo@x           created, referred by M1 (enrolled in this file)
    line 6  M1  email ana2@x                         updated: M1 moves to a new email, ana@x is free
    line 7  M3  email ana@x                          created (the email M1 gave up)
    line 8  M4  email ANA2@X                         rejected: ana2@x belongs to M1 now
    line 9  M5  referred by M9                       rejected: M9 is not enrolled
    line 10 bo@x only, consent sms yes               updated (M2's email), consent recorded
    line 11 M6  referred by OLD (in the database)    created
    line 12 DUP (merged into OLD)                    rejected: update OLD instead
"""

from __future__ import annotations

import json

import pytest

from loyalty_cli import importer
from tests import db as dbr
from tests.helpers import as_json, count_statements, fresh_db, ok, run

pytestmark = pytest.mark.any_backend  # every database made with fresh_db

HEADER = "member_id,name,email,phone,joined_on,referred_by,email_opt_in,sms_opt_in\n"
WORKED = (HEADER
          + "M1,Ana,ana@x.example,,2025-01-10,,yes,\n"
          + "m1,,,07700 900001,,,,\n"
          + ",Ana Li,ana@x.example,,,,,\n"
          + "M2,Bo,bo@x.example,,2025-02-01,m1,,\n"
          + "M1,,ana2@x.example,,,,,\n"
          + "M3,Cy,ana@x.example,,2025-03-01,,,\n"
          + "M4,Di,ANA2@X.EXAMPLE,,2025-03-01,,,\n"
          + "M5,Ed,,,2025-03-01,M9,,\n"
          + ",,bo@x.example,,,,,yes\n"
          + "M6,Flo,,,2025-04-01,old,,\n"
          + "dup,Dup Again,,,,,,\n")


def shop(tmp_path):
    """A database holding OLD, and DUP merged into OLD."""
    db = fresh_db(tmp_path / "shop.db")
    ok(db, "members", "add", "--id", "OLD", "--name", "Old Timer", "--joined", "2024-01-01")
    ok(db, "members", "add", "--id", "DUP", "--name", "Old Timer", "--joined", "2024-01-01")
    ok(db, "members", "merge", "DUP", "--into", "OLD", "--yes", "--at", "2025-01-01T09:00")
    return db


def imported(tmp_path, db, text, *options):
    path = tmp_path / "members.csv"
    path.write_text(text)
    return run(db, "members", "import", path, "--skip-bad", "--json", "--at", "2025-06-01", *options)


def profiles(db) -> list[tuple]:
    found = dbr.raw(db, "SELECT member_id, name, email, phone, joined_on, referred_by, email_opt_in, sms_opt_in "
                        "FROM members ORDER BY member_id")
    return [tuple(r) for r in found]


@pytest.mark.parametrize("chunk", [2, 1, 2000])
def test_the_worked_file_gives_the_same_members_whatever_the_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(importer, "CHUNK", chunk)
    db = shop(tmp_path)
    result = imported(tmp_path, db, WORKED)
    assert result.exit_code == 3, result.stderr
    assert json.loads(result.stdout) == {
        "rows": 11, "created": 4, "updated": 4, "unchanged": 0, "rejected": 3,
        "errors": [{"line": 8, "message": "that email already belongs to member M1"},
                   {"line": 9, "message": "referred_by names member M9, who is not enrolled (earlier rows of the file count)"},
                   {"line": 12, "message": "member DUP was merged into OLD: update OLD instead"}]}
    assert profiles(db) == [
        ("DUP", "Old Timer", None, None, "2024-01-01", None, 0, 0),
        ("M1", "Ana Li", "ana2@x.example", "07700 900001", "2025-01-10", None, 1, 0),
        ("M2", "Bo", "bo@x.example", None, "2025-02-01", "M1", 0, 1),
        ("M3", "Cy", "ana@x.example", None, "2025-03-01", None, 0, 0),
        ("M6", "Flo", None, None, "2025-04-01", "OLD", 0, 0),
        ("OLD", "Old Timer", None, None, "2024-01-01", None, 0, 0),
    ]
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr


def test_importing_the_file_again_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK", 2)
    db = shop(tmp_path)
    imported(tmp_path, db, WORKED)
    before = profiles(db)
    again = json.loads(imported(tmp_path, db, WORKED).stdout)
    # line 2 names ana@x.example, which is M3's now: rejected this time; line 4's row (that email
    # only) renames M3 "Ana Li", line 7 back to "Cy"; the other rows hold what the members hold.
    assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (0, 2, 5, 4)
    assert [e["line"] for e in again["errors"]] == [2, 8, 9, 12]
    assert profiles(db) == before


def test_a_thousand_new_members_cost_a_few_statements_per_chunk(tmp_path):
    db = shop(tmp_path)
    rows = [f"N{i:04d},Member {i},n{i}@x.example,,2025-01-{1 + i % 28:02d},{f'N{i - 7:04d}' if i % 10 == 9 else ''},,"
            for i in range(1000)]
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as patches:
        sent = count_statements(patches)
        summary = as_json(db, "members", "import", path, "--at", "2025-06-01")
    assert summary["created"] == 1000
    # Asked row by row it was over 10,000 statements (about ten a row); now a few per chunk of 2,000
    # rows plus the transaction's own (the lock, the ledger's and the chain's writes).
    assert len(sent) < 100, len(sent)
    assert dbr.member(db, "N0009").referred_by == "N0002"
    assert dbr.count(db, "members") == 1002
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr


def test_new_members_without_ids_and_consent_answers_cost_a_few_statements_per_chunk(tmp_path):
    """Members enrolled by email alone (their ids generated) and the opt-in columns: the ids are
    checked free and the answers written a chunk at a time, with every answer on record."""
    db = shop(tmp_path)
    rows = [(f",Member {i},n{i}@x.example,,2025-01-{1 + i % 28:02d},,yes,no" if i % 2 else
             f"N{i:04d},Member {i},n{i}@x.example,,2025-01-{1 + i % 28:02d},,no,yes") for i in range(1000)]
    rows.append(",Member 1 again,n1@x.example,,,,no,")  # the email's member (made two rows up) changes their mind
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as patches:
        sent = count_statements(patches)
        summary = as_json(db, "members", "import", path, "--at", "2025-06-01")
    assert (summary["created"], summary["updated"]) == (1000, 1)
    # Row by row it was about four statements a row more: a query for each generated id, and for
    # each answer an UPDATE of the member and an INSERT of the answer (over 3,000 here).
    assert len(sent) < 100, len(sent)
    generated = dbr.raw(db, "SELECT member_id, email_opt_in, sms_opt_in FROM members WHERE email = 'n3@x.example'")
    assert len(generated) == 1 and generated[0][0].startswith("L") and tuple(generated[0][1:]) == (1, 0)
    assert tuple(dbr.raw(db, "SELECT email_opt_in, sms_opt_in FROM members WHERE member_id = 'N0002'")[0]) == (0, 1)
    assert tuple(dbr.raw(db, "SELECT email_opt_in, email_consent_at, email_consent_source FROM members "
                             "WHERE email = 'n1@x.example'")[0]) == (0, "2025-06-01", "import")
    changes = dbr.raw(db, "SELECT id, channel, opt_in FROM consent_changes ORDER BY id")
    assert [c[0] for c in changes] == list(range(1, 2002))  # every answer, numbered in order
    assert changes[-1][1:] == ("email", 0)
    check = run(db, "db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr
