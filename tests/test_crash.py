"""Crash harness: a purchases import killed with SIGKILL at random moments (seeded, reproducible).

After every kill the database must pass `db check`, hold the file entirely or
not at all, and a re-run must leave exactly the ledger a clean import leaves
(same entries, same hashes), so every purchase's points are awarded once.

Sizes: `make test` kills a 200,000-row import 10 times (about five minutes);
`make stress` (LOYALTY_STRESS=1) kills it 200 times. LOYALTY_CRASH_ROWS and
LOYALTY_CRASH_KILLS override either.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.db import connect, count

STRESS = bool(os.environ.get("LOYALTY_STRESS"))
ROWS = int(os.environ.get("LOYALTY_CRASH_ROWS", 200_000))
KILLS = int(os.environ.get("LOYALTY_CRASH_KILLS", 200 if STRESS else 10))
MEMBERS = max(ROWS // 20, 50)


def write_shop(folder, rows: int, members: int, seed: int = 7):
    """Members and a time-ordered purchases file with ~2% refunds of earlier sales."""
    rng = random.Random(seed)
    members_csv = folder / "members.csv"
    with open(members_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member_id", "name", "joined_on", "birthday"])
        for i in range(1, members + 1):
            w.writerow([f"M{i:05d}", f"Member {i}", "2024-01-01", f"1980-{rng.randint(1, 12):02d}-15"])
    purchases_csv = folder / "purchases.csv"
    sales = []
    with open(purchases_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["purchase_id", "member_id", "purchased_at", "amount", "category", "kind", "refund_of"])
        for i in range(rows):
            day, sec = divmod(i * 86400 * 400 // rows, 86400)
            at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1735689600 + day * 86400 + sec))
            if sales and rng.random() < 0.02:
                pid, member, cents = sales.pop(rng.randrange(len(sales)))
                part = cents if rng.random() < 0.5 else rng.randint(1, cents)
                w.writerow([f"R{i:07d}", member, at, f"{part // 100}.{part % 100:02d}", "", "refund", pid])
                continue
            member = f"M{int(members * rng.random() ** 2) + 1:05d}"
            cents = rng.randint(50, 9000)
            sales.append((f"P{i:07d}", member, cents))
            w.writerow([f"P{i:07d}", member, at, f"{cents // 100}.{cents % 100:02d}", rng.choice(["bakery", "deli", "tobacco"]),
                        "sale", ""])
    return members_csv, purchases_csv


def loyalty(db, *args, **kw):
    return subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), *map(str, args)],
                          capture_output=True, text=True, **kw)


def ledger_of(db):
    with connect(db) as conn:
        return conn.execute("SELECT id, member_id, at, kind, points, ref, note, hash FROM ledger ORDER BY id").fetchall()


def copy_db(src, dst):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{dst}{suffix}"):
            os.remove(f"{dst}{suffix}")
    shutil.copyfile(src, dst)


@pytest.mark.slow
def test_killed_imports_are_all_or_nothing_and_rerun_exactly_once(tmp_path):
    members_csv, purchases_csv = write_shop(tmp_path, ROWS, MEMBERS)
    template = tmp_path / "template.db"
    program = tmp_path / "program.toml"
    program.write_text('[earn]\nsignup_bonus = 25\nfirst_purchase_multiplier = "2"\n'
                       '[[earn.categories]]\nname = "tobacco"\nmultiplier = "0"\n')
    assert loyalty(template, "init", "-q").returncode == 0  # only init makes a database
    assert loyalty(template, "program", "load", program).returncode == 0
    assert loyalty(template, "members", "import", members_csv).returncode == 0
    assert loyalty(template, "db", "backup", tmp_path / "pristine.db").returncode == 0
    pristine = tmp_path / "pristine.db"

    reference = tmp_path / "reference.db"
    copy_db(pristine, reference)
    started = time.perf_counter()
    clean = loyalty(reference, "purchases", "import", purchases_csv, "-q")
    duration = time.perf_counter() - started
    assert clean.returncode == 0, clean.stderr
    expected = ledger_of(reference)
    assert count(reference, "purchases") == ROWS

    rng = random.Random(2026)
    work = tmp_path / "work.db"
    seen = {"none": 0, "all": 0}
    for attempt in range(KILLS):
        copy_db(pristine, work)
        proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(work), "purchases", "import",
                                 str(purchases_csv), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check = loyalty(work, "db", "check", "--json")
        assert check.returncode == 0, f"kill {attempt}: {check.stdout} {check.stderr}"
        visible = count(work, "purchases")
        assert visible in (0, ROWS), f"kill {attempt}: {visible} of {ROWS} purchases visible"
        seen["all" if visible else "none"] += 1
        rerun = loyalty(work, "purchases", "import", purchases_csv, "--json")
        assert rerun.returncode == 0, rerun.stderr
        assert ledger_of(work) == expected, f"kill {attempt}: the ledger differs from a clean import"
    assert seen["none"] > 0  # the harness really interrupted imports


def test_ctrl_c_stops_an_import_promptly_writes_nothing_and_exits_130(tmp_path):
    members_csv, purchases_csv = write_shop(tmp_path, 60_000, 3000)
    db = tmp_path / "shop.db"
    assert loyalty(db, "init", "-q").returncode == 0
    assert loyalty(db, "members", "import", members_csv, "-q").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(db), "purchases", "import", str(purchases_csv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    interrupted = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert time.perf_counter() - interrupted < 5
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert count(db, "purchases") == 0
    assert loyalty(db, "db", "check").returncode == 0
