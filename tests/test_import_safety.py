"""What a careless or hostile file must not do to an import (issue 15).

A file rewritten, appended to or replaced while it is imported is refused whole (exit 3, nothing
written); the rejects file is written before the commit and never through a link, a FIFO or a
device; a header split on another delimiter says which; counts read right; an empty input and a
directory get their own words. Outcomes are read back from the database file: balances, purchase
counts, the rejects file's bytes and mode, the one stderr line.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import stat
from pathlib import Path

import pytest

from loyalty_cli import importer
from loyalty_cli.cli.members import ImportProgress
from tests.db import balance, count, members
from tests.helpers import ok, one_error_line, run

HEADER = "purchase_id,member_id,purchased_at,amount\n"
ROWS = 4000  # about 100 KB: more than one read buffer, so a change mid-import lands in rows not yet read


@pytest.fixture
def shop(tmp_path):
    """A database (made by `init`) with members A and B and one sale of A's already recorded."""
    db = tmp_path / "shop.db"
    ok(db, "init")
    for mid in ("A", "B"):
        ok(db, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "purchases", "add", "A", "5.00", "--at", "2025-02-01", "--id", "KEEP")
    return db


def state(db):
    """What a refused import must leave as it was: balances, purchases, ledger entries, members."""
    return ([(m.member_id, m.balance) for m in members(db)],
            count(db, "purchases"), count(db, "ledger"))


def purchases_text(prefix="P", member="A", rows=ROWS) -> str:
    return HEADER + "".join(f"{prefix}{i:05d},{member},2025-03-01,1.00\n" for i in range(1, rows + 1))


def after_first_chunk(monkeypatch, change):
    """Run `change()` once, after the import has handled its first few rows (the progress callback,
    called after every chunk; chunks made small) - while most of the file is still unread."""
    monkeypatch.setattr(importer, "CHUNK", 10)
    done = []

    def update(self, count):
        if not done:
            done.append(True)
            change()
    monkeypatch.setattr(ImportProgress, "update", update)


def keep_mtime(path: Path):
    """A function that puts the file's modification time back as it is now (a rewrite the clock
    cannot see: only the hash of what was read tells)."""
    st = path.stat()
    return lambda: os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def refused_as_changed(result, path, doing="imported") -> str:
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert line.startswith(f"Error: {path} changed while it was being {doing} (")
    assert line.endswith(f"); nothing was imported: {'import' if doing == 'imported' else 'check'} "
                         "it again once it is complete")
    return line


# -- a file that changes under the import ---------------------------------------------


def test_a_file_rewritten_in_place_mid_import_is_refused_whole(shop, tmp_path, monkeypatch):
    # the case: old and new rows would be mixed (and a spliced row, and missing sales)
    path = tmp_path / "day.csv"
    path.write_text(purchases_text("P", "A"))
    before = state(shop)

    def rewrite():
        with open(path, "r+") as f:
            f.write(purchases_text("Q", "B", ROWS + 50))
            f.truncate()
    after_first_chunk(monkeypatch, rewrite)
    refused_as_changed(run(shop, "purchases", "import", path), path)
    assert state(shop) == before


def test_a_rewrite_of_the_same_size_and_time_is_caught_by_the_hash(shop, tmp_path, monkeypatch):
    path = tmp_path / "day.csv"
    path.write_text(purchases_text("P", "A"))
    restore_mtime = keep_mtime(path)
    before = state(shop)

    def rewrite():  # the same bytes but the member: same size; the time put back
        path.write_text(purchases_text("P", "B"))
        restore_mtime()
    after_first_chunk(monkeypatch, rewrite)
    line = refused_as_changed(run(shop, "purchases", "import", path), path)
    assert "differs from what was read" in line
    assert state(shop) == before


def test_a_file_appended_to_mid_import_is_refused(shop, tmp_path, monkeypatch):
    path = tmp_path / "day.csv"
    path.write_text(purchases_text())
    before = state(shop)

    def append():
        with open(path, "a") as f:
            f.write("LATE1,B,2025-03-02,50.00\n")
    after_first_chunk(monkeypatch, append)
    line = refused_as_changed(run(shop, "purchases", "import", path), path)
    assert "its size went from" in line
    assert state(shop) == before


