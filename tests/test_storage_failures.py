"""A full disk, a dangling link, a damaged backup or database, closed standard streams: each says
what happened to which file, with its exit code, and claims nothing that did not happen.

Where a real full disk is needed, a small tmpfs is mounted (root only); without root those tests
are skipped and the same logic is covered by a failure injected with monkeypatch.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loyalty_cli import store as store_module
from tests.db import count
from tests.helpers import ok, one_error_line, run

NOTHING_WRITTEN = "is full: nothing was written; free some space and run the command again"


def shop(path: Path, members: int = 3) -> Path:
    """A database made by init, with members M1..Mn and 100 points each."""
    ok(path, "init")
    for i in range(1, members + 1):
        ok(path, "members", "add", "--id", f"M{i}", "--name", f"Member {i}")
        ok(path, "points", "award", f"M{i}", "100", "--reason", "seed")
    return path


def ledger_size(path) -> int:
    return count(path, "ledger")


def proc(*args, cwd, shell_redirect=""):
    """The real CLI in a child process; `shell_redirect` (`>&-`, `2>&-`) is applied by sh."""
    command = [sys.executable, "-m", "loyalty_cli", *map(str, args)]
    return subprocess.run(["sh", "-c", f'exec "$@" {shell_redirect}', "sh", *command], cwd=cwd,
                          capture_output=not shell_redirect, text=True, env=os.environ, timeout=120)


# -- a small real disk ------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """`tiny_disk(size)`: the path of a fresh tmpfs of that size (unmounted afterwards)."""
    mounted = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs to fill needs root; the monkeypatched tests cover the logic")
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the monkeypatched tests cover the logic")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> None:
    """Write a file in `folder` until the disk has no room left."""
    with open(folder / f"filler-{len(os.listdir(folder))}", "wb", buffering=0) as f:
        for block in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError:
                continue


def test_a_really_full_disk_says_nothing_was_written_and_reads_say_full(tmp_path, tiny_disk):
    disk = tiny_disk("3m")
    path = shop(disk / "s.db")
    with open(tmp_path / "p.csv", "w") as f:
        f.write("purchase_id,member_id,purchased_at,amount\n")
        f.writelines(f"T{i},M{i % 3 + 1},2026-11-01T10:00:00,1.{i % 100:02}\n" for i in range(20_000))
    before = ledger_size(path)
    reader = sqlite3.connect(path)  # a reader keeps the -wal and -shm files while the disk fills
    reader.execute("SELECT count(*) FROM ledger").fetchone()
    try:
        fill(disk)
        for args in (["points", "award", "M1", "1", "--reason", "x"], ["members", "add", "--name", "X"],
                     ["purchases", "import", tmp_path / "p.csv"]):
            result = proc("--db", path, *args, cwd=tmp_path)
            assert result.returncode == 1, (args, result.stderr)
            assert result.stderr == f"Error: the disk holding {path} {NOTHING_WRITTEN}\n", args
        assert ledger_size(path) == before
        assert count(path, "members") == 3
    finally:
        reader.close()
    # Without the reader SQLite removes -shm; on a disk without a byte free it cannot make it again:
    # every command, reads too, fails with an I/O error that is really the full disk.
    fill(disk)
    result = proc("--db", path, "members", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"Error: the disk holding {path} {NOTHING_WRITTEN}\n"
    assert result.stdout == ""


class FullAtCommit(store_module.Connection):
    """A connection whose write transactions fail at COMMIT as on a full disk: SQLite has rolled
    the transaction back by itself (out of the transaction, total_changes still counting)."""

    writing = False

    def execute(self, sql, *args):
        if sql == "BEGIN IMMEDIATE":
            self.writing = True
        elif sql == "COMMIT" and self.writing:
            super().execute("ROLLBACK")
            self.writing = False
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


@pytest.mark.parametrize("args", [
    ["points", "award", "M1", "1", "--reason", "x"],
    ["members", "add", "--name", "X"],
    ["purchases", "import", "p.csv"],
])
def test_a_commit_that_fails_on_a_full_disk_says_nothing_was_written(tmp_path, monkeypatch, args):
    path = shop(tmp_path / "shop.db")
    (tmp_path / "p.csv").write_text("purchase_id,member_id,purchased_at,amount\n"
                                    + "".join(f"T{i},M1,2026-11-01T10:00:00,2.50\n" for i in range(50)))
    before = ledger_size(path)
    with monkeypatch.context() as m:
        m.setattr(store_module, "Connection", FullAtCommit)  # the class the store connects with
        result = run(path, *args)
    assert result.exit_code == 1
    assert one_error_line(result) == f"Error: the disk holding {path} {NOTHING_WRITTEN}"
    assert ledger_size(path) == before
    assert count(path, "members") == 3


@pytest.mark.parametrize("free, expected", [
    (0, "the disk holding shop.db is full: nothing was written; free some space and run the command again"),
    (10 * 2**20, "cannot read or write shop.db: the disk reported an error (disk I/O error); "
                 "check the disk and its connection, then run: loyalty db check"),
])
def test_an_io_error_on_a_disk_without_space_is_a_full_disk(monkeypatch, free, expected):
    """SQLITE_IOERR_SHMSIZE (4874), _WRITE, _FSYNC…: SQLite's words for a disk with no byte left."""
    stat = os.statvfs(".")
    monkeypatch.setattr(os, "statvfs", lambda folder: os.statvfs_result(
        (stat.f_bsize, 4096, stat.f_blocks, free // 4096, free // 4096, *stat[5:])))
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = 4874
    store_module.forget_saved()
    assert str(store_module.storage_failure(exc, "shop.db")) == expected


# -- a dangling symbolic link ----------------------------------------------------------------
@pytest.mark.parametrize("args", [["init"], ["db", "restore", "backup.db", "--yes"], ["members", "list"]])
def test_a_dangling_link_is_named_and_nothing_is_created_through_it(tmp_path, args):
    shop(tmp_path / "backup.db")
    os.symlink("nowhere.db", tmp_path / "dang.db")
    result = run(tmp_path / "dang.db", *args)
    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: {tmp_path / 'dang.db'} is a symbolic link to nowhere.db, which does not exist; nothing was "
        f"created: create the database at the link's target (loyalty init --db {tmp_path / 'nowhere.db'}), "
        "or remove the link")
    assert not os.path.lexists(tmp_path / "nowhere.db")


def test_a_file_that_keeps_appearing_and_vanishing_is_not_retried_forever(tmp_path, monkeypatch):
    def taken(path, exclusive=False):
        raise FileExistsError(17, "File exists", str(path))
    monkeypatch.setattr(store_module, "create_private_file", taken)
    result = run(tmp_path / "new.db", "init")
    assert result.exit_code == 1
    assert "a file appeared there and went again" in one_error_line(result)


# -- damaged backups and databases -----------------------------------------------------------
def damage(path: Path, table: str = "ledger") -> None:
    """Overwrite the root page of `table` (page 1 past its header for sqlite_master) with 0xff."""
    conn = sqlite3.connect(path)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    root = 1 if table == "sqlite_master" else \
        conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        start = (root - 1) * page_size + (100 if root == 1 else 0)
        f.seek(start)
        f.write(b"\xff" * (root * page_size - start))


@pytest.mark.parametrize("table", ["ledger", "sqlite_master"])
@pytest.mark.parametrize("live_exists", [False, True])
def test_restoring_a_damaged_backup_names_the_backup_and_leaves_the_database(tmp_path, table, live_exists):
    backup = tmp_path / "dmg.db"
    shop(tmp_path / "source.db")
    ok(tmp_path / "source.db", "db", "backup", backup)
    damage(backup, table)
    live = tmp_path / "bw.db"
    if live_exists:
        shop(live, members=1)
    result = run(live, "db", "restore", backup, "--yes")
    assert result.exit_code == 4
    assert one_error_line(result) == (f"Error: {backup} is damaged (database disk image is malformed): "
                                      "nothing was restored; choose another backup")
    if live_exists:
        assert ledger_size(live) == 1
    else:
        assert not live.exists()


def test_a_damaged_database_gives_no_backup(tmp_path):
    path = shop(tmp_path / "shop.db")
    damage(path)
    target = tmp_path / "bk" / "monday.db"
    result = run(path, "db", "backup", target)
    assert result.exit_code == 4
    assert one_error_line(result) == (f"Error: {path} is damaged (database disk image is malformed): the backup "
                                      "was not written; restore an earlier backup: loyalty db restore BACKUP --yes")
    assert os.listdir(target.parent) == []  # neither the backup nor its partial
    assert not Path(f"{path}.backup-partials").exists()


def test_a_backup_onto_a_really_full_disk_names_the_backup_disk(tmp_path, tiny_disk):
    path = shop(tmp_path / "shop.db")
    disk = tiny_disk("64k")
    result = proc("--db", path, "db", "backup", disk / "full.db", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (f"Error: the disk holding {disk / 'full.db'} is full: no backup was written; free some "
                             "space there (or back up to another disk) and run the command again\n")
    assert os.listdir(disk) == []


class FullBackupTarget(store_module.Connection):
    """The database's connection, whose backups hit a full disk (SQLITE_FULL from the target)."""

    def backup(self, target, **kw):
        raise sqlite3.OperationalError("database or disk is full")


def test_a_backup_onto_a_full_disk_names_the_backup_not_the_database(tmp_path, monkeypatch):
    path = shop(tmp_path / "shop.db")
    target = tmp_path / "usb" / "full.db"
    with monkeypatch.context() as m:
        m.setattr(store_module, "Connection", FullBackupTarget)
        result = run(path, "db", "backup", target)
    assert result.exit_code == 1
    assert one_error_line(result) == (f"Error: the disk holding {target} is full: no backup was written; free some "
                                      "space there (or back up to another disk) and run the command again")
    assert os.listdir(target.parent) == []


# -- closed standard streams ---------------------------------------------------------------------
def test_a_closed_stdout_runs_the_command_and_exits_0(tmp_path):
    path = shop(tmp_path / "x.db")
    before = ledger_size(path)
    for quiet in (["-q"], []):
        done = proc("--db", path, *quiet, "points", "award", "M1", "5", "--reason", "cron", cwd=tmp_path,
                    shell_redirect=">&-")
        assert done.returncode == 0
    assert ledger_size(path) == before + 2
    assert proc("--db", path, "-q", "points", "expire", "--as-of", "2026-11-01", cwd=tmp_path,
                shell_redirect=">&-").returncode == 0
    assert proc("--db", path, "members", "list", cwd=tmp_path, shell_redirect=">&-").returncode == 0


def test_a_closed_stderr_keeps_the_exit_codes(tmp_path):
    path = shop(tmp_path / "x.db")
    assert proc("--db", path, "members", "list", "--bogus", cwd=tmp_path, shell_redirect="2>&-").returncode == 2
    assert proc("--db", path, "members", "show", "NOBODY", cwd=tmp_path, shell_redirect="2>&-").returncode == 1
    assert proc("--db", path, "members", "list", "--bogus", cwd=tmp_path,
                shell_redirect=">&- 2>&- <&-").returncode == 2


def test_a_backup_disk_without_room_for_a_new_file_names_the_backup(tmp_path, monkeypatch):
    """ENOSPC already when the backup's file is created (no inode or block left): the same line, exit 1."""
    import errno

    path = shop(tmp_path / "shop.db")
    target = tmp_path / "usb" / "full.db"
    target.parent.mkdir()
    create = store_module.create_private_file

    def no_room(where, exclusive=False):
        if ".partial-" in str(where):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))
        return create(where, exclusive)
    monkeypatch.setattr(store_module, "create_private_file", no_room)
    result = run(path, "db", "backup", target)
    assert result.exit_code == 1
    assert one_error_line(result) == (f"Error: the disk holding {target} is full: no backup was written; free some "
                                      "space there (or back up to another disk) and run the command again")
    assert os.listdir(target.parent) == []


def test_a_path_too_long_for_the_file_system_is_a_usage_error(tmp_path):
    long_name = "b" * 300  # one path component beyond NAME_MAX (255)
    for args in (("members", "list"), ("init",)):
        result = run(tmp_path / f"{long_name}.db", *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: the path ") and "too long for the file system" in result.stderr
        assert "unexpected" not in result.stderr
