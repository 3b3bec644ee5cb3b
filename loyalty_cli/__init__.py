"""loyalty: a command-line loyalty programme for small shops, over one SQLite file.

Ctrl-C is taken over here, first thing, because this file is the first of the tool's code
to run: the `loyalty` script and `python -m loyalty_cli` import the package before `main`.
Python's own handler raises KeyboardInterrupt wherever the program happens to be, so a Ctrl-C
in the tenth of a second before `main`'s try printed a traceback, and one after the command
had finished (while the interpreter shut down) killed the process by the signal. With this
handler a Ctrl-C at any moment ends with one line on stderr and exit 130:

- before the command starts (nothing is open): the line, then exit at once;
- while it runs: KeyboardInterrupt, once, so that an open transaction rolls back on the way
  out (store.py relies on that) and the CLI says whether the change was saved;
- a second Ctrl-C while the first one unwinds: exit at once (SQLite's journal undoes an
  unfinished transaction, as after a kill), rather than a KeyboardInterrupt inside an
  `except` or `finally` that is cleaning up;
- once the command's output is written and flushed (`finish`), Ctrl-C is ignored: the
  command is done, and its exit code stands.

The handler is installed at import only for the `loyalty` script and `python -m loyalty_cli`;
a program that imports the package (the tests) keeps Python's handler until it calls `main`.
"""

import _signal  # the C module: `signal` would import enum first, widening the window
import os
import sys

__version__ = "0.1.0"


def N_(message: str) -> str:
    """loyalty_cli.i18n's mark (translated where shown), not imported from there: nothing may be
    imported before the Ctrl-C handler is in place, or a Ctrl-C then is Python's traceback."""
    return message


# What Ctrl-C says when it stopped a command before it changed anything (translated where shown).
INTERRUPTED = N_("Interrupted: nothing was written by the unfinished command.")

_STARTING, _RUNNING, _STOPPING = "starting", "running", "stopping"
_state = _STARTING
_reported = False  # whether the one Interrupted line has been written
_message = None    # set by `begin`: the line to write (it knows whether a change was saved)


def _on_sigint(signum, frame):
    global _state
    if _state == _RUNNING:
        _state = _STOPPING
        raise KeyboardInterrupt
    report_interrupted(_write_fd2)
    os._exit(130)


def _write_fd2(text: str) -> None:
    """Straight to the file descriptor: inside a signal handler, sys.stderr may be half-way
    through a write of its own (its buffer is not re-entrant)."""
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def _ours(handler) -> bool:
    """Whether SIGINT may be taken over: not if it was ignored (nohup, a background job)."""
    return handler is _signal.default_int_handler or handler is _on_sigint


def _install() -> None:
    try:
        if _ours(_signal.getsignal(_signal.SIGINT)):
            _signal.signal(_signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread of the main interpreter
        pass


def _lost_interrupt(unraisable) -> None:
    """sys.unraisablehook while a command runs. The KeyboardInterrupt of a Ctrl-C raised while
    Python runs a callback it cannot raise from (a weakref's, such as the import lock's, or a
    `__del__`) would be printed as "Exception ignored in …" and lost, and the command would go
    on to exit 0: it stops here instead, as a second Ctrl-C does (one line, exit 130; an open
    transaction is not committed)."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        report_interrupted(_write_fd2)
        os._exit(130)
    sys.__unraisablehook__(unraisable)


def begin(message) -> None:
    """The command starts: Ctrl-C raises KeyboardInterrupt (once) from now on; `message()`
    gives the line to write."""
    global _state, _reported, _message
    _message, _reported = message, False
    _install()
    if sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _lost_interrupt
    _state = _RUNNING


def report_interrupted(write, text: str | None = None) -> None:
    """Write the Interrupted line (`text`, else what `begin` was told) with `write`, unless it
    has been written already (the command, Click and `main` may each see one interruption)."""
    global _reported
    if _reported:
        return
    _reported = True
    if text is None:
        try:
            text = _message() if _message is not None else INTERRUPTED
        except Exception:
            text = INTERRUPTED
    write(text + "\n")


def forget_interrupted() -> None:
    """At the start of a command (tests run many in one process)."""
    global _reported
    _reported = False


def finish() -> None:
    """The command's output is written and flushed: a Ctrl-C from here on changes nothing."""
    try:
        if _signal.getsignal(_signal.SIGINT) is _on_sigint:
            _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    except ValueError:
        pass


def _fill_closed_streams() -> None:
    """A standard stream that was closed when Python started (`>&-`, `2>&-`, a daemon that closed
    them) is None in sys, and every print, Click's usage errors and the check for a terminal
    failed on it (a traceback, or exit 1 for exit 2). Such a stream becomes /dev/null: the command
    runs as usual, its output is discarded as on a closed pipe (exit 0, the change is made), its
    exit code stands. The file descriptor itself is filled too, so that no file opened later (a
    database, a backup) takes number 1 or 2 and receives what is written to "stdout"."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name, None) is not None:
            continue
        try:
            os.fstat(fd)
            stream = open(os.devnull, mode, encoding="utf-8")  # open, yet Python gave no stream
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            stream = open(fd, mode, encoding="utf-8", closefd=False)
        setattr(sys, name, stream)


_fill_closed_streams()

if os.path.basename(getattr(sys, "argv", [""])[0] or "") in ("loyalty", "-m"):
    _install()