def test_a_file_replaced_by_rename_mid_import_is_refused(shop, tmp_path, monkeypatch):
    path = tmp_path / "day.csv"
    path.write_text(purchases_text())
    before = state(shop)

    def replace():  # how most tools save: a new file (a new inode) renamed over the old one
        new = tmp_path / "day.csv.new"
        new.write_text(purchases_text("Q", "B"))
        os.replace(new, path)
    after_first_chunk(monkeypatch, replace)
    line = refused_as_changed(run(shop, "purchases", "import", path), path)
    assert "another file has taken its name" in line
    assert state(shop) == before


def test_a_dry_run_says_the_file_changed_too(shop, tmp_path, monkeypatch):
    path = tmp_path / "day.csv"
    path.write_text(purchases_text())

    def append():
        with open(path, "a") as f:
            f.write("LATE1,B,2025-03-02,50.00\n")
    after_first_chunk(monkeypatch, append)
    result = run(shop, "purchases", "import", path, "--dry-run")
    refused_as_changed(result, path, "checked")


def test_the_json_report_of_a_changed_file_says_nothing_was_imported(shop, tmp_path, monkeypatch):
    path = tmp_path / "day.csv"
    path.write_text(purchases_text())
    before = state(shop)

    def append():
        with open(path, "a") as f:
            f.write("LATE1,B,2025-03-02,50.00\n")
    after_first_chunk(monkeypatch, append)
    result = run(shop, "purchases", "import", path, "--json", "--skip-bad")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert (doc["imported"], doc["points_awarded"]) == (0, 0)
    assert "changed while it was being imported" in doc["errors"][0]["message"]
    assert state(shop) == before


def test_a_changed_file_is_told_rather_than_the_bad_rows_it_made(shop, tmp_path, monkeypatch):
    # the new version's rows are bad (an unknown member): what went wrong is the change, not the rows
    path = tmp_path / "day.csv"
    path.write_text(purchases_text())
    before = state(shop)

    def rewrite():
        with open(path, "r+") as f:
            f.write(purchases_text("Q", "NOBODY"))
    after_first_chunk(monkeypatch, rewrite)
    refused_as_changed(run(shop, "purchases", "import", path), path)
    assert state(shop) == before


def test_a_file_refused_midway_that_also_changed_says_it_changed(shop, tmp_path, monkeypatch):
    # the unclosed quote near the end may be only the cut of a file still being written
    path = tmp_path / "day.csv"
    path.write_text(purchases_text() + 'LAST,A,2025-03-01,"1.00\n')
    before = state(shop)

    def append():  # the quote still unclosed: the import is refused midway (malformed CSV) either way
        with open(path, "a") as f:
            f.write("X1,A,2025-03-01,1.00\n")
    after_first_chunk(monkeypatch, append)
    line = refused_as_changed(run(shop, "purchases", "import", path), path)
    assert "its size went from" in line and state(shop) == before


def test_create_members_pre_scan_is_part_of_the_same_snapshot(shop, tmp_path, monkeypatch):
    # The file changes after --create-members read it ahead, before the import reads its rows: the
    # import alone reads one consistent (new) file, size and time kept - only the pre-scan saw the old.
    path = tmp_path / "day.csv"
    path.write_text(purchases_text("P", "NEW"))
    restore_mtime = keep_mtime(path)
    before = state(shop)
    scan = importer._earliest_sales

    def scan_then_change(*args, **kwargs):
        found = scan(*args, **kwargs)
        path.write_text(purchases_text("P", "NEX"))
        restore_mtime()
        return found
    monkeypatch.setattr(importer, "_earliest_sales", scan_then_change)
    refused_as_changed(run(shop, "purchases", "import", path, "--create-members"), path)
    assert state(shop) == before
    assert [m for m in members(shop) if m.member_id.lower().startswith("ne")] == []


