"""SQLite and PostgreSQL side by side: members import, purchases import, counter redeems, dashboard, tills.

What is measured, in one run on one machine and the same data (the project's
synthetic CSVs, bench/gen_members.py and bench/gen_purchases.py through
_common.ensure_data, cached in --workdir), every measured command a fresh
process with this interpreter (start-up included), timed with time.perf_counter:

  (0) members import: on a fresh database of each backend, `init` and
      `program load sample_data/program.toml` (untimed setup), then
      `members import` of the --members members, timed (--import-runs runs
      each, order alternated, medians). The two backends' JSON summaries must
      agree. Those databases are then dropped.
  (1) import: on a fresh database of each backend, `init`, `program load
      sample_data/program.toml` and `members import` (untimed setup), then
      `purchases import` of --rows purchases (default 200,000 over 20,000
      members), timed. The two backends' JSON summaries must agree.
  (2) redeems: --redeems (default 1,000) `-q points redeem MEMBER 1 --at T` on
      EACH backend, one fresh process apiece, the two backends interleaved
      (S P, then P S, ...), after one untimed warm-up each. T is the day after
      the last purchase; the members are the richest ones (by balance at T,
      from `members list`, the same list on both), taken in turn. Median and
      p95 latency per backend.
  (3) dashboard: `dashboard --as-of D --json` (D: the last purchase's day) on a
      database of --dashboard-rows purchases (default 1,000,000, over
      --dashboard-members, default in the same proportion as --rows/--members,
      so 100,000). Building those two databases (init, program, members and
      purchases import) is UNTIMED setup; its wall time is shown for
      information only. When --dashboard-rows equals --rows the databases of
      (1)-(2) are reused; --dashboard-rows 0 skips (3). One untimed warm-up
      each, then --runs (default 3) runs each, order alternated; medians.
  (4) tills: --tills (default 8) worker threads, each starting fresh
      `-q points redeem` processes back to back for --tills-seconds (default
      20), against one backend, then the other (the databases of (1), as
      left by (2); LOYALTY_BUSY_TIMEOUT=30: writers queue, they must not
      fail). Four redeems in five take 1 point from a rich member; the fifth
      takes 5 points from one of the --tills members with the fewest points
      (but at least 1) at T, who soon run short: those refusals (exit 1,
      "not enough") are counted apart and are expected. Any other non-zero exit is an error: the first
      few are printed with their stderr and the line says FAIL. Figure:
      completed commands (redeems + refusals) per second.

The PostgreSQL server is a throwaway one (tests/pg_server.py: initdb in a
temporary directory, Unix socket, fsync off as for the tests, shared_buffers 1 GB), stopped and
removed at the end, on failure and on Ctrl-C alike. The SQLite databases are
made in --workdir and deleted at the end; the CSVs are kept.

How to read it: only the ratios mean anything across machines, and only when
the machine is otherwise idle (a busy machine makes every figure noisy).
  members import  PostgreSQL / SQLite    target <= 2.0, must be <= 2.5
  import          PostgreSQL / SQLite    target <= 1.5, must be <= 2.5
  redeem median   PostgreSQL / SQLite    target <= 1.5, must be <= 1.5
  dashboard       PostgreSQL / SQLite    target <= 1.5, must be <= 1.5
  tills           PostgreSQL / SQLite redeems per second (higher is better);
                  no limit, but any error other than a refusal is FAIL.
The p95 latency is shown with its ratio, without a limit. Each figure is
marked "ok", "above target" or "FAIL" in the closing table. The exit code is
0 whatever the figures (a measurement, not a test); 1 if a command fails
(with its stderr printed), a till included.

Usage: python bench/pg_bench.py [--rows N] [--members N] [--redeems N]
         [--dashboard-rows N] [--dashboard-members N] [--runs N] [--tills N]
         [--tills-seconds S] [--import-runs N] [--workdir DIR] [--quick]
  --quick: 5,000 rows / 500 members, 50 redeems, the dashboard on the same
  databases, 5 s of tills: a smoke run of a minute or two.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (BENCH_DIR, DEFAULT_WORKDIR, _failure, loyalty_cmd, prepared_data,  # noqa: E402
                     remove_db)

REPO_ROOT = BENCH_DIR.parent
PROGRAM = REPO_ROOT / "sample_data" / "program.toml"
PG_SERVER = REPO_ROOT / "tests" / "pg_server.py"

# (target, must) for each PostgreSQL/SQLite ratio; lower is better.
MEMBERS_IMPORT = (2.0, 2.5)
IMPORT = (1.5, 2.5)
REDEEM = (1.5, 1.5)
DASHBOARD = (1.5, 1.5)

SIDES = ("SQLite", "PostgreSQL")
REFUSED_MARK = "not enough"


def verdict(value: float, limits: tuple[float, float]) -> str:
    target, must = limits
    if value > must:
        return "FAIL"
    return "ok" if value <= target else "above target"


def timed_import(figures: list, label: str, seconds: dict[str, list[float]], limits: tuple[float, float],
                 summaries: dict[str, dict]) -> None:
    """An import's figure for the closing table: each backend's median time and their ratio; its
    JSON summary printed, and a NOTE when the two backends' summaries differ (they must not)."""
    s, p = statistics.median(seconds["SQLite"]), statistics.median(seconds["PostgreSQL"])
    r = p / s
    figures.append((label, f"{s:.2f}", f"{p:.2f}", r, *limits, verdict(r, limits)))
    print(f"  ratio {r:.2f}; summary: {json.dumps(summaries['SQLite'], sort_keys=True)}")
    if summaries["SQLite"] != summaries["PostgreSQL"]:
        print(f"  NOTE: the PostgreSQL summary differs: {json.dumps(summaries['PostgreSQL'], sort_keys=True)}")


