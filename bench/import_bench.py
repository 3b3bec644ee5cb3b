"""Purchases import: speed against a plain-Python floor, peak memory, re-import.

What is measured, in one run, every command a fresh process with this
interpreter (start-up included), timed with time.perf_counter:

  (a) baseline: <repo>/../shared/bench/baseline_import.py CSV DB on a fresh
      database -- the least a stdlib importer must do (parse, cents, insert
      purchases and one ledger row each, one transaction). Skipped, with a
      note, if that file is missing; then there is no speed ratio.
  (b) ours: a fresh database, `members import members.csv` (timed and shown,
      but not part of any ratio), then `purchases import purchases.csv --json`,
      timed, with its peak resident memory.
  (c) re-import: the same purchases file again into the same database (every
      row is then a duplicate), timed.

The data are the project's own synthetic CSVs (bench/gen_members.py and
bench/gen_purchases.py through _common.ensure_data), cached in --workdir and
read once before timing so that neither side pays the first disk read. With
--runs N, (a) and (b)+(c) run N times alternately (the order flips each run so
machine drift touches both alike), each on a fresh database, and medians are
reported. The benchmark databases are deleted afterwards; the CSVs are kept.

How to read it: only the ratios mean anything across machines.
  ours / baseline        target <= 1.0,  must be <= 1.5
  peak memory (MiB)      target <= 100,  must be <= 200
  re-import / first      target <= 0.25, must be <= 0.5
Each figure is marked "ok", "above target" or "FAIL". The import's own JSON
summary (rows, imported, duplicates, rejected, points...) is printed for the
first import and the re-import. The exit code is 0 whatever the figures (a
measurement, not a test); 1 if a command fails, with its stderr printed.

Usage: python bench/import_bench.py [--rows N] [--members N] [--workdir DIR] [--runs N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (sized_main, BENCH_DIR, _run_checked, loyalty_cmd, peak_rss_mib,  # noqa: E402
                     prepared_data, remove_db)

REPO_ROOT = BENCH_DIR.parent
BASELINE = REPO_ROOT.parent / "shared" / "bench" / "baseline_import.py"

# (target, must) for each figure; lower is better for all three.
SPEED = (1.0, 1.5)
MEMORY = (100.0, 200.0)
REIMPORT = (0.25, 0.5)


def verdict(value: float, limits: tuple[float, float]) -> str:
    target, must = limits
    if value > must:
        return "FAIL"
    return "ok" if value <= target else "above target"


def capture_stdout(cmd: list[str], out: Path) -> list[str]:
    """cmd with its stdout sent to out; exec keeps the measured process cmd itself.

    peak_rss_mib discards the command's stdout; the purchases import's JSON
    summary is needed, so the command is started through `sh -c 'exec ...'`,
    which replaces the shell by cmd (costing about a millisecond) so the wall
    time and peak RSS are cmd's.
    """
    return ["/bin/sh", "-c", 'out="$1"; shift; exec "$@" > "$out"', "sh", str(out), *cmd]


def timed(cmd: list[str]) -> float:
    """Wall seconds of one run of cmd (stdout discarded); RuntimeError if it fails."""
    t0 = time.perf_counter()
    _run_checked(cmd)
    return time.perf_counter() - t0


def run_baseline(purchases_csv: Path, db: Path, out: Path) -> tuple[float, float, str]:
    remove_db(db)
    wall, rss = peak_rss_mib(capture_stdout([sys.executable, str(BASELINE), str(purchases_csv), str(db)], out))
    return wall, rss, out.read_text(encoding="utf-8").strip()


def run_ours(members_csv: Path, purchases_csv: Path, db: Path, out: Path) -> dict:
    remove_db(db)
    base = [*loyalty_cmd(), "--db", str(db)]
    _run_checked([*base, "-q", "init"])  # only init creates a database (untimed, as for a shop)
    members_s = timed([*base, "members", "import", str(members_csv)])
    purchases_cmd = [*base, "purchases", "import", str(purchases_csv), "--json"]
    first_s, first_rss = peak_rss_mib(capture_stdout(purchases_cmd, out))
    first_summary = json.loads(out.read_text(encoding="utf-8"))
    again_s, again_rss = peak_rss_mib(capture_stdout(purchases_cmd, out))
    again_summary = json.loads(out.read_text(encoding="utf-8"))
    return {
        "members_s": members_s,
        "first_s": first_s,
        "first_rss": first_rss,
        "first_summary": first_summary,
        "again_s": again_s,
        "again_rss": again_rss,
        "again_summary": again_summary,
    }


def main(argv: list[str] | None = None) -> int:
    return sized_main(argv, __doc__.splitlines()[0], "runs of (a) and (b), alternately (default 1)", bench, "import benchmark")


def bench(args: argparse.Namespace) -> int:
    workdir = args.workdir.resolve()
    print(f"Python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs")
    members_csv, purchases_csv = prepared_data(args.rows, args.members, workdir)

    have_baseline = BASELINE.is_file()
    if not have_baseline:
        print(f"Baseline {BASELINE} not found: skipping (a) and the speed ratio.")

    tag = f"{os.getpid()}"
    base_db = workdir / f"bench-baseline-{tag}.db"
    ours_db = workdir / f"bench-ours-{tag}.db"
    out = workdir / f"bench-out-{tag}.txt"

    baseline_runs: list[tuple[float, float, str]] = []
    ours_runs: list[dict] = []
    try:
        for i in range(args.runs):
            order = ["a", "b"] if i % 2 == 0 else ["b", "a"]
            for step in order:
                if step == "a" and have_baseline:
                    print(f"  run {i + 1}/{args.runs}: baseline ...", flush=True)
                    baseline_runs.append(run_baseline(purchases_csv, base_db, out))
                    remove_db(base_db)
                elif step == "b":
                    print(f"  run {i + 1}/{args.runs}: loyalty import + re-import ...", flush=True)
                    ours_runs.append(run_ours(members_csv, purchases_csv, ours_db, out))
                    remove_db(ours_db)
    finally:
        remove_db(base_db)
        remove_db(ours_db)
        out.unlink(missing_ok=True)

    med = statistics.median
    n = args.runs
    label = f"median of {n}" if n > 1 else "1 run"
    members_s = med(r["members_s"] for r in ours_runs)
    first_s = med(r["first_s"] for r in ours_runs)
    first_rss = med(r["first_rss"] for r in ours_runs)
    again_s = med(r["again_s"] for r in ours_runs)
    again_rss = med(r["again_rss"] for r in ours_runs)

    print()
    print(f"Results ({label}; {args.rows} rows, {args.members} members)")
    if have_baseline:
        base_s = med(r[0] for r in baseline_runs)
        base_rss = med(r[1] for r in baseline_runs)
        print(f"  (a) baseline import           : {base_s:9.2f} s   peak {base_rss:7.1f} MiB"
              f"   (its output: {baseline_runs[-1][2]})")
    print(f"  (b) members import            : {members_s:9.2f} s   (not in any ratio)")
    print(f"  (b) purchases import          : {first_s:9.2f} s")
    if have_baseline:
        ratio = first_s / base_s
        print(f"      ratio ours/baseline       : {ratio:9.2f}     {verdict(ratio, SPEED)}"
              f"   (target <= {SPEED[0]}, must be <= {SPEED[1]})")
    else:
        print("      ratio ours/baseline       :       n/a     (baseline missing)")
    worst_rss = max(r["first_rss"] for r in ours_runs)
    print(f"      peak memory               : {first_rss:9.1f} MiB {verdict(first_rss, MEMORY)}"
          f"   (target <= {MEMORY[0]:.0f}, must be <= {MEMORY[1]:.0f}; worst run {worst_rss:.1f})")
    reratio = again_s / first_s
    print(f"  (c) re-import, same file & DB : {again_s:9.2f} s   peak {again_rss:7.1f} MiB")
    print(f"      ratio re-import/first     : {reratio:9.2f}     {verdict(reratio, REIMPORT)}"
          f"   (target <= {REIMPORT[0]}, must be <= {REIMPORT[1]})")

    print()
    print("Import summary (first import):")
    print(json.dumps(ours_runs[-1]["first_summary"], indent=2))
    print("Re-import summary:")
    print(json.dumps(ours_runs[-1]["again_summary"], indent=2))
    if any(r["first_summary"] != ours_runs[0]["first_summary"] for r in ours_runs):
        print("NOTE: the first-import summary differed between runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
