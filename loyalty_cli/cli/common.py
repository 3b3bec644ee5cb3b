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
from loyalty_cli.errors import LoyaltyError, UsageError
from loyalty_cli.render import Output
from loyalty_cli.i18n import M_, N_, _, display


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


def currency_symbol() -> str:
    """The currency_symbol of the programme in force today ("" when none): read when money is
    first shown to a person (render.currency_from), from the database of this invocation."""
    from loyalty_cli.program import load_programme
    from loyalty_cli.store import Store

    s = Store.open(Invocation.db)
    try:
        with s.read() as tx:
            return load_programme(tx).for_date(today()).currency_symbol
    finally:
        s.close()


def out(lists: bool = True) -> Output:
    if Invocation.csv and not lists:
        raise UsageError(M_("--csv is for commands that print a list; use --json here"))
    return Output(json=Invocation.json, csv=Invocation.csv and not Invocation.json, quiet=Invocation.quiet)


def store(create: bool = False):
    """The database of --db / LOYALTY_DB / the default; only `create` (init, restore) makes a new one."""
    from loyalty_cli.store import Store

    s = Store.open(Invocation.db, create=create, now=now())
    s.announce = _announce
    s.tell()  # what opening it did (a migration), before the command's own output
    return s


def _announce(text: str) -> None:
    import sys

    print(f"loyalty: {text}" if not text.startswith("warning:") else text, file=sys.stderr)


def call(fn, *args, **kwargs):
    """Open the database, run one domain function with it, and close it whatever happens."""
    s = store()
    try:
        return fn(s, *args, **kwargs)
    finally:
        s.close()


def stored_member_id(typed: str) -> str:
    """The member id as stored (`' m0042'` → `M0042`), for a command whose result does not carry it
    (a statement, a tier history): what it prints names the member the way the shop enrolled them
    (a merged member's own id: its statement is its own)."""
    from loyalty_cli.ids import resolve_member

    s = store()
    try:
        with s.read() as conn:
            return resolve_member(conn, typed, alias=False)
    finally:
        s.close()


def as_stored(typed: str) -> str:
    """`stored_member_id`, for a refusal's wording: the id as typed, trimmed, when the database
    cannot say (no database yet, an id that could never be stored: the command reports that next)."""
    from loyalty_cli.errors import LoyaltyError

    try:
        return stored_member_id(typed)
    except LoyaltyError:
        return typed.strip()


@contextmanager
def skipped_rows_summary(summary, skip_bad: bool):
    """With --skip-bad, an import that skipped rows still committed the rest: its error line
    (exit 3) ends with the summary a shop owner would otherwise not see (stdout stays empty)."""
    from loyalty_cli.errors import InputFileError

    try:
        yield
    except InputFileError as exc:
        if skip_bad and exc.rows_skipped and exc.summary is not None:
            exc.args = (f"{display(exc)}; {summary(exc.summary)}",)
        raise


def now() -> str:
    return dt.datetime.now().replace(microsecond=0).isoformat()


def today() -> str:
    return dt.date.today().isoformat()


def allow_future_option():
    """`--allow-future`, the same on every command that may write something dated after today."""
    import typer

    return typer.Option(False, "--allow-future",
                        help=N_("Accept a date after today (refused otherwise, so a typo cannot write the future)."))


def refuse_future(when: str | None, allow: bool, option: str, would) -> None:
    """SPEC §3: a command that would write something dated after today refuses, exit 2 and nothing
    written, unless given --allow-future: a typo in a cron line (`points expire --as-of 2027-12-04`)
    must not write off every balance. `when` is the stored date or datetime; `would` says what the
    command would do ("write off points that lapse by then"). A date later today is not after today."""
    if allow or when is None:
        return
    day = today()
    if when[:10] > day:
        would = would() if callable(would) else would  # worded only when refusing (it may look up an id)
        raise UsageError(M_("{option} {when} is after today ({day}): this would {would}; pass --allow-future if that is what you mean", option=option, when=when, day=day, would=would))


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
    if by is not None and not by.strip():  # an unset shell variable, not a wish to be the OS user
        raise UsageError(M_("--by was given an empty name; give who made the entry, or leave --by out"))
    given = by or os.environ.get("LOYALTY_OPERATOR")
    if given:  # kept in the ledger for ever and shown by every statement: plain text only
        from loyalty_cli import values

        # named as the import's settings are: the variable too when it holds the value (it may have been set, not typed)
        what = _("--by (or LOYALTY_OPERATOR)") if os.environ.get("LOYALTY_OPERATOR") == given else "--by"
        return parse(values.parse_text, given, what, 100)
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return "unknown"


