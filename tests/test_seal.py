"""Anchors outside the database (issue 17): `db seal` writes the chain's head to an anchors file and
`db check` verifies the ledger still passes through every head recorded there.

The hash chain alone cannot see the last entries deleted, or an old entry rewritten with every later
hash recomputed: here the same tampering passes the hash-chain check and is found by the anchors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from loyalty_cli.ledger import GENESIS, entry_hash
from tests.db import connect, entries, raw
from tests.helpers import fresh_db, ok, run

LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) entries=(\d+) head=([0-9a-f]{64}) db=(.+)")


@pytest.fixture
def db(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


def activity(db, first: int = 1, last: int = 5) -> None:
    """M1 gets one award per day (entries first..last, each 10 points): a chain of simple entries."""
    if first == 1:
        ok(db, "members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-01-01")
    for day in range(first, last + 1):
        ok(db, "points", "award", "M1", "10", "--reason", f"visit {day}", "--at", f"2025-01-{day:02d}")


def default_anchors(tmp_path, db) -> Path:
    """The one anchors file under the test's XDG_CONFIG_HOME (conftest sets it)."""
    found = list((tmp_path / "config" / "loyalty" / "anchors").iterdir())
    assert len(found) == 1, found
    return found[0]


def check(db, *args, env=None) -> tuple[int, list[dict]]:
    result = run(db, "db", "check", "--json", *args, env=env)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 4), (result.exit_code, result.stdout, result.stderr)
    return result.exit_code, json.loads(result.stdout)["problems"]


def guard_dropped(conn, trigger: str):
    """Drop a trigger of the ledger's guard for a moment and put it back, as a careful attacker would
    (a missing trigger is itself a problem db check reports)."""
    from contextlib import contextmanager

    @contextmanager
    def dropped():
        (sql,), = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (trigger,)).fetchall()
        conn.execute(f"DROP TRIGGER {trigger}")
        yield
        conn.execute(sql)

    return dropped()


def head_of(db) -> tuple[int, str]:
    (eid, h), = raw(db, "SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1")
    return eid, h


# -- db seal ------------------------------------------------------------------------------------
def test_seal_prints_the_head_and_appends_it_to_a_private_file(db, tmp_path, umask_zero):
    activity(db)
    result = ok(db, "db", "seal", "--at", "2025-01-06T02:30")
    eid, h = head_of(db)
    assert result.stdout == f"2025-01-06T02:30:00 entries={eid} head={h} db={db}\n" and eid == 5
    path = default_anchors(tmp_path, db)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# loyalty anchors:")
    assert lines[1:] == [result.stdout.rstrip("\n")]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "config"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder

    # Again at the same head: another dated line (the ledger had not changed by then); --json and -q.
    doc = json.loads(ok(db, "db", "seal", "--at", "2025-01-07", "--json").stdout)
    assert doc == {"at": "2025-01-07T00:00:00", "entries": 5, "head": h, "anchors": str(path)}
    assert ok(db, "-q", "db", "seal", "--at", "2025-01-08").stdout == ""
    assert [LINE.fullmatch(x).group(1, 2, 3) for x in path.read_text().splitlines()[1:]] == [
        ("2025-01-06T02:30:00", "5", h), ("2025-01-07T00:00:00", "5", h), ("2025-01-08T00:00:00", "5", h)]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_empty_ledger_seals_zero_entries_and_the_genesis(db, tmp_path):
    assert ok(db, "db", "seal", "--at", "2025-01-01").stdout == f"2025-01-01T00:00:00 entries=0 head={GENESIS} db={db}\n"
    assert check(db) == (0, [])
    activity(db)
    assert check(db) == (0, [])


def test_a_seal_dated_after_today_needs_allow_future(db, tmp_path):
    result = run(db, "db", "seal", "--at", "2999-01-01")
    assert result.exit_code == 2 and result.stdout == ""
    assert "--allow-future" in result.stderr and "record a seal dated after today" in result.stderr
    assert not (tmp_path / "config").exists()  # nothing written
    assert ok(db, "db", "seal", "--at", "2999-01-01", "--allow-future").stdout.startswith("2999-01-01T00:00:00 ")


