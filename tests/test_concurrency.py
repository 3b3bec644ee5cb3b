"""Several real processes redeeming from the same member at once (SPEC §6 no overdraft, §10).

Each child process is a small Python script that runs the `loyalty` command
(`points redeem M1 1`) N times in a loop, in-process, and reports every exit
code and stderr; one test also starts the real `python -m loyalty_cli` several
times at once. The member starts with 40 points and the processes together try
more redemptions than that: exactly 40 must succeed, the balance must end at 0,
every failure must be "not enough points" (exit 1) or busy (exit 75), never a
traceback, and `db check` must pass. Also: the last items of a reward's stock
under the same contention, a writer that cannot get the database (exit 75), and
the nightly job lock (exit 75 at once).

Kept small (a few seconds) so it runs in `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.db import connect
from tests.helpers import ok, run, fresh_db

START_POINTS = 40

CHILD = textwrap.dedent("""
    import contextlib, io, json, os, sys, time

    db, attempts, ready, go, command = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
    from loyalty_cli.cli import app

    open(ready, "w").close()
    deadline = time.time() + 60
    while not os.path.exists(go) and time.time() < deadline:  # every child starts at the same moment
        time.sleep(0.002)
    results = []
    for _ in range(attempts):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                app(["--db", db, *command], prog_name="loyalty")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    sys.stdout.write(json.dumps(results))
