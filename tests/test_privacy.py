"""Personal data: erasure leaves no trace in the files; lists mask; errors never name emails or phones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.db import count, member, rows

SECRET_NAME = "Zelda Quackenbush"
SECRET_EMAIL = "zelda.quackenbush@secret.example"
SECRET_PHONE = "+44 7700 987654"
SECRET_BIRTHDAY = "1977-07-17"


def file_bytes(db: Path) -> bytes:
    data = db.read_bytes()
    wal = Path(f"{db}-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def enrol_secret(run):
    r = run("members", "add", "--id", "M7", "--name", SECRET_NAME, "--email", SECRET_EMAIL, "--phone", SECRET_PHONE,
            "--birthday", SECRET_BIRTHDAY, "--joined", "2025-01-01")
    assert r.exit_code == 0, r.stderr
    # Edit the profile a few times so old versions of the row sit in freed pages and the WAL.
    for phone in ("+44 7700 900001", SECRET_PHONE):
        assert run("members", "edit", "M7", "--phone", phone).exit_code == 0
    assert run("purchases", "add", "M7", "25.00", "--at", "2025-02-01", "--id", "P1").exit_code == 0
    assert run("feedback", "add", "M7", "9", "--comment", f"love it, {SECRET_NAME}").exit_code == 0


@pytest.mark.sqlite_only  # reads the SQLite file and its -wal byte by byte
def test_erase_removes_personal_data_from_the_database_and_wal_bytes(run, db):
    enrol_secret(run)
    assert SECRET_EMAIL.encode() in file_bytes(db)
    before = json.loads(run("points", "balance", "M7", "--json").stdout)
    r = run("members", "erase", "M7", "--yes", "--by", "owner", "--at", "2026-01-05T09:00")
    assert r.exit_code == 0, r.stderr
    on_disk = file_bytes(db)
    for secret in (SECRET_NAME, SECRET_EMAIL, SECRET_PHONE, SECRET_BIRTHDAY, "Quackenbush", "987654"):
        assert secret.encode() not in on_disk, f"{secret!r} is still in the database files"
    assert json.loads(run("points", "balance", "M7", "--json").stdout) == before  # the ledger stays
    assert [(e.member_id, e.by, e.at) for e in rows(db, "erasures")] == [("M7", "owner", "2026-01-05T09:00:00")]
    shown = json.loads(run("members", "show", "M7", "--json").stdout)
    assert (shown["name"], shown["email"], shown["phone"], shown["birthday"]) == (None, None, None, None)
    assert run("db", "check").exit_code == 0


def test_erase_needs_yes_when_not_at_a_terminal(run, db):
    enrol_secret(run)
    r = run("members", "erase", "M7")
    assert r.exit_code == 2 and r.stderr.startswith("Error:")
    assert member(db, "M7").name == SECRET_NAME


def test_an_erased_member_stays_erased(run, tmp_path):
    enrol_secret(run)
    assert run("members", "erase", "M7", "--yes").exit_code == 0
    again = tmp_path / "again.csv"
    again.write_text(f"member_id,name,email\nM7,{SECRET_NAME},{SECRET_EMAIL}\n")
    r = run("members", "import", again)
    assert r.exit_code == 3 and "line 2" in r.stderr
    sales = tmp_path / "sales.csv"
    sales.write_text("purchase_id,member_id,purchased_at,amount\nP9,M7,2026-02-01,5.00\n")
    assert run("purchases", "import", sales).exit_code == 3
    assert run("purchases", "add", "M7", "5.00").exit_code == 1
    assert run("members", "erase", "M7", "--yes").exit_code == 0  # erasing again is harmless


def test_errors_name_members_by_id_never_by_email_or_phone(run):
    enrol_secret(run)
    r = run("members", "add", "--id", "M8", "--name", "Other", "--email", SECRET_EMAIL)
    assert r.exit_code == 1
    assert "M7" in r.stderr and SECRET_EMAIL not in r.stderr
    r = run("members", "edit", "M7", "--email", "not-an-email")
    assert r.exit_code == 2 and "not-an-email" not in r.stderr


def test_lists_mask_contact_details_unless_asked(run):
    enrol_secret(run)
    listed = run("members", "list", "--csv").stdout
    assert SECRET_EMAIL not in listed and SECRET_PHONE not in listed
    assert "z***@secret.example" in listed and "*******7654" in listed
    shown = run("members", "list", "--csv", "--show-pii").stdout
    assert SECRET_EMAIL in shown and SECRET_PHONE in shown


def test_a_file_naming_an_erased_member_is_refused_even_for_rows_already_recorded(run, tmp_path):
    # SPEC §9: later imports naming them are rejected rows -- a re-import of an old file included.
    enrol_secret(run)
    sales = tmp_path / "sales.csv"
    sales.write_text("purchase_id,member_id,purchased_at,amount\nP2,M7,2026-02-01,5.00\n")
    assert run("purchases", "import", sales).exit_code == 0
    assert run("members", "erase", "M7", "--yes").exit_code == 0
    again = run("purchases", "import", sales, "--json")
    assert again.exit_code == 3
    doc = json.loads(again.stdout)
    assert (doc["duplicates"], doc["rejected"]) == (0, 1) and "erased" in doc["errors"][0]["message"]


def test_an_erased_member_gets_no_referral_bonus_and_refers_nobody_new(run, db):
    assert run("program", "set", "earn.referral_bonus", "100").exit_code == 0
    assert run("members", "add", "--id", "RR", "--name", "Ref", "--joined", "2025-01-01").exit_code == 0
    assert run("members", "add", "--id", "EE", "--name", "Ee", "--joined", "2025-01-01", "--referred-by", "RR").exit_code == 0
    assert run("members", "erase", "RR", "--yes").exit_code == 0
    assert run("purchases", "add", "EE", "10.00", "--at", "2025-02-01").exit_code == 0  # the sale stands
    assert count(db, "ledger", member_id="RR", kind="referral") == 0
    refused = run("members", "add", "--id", "FF", "--name", "Ff", "--referred-by", "RR")
    assert refused.exit_code == 1 and "erased" in refused.stderr
    assert run("members", "edit", "EE", "--referred-by", "RR").exit_code == 1


def test_an_erased_members_voucher_is_not_cancelled_back_into_points(run, db):
    assert run("members", "add", "--id", "V1", "--name", "Vee", "--joined", "2025-01-01").exit_code == 0
    assert run("points", "award", "V1", "500", "--reason", "opening", "--at", "2025-01-02").exit_code == 0
    assert run("rewards", "add", "MUG", "--name", "Mug", "--cost", "200").exit_code == 0
    code = json.loads(run("points", "redeem", "V1", "--reward", "MUG", "--at", "2025-01-03", "--json").stdout)["voucher"]
    assert run("members", "erase", "V1", "--yes").exit_code == 0
    result = run("vouchers", "cancel", code, "--at", "2025-01-04")
    assert result.exit_code == 1 and "erased" in result.stderr
    assert [v.status for v in rows(db, "vouchers")] == ["issued"]
