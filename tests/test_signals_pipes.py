"""Ctrl-C at any moment, a closed output pipe, a killed backup: the real CLI in real processes.

- Ctrl-C after a random delay (0-300 ms) on `members list`: one `Interrupted` line and exit 130,
  or, if the command had finished, its whole output and exit 0 - never a traceback, never a
  death by the signal after the output. `make test` tries 100 delays (LOYALTY_STRESS: 1,000).
- A reader that stops (`| head -1`): no message, exit 0, whatever the format.
- A `db backup` killed mid-copy leaves its hidden partial copy; the next `db check` or
  `db backup` removes it, but never the partial of a backup still running.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.db import connect, count, members
from tests.helpers import fresh_db, undo_chain
from loyalty_cli.store.migrations import MIGRATIONS

STRESS = bool(os.environ.get("LOYALTY_STRESS"))
TRIES = 1000 if STRESS else 100
SAVED = "Interrupted after the change was saved"
NOTHING = "Interrupted: nothing was written by the unfinished command."


def loyalty(db, *args, **kw):
    return subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), *map(str, args)],
                          capture_output=True, text=True, **kw)


def members_csv(path, count):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member_id", "name", "email", "joined_on"])
        for i in range(1, count + 1):
            w.writerow([f"M{i:05d}", f"Member {i}", f"m{i}@shop.example", "2026-01-15"])
    return path


@pytest.fixture
def shop(tmp_path):
    db = fresh_db(tmp_path / "shop.db")  # on the PostgreSQL run: a new database there
    assert loyalty(db, "members", "import", members_csv(tmp_path / "m.csv", 300)).returncode == 0
    return db


def console_script(tmp_path):
    """What pip writes for `[project.scripts]` (named `loyalty`, as installed)."""
    script = tmp_path / "bin" / "loyalty"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom loyalty_cli.__main__ import main\n"
                      "if __name__ == '__main__':\n    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n"
                      "    sys.exit(main())\n")
    script.chmod(0o755)
    return [str(script)]


def before_any_loyalty_code(rc, out, err, full) -> bool:
    """The interpreter's own start-up, before the package (and its handler) is imported: killed
    by the signal with nothing done, or CPython's own traceback of its `site` or `runpy` import.
    Nothing of loyalty has run, so none of its files can be in what was printed."""
    if f"loyalty_cli{os.sep}" in err or "Interrupted" in err:
        return False
    if err.startswith("Failed checking if argv[0] is an import path entry"):
        return rc == 0 and out == full  # CPython noted it and went on: the command ran
    if rc == -signal.SIGINT and err == "":
        return out == ""
    return out == "" and rc in (1, -signal.SIGINT) and err.rstrip().endswith("KeyboardInterrupt")


@pytest.mark.parametrize("tries", [20, pytest.param(TRIES, marks=pytest.mark.slow)])
def test_ctrl_c_at_any_moment_is_one_line_and_130_or_the_whole_output_and_0(shop, tmp_path, tries):
    starts = {"console script": console_script(tmp_path), "python -m": [sys.executable, "-m", "loyalty_cli"]}
    args = ["--db", str(shop), "members", "list"]
    full = subprocess.run(starts["python -m"] + args, capture_output=True, text=True)
    assert full.returncode == 0 and full.stdout.count("\n") > 300
    rng = random.Random(15)
    seen = {"130": 0, "0": 0, "interpreter start-up": 0}
    for attempt in range(tries):
        how = "console script" if attempt % 2 else "python -m"
        delay = rng.uniform(0, 0.3)
        proc = subprocess.Popen(starts[how] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        what = f"try {attempt} ({how}, Ctrl-C after {delay * 1000:.0f} ms): exit {proc.returncode}, stderr {err!r}"
        if proc.returncode == 130:
            assert err == NOTHING + "\n", what  # a list writes nothing
            seen["130"] += 1
        elif proc.returncode == 0 and err == "":
            assert out == full.stdout, what  # finished before the Ctrl-C: all of it
            seen["0"] += 1
        else:
            assert before_any_loyalty_code(proc.returncode, out, err, full.stdout) and delay < 0.15, what
            seen["interpreter start-up"] += 1
    assert seen["interpreter start-up"] <= max(2, tries // 5), seen
    assert seen["130"] and (seen["0"] or tries < 50), seen


def test_ctrl_c_ignored_by_the_caller_stays_ignored(shop):
    """`nohup` and background jobs start commands with SIGINT ignored: the tool keeps it so."""
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(shop), "members", "list", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    for _ in range(20):
        time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == "" and len(json.loads(out)) == 300


def test_ctrl_c_during_a_write_still_rolls_back_and_says_so(shop, tmp_path):
    """The handler raises KeyboardInterrupt while the command runs: the transaction rolls back."""
    csv_path = tmp_path / "p.csv"
    with open(csv_path, "w") as f:
        f.write("purchase_id,member_id,purchased_at,amount\n")
        for i in range(150_000):
            f.write(f"P{i},M{i % 300 + 1:05d},2026-02-01T10:00,{i % 90 + 1}.50\n")
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(shop), "purchases", "import", str(csv_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == NOTHING + "\n" and out == ""
    assert count(shop, "purchases") == 0
    assert loyalty(shop, "db", "check").returncode == 0


# -- a closed pipe ----------------------------------------------------------------------------
@pytest.fixture
def big_shop(tmp_path):
    """2,000 members: every list is larger than a pipe's buffer (64 KiB)."""
    db = fresh_db(tmp_path / "big.db")
    assert loyalty(db, "members", "import", members_csv(tmp_path / "m.csv", 2000)).returncode == 0
    return db


