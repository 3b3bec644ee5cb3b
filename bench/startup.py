"""Start-up cost of the loyalty CLI compared with a bare Typer app.

What is measured: the wall time of a fresh process running

    A. loyalty --db DB members show M1 --json   (a one-member database)
    B. a bare two-command Typer app printing its argument (`a hello`)

both with this interpreter (sys.executable), stdout discarded. The database is
prepared first, untimed, by enrolling one member (`members add --id M1 --name
Test`) in a temporary directory. After one untimed warm-up of each, A and B are
run alternately (A B, then B A, ...) so that drift in machine load touches both
alike, and the median of each is reported, timed with time.perf_counter around
the whole process (interpreter start-up and imports included, as for a user).

How to read it: B is the least any Typer CLI costs on this machine, so the
ratio loyalty/typer is what our own imports and work add on top. Target
<= 1.2, must be <= 1.5; "FAIL" is printed beside a ratio above 1.5. Only the
ratio means anything across machines; the milliseconds vary. The exit code is
0 whatever the figures (a measurement, not a test); it is 1 only if a measured
command itself fails, with that command's stderr printed.

Usage: python bench/startup.py [--runs N]   (default 20)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _failure, loyalty_cmd  # noqa: E402

TARGET = 1.2
LIMIT = 1.5

BARE_TYPER_APP = """\
import typer

app = typer.Typer()


@app.command()
def a(x: str):
    print(x)


@app.command()
def b():
    pass


app()
"""


def _time_once(cmd: list[str]) -> float:
    """Wall seconds of one fresh run of cmd; RuntimeError with its stderr if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))
    return elapsed


def _prepare_db(db: Path) -> None:
    """Create the database (only init does) and enrol one member, M1, so that `members show M1`
    has something to show."""
    for cmd in ([*loyalty_cmd(), "--db", str(db), "init"],
                [*loyalty_cmd(), "--db", str(db), "members", "add", "--id", "M1", "--name", "Test"]):
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise RuntimeError(_failure(cmd, proc.returncode, proc.stderr))


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except RuntimeError as exc:  # a measured command failed: no figure to give
        print(f"startup benchmark: {exc}", file=sys.stderr)
        return 1


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each command (default 20)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")

    with tempfile.TemporaryDirectory(prefix="loyalty-startup-") as tmp:
        tmpdir = Path(tmp)
        db = tmpdir / "startup.db"
        app_file = tmpdir / "bare_typer_app.py"
        app_file.write_text(BARE_TYPER_APP, encoding="utf-8")
        _prepare_db(db)

        loyalty = [*loyalty_cmd(), "--db", str(db), "members", "show", "M1", "--json"]
        typer_app = [sys.executable, str(app_file), "a", "hello"]

        # Warm-up (untimed): fills the OS page cache and writes .pyc files.
        _time_once(loyalty)
        _time_once(typer_app)

        ours: list[float] = []
        bare: list[float] = []
        for i in range(args.runs):
            if i % 2 == 0:
                ours.append(_time_once(loyalty))
                bare.append(_time_once(typer_app))
            else:
                bare.append(_time_once(typer_app))
                ours.append(_time_once(loyalty))

    ours_ms = statistics.median(ours) * 1000
    bare_ms = statistics.median(bare) * 1000
    ratio = ours_ms / bare_ms
    verdict = "FAIL" if ratio > LIMIT else ("ok" if ratio <= TARGET else "above target")

    print(f"Python {sys.version.split()[0]} ({sys.executable}), median of {args.runs} runs each, interleaved")
    print(f"  loyalty members show --json : {ours_ms:8.1f} ms")
    print(f"  bare Typer app              : {bare_ms:8.1f} ms")
    print(f"  ratio loyalty/typer         : {ratio:8.2f}  {verdict}")
    print(f"  (target <= {TARGET}, must be <= {LIMIT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