def test_a_members_file_rewritten_mid_import_is_refused(shop, tmp_path, monkeypatch):
    path = tmp_path / "members.csv"
    path.write_text("member_id,name\n" + "".join(f"M{i:05d},Member {i}\n" for i in range(5000)))
    before = state(shop)

    def rewrite():
        with open(path, "r+") as f:
            f.write("member_id,name\n" + "".join(f"N{i:05d},Other {i}\n" for i in range(5000)))
    after_first_chunk(monkeypatch, rewrite)
    refused_as_changed(run(shop, "members", "import", path), path)
    assert state(shop) == before


def test_an_unchanged_file_still_imports_with_create_members(shop, tmp_path):
    path = tmp_path / "day.csv"
    path.write_text(purchases_text("P", "NEW", 30))
    ok(shop, "purchases", "import", path, "--create-members")
    assert balance(shop, "NEW") == 30


def test_standard_input_is_read_once_and_imported(shop, loyalty_proc):
    result = loyalty_proc("--db", shop, "purchases", "import", "-", "--create-members",
                          input=purchases_text("S", "NEW", 3))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 rows read: 3 imported")


# -- the rejects file ---------------------------------------------------------------------

MIXED = HEADER + "G1,A,2025-03-01,10.00\nBAD1,A,2025-03-01,abc\nG2,B,2025-03-01,20.00\n"


def test_rejects_through_a_symlink_is_refused_and_the_target_keeps_its_bytes_and_mode(shop, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_bytes(b"keep me\n")
    target.chmod(0o644)
    link = tmp_path / "rejects.csv"
    link.symlink_to(target)
    (tmp_path / "day.csv").write_text(MIXED)
    before = state(shop)
    result = run(shop, "purchases", "import", tmp_path / "day.csv", "--skip-bad", "--rejects", link)
    assert result.exit_code == 2
    assert one_error_line(result) == (f"Error: --rejects {link} is a symbolic link (it is not followed), not a "
                                      "regular file; give the path of a file for the rejected rows")
    assert target.read_bytes() == b"keep me\n" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert link.is_symlink() and state(shop) == before


def test_rejects_onto_dev_null_is_refused_and_keeps_its_mode(shop, tmp_path):
    (tmp_path / "day.csv").write_text(MIXED)
    mode = os.stat("/dev/null").st_mode
    try:
        result = run(shop, "purchases", "import", tmp_path / "day.csv", "--skip-bad", "--rejects", "/dev/null")
        assert os.stat("/dev/null").st_mode == mode
    finally:  # (the old code chmodded it: put it back for everyone else on the machine)
        if os.stat("/dev/null").st_mode != mode:
            os.chmod("/dev/null", stat.S_IMODE(mode))
    assert result.exit_code == 2
    assert one_error_line(result).startswith("Error: --rejects /dev/null is a device, not a regular file")
    assert count(shop, "purchases") == 1


def test_rejects_onto_dev_full_is_refused_up_front(shop, tmp_path):
    (tmp_path / "members.csv").write_text("member_id,name,email\nZ1,Zed,not-an-email\nZ2,Zoe,\n")
    result = run(shop, "members", "import", tmp_path / "members.csv", "--skip-bad", "--rejects", "/dev/full")
    assert result.exit_code == 2
    assert one_error_line(result).startswith("Error: --rejects /dev/full is a device, not a regular file")
    assert count(shop, "members") == 2


def test_rejects_onto_a_fifo_is_refused_without_blocking(shop, tmp_path, loyalty_proc):
    fifo = tmp_path / "rejects.fifo"
    os.mkfifo(fifo)
    (tmp_path / "day.csv").write_text(MIXED)
    before = state(shop)
    # nothing reads the FIFO: opening it for writing would block for ever (the timeout fails the test)
    result = loyalty_proc("--db", shop, "purchases", "import", tmp_path / "day.csv", "--skip-bad",
                          "--rejects", fifo, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: --rejects {fifo} is a FIFO (named pipe), not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and state(shop) == before


def test_an_existing_rejects_file_is_replaced(shop, tmp_path):
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("yesterday's rows\n")
    (tmp_path / "day.csv").write_text(MIXED)
    result = run(shop, "purchases", "import", tmp_path / "day.csv", "--skip-bad", "--rejects", rejects)
    assert result.exit_code == 3
    rows = list(csv.reader(rejects.open(encoding="utf-8")))
    assert [r[:3] for r in rows] == [["line", "reason", "purchase_id"], ["3", rows[1][1], "BAD1"]]
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".rejects")) == []


