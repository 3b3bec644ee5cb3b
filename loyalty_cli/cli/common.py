"""What every command shares: the global options, the store, time, operator, value parsing.

Commands are thin: parse options, call one domain function, hand the result to
`render`. Bad option values raise `UsageError` (exit 2) with the option's name.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from pathlib import Path

from loyalty_cli import values
from loyalty_cli.errors import UsageError
from loyalty_cli.render import Output


class Invocation:
    """The global options of the running command (`--db`, `--json`, `--csv`, `-q`)."""

    db: str | None = None
    json: bool = False
    csv: bool = False
    quiet: bool = False

    @classmethod
    def reset(cls, opts: dict) -> None:
        for key, value in opts.items():
            setattr(cls, key, value)


def out(lists: bool = True) -> Output:
    if Invocation.csv and not lists:
        raise UsageError("--csv is for commands that print a list; use --json here")
    return Output(json=Invocation.json, csv=Invocation.csv and not Invocation.json, quiet=Invocation.quiet)


def store(create: bool = False):
    """The database of --db / LOYALTY_DB / the default; only `create` (init, restore) makes a new one."""
    from loyalty_cli.store import Store

    return Store.open(Invocation.db, create=create)


def call(fn, *args, **kwargs):
    """Open the database, run one domain function with it, and close it whatever happens."""
    s = store()
    try:
        return fn(s, *args, **kwargs)
    finally:
        s.close()


@contextmanager
def skipped_rows_summary(summary, skip_bad: bool):
    """With --skip-bad, an import that skipped rows still committed the rest: its error line
    (exit 3) ends with the summary a shop owner would otherwise not see (stdout stays empty)."""
    from loyalty_cli.errors import InputFileError

    try:
        yield
    except InputFileError as exc:
        if skip_bad and exc.rows_skipped and exc.summary is not None:
            exc.args = (f"{exc}; {summary(exc.summary)}",)
        raise


def now() -> str:
    return dt.datetime.now().replace(microsecond=0).isoformat()


def today() -> str:
    return dt.date.today().isoformat()


def at_option(value: str | None, option: str = "--at") -> str:
    """`--at DATETIME` (default now) → stored form."""
    if value is None:
        return now()
    return values.checked(values.parse_datetime, value, option)


def as_of_option(value: str | None, option: str = "--as-of", default_today: bool = True) -> str | None:
    """`--as-of DATE` (default today) → `YYYY-MM-DD`."""
    if value is None:
        return today() if default_today else None
    return values.checked(values.parse_date, value, option)


def date_option(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    return values.checked(values.parse_date, value, option)


parse = values.checked  # a values.parse_* function on a command-line value: ValueError → exit 2


def operator(by: str | None) -> str:
    """Who made a manual entry: --by, else LOYALTY_OPERATOR, else the OS user."""
    given = by or os.environ.get("LOYALTY_OPERATOR")
    if given:  # kept in the ledger for ever and shown by every statement: plain text only
        from loyalty_cli import values

        return parse(values.parse_text, given, "--by (or LOYALTY_OPERATOR)", 100)
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return "unknown"


def money(minor: int | None, decimals: int) -> str | None:
    return None if minor is None else values.format_money(minor, decimals)


def masked(rows: list[dict], show_pii: bool) -> list[dict]:
    if show_pii:
        return rows
    for r in rows:
        if "email" in r:
            r["email"] = values.mask_email(r["email"])
        if "phone" in r:
            r["phone"] = values.mask_phone(r["phone"])
    return rows


def existing_file(path: Path, what: str = "file") -> Path:
    """A file to read (`-`: standard input); any problem with it is a bad input file (exit 3), as for
    one refused on reading."""
    if str(path) == "-":
        return Path("/dev/stdin")
    if str(path) in ("", "."):
        from loyalty_cli.errors import InputFileError

        raise InputFileError(f"no {what} was named (an empty path)")
    if not path.exists():
        from loyalty_cli.errors import InputFileError

        raise InputFileError(f"{what} {path} does not exist")
    if path.is_dir():
        from loyalty_cli.errors import InputFileError

        raise InputFileError(f"{path} is a directory, not a {what}")
    return path


GLOBAL_HELP = "Global options, accepted anywhere: --db PATH (env LOYALTY_DB), --json, --csv (lists), -q/--quiet."


def group(help: str, example: str):
    """A command group whose --help ends with an example, like every command's."""
    import typer

    return typer.Typer(help=f"{help}\n\n\b\nExample:\n  {example}", no_args_is_help=True, epilog=GLOBAL_HELP)