LISTS = {"csv": ["members", "list", "--csv"], "json": ["members", "list", "--json"], "plain": ["members", "list"],
         "dashboard": ["dashboard", "--as-of", "2026-03-01"], "report": ["report", "rfm", "--csv"]}


@pytest.mark.parametrize("name", LISTS)
def test_a_reader_that_stops_early_ends_it_quietly_with_exit_0(big_shop, name):
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(big_shop), *LISTS[name]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.read(200) if name == "json" else proc.stdout.readline()  # `| head -c 200`, `| head -1`
    assert first
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == b""


@pytest.mark.parametrize("args", [LISTS["csv"], LISTS["plain"], LISTS["dashboard"], ["--help"], ["members", "--help"],
                                  ["--version"], ["members", "show", "M00001"]])
def test_a_reader_gone_before_any_output_is_exit_0_too(big_shop, args):
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(big_shop), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `| true`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == b""


def test_a_write_whose_output_nobody_reads_is_done_and_exit_0(big_shop):
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(big_shop), "points", "award", "M00007", "40",
                             "--reason", "birthday"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == b""
    balance = loyalty(big_shop, "points", "balance", "M00007", "--json")
    assert json.loads(balance.stdout)["balance"] == 40


def test_a_refusal_keeps_its_exit_code_when_nobody_reads(big_shop):
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(big_shop), "points", "redeem", "M00007", "500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1 and err.startswith("Error: ") and err.count("\n") == 1


def test_rich_output_into_a_closed_pipe_is_left_to_the_cli(monkeypatch):
    """Rich on its own exits 1 on a closed pipe; the CLI turns BrokenPipeError into exit 0."""
    from loyalty_cli.render import Output

    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        with pytest.raises(BrokenPipeError):
            Output().console().print("x" * 100)
    finally:
        monkeypatch.undo()
        try:
            stream.close()
        except BrokenPipeError:
            pass


# -- a killed backup --------------------------------------------------------------------------
def fill(db, rows):
    """A database of tens of MB (a backup then takes a few tenths of a second to copy)."""
    assert loyalty(db, "init").returncode == 0
    assert loyalty(db, "members", "add", "--id", "M0", "--name", "First").returncode == 0
    first = members(db)[0]
    tier, since = first.tier, first.tier_since
    with connect(db) as conn:
        conn.executemany("INSERT INTO members (member_id, member_key, name, joined_on, tier, tier_since) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         ((f"B{i:07d}", f"b{i:07d}", f"Member {i} {'x' * 150}", "2024-01-01", tier, since)
                          for i in range(rows)))
        undo_chain(conn)  # rows written behind the tool's back: the chain is made again over them,
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    assert loyalty(db, "members", "show", "M0").returncode == 0  # … here, as when an older database is opened


