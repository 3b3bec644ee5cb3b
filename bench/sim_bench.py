"""program simulate against purchases import, on the same history.

What is measured, in one run, every command a fresh process with this
interpreter (start-up included), timed with time.perf_counter:

  (a) import: a fresh database, `members import members.csv` (untimed), then
      `purchases import purchases.csv`, timed, with its peak resident memory.
  (b) simulate: `program simulate PROPOSAL.toml --json` on that database, timed.
      It replays the whole history twice (the rules in force and the proposal,
      two processes at once), so the issue allows it twice the import's time.
      The proposal doubles points_per_unit; the period is the default (the
      twelve months up to the last purchase: the generated purchases span a
      year, so every one of them is replayed).

The data are the project's own synthetic CSVs (bench/gen_members.py and
bench/gen_purchases.py through _common.prepared_data), cached in --workdir and
read once before timing. With --runs N, (a) then (b) run N times, each on a
fresh database, and medians are reported. The database is deleted afterwards;
the CSVs are kept.

How to read it: only the ratio means anything across machines (and it needs a
second free core: the two replays run at once).
  simulate / import      must be <= 2.0
The figure is marked "PASS" or "FAIL"; the simulation's headline figures are
printed. The exit code is 0 whatever the figures (a measurement, not a test); 1
if a command fails, with its stderr printed.

Usage: python bench/sim_bench.py [--rows N] [--members N] [--workdir DIR] [--runs N]
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
from _common import (sized_main, _failure, _run_checked, loyalty_cmd, peak_rss_mib,  # noqa: E402
                     prepared_data, remove_db)

LIMIT = 2.0
PROPOSAL = """# bench/sim_bench.py's proposal: twice the points for every unit spent
[earn]
points_per_unit = "2"
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    _run_checked(cmd)
    return time.perf_counter() - t0


def simulate(cmd: list[str]) -> tuple[float, dict]:
    """Wall seconds of the simulation and its JSON document."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))
    return wall, json.loads(proc.stdout)


def one_run(members_csv: Path, purchases_csv: Path, db: Path, proposal: Path) -> dict:
    remove_db(db)
    base = [*loyalty_cmd(), "--db", str(db)]
    _run_checked([*base, "-q", "init"])
    _run_checked([*base, "-q", "members", "import", str(members_csv)])
    import_s, import_rss = peak_rss_mib([*base, "-q", "purchases", "import", str(purchases_csv)])
    sim_s, doc = simulate([*base, "program", "simulate", str(proposal), "--json"])
    return {"import_s": import_s, "import_rss": import_rss, "sim_s": sim_s, "doc": doc}


def main(argv: list[str] | None = None) -> int:
    return sized_main(argv, __doc__.splitlines()[0], "runs of (a) then (b) (default 1)", bench, "simulate benchmark")


def bench(args: argparse.Namespace) -> int:
    workdir = args.workdir.resolve()
    print(f"Python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    members_csv, purchases_csv = prepared_data(args.rows, args.members, workdir)
    tag = f"{os.getpid()}"
    db = workdir / f"bench-sim-{tag}.db"
    proposal = workdir / f"bench-sim-{tag}.toml"
    proposal.write_text(PROPOSAL)
    runs = []
    try:
        for i in range(args.runs):
            print(f"  run {i + 1}/{args.runs}: import, then simulate ...", flush=True)
            runs.append(one_run(members_csv, purchases_csv, db, proposal))
            remove_db(db)
    finally:
        remove_db(db)
        proposal.unlink(missing_ok=True)

    med = statistics.median
    label = f"median of {args.runs}" if args.runs > 1 else "1 run"
    import_s = med(r["import_s"] for r in runs)
    sim_s = med(r["sim_s"] for r in runs)
    ratio = sim_s / import_s
    doc = runs[-1]["doc"]
    print()
    print(f"Results ({label}; {args.rows} rows, {args.members} members; "
          f"load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())})")
    print(f"  (a) purchases import          : {import_s:9.2f} s   peak {med(r['import_rss'] for r in runs):7.1f} MiB")
    print(f"  (b) program simulate          : {sim_s:9.2f} s")
    print(f"      ratio simulate/import     : {ratio:9.2f}     {'PASS' if ratio <= LIMIT else 'FAIL'}"
          f"   (must be <= {LIMIT})")
    print()
    print(f"Simulated {doc['period']['from']} to {doc['period']['to']}: {doc['history']['sales']} sales, "
          f"{doc['history']['refunds']} refunds, {doc['history']['members']} members")
    for key in ("points_issued", "points_reversed", "points_expired", "outstanding_points", "liability"):
        print(f"  {key:20} {doc['baseline'][key]!s:>14} {doc['proposed'][key]!s:>14} {doc['change'][key]!s:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
