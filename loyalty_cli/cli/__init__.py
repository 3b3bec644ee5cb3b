"""The `loyalty` command: a Typer app of nouns with verbs, global options, one error handler.

Global options (`--db`, `--json`, `--csv`, `-q`) are accepted anywhere on the
command line: the root group lifts them out of the arguments before Typer parses
the rest. Every expected failure becomes one `Error:` line and the exit code of
SPEC §3; nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from loyalty_cli import __version__, forget_interrupted, report_interrupted
from loyalty_cli.cli import coercion, usage
from loyalty_cli.cli.common import GLOBAL_HELP, Invocation, out, store
from loyalty_cli.errors import INTERRUPTED, CheckFailed, InputFileError, LoyaltyError
from loyalty_cli.i18n import N_, _, display, message_of
from loyalty_cli.i18n_click import example_at, translate_tree

coercion.install()
usage.install()

SHOW_PROBLEMS = 100  # bad rows listed on stderr; --json and --rejects give all of them
FLAGS = {"--json": "json", "--csv": "csv", "-q": "quiet", "--quiet": "quiet"}


def split_globals(args: list[str]) -> tuple[dict, list[str]]:
    """Lift the global options out of the arguments, wherever they stand (not after `--`)."""
    opts = {"db": None, "json": False, "csv": False, "quiet": False}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in FLAGS:
            opts[FLAGS[arg]] = True
        elif arg.partition("=")[0] in FLAGS and "=" in arg:  # `--json=1`: a switch given a value
            flag = arg.partition("=")[0]
            raise typer.BadParameter(_("{flag} takes no value (it is a switch: give {flag} alone)").format(flag=flag),
                                     param_hint=f"'{flag}'")
        elif arg == "--lang" or arg.startswith("--lang="):  # chosen before parsing (choose_language)
            i += 1 if arg == "--lang" else 0
        elif arg == "--db" or arg.startswith("--db="):
            if arg == "--db":
                if i + 1 >= len(args):
                    raise typer.BadParameter(_("--db needs the path of a database file"), param_hint="'--db'")
                i += 1
                value = args[i]
            else:
                value = arg[5:]
            if not value.strip():
                raise typer.BadParameter(_("--db was given an empty path (is a shell variable unset?)"), param_hint="'--db'")
            opts["db"] = value
        else:
            rest.append(arg)
        i += 1
    return opts, rest


def _error(message: str) -> None:
    sys.stderr.write(_("Error: {message}").format(message=display(message)) + "\n")


def choose_language(args) -> None:
    """The language of this invocation, before any help is built or anything printed: `--lang`
    (anywhere on the line), else LOYALTY_LANG, else the locale (LC_ALL, LC_MESSAGES, LANG). A
    bad --lang or LOYALTY_LANG is a usage error (exit 2), worded in the language otherwise chosen."""
    from loyalty_cli import i18n

    value, given = i18n.lang_in_args(args)
    try:
        from_env = i18n.from_environment()
        env_error = None
    except ValueError as bad:
        from_env, env_error = "en", str(bad)
    lang = i18n.parse_lang(value) if given and value is not None else None
    i18n.set_language(lang or from_env)
    if given and lang is None:
        if value is None:
            raise typer.BadParameter(_("--lang needs a language: en or zh"), param_hint="'--lang'")
        raise typer.BadParameter(_("--lang must be en or zh, got {value!r}").format(value=value), param_hint="'--lang'")
    if not given and env_error is not None:
        raise typer.BadParameter(_("LOYALTY_LANG must be en or zh, got {value!r}").format(value=env_error),
                                 param_hint="LOYALTY_LANG")


class LoyaltyGroup(TyperGroup):
    """The root group: lifts global options, loads command groups lazily, maps failures to exit codes."""

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(GROUPS))

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in GROUPS:
            self.commands[cmd_name] = _load_group(cmd_name)
        return self.commands.get(cmd_name)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.core._click.exceptions.UsageError as exc:  # a bad global option: one Error: line
            if not usage.report(exc):
                raise
            raise typer.Exit(2) from None

    def parse_args(self, ctx, args):
        if ctx.parent is None:
            choose_language(args)
            opts, args = split_globals(list(args))
            Invocation.reset(opts)
            from loyalty_cli.cli.common import currency_symbol
            from loyalty_cli.render import currency_from

            # JSON and CSV never show the symbol: no second look at the database for it (a record's
            # text is built before it knows it will be printed as JSON)
            currency_from(None if Invocation.json or Invocation.csv else currency_symbol)
            translate_tree(self)
            _example_last(self)
            usage.name_parameters(self)
            for command in self.commands.values():
                _example_last(command)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        from loyalty_cli.store import forget_saved

        forget_saved()
        forget_interrupted()
        try:
            return super().invoke(ctx)
        except InputFileError as exc:
            if Invocation.json and exc.summary is not None:
                summary = dict(exc.summary)
                summary["errors"] = [p.as_dict() for p in exc.problems]
                try:
                    out().json_doc(summary)
                except BrokenPipeError:
                    stdout_closed()  # the reader left: the exit code still says the file was refused
            _error(message_of(exc))
            if not Invocation.json:
                said = str(exc)  # a header problem (line 1) is the error line itself: said once
                shown = [p for p in exc.problems if p.line is not None
                         and not (p.line == 1 and p.message in said)][:SHOW_PROBLEMS]
                for problem in shown:
                    sys.stderr.write("  " + _("line {line}: {message}").format(line=problem.line, message=display(problem.message)) + "\n")
                if len(exc.problems) > SHOW_PROBLEMS:
                    from loyalty_cli.render import plural

                    sys.stderr.write("  " + _("… and {rows} (--json lists them all; --skip-bad --rejects FILE writes them out)").format(rows=plural(len(exc.problems) - SHOW_PROBLEMS, 'more bad row')) + "\n")
            ctx.exit(exc.exit_code)
        except CheckFailed as exc:
            _error(message_of(exc))
            if not Invocation.json:  # the problems under the error line (stdout stays empty on failure)
                for problem in exc.problems[:SHOW_PROBLEMS]:
                    who = _(" (member {member_id})").format(member_id=problem.member_id) if problem.member_id else ""
                    sys.stderr.write(f"  {problem.check}: {display(problem.message)}{who}\n")
                if len(exc.problems) > SHOW_PROBLEMS:
                    sys.stderr.write("  " + _("… and {n_problems:,} more (--json lists them all)").format(n_problems=len(exc.problems) - SHOW_PROBLEMS) + "\n")
            ctx.exit(exc.exit_code)
        except LoyaltyError as exc:
            _error(message_of(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            report_interrupted(sys.stderr.write, interrupted_message())
            ctx.exit(130)
        except (typer.Exit, typer.Abort):
            raise
        except typer.core._click.exceptions.UsageError as exc:  # one Error: line, at most one hint
            if not usage.report(exc):
                raise
            ctx.exit(2)
        except BrokenPipeError:
            # The reader of our output stopped (`| head`): its choice, nothing was refused, and a
            # write command's change is already committed.
            stdout_closed()
            ctx.exit(0)
        except UnicodeEncodeError as exc:
            if "surrogates" not in str(exc):
                _unexpected(exc)
                ctx.exit(1)
            # Bytes that are not UTF-8 in an argument or environment value (Python keeps them as
            # surrogates, which no text column can store).
            _error(_("a value given is not valid UTF-8 text (an argument or environment value holds bytes that are not UTF-8: check its encoding)"))
            ctx.exit(2)
        except Exception as exc:  # the database or the disk failing (the store says which), or a bug
            if type(exc).__module__.startswith(("typer", "click")):
                raise
            _storage_failure(ctx, exc)


def _storage_failure(ctx, exc: Exception) -> None:
    """A failure of SQLite or of the file system (damaged file, full disk, I/O error, permissions):
    its own line and exit code (store.storage_failure); anything else is a bug to report."""
    from loyalty_cli.store import resolve_path, storage_failure

    try:
        path = resolve_path(Invocation.db)
    except LoyaltyError:
        path = Invocation.db
    failure = storage_failure(exc, path)
    if failure is None:
        _unexpected(exc)
        ctx.exit(1)
    _error(message_of(failure))
    ctx.exit(failure.exit_code)


def interrupted_message() -> str:
    """What Ctrl-C did: nothing, unless it came after the command had saved its change (during
    COMMIT, or while the result was being printed), which the owner must not do again."""
    saved = "loyalty_cli.store" in sys.modules and sys.modules["loyalty_cli.store"].saved_changes()
    if saved:
        return (_("Interrupted after the change was saved: it is written (only the output may be missing; look before doing it again)."))
    return _(INTERRUPTED)


def _unexpected(exc: BaseException) -> None:
    if os.environ.get("LOYALTY_DEBUG"):
        raise exc
    _error(_("unexpected {name}: {exc} (set LOYALTY_DEBUG=1 for details and please report it)").format(name=type(exc).__name__, exc=exc))


def _interactive() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


app = typer.Typer(
    cls=LoyaltyGroup,
    name="loyalty",
    epilog=GLOBAL_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich" if _interactive() else None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        sys.stdout.write(f"loyalty {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help=N_("Print the version and exit.")),
    db: str = typer.Option(None, "--db", envvar="LOYALTY_DB", help=N_("Database file, or a postgresql:// URL (default: ~/.local/share/loyalty/loyalty.db).")),
    json_: bool = typer.Option(False, "--json", help=N_("Print one JSON document.")),
    csv_: bool = typer.Option(False, "--csv", help=N_("Print lists as CSV.")),
    quiet: bool = typer.Option(False, "-q", "--quiet", help=N_("Print nothing on success.")),
    lang: str = typer.Option(None, "--lang", metavar="en|zh", envvar="LOYALTY_LANG",
                             help=N_("Language of what people read: en or zh (default: from LANG, LC_ALL, LC_MESSAGES).")),
):
    """A loyalty programme for a small shop, in one SQLite file.

    \b
    Example:
      loyalty init
      loyalty members add --name "Ana Li" --email ana@shop.example
      loyalty purchases add L00000001 12.50
    """


@app.command()
def init():
    """Create (or migrate) the database and print where it is: the only command that creates one.

    Also makes the chain key that signs every change (LOYALTY_KEY_FILE; default:
    $XDG_CONFIG_HOME/loyalty/chain.key, mode 0600) unless it exists: keep a copy of
    it with your backups, apart from them.

    \b
    Example:
      loyalty init --db shop.db
      loyalty init --db postgresql://shop@db.example.com/loyalty
    """
    s = store(create=True)
    try:
        path = str(s.path.resolve())
    finally:
        s.close()
    out(lists=False).done(_("database ready at {path}").format(path=path), {"path": path})


# Command groups load when they are used, so `members show` at the counter does not
# pay for importing every other command (start-up is most of a counter command's time).
GROUPS = {
    "members": ("loyalty_cli.cli.members", "app"),
    "purchases": ("loyalty_cli.cli.purchases", "app"),
    "points": ("loyalty_cli.cli.points", "app"),
    "rewards": ("loyalty_cli.cli.rewards", "app"),
    "vouchers": ("loyalty_cli.cli.rewards", "vouchers_app"),
    "tiers": ("loyalty_cli.cli.tiers", "app"),
    "dashboard": ("loyalty_cli.cli.reports", "dashboard_app"),
    "report": ("loyalty_cli.cli.reports", "app"),
    "feedback": ("loyalty_cli.cli.reports", "feedback_app"),
    "program": ("loyalty_cli.cli.program", "app"),
    "db": ("loyalty_cli.cli.db", "app"),
    "campaign": ("loyalty_cli.cli.hygiene", "campaign_app"),
}


def _load_group(name: str):
    import importlib

    module, attribute = GROUPS[name]
    sub = getattr(importlib.import_module(module), attribute)
    command = typer.main.get_command(sub) if name == "dashboard" else typer.main.get_group(sub)
    command.name = name
    translate_tree(command)
    _same_markup(command, app.rich_markup_mode)
    usage.name_parameters(command)
    return command


def _same_markup(command, mode) -> None:
    """Help and errors of a lazily loaded group follow the root: rich on a terminal, plain otherwise;
    and its help ends with its example."""
    command.rich_markup_mode = mode
    _example_last(command)
    for sub in getattr(command, "commands", {}).values():
        _same_markup(sub, mode)


def _example_last(command) -> None:
    """Move a docstring's example block after the options, so that `--help` ends with it."""
    help_text = command.help or ""
    at = example_at(help_text)
    if at < 0:
        return
    command.help = help_text[:at].rstrip()
    command.epilog = (f"{command.epilog}\n\n" if command.epilog else "") + help_text[at:]


