"""`python -m loyalty_cli` runs the command-line tool."""

from loyalty_cli.cli import main

if __name__ == "__main__":
    main()
