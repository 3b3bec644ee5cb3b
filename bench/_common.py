"""Shared helpers for the benchmark scripts in bench/.

Stdlib only, and nothing outside this directory: the benchmarks must run without
../shared. Every measured command runs as a fresh process, so interpreter start-up
and imports are part of each figure, as they are for a user.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORKDIR = BENCH_DIR / ".data"

# Runs in a fresh interpreter whose only child is the measured command, so its
# RUSAGE_CHILDREN.ru_maxrss is that command's peak RSS and nothing else's.
_RSS_WRAPPER = """\
import json, resource, subprocess, sys, time
cmd = json.loads(sys.argv[1])
t0 = time.perf_counter()
rc = subprocess.call(cmd, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t0
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": rc, "wall": wall, "maxrss": maxrss}))
"""


def loyalty_cmd() -> list[str]:
    """The command that runs the loyalty CLI with the current interpreter."""
    return [sys.executable, "-m", "loyalty_cli"]


def ensure_data(rows: int, members: int, workdir: Path = DEFAULT_WORKDIR) -> tuple[Path, Path]:
    """Return (members CSV, purchases CSV), generating each the first time it is needed.

    Files are cached by name in workdir (members-<members>.csv,
    purchases-<rows>-<members>.csv) with the generators' default seed and start,
    so every benchmark run sees the same data. Each is written to a temporary
    name and renamed, so an interrupted generation never leaves a truncated file
    that a later run would take for a cached one.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    members_csv = workdir / f"members-{members}.csv"
    purchases_csv = workdir / f"purchases-{rows}-{members}.csv"
    _generate(members_csv, ["gen_members.py", str(members)])
    _generate(purchases_csv, ["gen_purchases.py", str(rows), str(members)])
    return members_csv, purchases_csv


def _generate(target: Path, script_and_args: list[str]) -> None:
    """Run a generator in this directory to write target, unless target already exists."""
    if target.exists():
        return
    script, *args = script_and_args
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _run_checked([sys.executable, str(BENCH_DIR / script), *args, str(tmp)])
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _run_checked(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Run cmd with stdout discarded; raise RuntimeError with its stderr if it fails."""
    proc = subprocess.run(list(cmd), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))


def _failure(cmd: Sequence[str], returncode: int, stderr: bytes) -> str:
    """The message for a command that exited non-zero."""
    text = stderr.decode("utf-8", "replace").strip()
    return f"command failed with exit code {returncode}: {' '.join(map(str, cmd))}\n{text}"


def median_time(
    cmd: list[str],
    runs: int,
    env: Mapping[str, str] | None = None,
    warmup: int = 1,
    *,
    before: Callable[[], None] | None = None,
) -> float:
    """Median wall seconds of `runs` fresh runs of cmd, after `warmup` untimed runs.

    Time is taken with time.perf_counter around the whole process (start-up
    included); stdout is discarded. before, if given, is called ahead of every
    run, warm-ups included, outside the timing (e.g. to delete the database so
    each import starts from empty). Raises RuntimeError with the command's
    stderr if any run exits non-zero.
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    times: list[float] = []
    for i in range(warmup + runs):
        if before is not None:
            before()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


def peak_rss_mib(cmd: list[str], env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """Run cmd once; return (wall seconds, its peak RSS in MiB).

    ru_maxrss for RUSAGE_CHILDREN is the maximum over every child this process
    has ever waited for, so measuring here would report the largest earlier
    command instead. cmd is therefore run by a fresh wrapper interpreter whose
    only child it is, and the wrapper reports the figure. If cmd itself spawns
    processes, the figure is the largest single process, not their sum. Wall
    time is measured in the wrapper around cmd alone. Raises RuntimeError with
    the command's stderr if it exits non-zero.
    """
    wrapper = [sys.executable, "-c", _RSS_WRAPPER, json.dumps(list(cmd))]
    proc = subprocess.run(wrapper, env=env, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))
    report = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    if report["rc"] != 0:
        raise RuntimeError(_failure(cmd, report["rc"], proc.stderr))
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    kib = report["maxrss"] / 1024 if sys.platform == "darwin" else report["maxrss"]
    return report["wall"], kib / 1024


def remove_db(db: Path) -> None:
    """Delete a SQLite database and its WAL/shared-memory companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def warm_cache(path: Path) -> None:
    """Read a file once, untimed, so every timed run finds it in the OS cache."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def prepared_data(rows: int, members: int, workdir: Path) -> tuple[Path, Path]:
    """`ensure_data`, saying where and how long it took, then both files read once (warm_cache)."""
    import time

    print(f"Data: {rows} purchase rows over {members} members in {workdir} ...", flush=True)
    t0 = time.perf_counter()
    members_csv, purchases_csv = ensure_data(rows, members, workdir)
    print(f"  ready ({time.perf_counter() - t0:.1f} s): {members_csv.name}, {purchases_csv.name}")
    warm_cache(members_csv)
    warm_cache(purchases_csv)
    return members_csv, purchases_csv


def sized_main(argv, description: str, runs_help: str, bench, name: str) -> int:
    """The command line of a benchmark over generated data: --rows, --members, --workdir, --runs
    (each >= 1), then `bench(args)`; a RuntimeError (a command failed) is one line and exit 1."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=1_000_000, help="purchase rows (default 1000000)")
    parser.add_argument("--members", type=int, default=100_000, help="members (default 100000)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="where the CSVs are cached and the databases made (default bench/.data)")
    parser.add_argument("--runs", type=int, default=1, help=runs_help)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rows < 1 or args.members < 1:
        parser.error("--rows, --members and --runs must be >= 1")
    try:
        return bench(args)
    except RuntimeError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