def test_a_full_disk_for_the_rejects_commits_nothing(shop, tmp_path, monkeypatch):
    # the disk fills as the rejected rows are synced (where delayed allocation reports it)
    rejects = tmp_path / "rejects.csv"
    (tmp_path / "day.csv").write_text(MIXED)
    before = state(shop)

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(importer.os, "fsync", fsync)
    result = run(shop, "purchases", "import", tmp_path / "day.csv", "--skip-bad", "--rejects", rejects)
    assert result.exit_code == 1
    assert one_error_line(result) == (f"Error: cannot write the rejected rows to --rejects {rejects}: the disk is "
                                      "full; nothing was imported")
    assert state(shop) == before
    assert not rejects.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".rejects")] == []


def test_a_rejects_write_that_fails_commits_nothing(shop, tmp_path, monkeypatch):
    rejects = tmp_path / "rejects.csv"
    (tmp_path / "day.csv").write_text(MIXED)
    before = state(shop)
    fdopen = os.fdopen

    class FullDisk:
        """A file whose writes fail as on a full disk."""

        def __init__(self, *args, **kwargs):
            self.file = fdopen(*args, **kwargs)

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.file, name)
    monkeypatch.setattr(importer.os, "fdopen", FullDisk)
    result = run(shop, "purchases", "import", tmp_path / "day.csv", "--skip-bad", "--rejects", rejects)
    assert result.exit_code == 1
    assert one_error_line(result) == (f"Error: cannot write the rejected rows to --rejects {rejects}: the disk is "
                                      "full; nothing was imported")
    assert state(shop) == before and not rejects.exists()


# -- a header split on another delimiter ---------------------------------------------------


@pytest.mark.parametrize("sep, shown, words", [(";", ";", "';'"), ("\t", "\\t", "tab"), ("|", "|", "'|'")])
def test_a_purchases_header_on_another_delimiter_says_which_once(shop, tmp_path, sep, shown, words):
    path = tmp_path / "till.csv"
    path.write_text(sep.join(["purchase_id", "member_id", "purchased_at", "amount"]) + "\n"
                    + sep.join(["T1", "A", "2025-03-01", "1.00"]) + "\n")
    result = run(shop, "purchases", "import", path)
    assert result.exit_code == 3
    assert one_error_line(result) == (f"Error: {path}: the header lacks the required column 'purchase_id'; "
                                      f"it looks like {words}-separated: add --delimiter '{shown}'")


def test_a_comma_file_read_with_semicolons_says_add_comma(shop, tmp_path):
    path = tmp_path / "till.csv"
    path.write_text(HEADER + "T1,A,2025-03-01,1.00\n")
    result = run(shop, "purchases", "import", path, "--delimiter", ";")
    assert result.exit_code == 3
    assert one_error_line(result).endswith("it looks like ','-separated: add --delimiter ','")


