"""The PostgreSQL backend itself (run with --backend postgresql; the rest of the suite runs on it too):
URLs and passwords, a server that is down, the guarantees in PostgreSQL's terms, identical results
to SQLite, `db copy` both ways, tills at once, the nightly jobs' lock, erasure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from tests import backend
from tests.db import raw
from tests.helpers import as_json, fresh_db, ok, one_error_line, run

pytestmark = pytest.mark.postgres_only

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "sample_data")


def with_password(url: str, password: str = "s3cr3t-Pa55") -> str:
    return url.replace("postgresql://shop@", f"postgresql://shop:{password}@", 1)


def empty_database() -> str:
    """A new database with nothing in it (not made by loyalty init)."""
    pg = backend.server()
    name = f"empty{os.getpid()}_{next(backend._numbers)}"
    backend._made.append(name)
    return pg.create_db(name)


def sample_shop(db) -> None:
    ok(db, "program", "load", os.path.join(SAMPLE, "program.toml"))
    ok(db, "members", "import", os.path.join(SAMPLE, "members.csv"))
    ok(db, "purchases", "import", os.path.join(SAMPLE, "purchases.csv"))
    ok(db, "rewards", "add", "CAKE", "--name", "Slice of cake", "--cost", "300", "--stock", "40")
    ok(db, "points", "redeem", "M0099", "--reward", "CAKE", "--at", "2026-10-20T11:02")
    ok(db, "points", "redeem", "M0002", "500", "--at", "2026-10-12T09:40")
    ok(db, "feedback", "add", "M0042", "8", "--at", "2026-10-30")
    ok(db, "points", "expire", "--as-of", "2026-10-31")
    ok(db, "tiers", "recalc", "--as-of", "2026-10-31")
    ok(db, "members", "erase", "M0007", "--yes", "--at", "2026-10-31T18:00")  # a NULL name, sorted first


# -- URLs, passwords, the driver, a server that is down -------------------------------------
def test_init_creates_the_schema_in_an_empty_database_and_never_shows_the_password(tmp_path):
    url = with_password(empty_database())
    result = run(url, "init")
    assert result.exit_code == 0, result.stderr
    assert "s3cr3t-Pa55" not in result.output
    assert "postgresql://shop:***@" in result.stdout
    assert as_json(url, "db", "check") == {"ok": True, "problems": []}
    # the role that owns it is an ordinary one, as on a rented server
    assert raw(url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [(0,)]


def test_a_database_with_another_applications_tables_is_refused_untouched():
    url = empty_database()
    raw(url, "CREATE TABLE customers (id int)")
    for args in (("init",), ("members", "list")):
        line = one_error_line(run(url, *args))
        assert "another application's tables" in line
    assert raw(url, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == [(1,)]


def test_an_empty_database_is_not_created_by_an_ordinary_command():
    url = empty_database()
    line = one_error_line(run(url, "members", "list"))
    assert "no loyalty database" in line and "loyalty init --db" in line
    assert raw(url, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == [(0,)]


def test_a_server_that_is_down_is_exit_75_with_one_line_and_no_password(tmp_path):
    url = f"postgresql://shop:hunter22@/nowhere?host={tmp_path}&port=1"
    result = run(url, "members", "list")
    assert result.exit_code == 75
    line = one_error_line(result)
    assert "cannot reach the database" in line and "hunter22" not in line and "shop:***@" in line


def test_the_password_stays_hidden_in_errors_from_the_environment(monkeypatch, db):
    url = with_password(db, "pw-in-env")
    monkeypatch.setenv("LOYALTY_DB", url)
    from typer.testing import CliRunner

    from loyalty_cli.cli import app

    result = CliRunner().invoke(app, ["members", "show", "NOPE"])
    assert result.exit_code == 1
    assert "pw-in-env" not in result.output


def test_without_the_driver_a_postgresql_url_says_which_extra_to_install(tmp_path):
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from loyalty_cli.__main__ import main\n"
            "sys.argv = ['loyalty', '--db', 'postgresql://shop@/x', 'members', 'list']\nmain()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pip install 'loyalty[postgres]'" in result.stderr


# -- the guarantees in PostgreSQL's terms ---------------------------------------------------
def test_the_ledger_and_the_history_refuse_update_delete_and_truncate(db):
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    ok(db, "points", "award", "M1", "100", "--reason", "welcome", "--at", "2026-01-02")
    ok(db, "purchases", "add", "M1", "0.50", "--at", "2026-01-03T10:00", "--id", "P1")
    import psycopg

    for sql in ("UPDATE ledger SET points = 1000", "DELETE FROM ledger", "TRUNCATE ledger CASCADE",
                "UPDATE chain SET mac = 'x'", "DELETE FROM purchases", "TRUNCATE lot_uses CASCADE"):
        with pytest.raises(psycopg.Error, match="append-only|keeps its history"):
            raw(db, sql)
    assert raw(db, "SELECT sum(points) FROM ledger") == [(100,)]


def test_a_disabled_trigger_is_reported_by_db_check(db):
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    raw(db, "ALTER TABLE ledger DISABLE TRIGGER ledger_no_update")
    result = run(db, "db", "check", "--json")
    assert result.exit_code == 4
    problems = json.loads(result.stdout)["problems"]
    assert any(p["check"] == "schema" and "ledger_no_update" in p["message"] for p in problems)


def test_a_check_constraint_holds(db):
    import psycopg

    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    with pytest.raises(psycopg.errors.CheckViolation):
        raw(db, "INSERT INTO rewards (code, name, cost) VALUES ('X', 'x', 0)")


# -- identical input, identical results -----------------------------------------------------
READS = (("dashboard", "--as-of", "2026-10-31"), ("report", "segments", "--as-of", "2026-10-31"),
         ("report", "liability", "--as-of", "2026-10-31"), ("report", "churn", "--as-of", "2026-10-31"),
         ("report", "anomalies", "--as-of", "2026-10-31"), ("report", "rfm", "--as-of", "2026-10-31"),
         ("members", "list", "--search", "öz"), ("members", "list", "--sort", "name", "--limit", "5"), ("members", "show", "M0099"), ("points", "history", "M0002"),
         ("tiers", "list"), ("rewards", "list"))


def test_the_sample_shop_gives_the_same_figures_and_chain_heads_on_both_backends(db, tmp_path):
    from loyalty_cli.store import Store

    lite = tmp_path / "same.db"
    Store.open(lite, create=True).close()
    for target in (lite, db):
        sample_shop(target)
    for args in READS:
        assert ok(lite, *args, "--json").stdout == ok(db, *args, "--json").stdout, args
    head = "SELECT hash FROM ledger ORDER BY id DESC LIMIT 1"
    assert raw(lite, head) == raw(db, head)
    assert raw(lite, "SELECT count(*) FROM chain") == raw(db, "SELECT count(*) FROM chain")
    assert ok(db, "db", "check").stdout == "ok: every check passed\n"


# -- db copy --------------------------------------------------------------------------------
def test_db_copy_moves_a_shop_to_postgresql_and_back_with_the_same_chain_head(tmp_path):
    from loyalty_cli.store import Store

    lite = tmp_path / "shop.db"
    Store.open(lite, create=True).close()
    sample_shop(lite)
    url = empty_database()
    there = as_json(lite, "db", "copy", "--to", url)
    assert there["rows"]["purchases"] == 6006
    back = tmp_path / "back.db"
    again = as_json(url, "db", "copy", "--to", back)
    assert again["chain_head"] == there["chain_head"] and again["ledger_head"] == there["ledger_head"]
    for args in READS[:4]:
        assert ok(lite, *args, "--json").stdout == ok(url, *args, "--json").stdout == ok(back, *args, "--json").stdout
    assert ok(back, "db", "check").exit_code == 0
    # the copy goes on working: a sale on PostgreSQL after the move
    ok(url, "purchases", "add", "M0002", "10.00", "--at", "2026-11-01T10:00", "--id", "AFTER-MOVE")
    assert ok(url, "db", "check").exit_code == 0


def test_db_copy_refuses_a_target_that_holds_anything(db, tmp_path):
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    other = fresh_db(tmp_path / "other.db")
    ok(other, "members", "add", "--id", "X9", "--name", "Bo", "--joined", "2026-01-01")
    result = run(db, "db", "copy", "--to", other)
    assert result.exit_code == 1 and "already holds data" in one_error_line(result)
    assert raw(other, "SELECT member_id FROM members") == [("X9",)]
    existing = tmp_path / "exists.db"
    existing.write_bytes(b"not empty")
    assert "already exists" in one_error_line(run(db, "db", "copy", "--to", existing))
    assert existing.read_bytes() == b"not empty"


# -- tills at once --------------------------------------------------------------------------
def _child(db, *args, env=None):
    environ = {**os.environ, "LOYALTY_BUSY_TIMEOUT": "20", **(env or {})}
    return subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", db, *map(str, args)],
                          capture_output=True, text=True, env=environ, timeout=120)


def test_eight_tills_redeeming_one_member_at_once_never_overdraw(db):
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    ok(db, "points", "award", "M1", "1000", "--reason", "opening", "--at", "2026-01-02")
    results = [None] * 8

    def till(i):
        results[i] = _child(db, "points", "redeem", "M1", "300", "--at", "2026-02-01T10:00")

    threads = [threading.Thread(target=till, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 0, 0, 1, 1, 1, 1, 1], [r.stderr for r in results]
    assert as_json(db, "points", "balance", "M1")["balance"] == 100
    assert ok(db, "db", "check").exit_code == 0


def test_two_tills_importing_the_same_file_at_once_award_each_purchase_once(db, tmp_path):
    ok(db, "members", "import", os.path.join(SAMPLE, "members.csv"))
    ok(db, "program", "load", os.path.join(SAMPLE, "program.toml"))
    results = [None, None]

    def till(i):
        results[i] = _child(db, "purchases", "import", os.path.join(SAMPLE, "purchases.csv"), "--json")

    threads = [threading.Thread(target=till, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    imported = sorted(json.loads(r.stdout)["imported"] for r in results)
    assert imported == [0, 6006]
    assert raw(db, "SELECT count(*) FROM purchases") == [(6006,)]
    assert ok(db, "db", "check").exit_code == 0


def test_a_till_waiting_longer_than_the_busy_timeout_exits_75_with_nothing_written(db):
    from tests.db import connect

    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    with connect(db) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            r = _child(db, "points", "award", "M1", "5", "--reason", "x", env={"LOYALTY_BUSY_TIMEOUT": "0.5"})
        finally:
            blocker.execute("ROLLBACK")
    assert r.returncode == 75 and r.stderr.startswith("Error:") and r.stderr.count("\n") == 1
    assert as_json(db, "points", "balance", "M1")["balance"] == 0


def test_a_nightly_job_running_elsewhere_makes_the_second_exit_75_at_once(db):
    from tests.db import connect

    import zlib

    from loyalty_cli.store.postgres import JOB_LOCKS

    with connect(db) as other_machine:  # another till's cron holds the job's advisory lock
        other_machine.execute("SELECT pg_advisory_lock(?, ?)", (JOB_LOCKS, zlib.crc32(b"recalc") & 0x7FFFFFFF))
        r = _child(db, "tiers", "recalc", "-q")
        other_machine.execute("SELECT pg_advisory_unlock(?, ?)", (JOB_LOCKS, zlib.crc32(b"recalc") & 0x7FFFFFFF))
    assert r.returncode == 75 and "another 'recalc' job is running" in r.stderr
    assert _child(db, "tiers", "recalc", "-q").returncode == 0


# -- erasure ----------------------------------------------------------------------------------
def test_erasure_leaves_no_personal_data_in_live_rows_and_vacuums_the_table(db):
    ok(db, "members", "add", "--id", "M1", "--name", "Zelda Quartz", "--email", "zq@example.com",
       "--joined", "2026-01-01")
    ok(db, "feedback", "add", "M1", "9", "--comment", "Zelda loves it", "--at", "2026-01-05")
    ok(db, "members", "erase", "M1", "--yes")
    assert raw(db, "SELECT count(*) FROM members WHERE name IS NOT NULL OR email IS NOT NULL") == [(0,)]
    assert raw(db, "SELECT count(*) FROM feedback WHERE comment IS NOT NULL") == [(0,)]
    vacuumed = raw(db, "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL ORDER BY relname")
    assert vacuumed == [("feedback",), ("members",)]


def test_a_connection_dropped_mid_import_is_exit_75_and_nothing_is_half_written(db, tmp_path):
    import time

    ok(db, "members", "import", os.path.join(SAMPLE, "members.csv"))
    before = raw(db, "SELECT count(*), max(id) FROM ledger")
    sales = tmp_path / "big.csv"
    with open(sales, "w") as f:
        f.write("purchase_id,member_id,purchased_at,amount\n")
        for i in range(120_000):
            f.write(f"B{i:06d},M{1 + i % 300:04d},2026-0{1 + i % 9}-{1 + i % 28:02d}T10:00:00,{1 + i % 50}.25\n")
    child = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", db, "purchases", "import", str(sales)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and child.poll() is None:
        found = raw(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'loyalty' "
                        "AND pid != pg_backend_pid() AND backend_xid IS NOT NULL")
        if found:
            killed = True
            break
        time.sleep(0.05)
    out, err = child.communicate(timeout=120)
    assert killed, "the import finished before its connection could be dropped"
    assert child.returncode == 75, err
    assert err.startswith("Error:") and err.count("\n") == 1 and "nothing was written" in err
    assert raw(db, "SELECT count(*) FROM purchases") == [(0,)]
    assert raw(db, "SELECT count(*), max(id) FROM ledger") == before
    assert ok(db, "db", "check").exit_code == 0


def test_db_copy_into_a_database_made_with_init_says_it_needs_an_empty_one(db, tmp_path):
    from loyalty_cli.store import Store

    lite = tmp_path / "shop.db"
    Store.open(lite, create=True).close()
    result = run(lite, "db", "copy", "--to", db)  # db: made as `loyalty init` makes it
    assert result.exit_code == 1
    assert "set up with 'loyalty init'" in one_error_line(result)


def test_db_backup_and_restore_on_postgresql_point_to_db_copy(db, tmp_path):
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    line = one_error_line(run(db, "db", "backup", tmp_path / "b.db"))
    assert "db copy --to" in line and not (tmp_path / "b.db").exists()
    backup = tmp_path / "shop.db"
    ok(db, "db", "copy", "--to", backup)
    line = one_error_line(run(db, "db", "restore", backup, "--yes"))
    assert "db copy --to" in line
    assert as_json(db, "members", "show", "M1")["member_id"] == "M1"


# -- the same random activity on both backends ---------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = st.lists(st.tuples(st.sampled_from(["sale", "sale", "sale", "refund", "redeem", "award", "expire", "recalc"]),
                          st.sampled_from(["M1", "M2", "M3"]), st.integers(1, 400), st.integers(0, 20)),
                min_size=5, max_size=15)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_random_activity_gives_the_same_results_on_both_backends(tmp_path, ops):
    import datetime as dt
    import uuid

    from loyalty_cli.store import Store

    url = backend.new_database()  # first: it gives the test its chain key, which the SQLite file then uses too
    lite = tmp_path / f"{uuid.uuid4().hex}.db"
    Store.open(lite, create=True).close()
    outcomes = {}
    for db in (lite, url):
        ok(db, "program", "load", os.path.join(SAMPLE, "program.toml"))
        for mid in ("M1", "M2", "M3"):
            ok(db, "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
        codes, day, sales = [], dt.date(2025, 1, 2), []
        for i, (op, mid, amount, gap) in enumerate(ops):
            day += dt.timedelta(days=gap)
            at = f"{day}T10:{i % 60:02d}"
            if op == "sale":
                args = ("purchases", "add", mid, f"{amount}.50", "--at", at, "--id", f"S{i}")
                sales.append((f"S{i}", mid))
            elif op == "refund" and sales:
                sale, _ = sales[amount % len(sales)]
                args = ("purchases", "refund", sale, "--at", at, "--id", f"R{i}")
            elif op == "redeem":
                args = ("points", "redeem", mid, str(amount), "--at", at)
            elif op == "award":
                args = ("points", "award", mid, str(amount), "--reason", "x", "--at", at)
            elif op == "expire":
                args = ("points", "expire", "--as-of", str(day))
            else:
                args = ("tiers", "recalc", "--as-of", str(day))
            result = run(db, *args, "--json")
            codes.append((result.exit_code, result.stdout))
        reads = [ok(db, "points", "history", m, "--json").stdout for m in ("M1", "M2", "M3")]
        reads.append(ok(db, "dashboard", "--as-of", str(day), "--json").stdout)
        reads.append(raw(db, "SELECT hash FROM ledger ORDER BY id DESC LIMIT 1"))
        outcomes[str(db)] = (codes, reads)
        assert ok(db, "db", "check").exit_code == 0
    first, second = outcomes.values()
    assert first == second


def test_a_database_or_role_that_does_not_exist_is_exit_1_saying_so(db):
    for url, words in ((db.replace("/t", "/missing_t", 1), 'database "missing_t'),
                       (db.replace("shop@", "ghost:pw@", 1), 'role "ghost" does not exist')):
        result = run(url, "members", "list")
        assert result.exit_code == 1, result.stderr
        line = one_error_line(result)
        assert words in line and "refused the connection" in line and ":pw@" not in line


def test_a_url_whose_settings_libpq_refuses_is_a_usage_error(tmp_path):
    for url in ("postgresql://shop:pw@/x?sslmode=bogus", "postgresql://shop:pw@/x?bogus=1", "postgresql://[::1"):
        result = run(url, "members", "list")
        assert result.exit_code == 2, (url, result.stderr)
        line = one_error_line(result)
        assert ":pw@" not in line and "Traceback" not in result.output


# -- a till killed mid-import ------------------------------------------------------------------
def test_imports_killed_at_random_moments_are_all_or_nothing_and_a_rerun_awards_each_sale_once(tmp_path):
    """The crash harness of test_crash.py, on PostgreSQL: a client killed with SIGKILL leaves the
    server to roll its transaction back; `db check` passes, the file is in whole or not at all, and
    a re-run leaves exactly the ledger a clean import leaves."""
    import random
    import signal
    import time

    from tests.test_crash import ledger_of, write_shop

    rows, kills = 20_000, 4
    members_csv, purchases_csv = write_shop(tmp_path, rows, 1000)
    program = tmp_path / "program.toml"
    program.write_text('[earn]\nsignup_bonus = 25\nfirst_purchase_multiplier = "2"\n'
                       '[[earn.categories]]\nname = "tobacco"\nmultiplier = "0"\n')

    def shop():
        url = backend.new_database()
        for args in (("program", "load", program), ("members", "import", members_csv, "-q")):
            assert _child(url, *args).returncode == 0
        return url

    reference = shop()
    started = time.perf_counter()
    assert _child(reference, "purchases", "import", purchases_csv, "-q").returncode == 0
    duration = time.perf_counter() - started
    expected = ledger_of(reference)
    assert raw(reference, "SELECT count(*) FROM purchases") == [(rows,)]

    rng = random.Random(2026)
    seen = {"none": 0, "all": 0}
    for attempt in range(kills):
        work = shop()
        proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", work, "purchases", "import",
                                 str(purchases_csv), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, duration * 0.9))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check = _child(work, "db", "check", "--json")
        assert check.returncode == 0, f"kill {attempt}: {check.stdout} {check.stderr}"
        (visible,), = raw(work, "SELECT count(*) FROM purchases")
        assert visible in (0, rows), f"kill {attempt}: {visible} of {rows} purchases visible"
        seen["all" if visible else "none"] += 1
        rerun = _child(work, "purchases", "import", purchases_csv, "--json")
        assert rerun.returncode == 0, rerun.stderr
        assert ledger_of(work) == expected, f"kill {attempt}: the ledger differs from a clean import"
    assert seen["none"] > 0  # the harness really interrupted imports


def test_ctrl_c_stops_an_import_promptly_writes_nothing_and_exits_130(db, tmp_path):
    import signal
    import time

    from tests.test_crash import write_shop

    members_csv, purchases_csv = write_shop(tmp_path, 60_000, 3000)
    assert _child(db, "members", "import", members_csv, "-q").returncode == 0
    before = raw(db, "SELECT count(*), max(id) FROM ledger")
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", db, "purchases", "import", str(purchases_csv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(2.0)
    interrupted = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.perf_counter() - interrupted < 5
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert raw(db, "SELECT count(*) FROM purchases") == [(0,)]
    assert raw(db, "SELECT count(*), max(id) FROM ledger") == before
    assert _child(db, "db", "check").returncode == 0


def test_a_ctrl_c_while_a_command_is_on_the_wire_ends_the_transaction_and_stays_a_ctrl_c(db):
    """A Ctrl-C that lands while psycopg sends a command or reads its result (outside the wait that
    cancels it) leaves the connection busy: the ROLLBACK or COMMIT that ends the transaction would be
    refused ("another command is already in progress") and was reported as a lost connection (exit
    75). The connection is abandoned instead (the server rolls back) and the Ctrl-C stays one."""
    import pytest as _pytest

    from loyalty_cli.store import Store

    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2026-01-01")
    for way in ("read", "write"):
        store = Store.open(db)
        with _pytest.raises(KeyboardInterrupt):
            with getattr(store, way)() as conn:
                conn.raw.pgconn.send_query(b"SELECT pg_sleep(0.2)")  # on the wire, not waited for
                raise KeyboardInterrupt
        assert store.conn.raw.closed
        store.close()
    assert as_json(db, "points", "balance", "M1")["balance"] == 0
    assert ok(db, "db", "check").exit_code == 0