""")


@pytest.fixture
def db(tmp_path):
    return fresh_db(tmp_path / "shop.db")  # as loyalty init makes it


def child_env() -> dict:
    env = dict(os.environ)
    env["LOYALTY_BUSY_TIMEOUT"] = "10"
    env.pop("LOYALTY_DEBUG", None)
    return env


def setup_member(db) -> None:
    ok(db, "members", "add", "--id", "M1", "--name", "Ana Li", "--joined", "2025-01-01")
    ok(db, "points", "award", "M1", START_POINTS, "--reason", "opening balance", "--at", "2025-01-10")


def assert_consistent(db, successes: int, failures: list[dict]) -> None:
    assert successes == START_POINTS
    for f in failures:
        assert f["code"] in (1, 75), f
        assert "Traceback" not in f["stderr"], f
        assert f["stderr"].startswith("Error:"), f
        if f["code"] == 1:
            assert "not enough" in f["stderr"], f
    doc = json.loads(ok(db, "points", "balance", "M1", "--json").stdout)
    assert doc["balance"] == 0
    history = json.loads(ok(db, "points", "history", "M1", "--json").stdout)
    assert [h["kind"] for h in history].count("redeem") == START_POINTS
    assert min(h["balance_after"] for h in history) == 0
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def run_children(db, tmp_path, processes: int, attempts: int, command: list[str]) -> list[dict]:
    """Start `processes` children that each run `loyalty --db db COMMAND` `attempts` times, all at once."""
    script = tmp_path / "loop.py"
    script.write_text(CHILD)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(processes)]
    children = [subprocess.Popen([sys.executable, str(script), str(db), str(attempts), str(ready[i]), str(go), *command],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                                 cwd=tmp_path)
                for i in range(processes)]
    deadline = time.time() + 60
    while not all(r.exists() for r in ready) and time.time() < deadline:
        if any(c.poll() is not None for c in children):
            break
        time.sleep(0.01)
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert "Traceback" not in err, err
        results.extend(json.loads(out))
    assert len(results) == processes * attempts
    return results


@pytest.mark.parametrize("processes,attempts", [(2, 24), (4, 12)])
def test_parallel_redemptions_never_overdraw(db, tmp_path, processes, attempts):
    setup_member(db)
    results = run_children(db, tmp_path, processes, attempts,
                           ["points", "redeem", "M1", "1", "--at", "2025-06-01T12:00"])
    assert len(results) > START_POINTS
    successes = sum(1 for r in results if r["code"] == 0)
    assert_consistent(db, successes, [r for r in results if r["code"] != 0])


def test_real_commands_started_together_redeem_exactly_what_there_is(db, tmp_path):
    """Six `python -m loyalty_cli points redeem M1 8` at once against 40 points: five succeed, one is refused."""
    setup_member(db)
    procs = [subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(db), "points", "redeem", "M1", "8",
                               "--at", "2025-06-01T12:00"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=tmp_path)
             for _ in range(6)]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        outcomes.append((p.returncode, out, err))
    assert sorted(code for code, _, _ in outcomes) == [0, 0, 0, 0, 0, 1]
    for code, out, err in outcomes:
        assert "Traceback" not in err
        if code:
            assert out == ""
            lines = err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error:") and "not enough" in lines[0]
    doc = json.loads(ok(db, "points", "balance", "M1", "--json").stdout)
    assert doc["balance"] == 0
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"] is True


def test_a_writer_that_cannot_get_the_database_exits_75_and_readers_are_not_blocked(db, tmp_path):
    """While another connection holds the write lock (an import, say), a counter redeem waits the busy
    timeout, then exits 75 with one line; a balance look-up still works (WAL)."""
    setup_member(db)
    with connect(db, isolation_level=None) as holder:
        holder.execute("BEGIN IMMEDIATE")
        try:
            env = child_env()
            env["LOYALTY_BUSY_TIMEOUT"] = "0.3"
            started = time.monotonic()
            p = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "points", "redeem", "M1", "5",
                                "--at", "2025-06-01"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
            assert p.returncode == 75, (p.stdout, p.stderr)
            assert p.stdout == ""
            lines = p.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error:") and "busy" in lines[0], p.stderr
            assert time.monotonic() - started < 30
            doc = json.loads(ok(db, "points", "balance", "M1", "--json").stdout)
            assert doc["balance"] == START_POINTS
        finally:
            holder.execute("ROLLBACK")
    ok(db, "points", "redeem", "M1", "5", "--at", "2025-06-01")
    assert json.loads(ok(db, "points", "balance", "M1", "--json").stdout)["balance"] == START_POINTS - 5


def test_a_second_expire_run_while_one_is_going_exits_75_at_once(db, tmp_path):
    from tests.helpers import job_running

    setup_member(db)
    with job_running(db, "expire"):  # what a running `points expire` holds
        env = child_env()
        started = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "points", "expire",
                            "--as-of", "2026-03-01", "-q"], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=60)
        assert p.returncode == 75, (p.stdout, p.stderr)
        assert p.stdout == "" and "Traceback" not in p.stderr
        assert p.stderr.startswith("Error:")
        assert time.monotonic() - started < 8  # at once, not after LOYALTY_BUSY_TIMEOUT=10
    assert json.loads(ok(db, "points", "balance", "M1", "--json").stdout)["balance"] == START_POINTS
    result = run(db, "points", "expire", "--as-of", "2026-03-01", "-q")
    assert (result.exit_code, result.stdout) == (0, "")
    assert json.loads(ok(db, "points", "balance", "M1", "--json").stdout)["balance"] == 0


def test_parallel_reward_redemptions_never_oversell_the_stock(db, tmp_path):
    setup_member(db)
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "2", "--stock", "5")
    results = run_children(db, tmp_path, 4, 3, ["points", "redeem", "M1", "--reward", "MUG", "--at", "2025-06-01T12:00"])
    codes = [r["code"] for r in results]
    assert codes.count(0) == 5, results
    for r in results:
        assert r["code"] in (0, 1, 75), r
        assert "Traceback" not in r["stderr"]
        if r["code"] == 1:
            assert "out of stock" in r["stderr"], r
    vouchers = json.loads(ok(db, "vouchers", "list", "--json").stdout)
    assert len(vouchers) == 5 and len({v["code"] for v in vouchers}) == 5
    assert [x["stock"] for x in json.loads(ok(db, "rewards", "list", "--json").stdout)] == [0]
    assert json.loads(ok(db, "points", "balance", "M1", "--json").stdout)["balance"] == START_POINTS - 10
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"] is True
