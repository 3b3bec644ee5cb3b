"""Nightly tier recalculation at scale, against a hand-written grouped SQL query.

What is measured, every command a fresh process with this interpreter
(start-up included), timed with time.perf_counter, median of --runs runs after
one untimed warm-up, each run on a fresh copy of the same database (the copy is
not timed):

  (a) reference: a few lines of plain sqlite3 that open the database and run one
      grouped query -- every member's net spend in the rolling 12 months ending
      on the as-of date -- and fetch all the rows. It groups with `+member_id`,
      as recalc does: without it SQLite walks the purchases_member index with a
      lookup per row, three times slower, which would flatter the ratio;
  (b) `loyalty tiers recalc --as-of 2025-12-31 --json`: the same qualifying
      values in one grouped query, plus holds, manual floors, refunds that undo
      upgrades, writing every change with its reason, and the run record.

The database (1,000,000 purchases over 100,000 members by default) is the one
bench/report_bench.py builds and caches in <workdir>/report-bench-<rows>.db.

How to read it: recalc / reference, target <= 1.5, must be <= 2.0.
Usage: python bench/recalc_bench.py [--rows N] [--members N] [--runs N] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_WORKDIR, ensure_data, loyalty_cmd, median_time  # noqa: E402
from report_bench import build_db  # noqa: E402

AS_OF = "2025-12-31"
TARGET, LIMIT = 1.5, 2.0

REFERENCE = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(
    "SELECT member_id, sum(CASE kind WHEN 'sale' THEN amount ELSE -amount END) FROM purchases "
    "WHERE purchased_at >= '2025-01-01' AND purchased_at <= '2025-12-31T23:59:59' GROUP BY +member_id").fetchall()
print(len(rows))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args()

    members_csv, purchases_csv = ensure_data(args.rows, args.members, args.workdir)
    db = args.workdir / f"report-bench-{args.rows}.db"
    build_db(db, members_csv, purchases_csv, args.members)
    scratch = Path(tempfile.mkdtemp(prefix="recalc-bench-"))
    work = scratch / "work.db"
    try:
        def fresh_copy() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work}{suffix}").unlink(missing_ok=True)
            for lock in scratch.glob("*.lock"):
                lock.unlink()
            shutil.copyfile(db, work)

        script = scratch / "reference.py"
        script.write_text(REFERENCE)
        fresh_copy()
        reference = median_time([sys.executable, str(script), str(work)], args.runs)
        recalc = median_time([*loyalty_cmd(), "--db", str(work), "tiers", "recalc", "--as-of", AS_OF, "--json"],
                             args.runs, before=fresh_copy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = recalc / reference
    mark = "FAIL" if ratio > LIMIT else ("ok" if ratio <= TARGET else "above target")
    print(f"{args.rows:,} purchases, {args.members:,} members, as of {AS_OF}, median of {args.runs}")
    print(f"  reference grouped query : {reference:7.2f} s")
    print(f"  loyalty tiers recalc    : {recalc:7.2f} s")
    print(f"  ratio recalc/reference  : {ratio:7.2f}  (target <= {TARGET}, must be <= {LIMIT}) {mark}")


if __name__ == "__main__":
    main()