def partials(folder):
    return sorted(p for p in glob.glob(f"{folder}/.*.partial-*") + glob.glob(f"{folder}/*.partial-*"))


def backup_caught_mid_copy(db, target, then):
    """Start `db backup`, and once its partial file holds a megabyte, `then(proc)` (a kill or a
    stop). Returns the process, or None if the copy finished first (the caller tries again)."""
    before = set(partials(target.parent))
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(db), "db", "backup", str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        for p in set(partials(target.parent)) - before:
            if not p.endswith(("-journal", "-wal", "-shm")) and os.path.exists(p) and os.path.getsize(p) > 1_000_000:
                then(proc)
                return proc
        time.sleep(0.001)
    proc.communicate()
    return None


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def caught(db, target, then):
    for _ in range(5):
        proc = backup_caught_mid_copy(db, target, then)
        if proc is not None:
            return proc
        target.unlink()
    pytest.fail("every backup finished before it could be caught mid-copy")


def test_a_killed_backup_leaves_a_partial_that_check_or_the_next_backup_removes(tmp_path):
    db = tmp_path / "shop.db"
    fill(db, 200_000)
    backups = tmp_path / "backups"
    backups.mkdir()

    # A backup running (stopped mid-copy), and one killed meanwhile: while a backup runs, no
    # partial is touched (which one is stale cannot be told), neither by check nor by a backup.
    running = caught(db, backups / "monday.db", lambda p: p.send_signal(signal.SIGSTOP))
    try:
        alive = partials(backups)
        caught(db, backups / "tuesday.db", kill)
        left = partials(backups)
        assert set(left) > set(alive) and not (backups / "tuesday.db").exists()  # a hidden copy of the data
        stale = [p for p in set(left) - set(alive) if not p.endswith("-journal")][0]
        check = loyalty(db, "db", "check")
        assert check.returncode == 0 and check.stderr == "" and partials(backups) == left
    finally:
        running.send_signal(signal.SIGCONT)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0 and err == "" and partials(backups) == sorted(set(left) - set(alive))
    assert count(backups / "monday.db", "members") == 200_001  # whole

    # With no backup running, check removes the stale one (and its journal).
    check = loyalty(db, "db", "check")
    assert check.returncode == 0 and check.stdout == "ok: every check passed\n"
    assert check.stderr == f"removed {stale}, an unfinished copy left by a 'db backup' that was stopped\n"
    assert partials(backups) == []

    # The next backup, to any folder, removes one too.
    caught(db, backups / "wednesday.db", kill)
    stale = [p for p in partials(backups) if not p.endswith("-journal")][0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = loyalty(db, "db", "backup", elsewhere / "thursday.db")
    assert done.returncode == 0 and done.stdout == f"backed up to {elsewhere / 'thursday.db'}\n"
    assert stale in done.stderr and partials(backups) == [] and partials(elsewhere) == []
    assert not os.path.exists(f"{db}.backup-partials")  # the list goes when it is empty


def test_check_and_backup_with_nothing_left_over_say_nothing_more(tmp_path):
    db = tmp_path / "shop.db"
    assert loyalty(db, "init").returncode == 0
    check = loyalty(db, "db", "check")
    assert check.returncode == 0 and check.stderr == ""
    done = loyalty(db, "db", "backup", tmp_path / "b.db")
    assert done.returncode == 0 and done.stderr == "" and partials(tmp_path) == []


def test_a_ctrl_c_python_would_swallow_in_a_callback_still_stops_the_command_with_130():
    """A KeyboardInterrupt raised inside a callback Python cannot raise from (here a `__del__`; in
    life the import lock's weakref callback) is "ignored" by Python: the command must not go on
    and exit 0, but stop with its one line and 130."""
    code = ("import loyalty_cli, sys\n"
            "loyalty_cli.begin(lambda: 'Interrupted: nothing was written.')\n"
            "class Lost:\n"
            "    def __del__(self):\n"
            "        raise KeyboardInterrupt\n"
            "Lost()\n"
            "print('went on')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "" and proc.stderr == "Interrupted: nothing was written.\n"