def test_db_check_passes_after_a_seal_and_after_more_activity(db):
    activity(db, 1, 3)
    ok(db, "db", "seal", "--at", "2025-01-03T23:00")
    assert check(db) == (0, [])
    activity(db, 4, 6)
    assert check(db) == (0, [])
    ok(db, "db", "seal", "--at", "2025-01-06T23:00")
    activity(db, 7, 8)
    assert check(db) == (0, [])
    assert ok(db, "db", "check").stdout == "ok: every check passed\n"


# -- what the anchors find ----------------------------------------------------------------------
def test_deleting_the_last_entries_is_found_by_the_anchors_not_by_the_hash_chain(db, tmp_path):
    activity(db, 1, 7)
    ok(db, "db", "seal", "--at", "2025-01-07T23:00")
    unsealed = tmp_path / "unsealed.db"
    shutil.copy(db, unsealed)
    for path in (db, unsealed):  # an attacker with sqlite3: drop the guard, delete entries 6 and 7, re-chain nothing
        with connect(path) as conn, guard_dropped(conn, "ledger_no_delete"):
            conn.execute("DELETE FROM ledger WHERE id > 5")
        assert [e.id for e in entries(path)] == [1, 2, 3, 4, 5]

    # Without anchors the chain that is left is whole: the hash-chain check is blind to the truncation.
    code, problems = check(unsealed)
    assert "hash_chain" not in {p["check"] for p in problems} and "anchors" not in {p["check"] for p in problems}

    code, problems = check(db)
    assert code == 4
    assert "hash_chain" not in {p["check"] for p in problems}
    path = default_anchors(tmp_path, db)
    assert [p["message"] for p in problems if p["check"] == "anchors"] == [
        f"the ledger has 5 entries but was sealed at 7 on 2025-01-07: entries were deleted (anchors file {path}, line 2)"]
    human = run(db, "db", "check")
    assert human.exit_code == 4 and "entries were deleted" in human.stderr and "Traceback" not in human.output


def test_an_older_copy_put_back_is_found_only_by_the_anchors(db, tmp_path):
    """Rolling the file back to an older copy is a truncation with nothing else out of place."""
    activity(db, 1, 3)
    older = tmp_path / "older.db"
    ok(db, "db", "backup", older)
    activity(db, 4, 5)
    ok(db, "db", "seal", "--at", "2025-01-05T23:00")
    shutil.copy(older, db)
    code, problems = check(db)
    assert code == 4
    assert [(p["check"], p["message"].split(" (anchors file")[0]) for p in problems] == [
        ("anchors", "the ledger has 3 entries but was sealed at 5 on 2025-01-05: entries were deleted")]


def rechain_from(path, first: int) -> None:
    """Recompute the hash of entry `first` and of every later entry, as an attacker who read the code would."""
    with connect(path) as conn:
        prev = GENESIS if first == 1 else conn.execute("SELECT hash FROM ledger WHERE id = ?", (first - 1,)).fetchone()[0]
        rows = conn.execute("SELECT id, member_id, at, kind, points, ref, note, by FROM ledger WHERE id >= ? ORDER BY id",
                            (first,)).fetchall()
        for eid, member_id, at, kind, points, ref, note, by in rows:
            prev = entry_hash(prev, eid, member_id, at, kind, points, ref, note, by)
            conn.execute("UPDATE ledger SET hash = ? WHERE id = ?", (prev, eid))


def test_rewriting_an_old_entry_and_rechaining_passes_the_hash_chain_but_not_the_anchors(db, tmp_path):
    activity(db, 1, 4)
    ok(db, "db", "seal", "--at", "2025-01-04T23:00")
    activity(db, 5, 6)
    ok(db, "db", "seal", "--at", "2025-01-06T23:00")
    unsealed = tmp_path / "unsealed.db"
    shutil.copy(db, unsealed)
    for path in (db, unsealed):
        with connect(path) as conn, guard_dropped(conn, "ledger_no_update"):
            conn.execute("UPDATE ledger SET note = 'visit 2 (approved by the owner)' WHERE id = 2")
            rechain_from(conn, 2)

    assert check(unsealed) == (0, [])  # every other check passes: the rewrite is invisible without anchors
    code, problems = check(db)
    assert code == 4
    path = default_anchors(tmp_path, db)
    assert [(p["check"], p["message"]) for p in problems] == [
        ("anchors", f"entry 4's hash is not the one sealed at 4 on 2025-01-04: history was rewritten "
                    f"(anchors file {path}, line 2)"),
        ("anchors", f"entry 6's hash is not the one sealed at 6 on 2025-01-06: history was rewritten "
                    f"(anchors file {path}, line 3)")]


