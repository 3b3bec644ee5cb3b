#!/usr/bin/env python3
"""`db check` on a million purchases: the code before the chain beside this one, in one run.

    python bench/check_bench.py --old /tmp/old --new . [--rows 1000000 --members 100000 --runs 3]

`--old` is a checkout of the code before the chain (issue 17's starting commit); `--new` this one.
Each tree imports the same members and purchases into its own database (untimed, or reused from
bench/.data/check/ when the files are already there), then, alternating old/new `--runs` times:

- old: `db check` (everything it knew how to check);
- new: `db check --full` (every check and the whole chain replayed row by row), and, after
  `db seal` and a day's trade on top (a hundred sales and refunds, a voucher, a tiers set), the
  incremental `db check` (the blocks since the seal, the members and days they touched, the
  whole chain's hashes and signatures, the small tables of current state).

Prints the medians and the ratios to the old `db check`, and the targets (full ≤ 60 s,
incremental ≤ 10 s at a million purchases). Every timed check must pass (exit 0).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_WORKDIR, ensure_data  # noqa: E402


def env_for(tree: Path, home: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env["XDG_CONFIG_HOME"] = str(home)  # the chain key and the anchors of this benchmark only
    env.pop("LOYALTY_DB", None)
    env.pop("LOYALTY_KEY_FILE", None)
    env.pop("LOYALTY_ANCHORS", None)
    return env


def loyalty(tree: Path, home: Path, db: Path, *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), *args], env=env_for(tree, home),
                          capture_output=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: loyalty {' '.join(args)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace').strip()[:500]}")
    return wall


def build(tree: Path, home: Path, db: Path, members_csv: Path, purchases_csv: Path) -> None:
    if db.exists():
        return
    partial = db.with_name(db.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    loyalty(tree, home, partial, "init", "-q")
    loyalty(tree, home, partial, "members", "import", str(members_csv), "-q")
    loyalty(tree, home, partial, "purchases", "import", str(purchases_csv), "-q")
    loyalty(tree, home, partial, "db", "backup", str(db), "-q")  # whole, or not there at all
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)


def a_day_of_trade(tree: Path, home: Path, db: Path, work: Path, day: int) -> None:
    """A hundred sales and refunds dated after the imported history, as one more day at the till."""
    sales = work / f"day-{day}.csv"
    lines = ["purchase_id,member_id,purchased_at,amount,kind,refund_of"]
    for i in range(100):
        lines.append(f"D{day}-S{i},M{(i * 997) % 100000 + 1:06d},2026-0{1 + day % 9}-15T10:{i % 60:02d}:00,"
                     f"{10 + i}.50,sale,")
    for i in range(0, 100, 10):
        lines.append(f"D{day}-R{i},M{(i * 997) % 100000 + 1:06d},2026-0{1 + day % 9}-15T18:00:00,5.00,refund,D{day}-S{i}")
    sales.write_text("\n".join(lines) + "\n")
    loyalty(tree, home, db, "purchases", "import", str(sales), "-q")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="source tree of the code before the chain")
    parser.add_argument("--new", type=Path, required=True, help="source tree of this code")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args()
    old, new = args.old.resolve(), args.new.resolve()
    members_csv, purchases_csv = ensure_data(args.rows, args.members, args.workdir)
    work = args.workdir.resolve() / "check"
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # `python -m` puts the working folder first on sys.path: one without loyalty_cli
    home = work / "config"
    dbs = {"old": work / f"old-{args.rows}.db", "new": work / f"new-{args.rows}.db"}
    build(old, home, dbs["old"], members_csv, purchases_csv)
    build(new, home, dbs["new"], members_csv, purchases_csv)
    copy = work / "new-sealed.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    loyalty(new, home, dbs["new"], "db", "backup", str(copy), "-q")
    loyalty(new, home, copy, "db", "seal", "-q")
    a_day_of_trade(new, home, copy, work, 1)

    figures: dict[str, list[float]] = {"old db check": [], "new db check --full": [], "new db check (incremental)": []}
    for _ in range(args.runs):
        figures["old db check"].append(loyalty(old, home, dbs["old"], "db", "check", "-q"))
        figures["new db check --full"].append(loyalty(new, home, dbs["new"], "db", "check", "--full", "-q"))
        figures["new db check (incremental)"].append(loyalty(new, home, copy, "db", "check", "-q"))
    base = statistics.median(figures["old db check"])
    print(f"{args.rows:,} purchases, {args.members:,} members; medians of {args.runs}; old = {old}, new = {new}")
    print(f"{'figure':<30}{'seconds':>10}{'/ old':>10}")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"{name:<30}{median:>10.2f}{median / base:>9.2f}×")
    print("targets at 1,000,000 purchases: --full ≤ 60 s, incremental ≤ 10 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
