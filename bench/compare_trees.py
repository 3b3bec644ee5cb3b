#!/usr/bin/env python3
"""Two versions of loyalty side by side, in one run, on the same data: speed and identical output.

For a change of where code lives (not of what it computes), e.g. the storage layer:
check out the starting commit somewhere (`git worktree add /tmp/old START`) and run

    python bench/compare_trees.py --old /tmp/old --new . [--rows 1000000 --members 100000]

Each tree runs as `python -m loyalty_cli` with that tree first on `PYTHONPATH`, with this
interpreter (so the same dependencies). For each tree, alternating old/new `--runs` times:

- `purchases import` of ROWS purchases into a fresh database (members imported first,
  untimed): wall time and peak RSS;
- on the imported database: `dashboard --json`, `report rfm --json`, `members show --json`
  (start-up dominated) and `tiers recalc` on a copy.

Then every JSON output a script relies on (dashboard, every report, `members show`,
`points history`, `db check`) is produced by both trees from their own databases, built
from the same files, and compared byte for byte. Prints old and new medians and their ratio;
exits 1 if any output differs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_WORKDIR, ensure_data, peak_rss_mib  # noqa: E402

AS_OF = "2025-12-31"
MEMBER = "M000001"  # the heaviest buyer of gen_purchases.py
REPORTS = [
    ["dashboard", "--json"],
    ["report", "rfm", "--json"],
    ["report", "segments", "--json"],
    ["report", "pareto", "--json"],
    ["report", "churn", "--json"],
    ["report", "liability", "--json"],
    ["report", "birthdays", "--json"],
    ["report", "expiring", "--json"],
    ["report", "anomalies", "--json"],
    ["members", "show", MEMBER, "--json"],
]


def env_for(tree: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.pop("LOYALTY_DB", None)
    return env


def loyalty(tree: Path, db: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "loyalty_cli", "--db", str(db), *args], env=env_for(tree),
                          capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{tree}: loyalty {' '.join(args)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    return proc


def timed(tree: Path, db: Path, *args: str) -> float:
    t0 = time.perf_counter()
    loyalty(tree, db, *args)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="source tree of the old version")
    parser.add_argument("--new", type=Path, required=True, help="source tree of the new version")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2, help="imports per tree (reads: three times as many)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    members_csv, purchases_csv = ensure_data(args.rows, args.members, args.workdir)
    work = args.workdir.resolve() / "compare"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # `python -m` puts the working folder first on sys.path, ahead of PYTHONPATH: run from a folder
    # that holds no loyalty_cli, or both columns would time the tree the script was started in.
    os.chdir(work)

    figures: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    dbs = {name: work / f"{name}.db" for name in trees}
    for run in range(args.runs):
        for name, tree in trees.items():
            db = dbs[name]
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            loyalty(tree, db, "init", "-q")
            loyalty(tree, db, "members", "import", str(members_csv), "-q")
            wall, rss = peak_rss_mib([sys.executable, "-m", "loyalty_cli", "--db", str(db), "purchases", "import",
                                      str(purchases_csv), "-q"], env=env_for(tree))
            figures[name].setdefault("import (s)", []).append(wall)
            figures[name].setdefault("import peak RSS (MiB)", []).append(rss)
            print(f"run {run + 1}: {name} import {wall:.1f} s, {rss:.0f} MiB", file=sys.stderr)
    for _ in range(3 * args.runs):
        for name, tree in trees.items():
            db = dbs[name]
            f = figures[name]
            f.setdefault("dashboard --json (s)", []).append(timed(tree, db, "dashboard", "--json", "--as-of", AS_OF))
            f.setdefault("report rfm --json (s)", []).append(timed(tree, db, "report", "rfm", "--json", "--as-of", AS_OF))
            f.setdefault("members show (s)", []).append(timed(tree, db, "members", "show", MEMBER, "--json"))
            copy = work / f"{name}-recalc.db"
            loyalty(tree, db, "db", "backup", str(copy), "-q")
            f.setdefault("tiers recalc (s)", []).append(timed(tree, copy, "tiers", "recalc", "--as-of", AS_OF, "-q"))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)

    print(f"{args.rows:,} purchases, {args.members:,} members; medians; old = {trees['old']}, new = {trees['new']}")
    print(f"{'figure':<24}{'old':>10}{'new':>10}{'new/old':>10}")
    for key in figures["old"]:
        old, new = statistics.median(figures["old"][key]), statistics.median(figures["new"][key])
        print(f"{key:<24}{old:>10.2f}{new:>10.2f}{new / old:>9.3f}×")

    differ = []
    outputs = [[*cmd, "--as-of", AS_OF] for cmd in REPORTS] + [["points", "history", MEMBER, "--json"],
                                                              ["db", "check", "--json"]]
    for cmd in outputs:
        old = loyalty(trees["old"], dbs["old"], *cmd, check=False)
        new = loyalty(trees["new"], dbs["new"], *cmd, check=False)
        same = (old.stdout, old.returncode) == (new.stdout, new.returncode)
        print(f"{'identical' if same else 'DIFFERENT'}  {' '.join(cmd)}  ({len(old.stdout):,} bytes)")
        if not same:
            differ.append(cmd)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
