"""`python -m loyalty_cli` and the `loyalty` console script.

The command-line modules are imported inside `main`, so that a Ctrl-C while they
load (a tenth of a second) is the usual one-line message, not a traceback.
"""

import sys


def main() -> None:
    try:
        from loyalty_cli.cli import main as cli_main
    except KeyboardInterrupt:
        from loyalty_cli.errors import INTERRUPTED

        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
