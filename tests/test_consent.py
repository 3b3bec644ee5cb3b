"""Marketing consent, campaign lists, `db audit` and `members export` (issue 20).

The shop (1 point per 1.00, lots expiring 12 months on at the month's end), as of 2026-06-01:

    A  birthday 06-10, email and SMS yes         sale 2025-06-10  (expiring 2026-06-30: 40 points)
    B  birthday 06-12, no answer (default no)     sale 2025-06-11
    C  birthday 06-15, email yes, then erased
    D  birthday 06-20, email yes, merged into A
    E  birthday 09-01, email yes                  sale 2026-05-20

    birthdays (next 30 days) by email: A only (B never agreed, C erased, D merged away, E not in June)
    churn-risk (no sale for 180 days) by email: A (B did not agree); E bought 12 days ago
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests import db as dbr
from tests.helpers import as_json, fresh_db, ok, one_error_line, run

pytestmark = pytest.mark.any_backend  # every database made with fresh_db

RULES = '[earn]\npoints_per_unit = "1"\nsignup_bonus = 0\n'


def shop(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    toml = tmp_path / "rules.toml"
    toml.write_text(RULES)
    ok(db, "program", "load", toml)
    ok(db, "members", "add", "--id", "A", "--name", "Ana", "--email", "ana@shop.example", "--phone", "+44 7700 900001",
       "--birthday", "1990-06-10", "--joined", "2025-01-01", "--consent-email", "yes", "--consent-sms", "YES")
    ok(db, "members", "add", "--id", "B", "--name", "Ben", "--email", "ben@shop.example", "--birthday", "1985-06-12",
       "--joined", "2025-01-01")
    for mid, name, birthday in (("C", "Cy", "1970-06-15"), ("D", "Di", "1992-06-20"), ("E", "Ed", "2000-09-01")):
        ok(db, "members", "add", "--id", mid, "--name", name, "--email", f"{name.lower()}@shop.example", "--birthday",
           birthday, "--joined", "2025-01-01", "--consent-email", "true")
    ok(db, "purchases", "add", "A", "40.00", "--id", "S1", "--at", "2025-06-10T10:00")
    ok(db, "purchases", "add", "B", "30.00", "--id", "S2", "--at", "2025-06-11T10:00")
    ok(db, "purchases", "add", "E", "10.00", "--id", "S3", "--at", "2026-05-20T10:00")
    ok(db, "members", "erase", "C", "--yes", "--at", "2026-05-01T10:00")
    ok(db, "members", "merge", "D", "--into", "A", "--yes", "--at", "2026-05-02T10:00")
    return db


def check_passes(db):
    result = run(db, "db", "check")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_consent_is_recorded_with_its_date_and_source(tmp_path):
    db = shop(tmp_path)
    doc = as_json(db, "members", "show", "A")
    assert doc["consent"]["email"]["opt_in"] is True and doc["consent"]["email"]["source"] == "counter"
    assert doc["consent"]["sms"]["opt_in"] is True
    b = as_json(db, "members", "show", "B")["consent"]
    assert b == {"email": {"opt_in": False, "at": None, "source": None},
                 "sms": {"opt_in": False, "at": None, "source": None}}
    assert "consent" not in ok(db, "members", "show", "B").stdout  # never asked: as members show always was
    r = ok(db, "members", "edit", "B", "--consent-sms", "yes", "--consent-email", "0")
    assert r.stdout == "updated B: email consent, sms consent\n"
    b = as_json(db, "members", "show", "B")["consent"]
    assert (b["sms"]["opt_in"], b["sms"]["source"], b["email"]["opt_in"], b["email"]["source"]) == (True, "edit", False, "edit")
    shown = ok(db, "members", "show", "B").stdout
    assert "email consent    no (20" in shown and "sms consent      yes (20" in shown
    # Every answer is kept.
    changes = [(c.member_id, c.channel, c.opt_in, c.source) for c in dbr.rows(db, "consent_changes", member_id="B")]
    assert changes == [("B", "email", 0, "edit"), ("B", "sms", 1, "edit")]
    check_passes(db)


def test_a_bad_consent_answer_is_a_usage_error(tmp_path):
    db = shop(tmp_path)
    blocks = dbr.count(db, "chain")
    r = run(db, "members", "edit", "B", "--consent-email", "maybe")
    assert r.exit_code == 2
    assert one_error_line(r) == "Error: --consent-email must be yes or no (or true/false, 1/0), got 'maybe'"
    r = run(db, "members", "add", "--name", "X", "--consent-sms", "")
    assert r.exit_code == 2 and "--consent-sms must be yes or no" in one_error_line(r)
    assert dbr.count(db, "chain") == blocks


def test_the_members_import_reads_opt_in_columns(tmp_path):
    db = shop(tmp_path)
    f = tmp_path / "members.csv"
    f.write_text("member_id,name,email_opt_in,sms_opt_in\n"
                 "N1,New One,yes,0\n"
                 "N2,New Two,,\n"
                 "B,Ben,TRUE,\n")
    r = ok(db, "members", "import", f, "--at", "2026-05-31")
    assert r.stdout == "3 rows read: 2 created, 1 updated, 0 unchanged, 0 rejected\n"
    n1 = as_json(db, "members", "show", "N1")["consent"]
    assert n1 == {"email": {"opt_in": True, "at": "2026-05-31", "source": "import"},
                  "sms": {"opt_in": False, "at": "2026-05-31", "source": "import"}}
    assert as_json(db, "members", "show", "N2")["consent"]["email"]["opt_in"] is False  # default no
    assert as_json(db, "members", "show", "B")["consent"]["email"] == {"opt_in": True, "at": "2026-05-31",
                                                                       "source": "import"}
    # The same file again changes nothing; a bad value is a rejected row like any other bad cell.
    assert ok(db, "members", "import", f, "--at", "2026-05-31").stdout.endswith("3 unchanged, 0 rejected\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("member_id,name,sms_opt_in\nN3,New Three,perhaps\n")
    r = run(db, "members", "import", bad)
    assert r.exit_code == 3 and r.stdout == ""
    assert "line 2: sms_opt_in must be yes or no (or true/false, 1/0), got 'perhaps'" in r.stderr
    assert dbr.member(db, "N3") is None
    # A row naming a member merged into another is refused: it would overwrite the member kept.
    merged = tmp_path / "merged.csv"
    merged.write_text("member_id,name\nD,Di\n")
    r = run(db, "members", "import", merged)
    assert r.exit_code == 3 and "line 2: member D was merged into A: update A instead" in r.stderr
    check_passes(db)


def test_a_campaign_list_names_only_members_who_agreed_and_are_not_erased_or_merged(tmp_path):
    db = shop(tmp_path)
    doc = as_json(db, "campaign", "list", "birthdays", "--channel", "email", "--as-of", "2026-06-01")
    assert doc == {"list": "birthdays", "channel": "email", "as_of": "2026-06-01", "members": [
        {"member_id": "A", "name": "Ana", "email": "ana@shop.example", "birthday": "1990-06-10", "date": "2026-06-10"}]}
    sms = as_json(db, "campaign", "list", "birthdays", "--channel", "sms", "--as-of", "2026-06-01")
    assert [(m["member_id"], m["sms"]) for m in sms["members"]] == [("A", "+44 7700 900001")]
    churn = as_json(db, "campaign", "list", "churn-risk", "--channel", "email", "--as-of", "2026-06-01", "--days", "180")
    assert [(m["member_id"], m["last_sale"][:10]) for m in churn["members"]] == [("A", "2025-06-10")]
    expiring = as_json(db, "campaign", "list", "expiring", "--channel", "email", "--as-of", "2026-06-01")
    assert [(m["member_id"], m["points"], m["date"]) for m in expiring["members"]] == [("A", 40, "2026-06-30")]
    csv = ok(db, "campaign", "list", "birthdays", "--channel", "email", "--as-of", "2026-06-01", "--csv").stdout
    assert csv == "member_id,name,email,birthday,date\nA,Ana,ana@shop.example,1990-06-10,2026-06-10\n"
    # B agrees: the next list names B too.
    ok(db, "members", "edit", "B", "--consent-email", "yes")
    again = as_json(db, "campaign", "list", "birthdays", "--channel", "email", "--as-of", "2026-06-01")
    assert [m["member_id"] for m in again["members"]] == ["A", "B"]
    check_passes(db)


def test_segments_and_usage_errors(tmp_path):
    db = shop(tmp_path)
    r = run(db, "campaign", "list", "segment", "vip", "--channel", "email")
    assert r.exit_code == 2
    assert one_error_line(r) == ("Error: unknown segment 'vip'; the segments are: champions, loyal, potential, "
                                 "at_risk, lost, regular")
    r = run(db, "campaign", "list", "segment", "--channel", "email")
    assert r.exit_code == 2 and "needs a segment name" in one_error_line(r)
    r = run(db, "campaign", "list", "birthdays", "--channel", "fax")
    assert r.exit_code == 2 and one_error_line(r) == "Error: --channel must be email or sms, got 'fax'"
    r = run(db, "campaign", "list", "everyone", "--channel", "email")
    assert r.exit_code == 2 and "the lists are: birthdays, churn-risk, segment, expiring" in one_error_line(r)
    assert dbr.count(db, "campaign_exports") == 0  # a refused list is not an export
    found = as_json(db, "campaign", "list", "segment", "lost", "--channel", "email", "--as-of", "2026-06-01")
    assert found["members"] == [] or all(m["segment"] == "lost" for m in found["members"])


def test_a_list_written_to_a_file_is_private_and_every_export_is_audited(tmp_path):
    db = shop(tmp_path)
    target = tmp_path / "birthdays.csv"
    r = ok(db, "campaign", "list", "birthdays", "--channel", "email", "--as-of", "2026-06-01", "--output", target,
           "--by", "ana")
    assert r.stdout == "" and "wrote 1 member (birthdays, email) to" in r.stderr
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert target.read_text() == "member_id,name,email,birthday,date\nA,Ana,ana@shop.example,1990-06-10,2026-06-10\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".birthdays")] == []  # no partial file left
    # Replaced whole, still 0600, even over a file that was readable by others.
    os.chmod(target, 0o644)
    ok(db, "campaign", "list", "churn-risk", "--channel", "sms", "--as-of", "2026-06-01", "--days", "180",
       "--output", target, "--json", "--by", "ben")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert json.loads(target.read_text())["members"][0]["sms"] == "+44 7700 900001"
    audit = as_json(db, "db", "audit", "--kind", "export")
    assert [(a["by"], a["members"], a["what"]) for a in audit] == [
        ("ana", 1, f"birthdays by email as of 2026-06-01 to {target}"),
        ("ben", 1, f"churn-risk by sms as of 2026-06-01 to {target}")]
    everything = as_json(db, "db", "audit")
    assert [a["kind"] for a in everything][:2] == ["erasure", "merge"]  # 2026-05-01, 2026-05-02
    r = run(db, "campaign", "list", "birthdays", "--channel", "email", "--output", tmp_path)
    assert r.exit_code == 2 and "is not a regular file" in one_error_line(r)
    check_passes(db)


def test_members_export_holds_everything_on_one_member(tmp_path):
    db = shop(tmp_path)
    ok(db, "feedback", "add", "A", "9", "--comment", "lovely", "--at", "2026-05-03T10:00")
    out = tmp_path / "A.json"
    ok(db, "members", "export", "A", "--output", out)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert set(doc) >= {"member_id", "profile", "consent", "consent_history", "purchases", "ledger", "lots", "vouchers",
                        "tier_history", "merges", "aliases", "referred", "feedback", "erasure"}
    assert doc["profile"]["name"] == "Ana" and doc["profile"]["email"] == "ana@shop.example"
    assert doc["consent"]["email"]["opt_in"] is True
    assert [p["purchase_id"] for p in doc["purchases"]] == ["S1"]
    assert [(e["kind"], e["points"]) for e in doc["ledger"]] == [("earn", 40)]  # D's merge moved nothing
    assert doc["merges"] == [{"member_id": "D", "into": "A", "at": "2026-05-02T10:00:00", "by": doc["merges"][0]["by"],
                              "points": 0}]
    assert doc["aliases"] == ["D"] and doc["feedback"][0]["comment"] == "lovely"
    # stdout, and an erased member: what remains.
    erased = json.loads(ok(db, "members", "export", "C").stdout)
    assert erased["profile"]["name"] is None and erased["profile"]["email"] is None
    assert erased["erasure"]["at"] == "2026-05-01T10:00:00"
    r = run(db, "members", "export", "Z9")
    assert r.exit_code == 1 and one_error_line(r).startswith("Error: member Z9 not found")


def test_db_check_fails_on_consent_changed_behind_the_tools_back(tmp_path):
    db = shop(tmp_path)
    check_passes(db)
    dbr.raw(db, "UPDATE members SET email_opt_in = 1 WHERE member_id = 'B'")
    r = run(db, "db", "check", "--json")
    assert r.exit_code == 4
    problems = json.loads(r.stdout)["problems"]
    assert any(p["member_id"] == "B" and "email consent is yes but the chain recorded no" in p["message"]
               for p in problems), problems


@pytest.mark.sqlite_only  # the database is a file only on SQLite
def test_a_list_is_never_written_over_the_database(tmp_path):
    db = shop(tmp_path)
    for name in ("shop.db", "shop.db-wal", "shop.db-shm", "shop.db-journal"):
        r = run(db, "campaign", "list", "birthdays", "--channel", "email", "--output", tmp_path / name)
        assert r.exit_code == 2, name
        assert one_error_line(r).endswith("is the database or one of its files: give another file")
    check_passes(db)
    r = run(db, "members", "export", "A", "--csv")
    assert r.exit_code == 2 and one_error_line(r) == "Error: --csv is for commands that print a list; use --json here"