def main() -> None:
    """Console-script entry point: the exit code of the command, whatever happens around it.

    A Ctrl-C at any moment ends with one line on stderr and exit 130 (see loyalty_cli/__init__.py
    for the handler); a closed stdout (`| head -1`) ends quietly with exit 0. The output is
    flushed here, while a Ctrl-C can still be reported, rather than by the interpreter on its way
    out (where a closed pipe printed "Exception ignored" and exited 120).
    """
    import loyalty_cli

    os.umask(0o077)
    loyalty_cli.begin(interrupted_message)
    code = 0
    try:
        try:
            _run()
        except SystemExit as exc:
            code = exc.code
        if _pipe_closed_in_click():
            code = 0
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            stdout_closed()
        loyalty_cli.finish()
    except KeyboardInterrupt:  # before the command started, or after it returned
        code = 130
    except BrokenPipeError:  # in Click's own output (an error it was reporting, say)
        stdout_closed()
        code = 0
    loyalty_cli.finish()
    if code == 130:
        report_interrupted(sys.stderr.write, interrupted_message())
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        # Not through the interpreter's exit: under `python -m`, CPython turns any exit into a
        # death by SIGINT once a KeyboardInterrupt has ended code run by exec() or eval() (a
        # dataclass or namedtuple being built during an import), even though it was caught.
        # The transaction has rolled back and the database is closed by now.
        os._exit(130)
    sys.exit(code)


def stdout_closed() -> None:
    """The reader of stdout is gone: send what is left to /dev/null, so that no later write or
    the interpreter's last flush fails again (the recipe of Python's signal documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        pass


def _pipe_closed_in_click() -> bool:
    """Whether Click met a closed stdout outside a command (printing the help, say): it exits 1
    then, after wrapping the standard streams in this class."""
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def _run() -> None:
    # Bare `loyalty` or `loyalty members`: the help, on stdout with exit 0 (`loyalty | less` works;
    # Click would print it on stderr with exit 2).
    try:
        __, words = split_globals(sys.argv[1:])  # the words left once the global options are set aside
    except typer.BadParameter:
        words = None  # a bad --db: the group reports it as usual
    if words is not None and (not words or (len(words) == 1 and words[0] in GROUPS and words[0] != "dashboard")):
        sys.argv.append("--help")
    app(prog_name="loyalty")

GROUPS["households"] = ("loyalty_cli.cli.households", "app")  # issue 20: families pooling points (1+N)