def test_a_missing_sealed_entry_in_the_middle_is_named(db, tmp_path):
    activity(db, 1, 5)
    ok(db, "db", "seal", "--at", "2025-01-05T23:00")
    activity(db, 6, 7)
    ok(db, "db", "seal", "--at", "2025-01-07T23:00")
    with connect(db) as conn:
        conn.execute("DROP TRIGGER ledger_no_delete")
        conn.execute("DELETE FROM ledger WHERE id = 5")
    code, problems = check(db)
    assert code == 4
    assert [p["message"].split(" (anchors file")[0] for p in problems if p["check"] == "anchors"] == [
        "entry 5 is missing but the ledger was sealed at 5 on 2025-01-05: entries were deleted"]


# -- the anchors file ---------------------------------------------------------------------------
def test_a_malformed_anchors_file_is_a_problem_not_a_crash(db, tmp_path):
    activity(db, 1, 3)
    ok(db, "db", "seal", "--at", "2025-01-03T23:00")
    path = default_anchors(tmp_path, db)
    good = path.read_text().splitlines()[1]
    path.write_text("\n".join(["# kept by hand", good, "garbage here",
                               good.replace("entries=3", "entries=three"),
                               good.replace("2025-01-03T23", "2025-02-30T23"), "", good]) + "\n")
    code, problems = check(db)
    assert code == 4
    assert [(p["check"], p["message"].split(":")[0]) for p in problems] == [
        ("anchors", f"anchors file {path}, line 3"), ("anchors", f"anchors file {path}, line 4"),
        ("anchors", f"anchors file {path}, line 5")]
    assert "not an anchor ('garbage here')" in problems[0]["message"]
    human = run(db, "db", "check")
    assert human.exit_code == 4 and human.stdout == "" and "Traceback" not in human.output
    assert f"anchors file {path}, line 3: not an anchor" in human.stderr


def test_an_anchors_path_that_is_a_folder_is_a_problem(db, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    code, problems = check(db, "--anchors", folder)
    assert code == 4 and [p["check"] for p in problems] == ["anchors"]
    assert problems[0]["message"].startswith(f"cannot read the anchors file {folder}:")
    result = run(db, "db", "seal", "--anchors", folder)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot write the anchors file {folder}:")


def test_anchors_flag_beats_env_beats_the_default(db, tmp_path):
    activity(db, 1, 2)
    by_flag, by_env = tmp_path / "flag" / "shop.anchors", tmp_path / "env.anchors"
    ok(db, "db", "seal", "--anchors", by_flag, "--at", "2025-01-03", env={"LOYALTY_ANCHORS": str(by_env)})
    assert by_flag.exists() and not by_env.exists() and not (tmp_path / "config").exists()
    assert stat.S_IMODE(os.stat(by_flag.parent).st_mode) == 0o700
    ok(db, "db", "seal", "--at", "2025-01-03", env={"LOYALTY_ANCHORS": str(by_env)})
    assert by_env.exists() and not (tmp_path / "config").exists()
    ok(db, "db", "seal", "--at", "2025-01-03")
    default = default_anchors(tmp_path, db)

    # db check reads the same file: make only the env one fail.
    by_env.write_text(by_env.read_text() + "not an anchor\n")
    assert check(db) == (0, [])
    assert check(db, "--anchors", by_flag) == (0, [])
    code, problems = check(db, env={"LOYALTY_ANCHORS": str(by_env)})
    assert code == 4 and problems[0]["message"].startswith(f"anchors file {by_env}, line 3:")
    assert check(db, "--anchors", default, env={"LOYALTY_ANCHORS": str(by_env)}) == (0, [])

    result = run(db, "db", "seal", env={"LOYALTY_ANCHORS": ""})
    assert result.exit_code == 2 and "LOYALTY_ANCHORS is set but empty" in result.stderr


def test_the_default_file_is_per_database_under_xdg_config_home_else_home(db, tmp_path, monkeypatch):
    other = fresh_db(tmp_path / "other" / "shop.db")  # the same file name, another shop
    ok(db, "db", "seal")
    ok(other, "db", "seal")
    files = sorted((tmp_path / "config" / "loyalty" / "anchors").iterdir())
    assert len(files) == 2 and all(re.fullmatch(r"shop\.db-[0-9a-f]{12}\.anchors", f.name) for f in files)
    assert {LINE.fullmatch(f.read_text().splitlines()[1]).group(4) for f in files} == {str(db), str(other)}

    monkeypatch.delenv("XDG_CONFIG_HOME")
    ok(db, "db", "seal")
    home_files = list((tmp_path / "home" / ".config" / "loyalty" / "anchors").iterdir())
    assert [f.name for f in home_files] == [f.name for f in files if str(db) in f.read_text()]
    # Without a database there is nothing to seal, and no file is made.
    result = run(tmp_path / "none.db", "db", "seal")
    assert result.exit_code != 0 and result.stdout == ""
    assert len(list((tmp_path / "home" / ".config" / "loyalty" / "anchors").iterdir())) == 1


# -- backup and restore -------------------------------------------------------------------------
def test_restoring_an_older_backup_names_the_restore_when_later_seals_fail(db, tmp_path):
    activity(db, 1, 3)
    ok(db, "db", "seal", "--at", "2025-01-03T23:00")
    backup = tmp_path / "backup.db"
    ok(db, "db", "backup", backup)
    activity(db, 4, 5)
    ok(db, "db", "seal", "--at", "2025-01-05T23:00")

    # The backup is checked without the anchors (the later seal lies beyond it by design): restored.
    ok(db, "db", "restore", backup, "--yes")
    path = default_anchors(tmp_path, db)
    restore_line = path.read_text().splitlines()[-1]
    eid, h = head_of(db)
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d restore entries=3 head={h} db={re.escape(str(db))}",
                        restore_line) and eid == 3
    code, problems = check(db)
    assert code == 4
    day = restore_line[:10]
    assert [p["message"] for p in problems] == [
        f"the ledger has 3 entries but was sealed at 5 on 2025-01-05: entries were deleted: restored from an older "
        f"backup on {day} (at 3 entries)? entries after it are gone (anchors file {path}, line 3)"]


