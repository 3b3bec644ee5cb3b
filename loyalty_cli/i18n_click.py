"""Typer's and Click's own words in help ("Usage:", "Options", "Show this message and exit.",
"[default: …]", "env var") in the language of the invocation.

Typer 0.29 carries its own copy of Click (`typer._click`) whose words are plain English text,
while `typer.core` and `typer.rich_utils` ask the stdlib `gettext` (the global domain, which
this tool does not own). So, once the language is not English (`i18n.set_language`):

- `typer.core`'s `_` becomes `i18n._` (section titles, "default:", "env var:", "required");
- the help option's text and the usage line's "Usage: " prefix are translated where Click makes
  them (`get_help_option`, `HelpFormatter.write_usage`);
- `typer.rich_utils`' panel titles and markers (terminal help) are set before each help is
  drawn, from their English originals;
- plain help (piped, or COLUMNS set) wraps by terminal cells, not characters: a Chinese
  character takes two cells, so help wrapped by characters ran past 80 columns (rich's help
  already counts cells).

Each of these returns the English text unchanged when the language is English, so installing
them once is harmless for the invocations that follow. If Typer's internals change shape, the
missing pieces are left in English rather than failing.

The texts are listed below (marked for extraction) with the English Typer gives them.
"""

from __future__ import annotations

import sys

from loyalty_cli.i18n import N_, _

# typer.core and typer.rich_utils (through gettext), and typer._click (plain text)
WORDS = (
    N_("Usage: "), N_("Arguments"), N_("Options"), N_("Commands"), N_("Show this message and exit."),
    N_("default: {default}"), N_("env var: {var}"), N_("required"), N_("(dynamic)"), N_("Aborted!"),
    N_("[default: {}]"), N_("[env var: {}]"), N_("[required]"), N_("(deprecated) "), N_("Error"),
    N_("Aborted."), N_("Try [blue]'{command_path} {help_option}'[/] for help."),
    N_("Install completion for the current shell."),
    N_("Show completion for the current shell, to copy it or customize the installation."),
    N_("Example"),
)

RICH_CONSTANTS = {
    "DEPRECATED_STRING": "(deprecated) ", "DEFAULT_STRING": "[default: {}]", "ENVVAR_STRING": "[env var: {}]",
    "REQUIRED_LONG_STRING": "[required]", "ARGUMENTS_PANEL_TITLE": "Arguments", "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commands", "ERRORS_PANEL_TITLE": "Error", "ABORTED_TEXT": "Aborted.",
    "RICH_HELP": "Try [blue]'{command_path} {help_option}'[/] for help.",
}

_installed = False


