"""`python -m loyalty_cli` and the `loyalty` console script.

The command-line modules are imported inside `main`, so that they load after the package's
Ctrl-C handler is in place (loyalty_cli/__init__.py): a Ctrl-C while they load (a tenth of a
second) is the usual one-line message, not a traceback. Where that handler is not installed
(a program that imports the package and calls `main`), the except below says the same.
"""

import sys


def main() -> None:
    try:
        from loyalty_cli.cli import main as cli_main
    except KeyboardInterrupt:
        from loyalty_cli import INTERRUPTED

        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
