"""An import, a recalc and counter redemptions at once, as real processes.

Each command either succeeds or, when the database stays busy past the timeout,
exits 75 with one line; nothing is lost and nothing is half-written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.db import count
from tests.test_crash import write_shop


def spawn(db, *args, timeout="2"):
    env = {**os.environ, "LOYALTY_BUSY_TIMEOUT": timeout}
    return subprocess.Popen([sys.executable, "-m", "loyalty_cli", "--db", str(db), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc):
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 1, 75), (proc.returncode, err)
    if proc.returncode == 75:
        assert err.startswith("Error:") and err.count("\n") == 1
    return proc.returncode, out, err


def test_import_recalc_and_counter_at_once(tmp_path):
    members_csv, purchases_csv = write_shop(tmp_path, 6000, 300)
    db = tmp_path / "shop.db"
    subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "-q", "init"], check=True)
    subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "-q", "members", "import", str(members_csv)],
                   check=True)
    subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "-q", "points", "award", "M00001", "30",
                    "--reason", "opening", "--at", "2024-01-01"], check=True)
    importer = spawn(db, "purchases", "import", purchases_csv, "--json", timeout="60")
    recalc = spawn(db, "tiers", "recalc", "--as-of", "2026-01-01", "--json", timeout="60")
    tills = [spawn(db, "points", "redeem", "M00001", "1", "--at", "2024-01-02") for _ in range(12)]
    results = [finish(p) for p in tills]
    code, out, err = finish(importer)
    assert code == 0, err
    assert json.loads(out)["imported"] == 6000
    assert finish(recalc)[0] == 0
    redeemed = sum(1 for code, _, _ in results if code == 0)
    assert all(code in (0, 75) for code, _, _ in results)  # 30 points: never "not enough"
    check = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "db", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    statement = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "points", "history", "M00001", "--json"],
                               capture_output=True, text=True, check=True)
    redeems = [e for e in json.loads(statement.stdout) if e["kind"] == "redeem"]
    assert len(redeems) == redeemed  # every success was recorded, every 75 wrote nothing


def test_a_backup_taken_during_an_import_holds_all_of_it_or_none(tmp_path):
    import time

    members_csv, purchases_csv = write_shop(tmp_path, 40_000, 2000)
    db = tmp_path / "shop.db"
    subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "-q", "init"], check=True)
    subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "-q", "members", "import", str(members_csv)],
                   check=True)
    importer = spawn(db, "purchases", "import", purchases_csv, "-q", timeout="60")
    backups = []
    for i in range(4):
        time.sleep(0.7)
        target = tmp_path / f"backup-{i}.db"
        r = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), "db", "backup", str(target)],
                           capture_output=True, text=True, env={**os.environ, "LOYALTY_BUSY_TIMEOUT": "60"})
        assert r.returncode == 0, r.stderr
        backups.append(target)
    assert finish(importer)[0] == 0
    for target in backups:
        held = count(target, "purchases")
        assert held in (0, 40_000), f"{target.name} holds {held} purchases"
        check = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(target), "db", "check"],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
