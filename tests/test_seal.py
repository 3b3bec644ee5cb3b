"""Anchors outside the database (issue 17): `db seal` writes the chain's head (its block count and the
last block's hash) to an anchors file and `db check` verifies the chain still passes through every head
recorded there.

The keyed chain finds a row edited or deleted behind the tool's back by itself. What it cannot see is
the last blocks deleted together with their rows, or an old block rewritten and every later hash and
signature recomputed by someone who holds the key: here the same tampering passes every other check
and is found by the anchors.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from loyalty_cli.ledger import GENESIS
from tests.db import connect, entries, is_url, raw
from tests.helpers import chain_key, copy_database, drop_trigger, fresh_db, guards_dropped, ok, rechain, run

LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) blocks=(\d+) head=([0-9a-f]{64}) db=(.+)")


@pytest.fixture
def db(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it: block 1


def activity(db, first: int = 1, last: int = 5) -> None:
    """M1 gets one award per day (entries first..last, each 10 points), each a block of its own: with
    the database's first block and M1's enrolment, entry n is in block n + 2."""
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


def both(db, *args, env=None) -> tuple[int, list[dict]]:
    """db check, incremental (the default after a seal) and --full: the same verdict and problems."""
    found = check(db, *args, env=env)
    assert check(db, "--full", *args, env=env) == found
    return found


def head_of(db) -> tuple[int, str]:
    (bid, h), = raw(db, "SELECT id, hash FROM chain ORDER BY id DESC LIMIT 1")
    return bid, h


def ledger_head(db) -> tuple[int, str]:
    (eid, h), = raw(db, "SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1")
    return eid, h


def truncate(path, last_block: int, last_entry: int) -> None:
    """What an attacker with the sqlite3 shell does to make the last awards vanish without a trace in
    the file: the blocks after `last_block` deleted with the entries and lots they recorded, and the
    balance and daily totals those rows fed set back; every guard put back."""
    with connect(path) as conn, guards_dropped(conn, "chain", "ledger", "lots"):
        gone = conn.execute("SELECT coalesce(sum(points), 0) FROM ledger WHERE id > ?", (last_entry,)).fetchone()[0]
        days = [d for (d,) in conn.execute("SELECT DISTINCT substr(at, 1, 10) FROM ledger WHERE id > ?", (last_entry,))]
        conn.execute("DELETE FROM chain WHERE id > ?", (last_block,))
        conn.execute("DELETE FROM lots WHERE entry_id > ?", (last_entry,))
        conn.execute("DELETE FROM ledger WHERE id > ?", (last_entry,))
        conn.execute("UPDATE members SET balance = balance - ? WHERE member_id = 'M1'", (gone,))
        for day in days:
            conn.execute("DELETE FROM daily_points WHERE day = ?", (day,))


# -- db seal ------------------------------------------------------------------------------------
def test_seal_prints_the_head_and_appends_it_to_a_private_file(db, tmp_path, umask_zero):
    activity(db)
    result = ok(db, "db", "seal", "--at", "2025-01-06T02:30")
    bid, h = head_of(db)
    assert result.stdout == f"2025-01-06T02:30:00 blocks={bid} head={h} db={db}\n" and bid == 7
    path = default_anchors(tmp_path, db)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# loyalty anchors:")
    assert lines[1:] == [result.stdout.rstrip("\n")]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "config"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder

    # Again at the same head: another dated line (the chain had not changed by then); --json and -q.
    doc = json.loads(ok(db, "db", "seal", "--at", "2025-01-07", "--json").stdout)
    assert doc == {"at": "2025-01-07T00:00:00", "blocks": 7, "head": h, "anchors": str(path)}
    assert ok(db, "-q", "db", "seal", "--at", "2025-01-08").stdout == ""
    assert [LINE.fullmatch(x).group(1, 2, 3) for x in path.read_text().splitlines()[1:]] == [
        ("2025-01-06T02:30:00", "7", h), ("2025-01-07T00:00:00", "7", h), ("2025-01-08T00:00:00", "7", h)]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert head_of(db) == (7, h)  # sealing writes nothing to the chain


def test_a_fresh_database_seals_its_first_block_and_an_empty_seal_is_the_genesis(db, tmp_path):
    (h,), = raw(db, "SELECT hash FROM chain WHERE id = 1")
    assert ok(db, "db", "seal", "--at", "2025-01-01").stdout == f"2025-01-01T00:00:00 blocks=1 head={h} db={db}\n"
    assert check(db) == (0, [])
    activity(db)
    assert both(db) == (0, [])
    # A seal of an empty chain (blocks=0) must carry the genesis hash, and anything else is not one of ours.
    path = default_anchors(tmp_path, db)
    with path.open("a") as f:
        f.write(f"2025-01-01T00:00:00 blocks=0 head={GENESIS} db={db}\n")
    assert both(db) == (0, [])
    with path.open("a") as f:
        f.write(f"2025-01-01T00:00:00 blocks=0 head={'1' * 64} db={db}\n")
    code, problems = both(db)
    assert code == 4 and [p["message"].split(" (anchors file")[0] for p in problems] == [
        "the empty chain sealed at 0 blocks on 2025-01-01 has a head that is not the genesis hash: this anchor was "
        "not written by 'loyalty db seal'"]


def test_a_seal_dated_after_today_needs_allow_future(db, tmp_path):
    result = run(db, "db", "seal", "--at", "2999-01-01")
    assert result.exit_code == 2 and result.stdout == ""
    assert "--allow-future" in result.stderr and "record a seal dated after today" in result.stderr
    assert not (tmp_path / "config" / "loyalty" / "anchors").exists()  # nothing written
    assert ok(db, "db", "seal", "--at", "2999-01-01", "--allow-future").stdout.startswith("2999-01-01T00:00:00 ")


def test_db_check_passes_after_a_seal_and_after_more_activity_and_says_where_it_compared_from(db):
    activity(db, 1, 3)  # blocks 1..5
    ok(db, "db", "seal", "--at", "2025-01-03T23:00")
    assert both(db) == (0, [])
    activity(db, 4, 6)  # blocks 6..8
    assert both(db) == (0, [])
    assert ok(db, "db", "check").stdout == ("ok: every check passed (rows compared from the seal at block 5 of 8; "
                                            "--full compares every row)\n")
    ok(db, "db", "seal", "--at", "2025-01-06T23:00")
    activity(db, 7, 8)  # blocks 9..10
    assert both(db) == (0, [])
    assert ok(db, "db", "check").stdout == ("ok: every check passed (rows compared from the seal at block 8 of 10; "
                                            "--full compares every row)\n")
    assert ok(db, "db", "check", "--full").stdout == "ok: every check passed\n"


def test_without_a_seal_db_check_compares_every_row(db):
    activity(db, 1, 3)
    assert ok(db, "db", "check").stdout == "ok: every check passed\n"


# -- what the chain finds by itself, and what only the anchors find -----------------------------
def test_deleting_the_last_entries_is_found_by_the_chain_itself_as_missing_rows(db, tmp_path):
    activity(db, 1, 7)  # entries 6 and 7 are in blocks 8 and 9
    ok(db, "db", "seal", "--at", "2025-01-07T23:00")
    unsealed = copy_database(db, tmp_path / "unsealed.db")
    for path in (db, unsealed):  # an attacker with sqlite3: drop the guard, delete entries 6 and 7, put it back
        with connect(path) as conn, guards_dropped(conn, "ledger", *(("lots",) if is_url(path) else ())):
            if is_url(path):  # foreign keys always hold there: the entries' lots go too
                conn.execute("DELETE FROM lots WHERE entry_id > 5")
            conn.execute("DELETE FROM ledger WHERE id > 5")
        assert [e.id for e in entries(path)] == [1, 2, 3, 4, 5]

    for path in (db, unsealed):
        for mode in ((), ("--full",)):
            code, problems = check(path, *mode)
            messages = [p["message"] for p in problems if p["check"] == "chain"]
            assert code == 4 and "anchors" not in {p["check"] for p in problems}, problems
            if mode or path == unsealed:  # every row compared: both entries named
                assert [m for m in messages if m.startswith("entry ")] == [
                    f"entry {n} (ledger) is missing: the chain recorded it in block {n + 2}; it was deleted behind the "
                    "tool's back" for n in (6, 7)]
            else:  # from the seal at block 9: the counts say so
                assert any("ledger has 2 fewer rows than the chain recorded" in m for m in messages), messages
    human = run(db, "db", "check")
    assert human.exit_code == 4 and "behind the tool's back" in human.stderr and "Traceback" not in human.output


def test_deleting_the_last_blocks_and_their_rows_is_found_only_by_the_anchors(db, tmp_path):
    activity(db, 1, 7)
    ok(db, "db", "seal", "--at", "2025-01-07T23:00")
    unsealed = copy_database(db, tmp_path / "unsealed.db")
    for path in (db, unsealed):
        truncate(path, 7, 5)
        assert [e.id for e in entries(path)] == [1, 2, 3, 4, 5] and head_of(path)[0] == 7

    # Without anchors what is left is a whole, signed chain whose rows all match: nothing to see.
    assert both(unsealed) == (0, [])

    code, problems = both(db)
    assert code == 4
    path = default_anchors(tmp_path, db)
    assert [(p["check"], p["message"]) for p in problems] == [
        ("anchors", f"the chain has 7 blocks but was sealed at 9 blocks on 2025-01-07: blocks were deleted "
                    f"(anchors file {path}, line 2)")]
    human = run(db, "db", "check")
    assert human.exit_code == 4 and "blocks were deleted" in human.stderr and "Traceback" not in human.output


def test_an_older_copy_put_back_is_found_only_by_the_anchors(db, tmp_path):
    """Rolling the file back to an older copy is a truncation with nothing else out of place."""
    activity(db, 1, 3)
    older = tmp_path / "older.db"
    if is_url(db):  # (db backup writes SQLite files)
        older = copy_database(db, older)
    else:
        ok(db, "db", "backup", older)
    activity(db, 4, 5)
    ok(db, "db", "seal", "--at", "2025-01-05T23:00")
    copy_database(older, db)
    code, problems = both(db)
    assert code == 4
    assert [(p["check"], p["message"].split(" (anchors file")[0]) for p in problems] == [
        ("anchors", "the chain has 5 blocks but was sealed at 7 blocks on 2025-01-05: blocks were deleted")]


def rewrite_joined(path, key: bytes | None) -> None:
    """Move M1's enrolment a year back (an anniversary bonus sooner, a longer membership) in the members
    table and in block 2 that recorded it, and re-chain every block from there on: hashes recomputed,
    and signatures too when the attacker has the key."""
    with connect(path) as conn, guards_dropped(conn, "chain"):
        conn.execute("UPDATE members SET joined_on = '2024-01-01' WHERE member_id = 'M1'")
        (body,), = conn.execute("SELECT body FROM chain WHERE id = 2").fetchall()
        stored = type(body)  # text on SQLite, bytes (BYTEA) on PostgreSQL: written back as it was
        body = body.decode() if stored is bytes else body
        assert '"M1","2025-01-01"' in body
        body = body.replace('"M1","2025-01-01"', '"M1","2024-01-01"')
        conn.execute("UPDATE chain SET body = ? WHERE id = 2", (body.encode() if stored is bytes else body,))
        rechain(conn, 2, key)


def test_rewriting_an_old_block_and_rechaining_with_the_key_is_found_only_by_the_anchors(db, tmp_path):
    activity(db, 1, 4)  # blocks 1..6
    ok(db, "db", "seal", "--at", "2025-01-04T23:00")
    activity(db, 5, 6)  # blocks 7..8
    ok(db, "db", "seal", "--at", "2025-01-06T23:00")
    unsealed = copy_database(db, tmp_path / "unsealed.db")
    for path in (db, unsealed):
        rewrite_joined(path, chain_key())

    assert both(unsealed) == (0, [])  # every other check passes: the rewrite is invisible without anchors
    code, problems = both(db)
    assert code == 4
    path = default_anchors(tmp_path, db)
    assert [(p["check"], p["message"]) for p in problems] == [
        ("anchors", f"block 6's hash is not the one sealed at 6 blocks on 2025-01-04: history was rewritten "
                    f"(anchors file {path}, line 2)"),
        ("anchors", f"block 8's hash is not the one sealed at 8 blocks on 2025-01-06: history was rewritten "
                    f"(anchors file {path}, line 3)")]


def test_rechaining_without_the_key_is_found_by_the_signatures(db, tmp_path):
    activity(db, 1, 4)
    rewrite_joined(db, None)  # hashes recomputed, signatures left: they no longer match
    code, problems = both(db)
    assert code == 4 and {p["check"] for p in problems} == {"chain"}
    assert [p["message"] for p in problems] == [
        f"chain block {n} is not signed by the chain key: it was forged or rewritten behind the tool's back"
        for n in range(2, 7)]


def test_with_the_key_missing_no_key_still_finds_a_truncation_through_the_anchors(db, tmp_path):
    activity(db, 1, 7)
    ok(db, "db", "seal", "--at", "2025-01-07T23:00")
    key_file = tmp_path / "config" / "loyalty" / "chain.key"
    key_file.unlink()  # the attacker took it, or the disk it was on is gone
    truncate(db, 7, 5)
    code, problems = both(db, "--no-key")
    path = default_anchors(tmp_path, db)
    assert code == 4 and [(p["check"], p["message"]) for p in problems] == [
        ("anchors", f"the chain has 7 blocks but was sealed at 9 blocks on 2025-01-07: blocks were deleted "
                    f"(anchors file {path}, line 2)")]
    human = run(db, "db", "check", "--no-key")
    assert human.exit_code == 4 and "signatures were not checked" in human.stderr and "blocks were deleted" in human.stderr
    # Without --no-key the missing key is a problem of its own, beside the truncation.
    code, problems = check(db)
    assert code == 4 and {p["check"] for p in problems} == {"anchors", "key"}


def test_a_missing_sealed_block_in_the_middle_is_named(db, tmp_path):
    activity(db, 1, 5)  # blocks 1..7
    ok(db, "db", "seal", "--at", "2025-01-05T23:00")
    activity(db, 6, 7)  # blocks 8..9
    ok(db, "db", "seal", "--at", "2025-01-07T23:00")
    with connect(db) as conn:
        drop_trigger(conn, "chain_no_delete")
        conn.execute("DELETE FROM chain WHERE id = 7")
    for mode in ((), ("--full",)):  # the later seal still holds: the default compares rows from block 9 on
        code, problems = check(db, *mode)
        assert code == 4
        assert [p["message"].split(" (anchors file")[0] for p in problems if p["check"] == "anchors"] == [
            "block 7 is missing but the chain was sealed at 7 blocks on 2025-01-05: blocks were deleted"]
        assert "chain blocks 7..7 are missing (deleted behind the tool's back)" in [p["message"] for p in problems]


# -- seals made before the chain ----------------------------------------------------------------
def test_seal_lines_of_the_ledger_made_before_the_chain_are_still_verified(db, tmp_path):
    activity(db, 1, 5)
    eid, h = ledger_head(db)
    path = tmp_path / "old.anchors"
    path.write_text(f"# loyalty anchors: kept since 2024\n2025-01-05T23:00:00 entries={eid} head={h} db={db}\n")
    assert both(db, "--anchors", path) == (0, [])
    activity(db, 6, 7)
    assert both(db, "--anchors", path) == (0, [])
    truncate(db, 5, 3)  # entries 4..7 were in blocks 6..9
    code, problems = both(db, "--anchors", path)
    assert code == 4 and [(p["check"], p["message"]) for p in problems] == [
        ("anchors", f"the ledger has 3 entries but was sealed at 5 entries on 2025-01-05: entries were deleted "
                    f"(anchors file {path}, line 2)")]


# -- the anchors file ---------------------------------------------------------------------------
def test_a_malformed_anchors_file_is_a_problem_not_a_crash(db, tmp_path):
    activity(db, 1, 3)
    ok(db, "db", "seal", "--at", "2025-01-03T23:00")
    path = default_anchors(tmp_path, db)
    good = path.read_text().splitlines()[1]
    path.write_text("\n".join(["# kept by hand", good, "garbage here",
                               good.replace("blocks=5", "blocks=five"),
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
    assert by_flag.exists() and not by_env.exists() and not (tmp_path / "config" / "loyalty" / "anchors").exists()
    assert stat.S_IMODE(os.stat(by_flag.parent).st_mode) == 0o700
    ok(db, "db", "seal", "--at", "2025-01-03", env={"LOYALTY_ANCHORS": str(by_env)})
    assert by_env.exists() and not (tmp_path / "config" / "loyalty" / "anchors").exists()
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
    name = r"[^/]+" if is_url(db) else r"shop\.db"  # a file's name, or a PostgreSQL database's
    assert len(files) == 2 and all(re.fullmatch(rf"{name}-[0-9a-f]{{12}}\.anchors", f.name) for f in files)
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
@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file
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
    bid, h = head_of(db)
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d restore blocks=5 head={h} db={re.escape(str(db))}",
                        restore_line) and bid == 5
    code, problems = check(db)
    assert code == 4
    day = restore_line[:10]
    assert [p["message"] for p in problems] == [
        f"the chain has 5 blocks but was sealed at 7 blocks on 2025-01-05: blocks were deleted: restored from an older "
        f"backup on {day} (at 5 blocks)? blocks after it are gone (anchors file {path}, line 3)"]


@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file
def test_restore_without_an_anchors_file_makes_none_and_sealing_goes_on_after_it(db, tmp_path):
    activity(db, 1, 2)
    backup = tmp_path / "backup.db"
    ok(db, "db", "backup", backup)
    activity(db, 3, 4)
    ok(db, "db", "restore", backup, "--yes")
    assert not (tmp_path / "config" / "loyalty" / "anchors").exists()
    assert check(db) == (0, [])
    ok(db, "db", "seal", "--at", "2025-01-05")
    activity(db, 5, 6)  # new blocks 5 and 6 chain on to the restored ones
    assert check(db) == (0, [])
    assert [line.split(" head=")[0] for line in default_anchors(tmp_path, db).read_text().splitlines()[1:]] == [
        "2025-01-05T00:00:00 blocks=4"]


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