def money(minor: int | None, decimals: int) -> str | None:
    return None if minor is None else values.format_money(minor, decimals)


def pending_pairs(pending: list[dict]) -> list[tuple[str, str]]:
    """The "pending" line of `members show` and `points balance`: points counted in the balance but
    not spendable yet (earn.pending_days), e.g. "8,000 points, available from 2026-12-19"; none
    when every point may be spent."""
    if not pending:
        return []
    from loyalty_cli.render import plural

    return [(_("pending"), "; ".join(_("{points}, available from {date}").format(points=plural(p['points'], 'point'), date=p['date'])
                                  for p in pending))]


def masked(rows: list[dict], show_pii: bool) -> list[dict]:
    if show_pii:
        return rows
    for r in rows:
        if "email" in r:
            r["email"] = values.mask_email(r["email"])
        if "phone" in r:
            r["phone"] = values.mask_phone(r["phone"])
    return rows


def pii_columns(columns: list[tuple], show_pii: bool) -> list[tuple]:
    """A list's columns, the email and phone ones headed `email_masked` and `phone_masked` in CSV when
    masked: the file says it holds no real contact details, and `members import` refuses it whole
    instead of writing stars over real emails (SPEC §9; issue 15)."""
    if show_pii:
        return columns
    return [(key, label, f"{key}_masked") if key in ("email", "phone") else (key, label, *rest)
            for key, label, *rest in columns]


def existing_file(path: Path, what: str = "file") -> Path:
    """A file to read (`-`: standard input); any problem with it is a bad input file (exit 3), as for
    one refused on reading."""
    if str(path) == "-":
        return Path("/dev/stdin")
    if str(path) in ("", "."):
        from loyalty_cli.errors import InputFileError

        raise InputFileError(M_("no {what} was named (an empty path)", what=what))
    if not path.exists():
        from loyalty_cli.errors import InputFileError

        raise InputFileError(M_("{what} {path} does not exist", what=what, path=path))
    if path.is_dir():
        from loyalty_cli.errors import InputFileError

        raise InputFileError(M_("{path} is a directory, not a {what}", path=path, what=what))
    return path


GLOBAL_HELP = N_("Global options, accepted anywhere: --db PATH (env LOYALTY_DB), --json, --csv (lists), -q/--quiet, --lang en|zh.")


def group(help: str, example: str):
    """A command group whose --help ends with an example, like every command's."""
    import typer

    return typer.Typer(help=f"{help}\n\n\b\nExample:\n  {example}", no_args_is_help=True, epilog=GLOBAL_HELP)


def database_file(path: Path) -> str | None:
    """Which of this invocation's database files `path` names: "" the database itself, "wal",
    "shm" or "journal" one of SQLite's files beside it; None when it is none of them (and always
    for a PostgreSQL database). For the options that write a file (--output, --members): never
    over the database."""
    from loyalty_cli.store import postgres_url, resolve_path

    if postgres_url(Invocation.db) is not None:
        return None
    try:
        db = Path(resolve_path(Invocation.db)).resolve()
    except (LoyaltyError, OSError):
        return None
    target = path.resolve()
    for suffix in ("", "-wal", "-shm", "-journal"):
        taken = db.with_name(db.name + suffix)
        same = target == taken
        if not same and path.exists() and taken.exists():
            try:
                same = os.path.samefile(taken, path)
            except OSError:
                same = False
        if same:
            return suffix[1:]
    return None


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically: a temporary file beside it, synced, then
    renamed over it (a reader never sees half a file; a failure leaves the old file or none)."""
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)  # 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