def load_pg_server():
    """tests/pg_server.py, imported by its path (the tests package is not installed)."""
    spec = importlib.util.spec_from_file_location("loyalty_bench_pg_server", PG_SERVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_day(purchases_csv: Path) -> str:
    """The date (YYYY-MM-DD) of the CSV's last row: the rows are in ascending time."""
    with open(purchases_csv, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        line = f.read().decode("utf-8").strip().splitlines()[-1]
    return line.split(",")[2][:10]


def next_day(day: str) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Run cmd once; (wall seconds, stdout). RuntimeError with its stderr if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))
    return elapsed, proc.stdout.decode("utf-8", "replace")


class Backends:
    """The SQLite file and the PostgreSQL database of each data set, by name."""

    def __init__(self, server, workdir: Path):
        self.server = server
        self.workdir = workdir
        self.sqlite_files: list[Path] = []
        self.pg_names: list[str] = []
        self.counter = itertools.count(1)

    def fresh(self, side: str, label: str) -> str:
        """A new, empty database of side; the --db value for it."""
        n = next(self.counter)
        if side == "SQLite":
            db = self.workdir / f"pgbench-{os.getpid()}-{label}-{n}.db"
            remove_db(db)
            self.sqlite_files.append(db)
            return str(db)
        name = f"pgbench_{label}_{n}"
        self.pg_names.append(name)
        return self.server.create_db(name)

    def discard(self, side: str, db: str) -> None:
        if side == "SQLite":
            remove_db(Path(db))
        else:
            name = db.split("@/", 1)[1].split("?", 1)[0]
            self.server.drop_db(name)

    def cleanup(self) -> None:
        for db in self.sqlite_files:
            remove_db(db)


def build(db: str, members_csv: Path, purchases_csv: Path) -> tuple[float, float, dict]:
    """init, program load, members import (untimed setup), then the purchases import, timed.

    Returns (setup seconds, import seconds, the import's JSON summary)."""
    base = [*loyalty_cmd(), "--db", db]
    t0 = time.perf_counter()
    run([*base, "-q", "init"])
    run([*base, "-q", "program", "load", str(PROGRAM)])
    run([*base, "-q", "members", "import", str(members_csv)])
    setup_s = time.perf_counter() - t0
    import_s, out = run([*base, "purchases", "import", str(purchases_csv), "--json"])
    return setup_s, import_s, json.loads(out)


def members_import(db: str, members_csv: Path) -> tuple[float, dict]:
    """init and program load (untimed setup), then `members import`, timed: (seconds, its JSON summary)."""
    base = [*loyalty_cmd(), "--db", db]
    run([*base, "-q", "init"])
    run([*base, "-q", "program", "load", str(PROGRAM)])
    seconds, out = run([*base, "members", "import", str(members_csv), "--json"])
    return seconds, json.loads(out)


def balances(db: str, as_of: str) -> list[tuple[str, int]]:
    """(member id, balance at as_of) of every member, richest first."""
    _, out = run([*loyalty_cmd(), "--db", db, "--json", "members", "list", "--as-of", as_of,
                  "--sort", "balance", "--limit", "100000000"])
    rows = [(m["member_id"], int(m["balance"])) for m in json.loads(out)]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows


