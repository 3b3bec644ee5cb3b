"""Usage errors and help in the shop's words: one `Error:` line, at most one hint, real placeholders.

Click prints a usage error as four lines (usage, "Try ... for help", a blank line,
`Error: ...`) in its own wording ("No such option: -5", "Missing argument
'member_id'."), and Typer's help shows placeholders such as `{member_id}`,
`[[POINTS]]` and `<str>`. Here:

- `report(exc)` prints any Click usage error as `Error: <message>` plus at most one
  hint line (`Try: loyalty points award --help`, or the usage line when an
  argument is missing or extra), the same on a terminal and in a pipe;
- `name_parameters(command)` gives every argument and option a placeholder
  (MEMBER_ID, POINTS, DATE, N, ...) that help, usage lines and errors all use;
- `install()` makes a negative number typed where a value goes (`points award M1 -5`)
  reach that value's check ("POINTS must be a positive whole number, got -5")
  instead of being taken for an unknown option, and drops Typer's `{...}` and
  `<type>` decorations from help.

If Typer's or Click's internals change shape, `install()` leaves them as they are.
"""

from __future__ import annotations

import re
import sys
from loyalty_cli.i18n import _

# A negative number, where an option would otherwise be looked for: -5, -10.5, -1,5.
NEGATIVE = re.compile(r"-\d[\d.,]*")

# Placeholders of options by name; any other option taking a value is named after itself
# (--tier → TIER), an argument after its parameter (member_id → MEMBER_ID).
OPTION_METAVARS = {
    "--db": "PATH", "--as-of": "DATE", "--at": "DATETIME", "--from": "DATE", "--until": "DATE",
    "--birthday": "DATE", "--joined": "DATE", "--since": "DATE",
    "--limit": "N", "--days": "DAYS", "--period": "DAYS", "--stock": "N", "--cost": "POINTS",
    "--sort": "KEY", "--reason": "REASON", "--by": "NAME", "--name": "NAME", "--email": "EMAIL",
    "--phone": "PHONE", "--referred-by": "MEMBER_ID", "--member": "MEMBER_ID", "--reward": "CODE",
    "--search": "WORDS", "--comment": "COMMENT", "--rejects": "FILE", "--map": "FIELD=COLUMN",
    "--encoding": "ENCODING", "--delimiter": "CHAR", "--date-format": "FORMAT", "--category": "CATEGORY",
    "--status": "STATUS", "--segment": "SEGMENT", "--tier": "TIER", "--id": "ID", "--store": "NAME",
}
ARGUMENT_METAVARS = {"file": "FILE", "points_": "POINTS", "code": "CODE", "purchase_id": "PURCHASE_ID"}


def display_name(param) -> str:
    """How errors name a parameter: an option by its longest flag, an argument by its placeholder."""
    if getattr(param, "param_type_name", "") == "option":
        return max(param.opts, key=len)
    return param.metavar or (param.name or "").upper()


def metavar_for(param) -> str | None:
    """The placeholder a parameter shows in help and usage, or None for a flag."""
    if param.param_type_name == "argument":
        return ARGUMENT_METAVARS.get(param.name, (param.name or "value").upper().rstrip("_"))
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    flag = max(param.opts, key=len)
    return OPTION_METAVARS.get(flag, flag.lstrip("-").upper().replace("-", "_"))


def name_parameters(command) -> None:
    """Give every parameter of `command` (and of its subcommands) a real placeholder, once."""
    for param in getattr(command, "params", ()):
        _range_in_words(param)
        if param.metavar is None:
            param.metavar = metavar_for(param)
        elif param.metavar.startswith("[") and param.metavar.endswith("]"):
            param.metavar = param.metavar[1:-1]  # usage adds the brackets of an optional argument
    for sub in getattr(command, "commands", {}).values():
        name_parameters(sub)