def install() -> None:
    """Route Typer's and Click's help words through the tool's catalogue (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        import typer.core as core
        from typer._click import core as click_core
        from typer._click.formatting import HelpFormatter
    except ImportError:
        return
    core._ = _
    _cell_wrapping()
    _wrap_help_option(click_core)
    _wrap_usage(HelpFormatter)
    for cls in (core.TyperCommand, core.TyperGroup):
        _wrap_format_help(cls)


def _cell_wrapping() -> None:
    """Click's text wrapper measuring terminal cells (render.cells_of) and breaking a run of Chinese
    anywhere between characters; text that is all ASCII is wrapped exactly as before."""
    try:
        from typer._click import _textwrap
    except ImportError:
        return
    base = _textwrap.TextWrapper
    if getattr(base, "counts_cells", False):
        return

    class CellWrapper(base):
        counts_cells = True

        def _split(self, text):
            chunks = super()._split(text)
            if text.isascii():
                return chunks
            out = []
            for chunk in chunks:  # every wide character a chunk of its own: a line may break after it
                out.extend(chunk if chunk.isascii() else _wide_split(chunk))
            return out

        def _wrap_chunks(self, chunks):
            if all(chunk.isascii() for chunk in chunks):
                return super()._wrap_chunks(chunks)
            from loyalty_cli.render import cells_of

            lines, chunks = [], list(reversed(chunks))
            while chunks:
                indent = self.subsequent_indent if lines else self.initial_indent
                width = max(self.width - cells_of(indent), 1)
                if self.drop_whitespace and lines and not chunks[-1].strip():
                    chunks.pop()
                line, used = [], 0
                while chunks and used + cells_of(chunks[-1]) <= width:
                    used += cells_of(chunks[-1])
                    line.append(chunks.pop())
                if chunks and not line:  # one chunk wider than the line: cut it by cells
                    word, cut = chunks.pop(), ""
                    for ch in word:
                        if cells_of(cut + ch) > width and cut:
                            break
                        cut += ch
                    line.append(cut)
                    if word[len(cut):]:
                        chunks.append(word[len(cut):])
                if self.drop_whitespace and line and not line[-1].strip():
                    line.pop()
                if line:
                    lines.append(indent + "".join(line))
            return lines

    _textwrap.TextWrapper = CellWrapper


_WIDE = r"\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
_wide_runs = None  # compiled on first use: about 5 ms, which every start-up paid in English too


def _wide_split(chunk: str) -> list[str]:
    """`chunk` as each wide character alone and the runs of other characters between them."""
    global _wide_runs
    if _wide_runs is None:
        import re

        _wide_runs = re.compile(f"[{_WIDE}]|[^{_WIDE}]+")
    return _wide_runs.findall(chunk)


def _wrap_help_option(click_core) -> None:
    command = getattr(click_core, "Command", None)
    original = getattr(command, "get_help_option", None)
    if original is None:
        return

    def get_help_option(self, ctx):
        option = original(self, ctx)
        if option is not None and option.help:
            english = getattr(option, "english_help", option.help)
            option.english_help = english
            option.help = _(english)
        return option

    command.get_help_option = get_help_option


def _wrap_usage(formatter) -> None:
    original = getattr(formatter, "write_usage", None)
    if original is None:
        return

    def write_usage(self, prog, args="", prefix=None):
        return original(self, prog, args, _("Usage: ") if prefix is None else prefix)

    formatter.write_usage = write_usage


def _wrap_format_help(cls) -> None:
    original = cls.__dict__.get("format_help")
    if original is None:
        return

    def format_help(self, ctx, formatter):
        rich_words()
        return original(self, ctx, formatter)

    cls.format_help = format_help


def rich_words() -> None:
    """typer.rich_utils' titles and markers in the current language (it is loaded only for help
    drawn on a terminal; plain help uses the words above)."""
    rich_utils = sys.modules.get("typer.rich_utils")
    if rich_utils is None:
        try:
            import typer.rich_utils as rich_utils
        except ImportError:
            return
    for name, english in RICH_CONSTANTS.items():
        if hasattr(rich_utils, name):
            setattr(rich_utils, name, _(english))


def translate_tree(command) -> None:
    """The help of `command` and of its subcommands in the current language: its text (the
    example block's commands stay as they are, its title translated), epilog and every
    parameter's help. Click objects are built anew for each invocation, so this runs on each."""
    from loyalty_cli.i18n import language

    if language() == "en" or getattr(command, "translated", False):
        return
    command.translated = True
    command.help = help_text(command.help)
    if command.short_help:
        command.short_help = _(command.short_help)
    command.epilog = help_text(command.epilog)
    for param in getattr(command, "params", ()):
        if getattr(param, "help", None):
            param.help = _(param.help)
    for sub in getattr(command, "commands", {}).values():
        translate_tree(sub)


EXAMPLE = "\b\nExample"


def help_text(text: str | None) -> str | None:
    """A command's help (its docstring, cleaned) translated: the text before its example block is
    one message; the block keeps its commands and gets its title ("Example") translated."""
    if not text:
        return text
    head, sep, tail = text.partition(EXAMPLE)
    body = head.rstrip()
    translated = _(body) + head[len(body):]
    return translated + ("\b\n" + _("Example") + tail if sep else "")


def example_at(text: str) -> int:
    """Where a help text's example block starts (after translation too), or -1."""
    at = text.find("\b\n" + _("Example"))
    return at if at >= 0 else text.find(EXAMPLE)