def redeem_cmd(db: str, member: str, points: int, at: str) -> list[str]:
    return [*loyalty_cmd(), "--db", db, "-q", "points", "redeem", member, str(points), "--at", at]


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def tills(db: str, workers: int, seconds: float, rich: list[str], poor: list[str], at: str) -> dict:
    """workers threads launching redeems back to back for `seconds`; counts of each outcome."""
    env = dict(os.environ, LOYALTY_BUSY_TIMEOUT="30")
    jobs = itertools.count()
    lock = threading.Lock()
    counts = {"ok": 0, "refused": 0, "errors": 0}
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    def work() -> None:
        while time.perf_counter() < stop_at:
            with lock:
                i = next(jobs)
            if i % 5 == 4 and poor:
                cmd = redeem_cmd(db, poor[(i // 5) % len(poor)], 5, at)
            else:
                cmd = redeem_cmd(db, rich[i % len(rich)], 1, at)
            proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            err = proc.stderr.decode("utf-8", "replace")
            with lock:
                if proc.returncode == 0:
                    counts["ok"] += 1
                elif proc.returncode == 1 and REFUSED_MARK in err:
                    counts["refused"] += 1
                else:
                    counts["errors"] += 1
                    if len(errors) < 5:
                        head = "\n      ".join(err.strip().splitlines()[:4])
                        errors.append(f"exit {proc.returncode}: {' '.join(cmd)}\n      {head}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0  # the last commands finish after stop_at: count their time too
    done = counts["ok"] + counts["refused"]
    return {**counts, "wall": wall, "rate": done / wall, "error_lines": errors}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="purchase rows imported (default 200000)")
    parser.add_argument("--members", type=int, default=None, help="members (default 20000)")
    parser.add_argument("--redeems", type=int, default=None, help="redeems on each backend (default 1000)")
    parser.add_argument("--dashboard-rows", type=int, default=None,
                        help="purchases in the dashboard's databases (default 1000000; 0 skips)")
    parser.add_argument("--dashboard-members", type=int, default=None,
                        help="members in them (default: in proportion, rows/members)")
    parser.add_argument("--runs", type=int, default=3, help="dashboard runs on each backend (default 3)")
    parser.add_argument("--import-runs", type=int, default=1,
                        help="imports on each backend, each on a fresh database, order alternated (default 1)")
    parser.add_argument("--tills", type=int, default=8, help="concurrent tills (default 8)")
    parser.add_argument("--tills-seconds", type=float, default=None, help="seconds of tills per backend (default 20)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="where the CSVs are cached and the SQLite databases made (default bench/.data)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5000 rows, 500 members, 50 redeems, dashboard on the same db, 5 s tills")
    args = parser.parse_args(argv)
    quick = {"rows": 5_000, "members": 500, "redeems": 50, "dashboard_rows": 5_000, "tills_seconds": 5.0}
    full = {"rows": 200_000, "members": 20_000, "redeems": 1_000, "dashboard_rows": 1_000_000,
            "tills_seconds": 20.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.dashboard_members is None:
        args.dashboard_members = max(1, round(args.dashboard_rows * args.members / args.rows)) if args.rows else 1
    if min(args.rows, args.members, args.redeems, args.runs, args.import_runs, args.tills, args.dashboard_members) < 1 \
            or args.dashboard_rows < 0 or args.tills_seconds <= 0:
        parser.error("counts must be >= 1 (--dashboard-rows >= 0, --tills-seconds > 0)")

    # SIGTERM as Ctrl-C, so that the finally clauses stop the server either way.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return bench(args)
    except RuntimeError as exc:
        print(f"pg benchmark: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pg benchmark: interrupted", file=sys.stderr)
        return 130


def bench(args: argparse.Namespace) -> int:
    workdir = args.workdir.resolve()
    print(f"Python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    members_csv, purchases_csv = prepared_data(args.rows, args.members, workdir)
    day = last_day(purchases_csv)
    at = f"{next_day(day)}T12:00:00"

    pg_server = load_pg_server()
    print("Starting a throwaway PostgreSQL server ...", flush=True)
    server = pg_server.Server(shared_buffers="1GB").start()  # a server tuned for its data, as a chain's would be
    dbs = Backends(server, workdir)
    try:
        version = subprocess.run([str(server.bin / "postgres"), "--version"], capture_output=True, text=True)
        print(f"  {version.stdout.strip()}, socket in {server.base}, port {server.port}")
        return measure(args, dbs, members_csv, purchases_csv, day, at)
    finally:
        dbs.cleanup()
        server.stop()
        print("PostgreSQL server stopped and removed.", flush=True)


def measure(args, dbs: Backends, members_csv: Path, purchases_csv: Path, day: str, at: str) -> int:
    med = statistics.median
    figures: list[tuple] = []  # (figure, sqlite, pg, ratio, target, must, verdict)

    # (0) members import
    print(f"\n(0) members import, {args.members} members ({args.import_runs} run(s) each, order alternated)")
    members_s: dict[str, list[float]] = {s: [] for s in SIDES}
    member_summaries: dict[str, dict] = {}
    for i in range(args.import_runs):
        for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
            db = dbs.fresh(side, "members")
            seconds, member_summaries[side] = members_import(db, members_csv)
            members_s[side].append(seconds)
            dbs.discard(side, db)
            print(f"  {side:10}: members import {seconds:7.2f} s", flush=True)
    timed_import(figures, f"members import {args.members:,} (s)", members_s, MEMBERS_IMPORT, member_summaries)

    # (1) import
    print(f"\n(1) purchases import, {args.rows} rows ({args.import_runs} run(s) each, order alternated)")
    import_s: dict[str, list[float]] = {s: [] for s in SIDES}
    summaries: dict[str, dict] = {}
    main_db: dict[str, str] = {}
    for i in range(args.import_runs):
        for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
            if side in main_db:
                dbs.discard(side, main_db[side])
            db = dbs.fresh(side, "main")
            setup_s, imp_s, summary = build(db, members_csv, purchases_csv)
            main_db[side] = db
            import_s[side].append(imp_s)
            summaries[side] = summary
            print(f"  {side:10}: setup {setup_s:6.2f} s (untimed), purchases import {imp_s:7.2f} s", flush=True)
    timed_import(figures, f"import {args.rows:,} purchases (s)", import_s, IMPORT, summaries)

    # members to redeem from, the same on both sides
    bal = {side: balances(main_db[side], next_day(day)) for side in SIDES}
    if bal["SQLite"] != bal["PostgreSQL"]:
        diff = sum(1 for a, b in zip(bal["SQLite"], bal["PostgreSQL"]) if a != b)
        print(f"  NOTE: members' balances differ between the backends ({diff} rows differ); "
              "the SQLite ones choose the members")
    ranked = bal["SQLite"]
    budget = args.redeems + 2 + int(args.tills_seconds * 200)  # 1-point redeems the rich could face
    rich = [m for m, b in ranked if b >= 50][:max(10, min(500, len(ranked) // 10))]
    if not rich:
        raise RuntimeError("no member has 50 points or more: cannot benchmark redeems")
    per_member = budget // len(rich) + 1
    if min(b for m, b in ranked if m in set(rich)) < per_member:
        print(f"  NOTE: some rich members may run short (up to {per_member} points each)")
    low = sorted(((b, m) for m, b in ranked if b >= 1 and m not in set(rich)))[:args.tills]
    poor = [m for _, m in low]
    print(f"  redeem members: {len(rich)} with >= 50 points (min {ranked[len(rich) - 1][1]}, "
          f"max {ranked[0][1]}); for the tills' refusals, the {len(poor)} with the fewest points "
          f"({', '.join(str(b) for b, _ in low)}); --at {at}")

    # (2) redeems
    print(f"\n(2) {args.redeems} redeems of 1 point on each backend, fresh processes, interleaved", flush=True)
    lat: dict[str, list[float]] = {s: [] for s in SIDES}
    for side in SIDES:  # warm-up, untimed
        run(redeem_cmd(main_db[side], rich[-1], 1, at))
    for i in range(args.redeems):
        member = rich[i % len(rich)]
        for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
            t, _ = run(redeem_cmd(main_db[side], member, 1, at))
            lat[side].append(t)
        if (i + 1) % max(1, args.redeems // 5) == 0:
            print(f"  {i + 1}/{args.redeems} ...", flush=True)
    s_med, p_med = med(lat["SQLite"]) * 1000, med(lat["PostgreSQL"]) * 1000
    s_p95, p_p95 = percentile(lat["SQLite"], 95) * 1000, percentile(lat["PostgreSQL"], 95) * 1000
    for side, m, p in (("SQLite", s_med, s_p95), ("PostgreSQL", p_med, p_p95)):
        print(f"  {side:10}: median {m:7.1f} ms, p95 {p:7.1f} ms, max {max(lat[side]) * 1000:7.1f} ms")
    r = p_med / s_med
    figures.append(("redeem, median latency (ms)", f"{s_med:.1f}", f"{p_med:.1f}", r, *REDEEM, verdict(r, REDEEM)))
    figures.append(("redeem, p95 latency (ms)", f"{s_p95:.1f}", f"{p_p95:.1f}", p_p95 / s_p95, None, None, "-"))

    # (3) dashboard
    if args.dashboard_rows == 0:
        print("\n(3) dashboard: skipped (--dashboard-rows 0)")
    else:
        if args.dashboard_rows == args.rows and args.dashboard_members == args.members:
            dash_db, dash_day = main_db, day
            print(f"\n(3) dashboard on the databases of (1), {args.rows} purchases")
        else:
            print(f"\n(3) dashboard on {args.dashboard_rows} purchases over {args.dashboard_members} members: "
                  "building both databases (UNTIMED setup) ...", flush=True)
            d_members, d_purchases = prepared_data(args.dashboard_rows, args.dashboard_members, dbs.workdir)
            dash_db, dash_day = {}, last_day(d_purchases)
            for side in SIDES[::-1]:
                dash_db[side] = dbs.fresh(side, "dash")
                setup_s, imp_s, _ = build(dash_db[side], d_members, d_purchases)
                print(f"  {side:10}: setup {setup_s:6.2f} s, purchases import {imp_s:7.2f} s (both untimed setup)",
                      flush=True)
        cmd = {side: [*loyalty_cmd(), "--db", dash_db[side], "dashboard", "--as-of", dash_day, "--json"]
               for side in SIDES}
        outs = {side: run(cmd[side])[1] for side in SIDES}  # warm-up, untimed
        if json.loads(outs["SQLite"]) != json.loads(outs["PostgreSQL"]):
            print("  NOTE: the two backends' dashboard JSON differ")
        dash: dict[str, list[float]] = {s: [] for s in SIDES}
        for i in range(args.runs):
            for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
                dash[side].append(run(cmd[side])[0])
        s_d, p_d = med(dash["SQLite"]), med(dash["PostgreSQL"])
        for side in SIDES:
            print(f"  {side:10}: median {med(dash[side]):7.2f} s of {args.runs} "
                  f"({', '.join(f'{t:.2f}' for t in dash[side])})")
        r = p_d / s_d
        figures.append((f"dashboard, {args.dashboard_rows:,} purchases (s)", f"{s_d:.2f}", f"{p_d:.2f}", r,
                        *DASHBOARD, verdict(r, DASHBOARD)))
        if dash_db is not main_db:
            for side in SIDES:
                dbs.discard(side, dash_db[side])

    # (4) tills
    print(f"\n(4) {args.tills} concurrent tills for {args.tills_seconds:g} s on each backend "
          "(LOYALTY_BUSY_TIMEOUT=30)", flush=True)
    till: dict[str, dict] = {}
    for side in SIDES:
        till[side] = res = tills(main_db[side], args.tills, args.tills_seconds, rich, poor, at)
        print(f"  {side:10}: {res['ok']} redeems + {res['refused']} refused (not enough points) "
              f"+ {res['errors']} errors in {res['wall']:.1f} s = {res['rate']:.1f} per second", flush=True)
        for line in res["error_lines"]:
            print(f"    ERROR {line}")
    s_t, p_t = till["SQLite"]["rate"], till["PostgreSQL"]["rate"]
    till_errors = till["SQLite"]["errors"] + till["PostgreSQL"]["errors"]
    figures.append((f"{args.tills} tills, redeems/s (higher is better)", f"{s_t:.1f}", f"{p_t:.1f}",
                    p_t / s_t if s_t else float("nan"), None, None,
                    "FAIL" if till_errors else "ok"))
    if not (till["SQLite"]["refused"] and till["PostgreSQL"]["refused"]):
        print("  NOTE: a backend saw no refusal: the till mix did not exercise short balances")

    # the closing table
    print()
    print(f"Results ({args.rows:,} rows / {args.members:,} members; ratio = PostgreSQL / SQLite)")
    head = ("figure", "SQLite", "PostgreSQL", "ratio", "target", "must", "verdict")
    w = max(len(f[0]) for f in figures) + 2
    print(f"  {head[0]:<{w}}{head[1]:>10}{head[2]:>12}{head[3]:>8}{head[4]:>8}{head[5]:>7}  {head[6]}")
    for name, s, p, ratio, target, must, v in figures:
        t = f"{target:.1f}" if target is not None else "-"
        m = f"{must:.1f}" if must is not None else "-"
        print(f"  {name:<{w}}{s:>10}{p:>12}{ratio:>8.2f}{t:>8}{m:>7}  {v}")
    print(f"  (load average at the end: {os.getloadavg()[0]:.2f}; figures on a busy machine are noisy)")
    if till_errors:
        print(f"pg benchmark: {till_errors} till command(s) failed (see ERROR lines above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