def _range_in_words(param) -> None:
    """Say a number's bounds in the parameter's help, in words ("a whole number from 0 to 36,500"),
    once: the help shows no `x>=1` or `0<=x<=36500` (install() silences those); the check itself
    and its error message stay coercion.whole_number's."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if (low is None and high is None) or getattr(param, "range_in_words", False):
        return
    from loyalty_cli.cli.coercion import whole_kind

    words = whole_kind(low, high)
    param.help = (_("{help}; {words}.").format(help=param.help.rstrip().rstrip(".。"), words=words) if param.help
                  else f"{words[:1].upper()}{words[1:]}.")
    param.range_in_words = True


# -- usage errors -------------------------------------------------------------------------
def _usage_line(ctx) -> str:
    pieces = [p for p in ctx.command.collect_usage_pieces(ctx) if p != "[OPTIONS]"]
    options = " [OPTIONS]" if any(p.param_type_name == "option" for p in ctx.command.get_params(ctx)) else ""
    return (_("Usage: ") + f"{ctx.command_path} {' '.join(pieces)}{options}").replace("  ", " ").rstrip()


def _close(word: str, names) -> str:
    from difflib import get_close_matches

    matches = get_close_matches(word, list(names))
    return _(" (did you mean {join}?)").format(join=' or '.join(matches)) if matches else ""


def describe(exc, ce) -> tuple[str, str | None]:
    """The message and the hint line (or None) of a Click usage error, in the shop's words
    (`ce`: the exceptions module of the Click that Typer uses)."""
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "loyalty"
    try_help = _("Try: {path} --help").format(path=path)
    message = exc.message
    if isinstance(exc, ce.NoSuchOption):
        name = exc.option_name
        if NEGATIVE.fullmatch(name):
            return _("{name}: a negative number is not accepted here").format(name=name), try_help
        known = [o for p in ctx.command.get_params(ctx) for o in p.opts if o.startswith("--")] if ctx else []
        return _("unknown option {name}{close}").format(name=name, close=_close(name, known)), try_help
    if isinstance(exc, ce.MissingParameter) and exc.param is not None:
        param = exc.param
        if param.param_type_name == "argument":
            return _("{display_name} is missing").format(display_name=display_name(param)), _usage_line(ctx) if ctx else try_help
        return _("{display_name} {value} is required").format(display_name=display_name(param), value=param.metavar or 'VALUE'), _usage_line(ctx) if ctx else try_help
    if isinstance(exc, ce.BadParameter):
        if exc.param is not None:
            name = display_name(exc.param)
        elif isinstance(exc.param_hint, str):
            name = exc.param_hint.strip("'\"")
        else:
            name = ""
        if not name or message.startswith(name):
            return message, None
        return f"{name}: {message[:1].lower()}{message[1:]}", None
    if isinstance(exc, ce.BadOptionUsage):
        name = exc.option_name
        if "requires" in message:
            param = next((p for p in ctx.command.get_params(ctx) if name in p.opts), None) if ctx else None
            value = f" ({param.metavar})" if param is not None and param.metavar else ""
            return _("{name} needs a value{value}").format(name=name, value=value), None
        if "does not take a value" in message:
            return _("{name} takes no value (it is a switch: give {name} alone)").format(name=name), None
        return f"{name}: {message[:1].lower()}{message[1:]}".rstrip("."), try_help
    found = re.fullmatch(r"No such command '(.*)'\..*", message, re.S)
    if found:
        word = found.group(1)
        names = ctx.command.list_commands(ctx) if ctx is not None else []
        where = "" if ctx is None or ctx.parent is None else _(" in {path}").format(path=path)
        return _("no such command {word!r}{where}{close}").format(word=word, where=where, close=_close(word, names)), try_help
    found = re.fullmatch(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)", message, re.S)
    if found:
        extra = found.group(1)
        said = _("unexpected extra arguments: {extra}") if " " in extra else _("unexpected extra argument: {extra}")
        return said.format(extra=extra), _usage_line(ctx) if ctx else try_help
    if message == "Missing command.":
        return _("a command is needed"), try_help
    return f"{message[:1].lower()}{message[1:]}".rstrip("."), try_help


def report(exc) -> bool:
    """Print a usage error as one `Error:` line and at most one hint; False for the ones that are
    not errors to print this way (a bare group, which shows its help)."""
    try:
        from typer._click import exceptions as ce
    except ImportError:  # another Typer: its own display
        return False
    if isinstance(exc, ce.NoArgsIsHelpError):
        return False
    message, hint = describe(exc, ce)
    sys.stderr.write(_("Error: {message}").format(message=message) + "\n" + (f"{hint}\n" if hint else ""))
    sys.stderr.flush()
    return True


# -- parsing and help -----------------------------------------------------------------------
def install() -> None:
    """Negative numbers reach their parameter's check; help without `{...}`, `[[...]]` or `<type>`."""
    try:
        from typer._click.parser import _OptionParser
        from typer.core import TyperArgument, TyperCommand, TyperOption
    except ImportError:  # another Click or Typer: keep theirs
        return
    if not all(hasattr(cls, attr) for cls, attr in ((_OptionParser, "_process_opts"), (TyperCommand, "make_parser"),
                                                      (TyperArgument, "_usage_display_name"),
                                                      (TyperArgument, "display_type_rich"),
                                                      (TyperOption, "display_type_rich"))):
        return

    class NumberFriendlyParser(_OptionParser):
        """A lone negative number that no option is called is a value, like any other word."""

        def _process_opts(self, arg, state):
            if NEGATIVE.fullmatch(arg) and arg not in self._short_opt and arg not in self._long_opt:
                state.largs.append(arg)
                return
            super()._process_opts(arg, state)

    original_make_parser = TyperCommand.make_parser

    def make_parser(self, ctx):
        parser = original_make_parser(self, ctx)
        if type(parser) is _OptionParser:
            parser.__class__ = NumberFriendlyParser
        return parser

    def usage_display_name(self):
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperCommand.make_parser = make_parser
    TyperArgument._usage_display_name = usage_display_name
    TyperArgument.display_type_rich = lambda self, ctx: None  # the placeholder already says what goes there
    original_option_type = TyperOption.display_type_rich

    def option_type(self, ctx):
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None  # a flag takes no value: no `<bool>`
        return original_option_type(self, ctx)

    TyperOption.display_type_rich = option_type
    for cls in (TyperArgument, TyperOption):  # the range is said in words in the help (name_parameters)
        if hasattr(cls, "_get_number_range_help_str"):
            cls._get_number_range_help_str = lambda self: None
