"""Reports at scale: the dashboard and RFM against one plain csv.reader pass.

What is measured, every command a fresh process with this interpreter
(start-up and imports included), timed with time.perf_counter, median of
--runs runs after one untimed warm-up:

  (a) baseline: one `csv.reader` pass over the purchases CSV, doing nothing
      with the rows -- the least any tool must do to look at the data once;
  (b) `loyalty dashboard --json --as-of 2025-12-31`;
  (c) `loyalty report rfm --json --as-of 2025-12-31`.

The data are the project's synthetic CSVs (bench/gen_members.py and
bench/gen_purchases.py through _common.ensure_data: purchases dated in 2025,
so the as-of date sees all of them). The database is built once -- a fresh
file, `members import` then `purchases import`, which takes minutes at a
million rows -- and cached as <workdir>/report-bench-<rows>.db; a sidecar
`.ok` file records the members count and is written only when the build has
finished, so an interrupted or different build is redone, never reused.

How to read it: only the ratios mean anything across machines.
  dashboard / baseline   target <= 0.5, must be <= 1.0
  rfm / baseline         target <= 0.5, must be <= 1.0
Each ratio is marked "ok", "above target" or "FAIL". The exit code is 0
whatever the figures (a measurement, not a test); 1 if a command fails, with
its stderr printed.

Usage: python bench/report_bench.py [--rows N] [--members N] [--runs N] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_WORKDIR, _failure, _run_checked, ensure_data, loyalty_cmd, median_time  # noqa: E402

AS_OF = "2025-12-31"
TARGET, LIMIT = 0.5, 1.0

BASELINE = """\
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    for _ in csv.reader(f):
        pass
"""


def verdict(ratio: float) -> str:
    return "FAIL" if ratio > LIMIT else ("ok" if ratio <= TARGET else "above target")


def build_db(db: Path, members_csv: Path, purchases_csv: Path, members: int) -> None:
    """Import members then purchases into a fresh database at db, unless a finished build is cached."""
    ok = db.with_name(db.name + ".ok")
    stamp = json.dumps({"members": members, "members_csv": members_csv.name, "purchases_csv": purchases_csv.name})
    if db.exists() and ok.exists() and ok.read_text() == stamp:
        print(f"  cached database: {db.name}")
        return
    for leftover in (db, ok, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    base = [*loyalty_cmd(), "--db", str(db), "-q"]
    t0 = time.perf_counter()
    print(f"  building {db.name} (members import, then purchases import; minutes at a million rows) ...", flush=True)
    _run_checked([*base, "init"])  # only init creates a database
    _run_checked([*base, "members", "import", str(members_csv)])
    print(f"    members imported ({time.perf_counter() - t0:.0f} s)", flush=True)
    _run_checked([*base, "purchases", "import", str(purchases_csv)])
    print(f"    purchases imported ({time.perf_counter() - t0:.0f} s)", flush=True)
    ok.write_text(stamp)


def run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except RuntimeError as exc:  # a measured command failed: no figure to give
        print(f"report benchmark: {exc}", file=sys.stderr)
        return 1


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="purchase rows (default 1000000)")
    parser.add_argument("--members", type=int, default=100_000, help="members (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command (default 3)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where data and the database are cached")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rows < 1 or args.members < 1:
        parser.error("--rows, --members and --runs must be >= 1")

    print(f"Data: {args.rows} purchase rows over {args.members} members in {args.workdir} ...", flush=True)
    members_csv, purchases_csv = ensure_data(args.rows, args.members, args.workdir)
    db = Path(args.workdir) / f"report-bench-{args.rows}.db"
    build_db(db, members_csv, purchases_csv, args.members)

    loyalty = [*loyalty_cmd(), "--db", str(db)]
    dashboard = [*loyalty, "dashboard", "--json", "--as-of", AS_OF]
    rfm = [*loyalty, "report", "rfm", "--json", "--as-of", AS_OF]
    baseline = [sys.executable, "-c", BASELINE, str(purchases_csv)]

    doc = run_json(dashboard)  # a sanity check that the figures are real, and a warm page cache
    print(f"  dashboard sees {doc['sales']['count']} sales in the last {doc['period_days']} days, "
          f"{doc['members']['total']} members, {doc['points']['outstanding']} points outstanding")

    base_s = median_time(baseline, args.runs)
    dash_s = median_time(dashboard, args.runs)
    rfm_s = median_time(rfm, args.runs)

    print(f"Results (Python {sys.version.split()[0]}; {args.rows} rows, {args.members} members; "
          f"median of {args.runs} fresh processes each)")
    print(f"  (a) csv.reader pass (baseline) : {base_s:8.2f} s")
    print(f"  (b) dashboard --json           : {dash_s:8.2f} s   ratio {dash_s / base_s:5.2f}  {verdict(dash_s / base_s)}")
    print(f"  (c) report rfm --json          : {rfm_s:8.2f} s   ratio {rfm_s / base_s:5.2f}  {verdict(rfm_s / base_s)}")
    print(f"  (ratios: target <= {TARGET}, must be <= {LIMIT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