def test_restore_without_an_anchors_file_makes_none_and_sealing_goes_on_after_it(db, tmp_path):
    activity(db, 1, 2)
    backup = tmp_path / "backup.db"
    ok(db, "db", "backup", backup)
    activity(db, 3, 4)
    ok(db, "db", "restore", backup, "--yes")
    assert not (tmp_path / "config").exists()
    assert check(db) == (0, [])
    ok(db, "db", "seal", "--at", "2025-01-05")
    activity(db, 5, 6)  # new entries 3 and 4 chain on to the restored ones
    assert check(db) == (0, [])
    assert [line.split(" head=")[0] for line in default_anchors(tmp_path, db).read_text().splitlines()[1:]] == [
        "2025-01-05T00:00:00 entries=2"]


def test_an_anchors_file_named_on_purpose_but_missing_fails_the_check(tmp_path, monkeypatch):
    """An unmounted stick or a typo in the cron line must not make the nightly check compare nothing."""
    from tests.helpers import ok, run

    db = tmp_path / "shop.db"
    ok(db, "init")
    missing = tmp_path / "usb" / "shop.anchors"
    result = run(db, "db", "check", "--anchors", missing)
    assert result.exit_code == 4 and f"the anchors file {missing} (given by --anchors) does not exist" in result.stderr
    monkeypatch.setenv("LOYALTY_ANCHORS", str(missing))
    result = run(db, "-q", "db", "check")
    assert result.exit_code == 4 and "(given by LOYALTY_ANCHORS) does not exist" in result.stderr
    monkeypatch.delenv("LOYALTY_ANCHORS")
    assert run(db, "db", "check").exit_code == 0  # the default place, never sealed: nothing to compare


def test_a_restore_that_loses_sealed_entries_says_how_to_go_on(tmp_path):
    from tests.helpers import ok, run

    db, backup, anchors_file = tmp_path / "shop.db", tmp_path / "old.db", tmp_path / "shop.anchors"
    ok(db, "init")
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2025-01-01")
    ok(db, "db", "backup", backup)
    ok(db, "points", "award", "M1", "5", "--reason", "x", "--at", "2025-01-02")
    ok(db, "db", "seal", "--anchors", anchors_file)
    result = ok(db, "db", "restore", backup, "--yes", "--anchors", anchors_file)
    assert "holds seals made after this backup" in result.stderr and "loyalty db seal" in result.stderr
    assert run(db, "db", "check", "--anchors", anchors_file).exit_code == 4