def test_a_members_header_on_another_delimiter_says_which_once(shop, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("member_id;name;email\nZ1;Zed;zed@shop.example\nZ2;Zoe;\n")
    result = run(shop, "members", "import", path)
    assert result.exit_code == 3
    assert one_error_line(result) == (f"Error: {path}: the header names neither a member_id nor an email "
                                      "column; it looks like ';'-separated: add --delimiter ';'")
    assert count(shop, "members") == 2
    ok(shop, "members", "import", path, "--delimiter", ";")
    assert count(shop, "members") == 4


# -- counts that read right ---------------------------------------------------------------


def test_one_row_reads_one_row(shop, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(HEADER + "P1,A,2025-03-01,10.00\n")
    assert run(shop, "purchases", "import", path).stdout == (
        "1 row read: 1 imported, 0 duplicates, 0 rejected; 10 points awarded, 0 reversed, 0 members created\n")
    assert run(shop, "purchases", "import", path).stdout == (
        "1 row read: 0 imported, 1 duplicate, 0 rejected; 0 points awarded, 0 reversed, 0 members created\n")


def first_line(result) -> str:
    """The error line of an import that skipped rows (the bad rows are listed under it)."""
    assert result.exit_code == 3 and result.stdout == ""
    return result.stderr.splitlines()[0]


def test_rejected_rows_are_not_counted_as_imported(shop, tmp_path):
    path = tmp_path / "day.csv"
    path.write_text(MIXED)
    dry = run(shop, "purchases", "import", path, "--skip-bad", "--dry-run", "--json")
    assert dry.exit_code == 3
    assert {k: json.loads(dry.stdout)[k] for k in ("rows", "imported", "rejected")} == {
        "rows": 3, "imported": 2, "rejected": 1}
    result = run(shop, "purchases", "import", path, "--skip-bad")
    assert result.exit_code == 3
    assert first_line(result) == (f"Error: {path}: 1 bad row skipped; 3 rows read: 2 imported, 0 duplicates, "
                                      "1 rejected; 30 points awarded, 0 reversed, 0 members created")
    assert count(shop, "purchases") == 3


def test_members_import_does_not_call_rejected_rows_imported(shop, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("member_id,name,email\nZ1,Zed,not-an-email\nZ2,Zoe,\n")
    dry = run(shop, "members", "import", path, "--skip-bad", "--dry-run")
    assert first_line(dry) == (f"Error: {path}: 1 bad row skipped; 2 rows checked: 1 to create, 0 to update, "
                                   "0 unchanged, 1 rejected (dry run: nothing changed)")
    result = run(shop, "members", "import", path, "--skip-bad")
    assert first_line(result) == (f"Error: {path}: 1 bad row skipped; 2 rows read: 1 created, 0 updated, "
                                      "0 unchanged, 1 rejected")


def test_other_commands_count_in_the_right_number(shop):
    ok(shop, "program", "set", "expiry.months", "1", "--from", "2025-01-01")
    assert ok(shop, "points", "award", "B", "1", "--reason", "welcome", "--at", "2025-01-02").stdout == (
        "awarded 1 point to B (balance 1)\n")
    assert ok(shop, "points", "expire", "--as-of", "2025-12-31").stdout == "expired 1 point of 1 member as of 2025-12-31\n"
    ok(shop, "points", "award", "B", "1", "--reason", "again", "--at", "2026-01-02")
    # A's 5 points of 2025-02-01 (earned under 12 months) and B's new one
    assert ok(shop, "points", "expire", "--as-of", "2026-06-30").stdout == "expired 6 points of 2 members as of 2026-06-30\n"


# -- empty input, a directory ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["purchases", "members"])
def test_dev_null_and_an_empty_file_say_they_are_empty(shop, tmp_path, command):
    for path in ("/dev/null", tmp_path / "empty.csv"):
        Path(path).touch()
        result = run(shop, command, "import", path)
        assert result.exit_code == 3
        assert one_error_line(result) == (f"Error: {path} is empty: no header and no rows (a CSV file starts with a "
                                          "header row naming its columns)")


def test_a_header_only_file_is_zero_rows(shop, tmp_path):
    path = tmp_path / "none.csv"
    path.write_text(HEADER)
    assert ok(shop, "purchases", "import", path).stdout == (
        "0 rows read: 0 imported, 0 duplicates, 0 rejected; 0 points awarded, 0 reversed, 0 members created\n")


def test_a_directory_says_it_is_a_directory(shop, tmp_path):
    for args in (("purchases", "import"), ("members", "import")):
        result = run(shop, *args, tmp_path)
        assert result.exit_code == 3
        assert one_error_line(result) == f"Error: {tmp_path} is a directory, not a CSV file"
    result = run(shop, "program", "load", tmp_path)
    assert result.exit_code == 3
    assert one_error_line(result) == f"Error: {tmp_path} is a directory, not a programme file"


def test_program_load_of_dev_null_is_refused_not_a_reset_to_defaults(shop):
    versions = count(shop, "program_versions")
    result = run(shop, "program", "load", "/dev/null")
    assert result.exit_code == 3
    assert one_error_line(result).startswith("Error: /dev/null is empty: no programme rules in it")
    assert count(shop, "program_versions") == versions
